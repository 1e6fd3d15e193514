import { useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import { usePortalConfig } from "../../config";
import { useSession } from "../../session";
import { isStaff } from "../console/sections";
import { safeNext, useFormAction } from "./authErrors";
import "./auth.css";

export { safeNext };

/** Sign in with a password, or ask for a one-time sign-in link by email (POST /v1/auth/magic). */
export default function SignIn() {
  const { t } = useTranslation("auth");
  const config = usePortalConfig();
  const { signedIn } = useSession();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [mode, setMode] = useState<"password" | "magic">("password");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [sent, setSent] = useState(false);

  const { busy, error, setError, submit } = useFormAction(async () => {
    if (mode === "magic") {
      unwrap(await api.POST("/v1/auth/magic", { body: { email } }));
      setSent(true);
    } else {
      const answer = unwrap(await api.POST("/v1/auth/login", { body: { email, password } }));
      signedIn(answer);
      // Staff land on the console, customers in the studio, unless a page sent them here.
      const next = params.get("next");
      navigate(next || !isStaff(answer.user.role) ? safeNext(next) : "/console", { replace: true });
    }
  });

  if (sent) {
    return (
      <section className="card narrow auth">
        <h1>{t("magic.sent_title")}</h1>
        <p role="status">{t("magic.sent", { email })}</p>
        <button type="button" className="link-button" onClick={() => { setSent(false); setMode("password"); }}>
          {t("back_to_signin")}
        </button>
      </section>
    );
  }

  return (
    <section className="card narrow auth">
      <h1>{t("signin.title")}</h1>
      <form onSubmit={(e) => void submit(e)} className="form">
        <label>
          {t("email")}
          <input type="email" autoComplete="email" required value={email}
                 onChange={(e) => setEmail(e.target.value)} />
        </label>
        {mode === "password" ? (
          <label>
            {t("password")}
            <input type="password" autoComplete="current-password" required value={password}
                   onChange={(e) => setPassword(e.target.value)} />
          </label>
        ) : <p className="muted">{t("magic.explain")}</p>}
        {error ? <p role="alert" className="error">{error}</p> : null}
        <button type="submit" className="primary" disabled={busy}>
          {mode === "password" ? t("signin.submit") : t("magic.submit")}
        </button>
      </form>
      <div className="auth-links">
        {mode === "password" ? (
          <>
            <Link to="/forgot-password">{t("signin.forgot")}</Link>
            <button type="button" className="link-button" onClick={() => { setMode("magic"); setError(null); }}>
              {t("signin.use_magic")}
            </button>
          </>
        ) : (
          <button type="button" className="link-button" onClick={() => { setMode("password"); setError(null); }}>
            {t("signin.use_password")}
          </button>
        )}
        {config.signup_open ? <Link to="/signup">{t("signin.no_account")}</Link> : null}
      </div>
    </section>
  );
}
