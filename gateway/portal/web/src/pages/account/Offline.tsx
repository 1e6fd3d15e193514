import { Link } from "react-router";
import { useTranslation } from "react-i18next";
import { useOnline } from "../../pwa/status";

/** /offline: what the app says when a page needs the network it does not have. */
export default function Offline() {
  const { t } = useTranslation("shell");
  const online = useOnline();
  return (
    <section className="card narrow">
      <h1>{t("offline.title")}</h1>
      <p role="status">{online ? t("offline.back") : t("offline.explain")}</p>
      <Link to="/gallery">{t("offline.gallery")}</Link>
    </section>
  );
}
