import { useState } from "react";
import { Link } from "react-router";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import { usePortalConfig } from "../../config";
import { useFormAction } from "./authErrors";
import "./auth.css";

/** Sign up, where the tenant lets anyone in; the account works once its address is verified. */
export default function SignUp() {
  const { t } = useTranslation("auth");
  const config = usePortalConfig();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [sent, setSent] = useState(false);

  const { busy, error, submit } = useFormAction(async () => {
    unwrap(await api.POST("/v1/auth/signup", { body: { email, password } }));
    setSent(true);
  });

  if (!config.signup_open) {
    return (
      <section className="card narrow auth">
        <h1>{t("signup.title")}</h1>
        <p>{t("signup.closed")}</p>
        <Link to="/signin">{t("back_to_signin")}</Link>
      </section>
    );
  }
  if (sent) {
    return (
      <section className="card narrow auth">
        <h1>{t("check_mail")}</h1>
        <p role="status">{t("signup.sent", { email })}</p>
        <Link to="/signin">{t("back_to_signin")}</Link>
      </section>
    );
  }
  return (
    <section className="card narrow auth">
      <h1>{t("signup.title")}</h1>
      <form onSubmit={(e) => void submit(e)} className="form">
        <label>
          {t("email")}
          <input type="email" autoComplete="email" required value={email}
                 onChange={(e) => setEmail(e.target.value)} />
        </label>
        <label>
          {t("password")}
          <input type="password" autoComplete="new-password" required value={password}
                 onChange={(e) => setPassword(e.target.value)} aria-describedby="password-hint" />
        </label>
        <p id="password-hint" className="muted hint">{t("password_hint")}</p>
        {error ? <p role="alert" className="error">{error}</p> : null}
        <button type="submit" className="primary" disabled={busy}>{t("signup.submit")}</button>
      </form>
      <div className="auth-links"><Link to="/signin">{t("signup.have_account")}</Link></div>
    </section>
  );
}
