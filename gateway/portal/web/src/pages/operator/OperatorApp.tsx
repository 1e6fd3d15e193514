// The operator console (/operator/*): the platform's own screens, served only on the
// platform host (gateway/portal/site.py) and never branded as a tenant. Signing in means
// typing the operator token (MEDIAHUB_ADMIN_TOKEN); it stays in this tab's sessionStorage
// and goes only to /admin/v1.
import { lazy, Suspense, useState, type FormEvent, type ReactNode } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { Navigate, NavLink, Route, Routes } from "react-router";
import { useTranslation } from "react-i18next";
import { ApiError, unwrap } from "../../api/client";
import { changeLanguage, type Language } from "../../i18n";
import { admin, operatorToken, setOperatorToken } from "./api";
import "./operator.css";

const Tenants = lazy(() => import("./Tenants"));
const TenantDetail = lazy(() => import("./TenantDetail"));
const Providers = lazy(() => import("./Providers"));
const AuditLogPage = lazy(() => import("./AuditLog"));
const Analytics = lazy(() => import("./Analytics"));

function Loading() {
  const { t } = useTranslation();
  return <div className="loading" role="status">{t("loading")}</div>;
}

function LanguageSwitch() {
  const { t, i18n } = useTranslation();
  const other: Language = i18n.language === "ar" ? "en" : "ar";
  return (
    <button type="button" className="link-button" lang={other}
            onClick={() => void changeLanguage(other)} aria-label={t("language.switch")}>
      {t(`language.${other}`)}
    </button>
  );
}

/** The token form: the token is tried on GET /admin/v1/tenants before it is kept. */
function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const { t } = useTranslation("operator");
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setOperatorToken(token.trim());
    try {
      unwrap(await admin.GET("/admin/v1/tenants", { params: { query: { limit: 1 } } }));
      onSignedIn();
    } catch (e) {
      setOperatorToken(null);
      setError(e instanceof ApiError && (e.status === 401 || e.status === 403)
        ? t("signin.wrong_token") : t("signin.failed"));
    } finally {
      setBusy(false);
    }
  }
  return (
    <div className="card narrow">
      <h1>{t("signin.title")}</h1>
      <p className="muted">{t("signin.explain")}</p>
      <form className="form" onSubmit={(e) => void submit(e)}>
        <label>
          {t("signin.token")}
          <input type="password" autoComplete="off" required value={token}
                 onChange={(e) => setToken(e.target.value)} aria-invalid={error ? true : undefined}
                 aria-describedby={error ? "operator-signin-error" : undefined} />
        </label>
        {error ? <p id="operator-signin-error" className="error" role="alert">{error}</p> : null}
        <button type="submit" className="primary" disabled={busy || !token.trim()}>{t("signin.submit")}</button>
      </form>
    </div>
  );
}

function Shell({ signedIn, onSignOut, children }: { signedIn: boolean; onSignOut: () => void; children: ReactNode }) {
  const { t } = useTranslation();
  const { t: to } = useTranslation("operator");
  return (
    <div className="shell operator">
      <a className="skip-link" href="#main">{t("skip_to_content")}</a>
      <header className="topbar">
        <NavLink to="/operator" className="brand" end>{to("title")}</NavLink>
        {signedIn ? (
          <nav className="nav" aria-label={to("nav.label")}>
            <NavLink to="/operator/tenants">{to("nav.tenants")}</NavLink>
            <NavLink to="/operator/providers">{to("nav.providers")}</NavLink>
            <NavLink to="/operator/audit">{to("nav.audit")}</NavLink>
            <NavLink to="/operator/analytics">{to("nav.analytics")}</NavLink>
          </nav>
        ) : null}
        <div className="topbar-end">
          <LanguageSwitch />
          {signedIn ? <button type="button" className="link-button" onClick={onSignOut}>{t("sign_out")}</button> : null}
        </div>
      </header>
      <main id="main" tabIndex={-1}>{children}</main>
    </div>
  );
}

export default function OperatorApp() {
  const queryClient = useQueryClient();
  const [signedIn, setSignedIn] = useState(() => operatorToken() !== null);
  const signOut = () => {
    setOperatorToken(null);
    queryClient.clear();
    setSignedIn(false);
  };
  return (
    <Shell signedIn={signedIn} onSignOut={signOut}>
      {signedIn ? (
        <Suspense fallback={<Loading />}>
          <Routes>
            <Route path="/operator" element={<Navigate to="/operator/tenants" replace />} />
            <Route path="/operator/tenants" element={<Tenants />} />
            <Route path="/operator/tenants/:id" element={<TenantDetail />} />
            <Route path="/operator/providers" element={<Providers />} />
            <Route path="/operator/audit" element={<AuditLogPage />} />
            <Route path="/operator/analytics" element={<Analytics />} />
            <Route path="*" element={<Navigate to="/operator/tenants" replace />} />
          </Routes>
        </Suspense>
      ) : <SignIn onSignedIn={() => setSignedIn(true)} />}
    </Shell>
  );
}

