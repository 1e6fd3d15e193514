// The branding page of the console shows the real portal in two iframes of the same host
// and pushes the draft (name, colours, fonts, CSS variables, support links) into them as it
// is typed, before anything is saved. This is the framed app's side: it listens only when
// the page is framed by the console of its own origin, and takes messages only from that
// parent window, so no other site can restyle the portal.
import type { PortalConfig } from "./config";

export const PREVIEW_MESSAGE = "mediahub:branding-preview";

export interface PreviewDraft {
  type: typeof PREVIEW_MESSAGE;
  name: string;
  branding: PortalConfig["branding"];
}

/** True when this window is an iframe inside the console of the same origin. */
export function framedByConsole(): boolean {
  if (window.parent === window) return false;
  try {
    // Reading the parent's location throws when the parent is another origin.
    return window.parent.location.origin === window.location.origin
      && window.parent.location.pathname.startsWith("/console");
  } catch {
    return false;
  }
}

/** Calls `apply` with each draft the console sends; returns the unsubscribe function. */
export function listenForPreview(apply: (draft: PreviewDraft) => void): () => void {
  if (!framedByConsole()) return () => undefined;
  const onMessage = (event: MessageEvent) => {
    if (event.origin !== window.location.origin || event.source !== window.parent) return;
    const data = event.data as Partial<PreviewDraft> | null;
    if (!data || data.type !== PREVIEW_MESSAGE || typeof data.name !== "string"
        || typeof data.branding !== "object" || data.branding === null) return;
    apply(data as PreviewDraft);
  };
  window.addEventListener("message", onMessage);
  // Tell the console this frame listens, so it sends the current draft at once.
  window.parent.postMessage({ type: `${PREVIEW_MESSAGE}:ready` }, window.location.origin);
  return () => window.removeEventListener("message", onMessage);
}
