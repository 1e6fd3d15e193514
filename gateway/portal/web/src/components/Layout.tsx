// The frame of every page: the tenant's logo and name, navigation, the workspace and
// language switches, and the tenant's support links. Nothing here names the platform.
import type { ReactNode } from "react";
import { NavLink } from "react-router";
import { useTranslation } from "react-i18next";
import { usePortalConfig } from "../config";
import { changeLanguage, type Language } from "../i18n";
import { useSession } from "../session";

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

export default function Layout({ children }: { children: ReactNode }) {
  const { t } = useTranslation();
  const config = usePortalConfig();
  const { user, signOut } = useSession();
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
            <NavLink to="/studio/image">{t("nav.studio")}</NavLink>
            <NavLink to="/gallery">{t("nav.gallery")}</NavLink>
            <NavLink to="/credits">{t("nav.credits")}</NavLink>
          </nav>
        ) : null}
        <div className="topbar-end">
          <LanguageSwitch />
          {user ? (
            <button type="button" className="link-button" onClick={() => void signOut()}>
              {t("sign_out")}
            </button>
          ) : null}
        </div>
      </header>
      <main id="main" tabIndex={-1}>{children}</main>
      <footer className="footer">
        {config.branding.support?.url ? <a href={config.branding.support.url}>{t("footer.support")}</a> : null}
        {config.branding.support?.email ? <a href={`mailto:${config.branding.support.email}`}>{config.branding.support.email}</a> : null}
        {config.branding.support?.terms_url ? <a href={config.branding.support.terms_url}>{t("footer.terms")}</a> : null}
        {config.branding.support?.privacy_url ? <a href={config.branding.support.privacy_url}>{t("footer.privacy")}</a> : null}
      </footer>
    </div>
  );
}
