import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import { VitePWA } from "vite-plugin-pwa";

// The gateway serves `dist/` itself (gateway/portal/site.py): the app's files under
// /static/portal/, index.html for every portal route, and the service worker at /sw.js
// so that its scope is the whole site. The built files are committed, so a machine
// without Node still serves the portal; CI rebuilds and fails on any difference.
export default defineConfig({
  base: "/static/portal/",
  plugins: [
    react(),
    VitePWA({
      strategies: "injectManifest",
      srcDir: "src",
      filename: "sw.ts",
      injectRegister: false,
      manifest: false,
      // The worker lives at /sw.js but the files under /static/portal/: precache them there.
      injectManifest: { globPatterns: ["**/*.{js,css,html,svg,woff2}"],
                        modifyURLPrefix: { "": "/static/portal/" } },
    }),
  ],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 900,
  },
});
