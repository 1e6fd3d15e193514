import { useTranslation } from "react-i18next";

export default function Viewer() {
  const { t } = useTranslation("viewer");
  return <section><h1>{t("title")}</h1></section>;
}
