import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { BrowserRouter } from "react-router";
import { api, unwrap } from "./api/client";
import { applyBranding, ConfigContext } from "./config";
import { initialLanguage, setupI18n } from "./i18n";
import { SessionProvider } from "./session";
import App from "./App";
import "./styles.css";

async function boot(): Promise<void> {
  const config = unwrap(await api.GET("/v1/portal/config"));
  applyBranding(config);
  await setupI18n(initialLanguage(config.default_locale));
  const queryClient = new QueryClient({
    defaultOptions: { queries: { staleTime: 15_000, retry: 1, refetchOnWindowFocus: false } },
  });
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <ConfigContext.Provider value={config}>
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

void boot();
