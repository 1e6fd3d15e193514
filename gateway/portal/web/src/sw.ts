/// <reference lib="webworker" />
// The portal's service worker: the app shell is precached (the list is written in at build
// time by vite-plugin-pwa), so the portal opens offline.
import { precacheAndRoute, createHandlerBoundToURL } from "workbox-precaching";
import { NavigationRoute, registerRoute } from "workbox-routing";

declare const self: ServiceWorkerGlobalScope;

precacheAndRoute(self.__WB_MANIFEST);
// Every portal page is the same index.html; API and media requests are not navigations.
registerRoute(new NavigationRoute(createHandlerBoundToURL("/static/portal/index.html"),
  { denylist: [/^\/v1\//, /^\/admin\//, /^\/media\//, /^\/schema/] }));

self.addEventListener("install", () => void self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
