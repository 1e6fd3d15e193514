// Message catalogues: one JSON file per area and language (locales/<lang>/<area>.json),
// so each part of the app owns its own messages. Arabic is right-to-left: the <html>
// element's dir and lang follow the language, and the layout uses logical CSS
// properties (inline-start/end) so it mirrors by itself.
import i18n from "i18next";
import { initReactI18next } from "react-i18next";

// The operator console's messages are not the portal's: they load only with the console
// (loadOperatorMessages), so tenants' portals do not carry them.
const catalogues = import.meta.glob<{ default: Record<string, unknown> }>(
  ["./locales/*/*.json", "!./locales/*/operator.json"], { eager: true });
const operatorCatalogues = import.meta.glob<{ default: Record<string, unknown> }>(
  "./locales/*/operator.json");

const resources: Record<string, Record<string, Record<string, unknown>>> = {};
for (const [path, module] of Object.entries(catalogues)) {
  const [, lang, area] = /\.\/locales\/(\w+)\/(\w+)\.json$/.exec(path) ?? [];
  if (!lang || !area) continue;
  (resources[lang] ??= {})[area] = module.default;
}

export const LANGUAGES = ["en", "ar"] as const;
export type Language = (typeof LANGUAGES)[number];
const STORAGE_KEY = "portal.language";

export function isRtl(lang: string): boolean {
  return lang === "ar";
}

/** The language to start in: the one the user chose last, else the browser's, else the tenant's. */
export function initialLanguage(tenantDefault: string): Language {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (stored === "en" || stored === "ar") return stored;
  const browser = navigator.language.slice(0, 2);
  if (browser === "ar" || browser === "en") return browser;
  return tenantDefault === "ar" ? "ar" : "en";
}

function applyDirection(lang: string): void {
  document.documentElement.lang = lang;
  document.documentElement.dir = isRtl(lang) ? "rtl" : "ltr";
}

export async function setupI18n(lang: Language): Promise<void> {
  await i18n.use(initReactI18next).init({
    resources, lng: lang, fallbackLng: "en", defaultNS: "common",
    interpolation: { escapeValue: false },
  });
  applyDirection(lang);
  i18n.on("languageChanged", applyDirection);
}

/** Add the operator console's catalogues (call after setupI18n, before it renders). */
export async function loadOperatorMessages(): Promise<void> {
  for (const [path, load] of Object.entries(operatorCatalogues)) {
    const lang = /\.\/locales\/(\w+)\//.exec(path)?.[1];
    if (lang) i18n.addResourceBundle(lang, "operator", (await load()).default, true, true);
  }
}

/** Switch language and remember it on this device. */
export async function changeLanguage(lang: Language): Promise<void> {
  localStorage.setItem(STORAGE_KEY, lang);
  await i18n.changeLanguage(lang);
}

/** Numbers, credits and dates in the current language (Arabic-Indic digits in Arabic). */
export function formatNumber(value: number, lang: string, options?: Intl.NumberFormatOptions): string {
  return new Intl.NumberFormat(lang === "ar" ? "ar-EG" : "en-US", options).format(value);
}

export function formatDate(value: string | Date, lang: string): string {
  return new Intl.DateTimeFormat(lang === "ar" ? "ar-EG" : "en-US",
    { dateStyle: "medium", timeStyle: "short" }).format(new Date(value));
}

/** Millicredits → credits, as the portal shows them. */
export function formatCredits(millicredits: number, lang: string): string {
  return formatNumber(millicredits / 1000, lang, { maximumFractionDigits: 3 });
}

export default i18n;
