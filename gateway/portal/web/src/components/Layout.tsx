// The frame of every page: the tenant's logo and name, navigation, the workspace and
// language switches, the workspace's balance, an offline notice and the tenant's support
// links. Nothing here names the platform.
import { useEffect, useId, type ReactNode } from "react";
import { Link, NavLink, useLocation } from "react-router";
import { useTranslation } from "react-i18next";
import { usePortalConfig } from "../config";
import { changeLanguage, formatCredits, type Language } from "../i18n";
import { useOnline } from "../pwa/status";
import { isStaff } from "../pages/console/sections";
import { useSession } from "../session";
import { useBalance, useTeams } from "./useBalance";

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

/** Personal or one of the user's teams: the choice sets X-Team-Id on every call. */
function WorkspaceSwitch() {
  const { t } = useTranslation("shell");
  const { teamId, setWorkspace } = useSession();
  const teams = useTeams();
  const id = useId();
  const list = teams.data ?? [];
  useEffect(() => {
    // A remembered team the user no longer belongs to: back to the personal workspace
    // (judged on a fresh list only: one just joined is missing from the cached one).
    if (teamId && teams.isSuccess && !teams.isFetching && !teams.isStale
        && !list.some((team) => team.id === teamId)) setWorkspace(null);
  }, [teamId, teams.isSuccess, teams.isFetching, teams.isStale, list, setWorkspace]);
  if (list.length === 0) return null;
  return (
    <span className="workspace">
      <label htmlFor={id} className="visually-hidden">{t("workspace.label")}</label>
      <select id={id} value={teamId ?? ""} onChange={(e) => setWorkspace(e.target.value || null)}>
        <option value="">{t("workspace.personal")}</option>
        {list.map((team) => <option key={team.id} value={team.id}>{team.name}</option>)}
      </select>
    </span>
  );
}

function BalanceBadge() {
  const { t, i18n } = useTranslation("shell");
  const balance = useBalance();
  if (!balance.data) return null;
  return (
    <Link to="/credits" className="balance-badge" aria-label={t("balance.label", {
      amount: formatCredits(balance.data.available, i18n.language) })}>
      <span aria-hidden="true">{formatCredits(balance.data.available, i18n.language)}</span>
      <span aria-hidden="true" className="balance-unit">{t("balance.unit")}</span>
    </Link>
  );
}

/** A one-off message handed over through navigation state ({notice}) or `?verified=1`. */
function Notice() {
  const { t } = useTranslation("shell");
  const location = useLocation();
  const state = location.state as { notice?: string } | null;
  const notice = state?.notice;
  if (!notice) return null;
  return <p className="notice" role="status">{t(`notice.${notice}`)}</p>;
}

function OfflineBanner() {
  const { t } = useTranslation("shell");
  const online = useOnline();
  return (
    <div aria-live="polite" className="offline-slot">
      {online ? null : <p className="offline-banner" role="status">{t("offline.banner")}</p>}
    </div>
  );
}

export default function Layout({ children }: { children: ReactNode }) {
  const { t } = useTranslation();
  const { t: ts } = useTranslation("shell");
  const config = usePortalConfig();
  const { user, signOut } = useSession();
  const location = useLocation();
  const logo = config.branding.logo;
  return (
    <div className="shell">
      <a className="skip-link" href="#main">{t("skip_to_content")}</a>
      <header className="topbar">
        <NavLink to="/" className="brand">
          {logo ? <img src={logo.url} alt="" className="brand-logo" /> : null}
          <span className="brand-name">{config.name}</span>
        </NavLink>
        {user ? (
          <nav className="nav" aria-label={t("nav.label")}>
            {isStaff(user.role) ? <NavLink to="/console">{ts("nav.console")}</NavLink> : null}
            <NavLink to="/studio">{t("nav.studio")}</NavLink>
            <NavLink to="/gallery">{t("nav.gallery")}</NavLink>
            {/* Stripe's return page (/portal/credits) is the credits page too. */}
            <NavLink to="/credits" className={({ isActive }) =>
              isActive || location.pathname === "/portal/credits" ? "active" : ""}>{t("nav.credits")}</NavLink>
            <NavLink to="/usage">{ts("nav.usage")}</NavLink>
            <NavLink to="/account">{ts("nav.account")}</NavLink>
          </nav>
        ) : null}
        <div className="topbar-end">
          {user ? <WorkspaceSwitch /> : null}
          {user ? <BalanceBadge /> : null}
          <LanguageSwitch />
          {user ? (
            <button type="button" className="link-button" onClick={() => void signOut()}>
              {t("sign_out")}
            </button>
          ) : null}
        </div>
      </header>
      <OfflineBanner />
      <main id="main" tabIndex={-1}>
        <Notice />
        {children}
      </main>
      <footer className="footer">
        {config.branding.support?.url ? <a href={config.branding.support.url}>{t("footer.support")}</a> : null}
        {config.branding.support?.email ? <a href={`mailto:${config.branding.support.email}`}>{config.branding.support.email}</a> : null}
        {config.branding.support?.terms_url ? <a href={config.branding.support.terms_url}>{t("footer.terms")}</a> : null}
        {config.branding.support?.privacy_url ? <a href={config.branding.support.privacy_url}>{t("footer.privacy")}</a> : null}
      </footer>
    </div>
  );
}
