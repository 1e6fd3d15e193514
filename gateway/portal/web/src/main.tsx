import { StrictMode, useEffect, useState, type ReactNode } from "react";
import { createRoot } from "react-dom/client";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { BrowserRouter } from "react-router";
import { api, unwrap } from "./api/client";
import { applyBranding, ConfigContext, type PortalConfig } from "./config";
import { initialLanguage, loadOperatorMessages, setupI18n } from "./i18n";
import { listenForInstallPrompt } from "./pwa/install";
import { registerServiceWorker, replayQueuedSubmissions } from "./pwa/register";
import { listenForPreview } from "./preview";
import { SessionProvider } from "./session";
import App from "./App";
import "./styles.css";

/** The operator console (/operator/*, platform host only): no tenant, no service worker. */
async function bootOperator(): Promise<void> {
  await setupI18n(initialLanguage("en"));
  await loadOperatorMessages();
  const queryClient = new QueryClient({
    defaultOptions: { queries: { staleTime: 10_000, retry: false, refetchOnWindowFocus: false } },
  });
  const { default: OperatorApp } = await import("./pages/operator/OperatorApp");
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <BrowserRouter>
          <OperatorApp />
        </BrowserRouter>
      </QueryClientProvider>
    </StrictMode>,
  );
}

async function boot(): Promise<void> {
  if (/^\/operator(\/|$)/.test(window.location.pathname)) return bootOperator();
  listenForInstallPrompt();
  // Offline, the config cannot be fetched: the shell opens with the last one this device
  // saw (else a neutral one), so it still shows the tenant's name and colours.
  const fetched = await api.GET("/v1/portal/config").then(unwrap).catch(() => null);
  if (fetched) localStorage.setItem(CONFIG_KEY, JSON.stringify(fetched));
  const config: PortalConfig = fetched ?? lastConfig() ?? { ...OFFLINE_CONFIG, name: document.title };
  applyBranding(config);
  // The precached index.html has no tenant head (the gateway writes it in online).
  if (!document.title) document.title = config.name;
  await setupI18n(initialLanguage(config?.default_locale ?? "en"));
  void registerServiceWorker();
  // Back online: send what was submitted while offline (browsers without Background Sync).
  window.addEventListener("online", replayQueuedSubmissions);
  const queryClient = new QueryClient({
    defaultOptions: { queries: { staleTime: 15_000, retry: 1, refetchOnWindowFocus: false } },
  });
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <ConfigRoot initial={config}>
        <QueryClientProvider client={queryClient}>
          <BrowserRouter>
            <SessionProvider>
              <App />
            </SessionProvider>
          </BrowserRouter>
        </QueryClientProvider>
      </ConfigRoot>
    </StrictMode>,
  );
}

/** The config for the whole app; inside the console's branding preview, the draft the
 * console sends replaces it (name, colours, fonts, ...) without saving anything. */
function ConfigRoot({ initial, children }: { initial: PortalConfig; children: ReactNode }) {
  const [config, setConfig] = useState(initial);
  useEffect(() => listenForPreview((draft) => {
    const next = { ...initial, name: draft.name || initial.name,
                   branding: { ...initial.branding, ...draft.branding } };
    // Start from the stylesheet's defaults: a colour cleared in the draft must go too.
    document.documentElement.removeAttribute("style");
    applyBranding(next);
    document.title = next.name;
    setConfig(next);
  }), [initial]);
  return <ConfigContext.Provider value={config}>{children}</ConfigContext.Provider>;
}

const CONFIG_KEY = "portal.config";

function lastConfig(): PortalConfig | null {
  try {
    return JSON.parse(localStorage.getItem(CONFIG_KEY) ?? "null") as PortalConfig | null;
  } catch {
    return null;
  }
}

/** What the shell runs on when it opened offline on a device that never saw the config. */
const OFFLINE_CONFIG: PortalConfig = {
  tenant_id: "", name: "", branding: {}, signup_open: false,
  show_provider_names: false, locales: ["en", "ar"], default_locale: "en", object: "portal_config",
  suspended: false, time_zone: "UTC",
};

void boot();
