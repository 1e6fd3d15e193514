// Registers the service worker (/sw.js, scope the whole site) through workbox-window.
import { Workbox } from "workbox-window";

let registration: Promise<ServiceWorkerRegistration | undefined> | null = null;

export function registerServiceWorker(): Promise<ServiceWorkerRegistration | undefined> {
  if (!("serviceWorker" in navigator)) return Promise.resolve(undefined);
  registration ??= new Workbox("/sw.js", { scope: "/" }).register();
  return registration;
}

/** Ask the worker to send queued offline submissions now (the `online` path of replay). */
export function replayQueuedSubmissions(): void {
  navigator.serviceWorker?.controller?.postMessage({ type: "replay-queue" });
}
