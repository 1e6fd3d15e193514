/// <reference lib="webworker" />
// The portal's service worker:
// - the app shell is precached (the list is written in at build time by vite-plugin-pwa), so
//   the portal opens offline;
// - media the user viewed (/media/…, images, posters, audio) is kept CacheFirst, bounded;
// - the generation lists and pages the user opened are kept NetworkFirst, so a reload
//   offline still shows them (cleared at sign-out: they are the user's own);
// - a generation submitted offline (POST /v1/generations) is queued and sent when the
//   connection returns (Background Sync where the browser has it, else on the page's
//   `online` message or the worker's next start);
// - web push: a finished generation's notification opens /gallery/<id>.
import { precacheAndRoute, createHandlerBoundToURL } from "workbox-precaching";
import { NavigationRoute, registerRoute } from "workbox-routing";
import { CacheFirst, NetworkFirst, NetworkOnly } from "workbox-strategies";
import { ExpirationPlugin } from "workbox-expiration";
import { Queue } from "workbox-background-sync";
import type { WorkboxPlugin } from "workbox-core/types";

declare const self: ServiceWorkerGlobalScope;

const MEDIA_CACHE = "portal-media";
const API_CACHE = "portal-api";
const QUEUE_NAME = "portal-generations";

precacheAndRoute(self.__WB_MANIFEST);
// Every portal page is the same index.html; API and media requests are not navigations.
registerRoute(new NavigationRoute(createHandlerBoundToURL("/static/portal/index.html"),
  { denylist: [/^\/v1\//, /^\/admin\//, /^\/media\//, /^\/schema/] }));

// Media links are signed and expire (?expires=&signature=): the same file comes back under
// a new query on every listing, so the cache keys on the path alone.
const pathKey: WorkboxPlugin = {
  cacheKeyWillBeUsed: async ({ request }) => new URL(request.url).origin + new URL(request.url).pathname,
};
registerRoute(
  ({ url, request, sameOrigin }) => sameOrigin && request.method === "GET" && url.pathname.startsWith("/media/"),
  new CacheFirst({
    cacheName: MEDIA_CACHE,
    plugins: [pathKey, new ExpirationPlugin({ maxEntries: 200, maxAgeSeconds: 30 * 24 * 3600, purgeOnQuotaError: true })],
  }),
);

// The workspace (X-Team-Id) is part of what a listing means.
const workspaceKey: WorkboxPlugin = {
  cacheKeyWillBeUsed: async ({ request }) => {
    const team = request.headers.get("X-Team-Id");
    if (!team) return request;
    const url = new URL(request.url);
    url.searchParams.set("__team", team);
    return url.href;
  },
};
// What the shell needs to open offline (who is signed in, the tenant, the balance) and the
// generation lists and pages the user opened; never the event stream or archives.
const OFFLINE_READS = [/^\/v1\/users\/me$/, /^\/v1\/portal\/config$/, /^\/v1\/credits\/balance$/,
  /^\/v1\/teams\/?$/, /^\/v1\/generations\/?$/, /^\/v1\/generations\/(?!events$|archive$)[^/]+$/];
registerRoute(
  ({ url, request, sameOrigin }) => sameOrigin && request.method === "GET"
    && OFFLINE_READS.some((pattern) => pattern.test(url.pathname)),
  new NetworkFirst({
    cacheName: API_CACHE, networkTimeoutSeconds: 8,
    plugins: [workspaceKey, new ExpirationPlugin({ maxEntries: 100, maxAgeSeconds: 7 * 24 * 3600 })],
  }),
);

// Offline submissions: queued when the network fails, replayed later. The CSRF token and
// X-Team-Id are in the stored request, so the replay works while the session lives.
const queue = new Queue(QUEUE_NAME, { maxRetentionTime: 24 * 60 });
const queueOnFailure: WorkboxPlugin = {
  fetchDidFail: async ({ request }) => {
    await queue.pushRequest({ request });
  },
};
const submit = new NetworkOnly({ plugins: [queueOnFailure] });
registerRoute(
  ({ url, sameOrigin }) => sameOrigin && url.pathname === "/v1/generations",
  async (options) => {
    try {
      return await submit.handle(options);
    } catch {
      // Queued: answer in the API's error shape so the page can say so.
      return new Response(JSON.stringify({ error: {
        code: "queued_offline",
        message: "You are offline: this will be sent when the connection returns." } }),
        { status: 503, headers: { "Content-Type": "application/json" } });
    }
  },
  "POST",
);

self.addEventListener("message", (event: ExtendableMessageEvent) => {
  const data = event.data as { type?: string } | null;
  if (data?.type === "replay-queue") {
    event.waitUntil(queue.replayRequests().catch(() => undefined));
  } else if (data?.type === "clear-user-caches") {
    // Signed out: what the user viewed is not the next user's.
    event.waitUntil(Promise.all([caches.delete(API_CACHE), caches.delete(MEDIA_CACHE)]).then(() => undefined));
  }
});

interface PushPayload { title?: string; body?: string; url?: string }

self.addEventListener("push", (event: PushEvent) => {
  let payload: PushPayload = {};
  try {
    payload = (event.data?.json() ?? {}) as PushPayload;
  } catch {
    payload = { body: event.data?.text() };
  }
  const url = payload.url && payload.url.startsWith("/") ? payload.url : "/gallery";
  event.waitUntil(self.registration.showNotification(payload.title ?? "", {
    body: payload.body ?? "", data: { url }, tag: url,
  }));
});

self.addEventListener("notificationclick", (event: NotificationEvent) => {
  event.notification.close();
  const url = ((event.notification.data ?? {}) as { url?: string }).url ?? "/gallery";
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).origin === self.location.origin) {
        await client.focus();
        await client.navigate(url);
        return;
      }
    }
    await self.clients.openWindow(url);
  })());
});

self.addEventListener("install", () => void self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
