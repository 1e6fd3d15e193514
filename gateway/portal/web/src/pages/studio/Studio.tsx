// The studio: one panel per media type behind a tab bar (/studio/<type>), each made from what
// the providers serving that type declare.
import { NavLink, Navigate, useParams } from "react-router";
import { useTranslation } from "react-i18next";
import { MEDIA_TYPES, useProviders, type MediaType } from "./catalogue";
import { AudioPanel, DesignPanel, ImagePanel, Model3DPanel, VideoPanel } from "./Panels";
import "./studio.css";

const PANELS = { image: ImagePanel, audio: AudioPanel, video: VideoPanel, design: DesignPanel,
                 model_3d: Model3DPanel } as const;

function isType(value: string | undefined): value is MediaType {
  return MEDIA_TYPES.includes(value as MediaType);
}

export default function Studio() {
  const { t } = useTranslation("studio");
  const { type } = useParams();
  const valid = isType(type);
  const providers = useProviders(valid ? type : "image");
  if (!valid) return <Navigate to="/studio/image" replace />;
  const Panel = PANELS[type];
  return (
    <section className="studio">
      <h1>{t("title")}</h1>
      <nav className="studio-tabs" aria-label={t("tabs")}>
        {MEDIA_TYPES.map((m) => (
          <NavLink key={m} to={`/studio/${m}`} className={({ isActive }) => (isActive ? "active" : "")}>
            {t(`type.${m}`)}
          </NavLink>
        ))}
      </nav>
      <div className="studio-panel">
        <h2>{t(`type.${type}`)}</h2>
        {providers.isLoading && <p role="status" className="muted">{t("loading", { ns: "common" })}</p>}
        {providers.isError && <p role="alert" className="error">{t("form.load_failed")}</p>}
        {providers.data && <Panel key={type} providers={providers.data} />}
      </div>
    </section>
  );
}
