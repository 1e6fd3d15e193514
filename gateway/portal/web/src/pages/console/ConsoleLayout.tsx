// The reseller console: the tenant's staff manage branding, domains, prices, keys, customers,
// teams, webhooks and the audit log here. A side nav lists the sections the user's role may
// use (sections.ts); on phones it folds into a menu button. Each section is its own page.
import { lazy, Suspense, useEffect, useId, useState, type ComponentType } from "react";
import { Navigate, NavLink, Route, Routes, useLocation } from "react-router";
import { useTranslation } from "react-i18next";
import { useSession } from "../../session";
import { isStaff, sectionsFor } from "./sections";
import "./console.css";

const Overview = lazy(() => import("./Overview"));
const Branding = lazy(() => import("./Branding"));
const Domains = lazy(() => import("./Domains"));
const Pricing = lazy(() => import("./Pricing"));
const Packages = lazy(() => import("./Packages"));
const Limits = lazy(() => import("./Limits"));
const Providers = lazy(() => import("./Providers"));
const Keys = lazy(() => import("./Keys"));
const Customers = lazy(() => import("./Customers"));
const Teams = lazy(() => import("./Teams"));
const Webhooks = lazy(() => import("./Webhooks"));
const Audit = lazy(() => import("./Audit"));
const Analytics = lazy(() => import("./Analytics"));
const BrandKits = lazy(() => import("./BrandKits"));

const PAGES: Record<string, ComponentType> = {
  "": Overview, branding: Branding, domains: Domains, pricing: Pricing, packages: Packages,
  limits: Limits, providers: Providers, keys: Keys, customers: Customers, teams: Teams,
  webhooks: Webhooks, audit: Audit, analytics: Analytics, "brand-kits": BrandKits,
};

function Pending() {
  const { t } = useTranslation("console");
  return <p className="muted" role="status">{t("common.loading")}</p>;
}

/** A section listed in the nav whose page is not in this build yet. */
function NotYet() {
  const { t } = useTranslation("console");
  return <section className="card"><h1>{t("not_yet.title")}</h1><p className="muted">{t("not_yet.text")}</p></section>;
}

export default function ConsoleLayout() {
  const { t } = useTranslation("console");
  const { user } = useSession();
  const location = useLocation();
  const [open, setOpen] = useState(false);
  const menuId = useId();
  // A section opened on a phone closes the menu.
  useEffect(() => setOpen(false), [location.pathname]);
  if (!user) return null;
  if (!isStaff(user.role)) return <Navigate to="/studio/image" replace />;
  const sections = sectionsFor(user.role);
  const here = location.pathname.replace(/^\/console\/?/, "").split("/")[0] ?? "";
  const current = sections.find((s) => s.path === here);
  return (
    <div className="console">
      <nav className="c-nav" aria-label={t("nav.label")}>
        <button type="button" className="c-menu" aria-expanded={open} aria-controls={menuId}
                onClick={() => setOpen((o) => !o)}>
          <span>{t("nav.menu")}{current ? <>: <strong>{t(current.labelKey)}</strong></> : null}</span>
          <span aria-hidden="true">{open ? "▴" : "▾"}</span>
        </button>
        <ul id={menuId} className={open ? "open" : ""}>
          {sections.map((s) => (
            <li key={s.path}>
              <NavLink to={s.path ? `/console/${s.path}` : "/console"} end={!s.path}>{t(s.labelKey)}</NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <div className="c-main">
        <Suspense fallback={<Pending />}>
          <Routes>
            {sections.map((s) => {
              const Page = PAGES[s.path] ?? NotYet;
              return <Route key={s.path} path={s.path ? `${s.path}/*` : ""} element={<Page />} />;
            })}
            <Route path="*" element={<Navigate to="/console" replace />} />
          </Routes>
        </Suspense>
      </div>
    </div>
  );
}
