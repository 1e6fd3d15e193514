import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { BrowserRouter } from "react-router";
import { api, unwrap } from "./api/client";
import { applyBranding, ConfigContext } from "./config";
import { initialLanguage, setupI18n } from "./i18n";
import { listenForInstallPrompt } from "./pwa/install";
import { registerServiceWorker, replayQueuedSubmissions } from "./pwa/register";
import { SessionProvider } from "./session";
import App from "./App";
import "./styles.css";

async function boot(): Promise<void> {
  listenForInstallPrompt();
  // Offline, the config cannot be fetched: the shell still opens with the neutral look.
  const config = await api.GET("/v1/portal/config").then(unwrap).catch(() => null);
  if (config) applyBranding(config);
  await setupI18n(initialLanguage(config?.default_locale ?? "en"));
  void registerServiceWorker();
  // Back online: send what was submitted while offline (browsers without Background Sync).
  window.addEventListener("online", replayQueuedSubmissions);
  const queryClient = new QueryClient({
    defaultOptions: { queries: { staleTime: 15_000, retry: 1, refetchOnWindowFocus: false } },
  });
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <ConfigContext.Provider value={config ?? OFFLINE_CONFIG}>
        <QueryClientProvider client={queryClient}>
          <BrowserRouter>
            <SessionProvider>
              <App />
            </SessionProvider>
          </BrowserRouter>
        </QueryClientProvider>
      </ConfigContext.Provider>
    </StrictMode>,
  );
}

/** What the shell runs on when it opened offline: the tenant's name is in <title> already. */
const OFFLINE_CONFIG = {
  tenant_id: "", name: document.title, branding: {}, signup_open: false,
  show_provider_names: false, locales: ["en", "ar"], default_locale: "en", object: "portal_config",
};

void boot();
