import { useState } from "react";
import { Link } from "react-router";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import { useFormAction } from "./authErrors";
import "./auth.css";

/** Ask for a password reset link (POST /v1/auth/reset): always the same answer. */
export default function ForgotPassword() {
  const { t } = useTranslation("auth");
  const [email, setEmail] = useState("");
  const [sent, setSent] = useState(false);

  const { busy, error, submit } = useFormAction(async () => {
    unwrap(await api.POST("/v1/auth/reset", { body: { email } }));
    setSent(true);
  });

  return (
    <section className="card narrow auth">
      <h1>{t("forgot.title")}</h1>
      {sent ? (
        <p role="status">{t("forgot.sent", { email })}</p>
      ) : (
        <form onSubmit={(e) => void submit(e)} className="form">
          <p className="muted">{t("forgot.explain")}</p>
          <label>
            {t("email")}
            <input type="email" autoComplete="email" required value={email}
                   onChange={(e) => setEmail(e.target.value)} />
          </label>
          {error ? <p role="alert" className="error">{error}</p> : null}
          <button type="submit" className="primary" disabled={busy}>{t("forgot.submit")}</button>
        </form>
      )}
      <div className="auth-links"><Link to="/signin">{t("back_to_signin")}</Link></div>
    </section>
  );
}
