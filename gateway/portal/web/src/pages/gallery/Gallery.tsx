import { useTranslation } from "react-i18next";

export default function Gallery() {
  const { t } = useTranslation("gallery");
  return <section><h1>{t("title")}</h1></section>;
}
