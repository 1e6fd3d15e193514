// The install button: Chromium fires `beforeinstallprompt` when the site is installable;
// we keep the event and replay its prompt when the user asks.
import { useSyncExternalStore } from "react";

interface InstallPromptEvent extends Event {
  prompt(): Promise<void>;
  userChoice: Promise<{ outcome: "accepted" | "dismissed" }>;
}

let deferred: InstallPromptEvent | null = null;
const listeners = new Set<() => void>();
const notify = () => listeners.forEach((listener) => listener());

/** Called once at start-up (main.tsx), before the browser fires the event. */
export function listenForInstallPrompt(): void {
  window.addEventListener("beforeinstallprompt", (event) => {
    event.preventDefault();
    deferred = event as InstallPromptEvent;
    notify();
  });
  window.addEventListener("appinstalled", () => {
    deferred = null;
    notify();
  });
}

export function useInstallPrompt(): (() => Promise<boolean>) | null {
  const available = useSyncExternalStore((callback) => {
    listeners.add(callback);
    return () => listeners.delete(callback);
  }, () => deferred !== null);
  if (!available) return null;
  return async () => {
    const event = deferred;
    if (!event) return false;
    await event.prompt();
    const choice = await event.userChoice;
    deferred = null;
    notify();
    return choice.outcome === "accepted";
  };
}
