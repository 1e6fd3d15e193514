// Web push: the server's VAPID key from GET /v1/push/key, the browser's
// subscription posted to /v1/push_subscriptions; the worker shows the notifications.
import { api } from "../api/client";
import { registerServiceWorker } from "./register";

function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((base64url.length + 3) % 4);
  const raw = atob(padded);
  const bytes = new Uint8Array(new ArrayBuffer(raw.length));
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

export function pushSupported(): boolean {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

export async function currentSubscription(): Promise<PushSubscription | null> {
  const registration = await registerServiceWorker();
  return (await registration?.pushManager.getSubscription()) ?? null;
}

/** "ok", "denied" (the user said no), or "unavailable" (no key on the server, no support). */
export async function subscribeToPush(): Promise<"ok" | "denied" | "unavailable"> {
  if (!pushSupported()) return "unavailable";
  const key = (await api.GET("/v1/push/key")).data;
  if (!key) return "unavailable";  // 404 push_disabled: the server has no VAPID key
  if (await Notification.requestPermission() !== "granted") return "denied";
  const registration = await registerServiceWorker();
  if (!registration) return "unavailable";
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true, applicationServerKey: keyBytes(key.public_key) });
  const json = subscription.toJSON();
  if (!json.endpoint || !json.keys?.p256dh || !json.keys.auth) return "unavailable";
  const saved = await api.POST("/v1/push_subscriptions",
    { body: { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } } });
  return saved.response.ok ? "ok" : "unavailable";
}

export async function unsubscribeFromPush(): Promise<void> {
  const subscription = await currentSubscription();
  if (!subscription) return;
  await api.DELETE("/v1/push_subscriptions", { params: { query: { endpoint: subscription.endpoint } } });
  await subscription.unsubscribe();
}
