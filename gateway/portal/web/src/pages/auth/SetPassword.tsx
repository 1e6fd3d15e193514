import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import { useSession } from "../../session";
import { useFormAction } from "./authErrors";
import "./auth.css";

/** /reset-password?token= (a reset mail) and /set-password?token= (an invitation): both post
 * the new password with the link's token to /v1/auth/reset/confirm, which signs this browser in. */
export default function SetPassword({ invitation = false }: { invitation?: boolean }) {
  const { t } = useTranslation("auth");
  const { signedIn } = useSession();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const [password, setPassword] = useState("");
  const [again, setAgain] = useState("");

  const { busy, error, setError, submit } = useFormAction(async () => {
    if (password !== again) {
      setError(t("reset.mismatch"));
      return;
    }
    signedIn(unwrap(await api.POST("/v1/auth/reset/confirm", { body: { token, password } })));
    navigate("/studio/image", { replace: true, state: { notice: invitation ? "password_set" : "password_reset" } });
  });

  const title = invitation ? t("reset.invite_title") : t("reset.title");
  if (!token) {
    return (
      <section className="card narrow auth">
        <h1>{title}</h1>
        <p role="alert" className="error">{t("errors.invalid_token")}</p>
        <div className="auth-links"><Link to="/forgot-password">{t("reset.ask_again")}</Link></div>
      </section>
    );
  }
  return (
    <section className="card narrow auth">
      <h1>{title}</h1>
      {invitation ? <p className="muted">{t("reset.invite_explain")}</p> : null}
      <form onSubmit={(e) => void submit(e)} className="form">
        <label>
          {t("new_password")}
          <input type="password" autoComplete="new-password" required value={password}
                 onChange={(e) => setPassword(e.target.value)} aria-describedby="password-hint" />
        </label>
        <p id="password-hint" className="muted hint">{t("password_hint")}</p>
        <label>
          {t("repeat_password")}
          <input type="password" autoComplete="new-password" required value={again}
                 onChange={(e) => setAgain(e.target.value)} />
        </label>
        {error ? <p role="alert" className="error">{error}</p> : null}
        <button type="submit" className="primary" disabled={busy}>{t("reset.submit")}</button>
      </form>
      {error && !invitation ? <div className="auth-links"><Link to="/forgot-password">{t("reset.ask_again")}</Link></div> : null}
    </section>
  );
}
