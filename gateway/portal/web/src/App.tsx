// The portal's routes. Each area lives in pages/<area>/ and owns its messages
// (i18n/locales/<lang>/<area>.json). Routes here must also be listed in
// gateway/portal/site.py (SPA_ROUTES) so the gateway answers them with the app.
import { lazy, Suspense, type ReactNode } from "react";
import { Navigate, Route, Routes, useLocation } from "react-router";
import { useTranslation } from "react-i18next";
import Layout from "./components/Layout";
import { usePortalConfig } from "./config";
import { isStaff } from "./pages/console/sections";
import { useSession } from "./session";

const SignIn = lazy(() => import("./pages/auth/SignIn"));
const Studio = lazy(() => import("./pages/studio/Studio"));
const Gallery = lazy(() => import("./pages/gallery/Gallery"));
const Viewer = lazy(() => import("./pages/viewer/Viewer"));
const Credits = lazy(() => import("./pages/credits/Credits"));
const SignUp = lazy(() => import("./pages/auth/SignUp"));
const ForgotPassword = lazy(() => import("./pages/auth/ForgotPassword"));
const SetPassword = lazy(() => import("./pages/auth/SetPassword"));
const MagicLanding = lazy(() => import("./pages/auth/MagicLanding"));
const TeamAccept = lazy(() => import("./pages/auth/TeamAccept"));
const Account = lazy(() => import("./pages/account/Account"));
const Offline = lazy(() => import("./pages/account/Offline"));
const Shared = lazy(() => import("./pages/shared/Shared"));
const Usage = lazy(() => import("./pages/usage/Usage"));
const Console = lazy(() => import("./pages/console/ConsoleLayout"));

function Loading() {
  const { t } = useTranslation();
  return <div className="loading" role="status">{t("loading")}</div>;
}

/** Pages for signed-in people: others go to /signin and come back after. */
function RequireUser({ children }: { children: ReactNode }) {
  const { user } = useSession();
  const location = useLocation();
  if (user === undefined) return <Loading />;
  if (user === null) {
    const next = encodeURIComponent(location.pathname + location.search);
    return <Navigate to={`/signin?next=${next}`} replace />;
  }
  return <>{children}</>;
}

/** `/`: the studio (staff: the console), or sign-in; `?verified=1` (the verification link)
 * says so on arrival. */
function Home() {
  const { user } = useSession();
  const location = useLocation();
  if (user === undefined) return <Loading />;
  const verified = new URLSearchParams(location.search).get("verified") === "1";
  const state = verified ? { notice: "verified" } : undefined;
  const to = !user ? "/signin" : isStaff(user.role) ? "/console" : "/studio/image";
  return <Navigate to={to} replace state={state} />;
}

/** The whole portal while the operator has suspended the tenant: its API refuses every
 * call (403 tenant_suspended), so no page could work; say so instead of failing piecemeal. */
function Suspended() {
  const { t } = useTranslation();
  return (
    <section className="card suspended-page" data-testid="portal-suspended" role="alert">
      <h1>{t("suspended.title")}</h1>
      <p>{t("suspended.text")}</p>
    </section>
  );
}

export default function App() {
  const config = usePortalConfig();
  if (config.suspended) return <Layout><Suspended /></Layout>;
  return (
    <Layout>
      <Suspense fallback={<Loading />}>
        <Routes>
          <Route path="/signin" element={<SignIn />} />
          <Route path="/" element={<Home />} />
          <Route path="/signup" element={<SignUp />} />
          <Route path="/forgot-password" element={<ForgotPassword />} />
          <Route path="/reset-password" element={<SetPassword />} />
          <Route path="/set-password" element={<SetPassword invitation />} />
          <Route path="/magic" element={<MagicLanding />} />
          <Route path="/teams/accept" element={<RequireUser><TeamAccept /></RequireUser>} />
          <Route path="/account" element={<RequireUser><Account /></RequireUser>} />
          <Route path="/portal/credits" element={<RequireUser><Credits /></RequireUser>} />
          <Route path="/offline" element={<Offline />} />
          <Route path="/studio" element={<Navigate to="/studio/image" replace />} />
          <Route path="/studio/:type" element={<RequireUser><Studio /></RequireUser>} />
          <Route path="/gallery" element={<RequireUser><Gallery /></RequireUser>} />
          <Route path="/gallery/:id" element={<RequireUser><Viewer /></RequireUser>} />
          <Route path="/shared/*" element={<Shared />} />
          <Route path="/credits" element={<RequireUser><Credits /></RequireUser>} />
          <Route path="/usage" element={<RequireUser><Usage /></RequireUser>} />
          <Route path="/console/*" element={<RequireUser><Console /></RequireUser>} />
          <Route path="*" element={<Navigate to="/" replace />} />
        </Routes>
      </Suspense>
    </Layout>
  );
}
