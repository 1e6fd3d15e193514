import { useTranslation } from "react-i18next";

export default function Credits() {
  const { t } = useTranslation("credits");
  return <section><h1>{t("title")}</h1></section>;
}
