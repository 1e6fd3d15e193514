// The tenant the portal belongs to (GET /v1/portal/config) and its branding, applied
// as CSS variables before the first render.
import { createContext, useContext } from "react";
import type { Schemas } from "./api/client";

export type PortalConfig = Schemas["PortalConfig"];

export const ConfigContext = createContext<PortalConfig | null>(null);

export function usePortalConfig(): PortalConfig {
  const config = useContext(ConfigContext);
  if (!config) throw new Error("usePortalConfig outside ConfigContext");
  return config;
}

const COLOR_VARIABLES: Record<string, string> = {
  primary: "--color-primary", secondary: "--color-secondary", accent: "--color-accent",
  background: "--color-background", surface: "--color-surface", text: "--color-text",
  muted: "--color-muted", border: "--color-border", success: "--color-success",
  warning: "--color-warning", error: "--color-error",
};

/** Write the tenant's colours, fonts and own CSS variables onto :root. */
export function applyBranding(config: PortalConfig, root: HTMLElement = document.documentElement): void {
  const branding = config.branding;
  const colors = (branding.colors ?? {}) as Record<string, string | null | undefined>;
  for (const [name, variable] of Object.entries(COLOR_VARIABLES)) {
    const value = colors[name];
    if (value) root.style.setProperty(variable, value);
  }
  for (const [role, stack] of Object.entries(branding.fonts ?? {})) {
    const families = [stack.family, ...(stack.fallbacks ?? [])].map((f) => JSON.stringify(f));
    root.style.setProperty(`--font-${role}`, families.join(", "));
  }
  for (const [name, value] of Object.entries(branding.css_variables ?? {})) {
    root.style.setProperty(name, value);
  }
}
