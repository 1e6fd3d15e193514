import { useEffect, useRef, useState } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import { useSession } from "../../session";
import { errorText } from "./authErrors";
import "./auth.css";

/** /magic?token=: redeems a one-time sign-in link (POST /v1/auth/magic/redeem). */
export default function MagicLanding() {
  const { t } = useTranslation("auth");
  const { signedIn } = useSession();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [error, setError] = useState<string | null>(null);
  const tried = useRef(false);

  useEffect(() => {
    // Once only (StrictMode runs effects twice; the token works once).
    if (tried.current) return;
    tried.current = true;
    const token = params.get("token") ?? "";
    void (async () => {
      try {
        if (!token) throw new Error("no token");
        signedIn(unwrap(await api.POST("/v1/auth/magic/redeem", { body: { token } })));
        navigate("/studio/image", { replace: true });
      } catch (e) {
        setError(token ? errorText(t, e) : t("errors.invalid_token"));
      }
    })();
  }, [params, signedIn, navigate, t]);

  return (
    <section className="card narrow auth">
      <h1>{t("magic.landing_title")}</h1>
      {error ? (
        <>
          <p role="alert" className="error">{error}</p>
          <div className="auth-links"><Link to="/signin">{t("back_to_signin")}</Link></div>
        </>
      ) : <p role="status">{t("magic.signing_in")}</p>}
    </section>
  );
}
