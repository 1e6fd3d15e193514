import { useTranslation } from "react-i18next";

export default function Studio() {
  const { t } = useTranslation("studio");
  return <section><h1>{t("title")}</h1></section>;
}
