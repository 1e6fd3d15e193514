// Error text for the auth pages: the API's error code, translated; its message otherwise.
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import type { TFunction } from "i18next";
import { ApiError } from "../../api/client";

export function errorText(t: TFunction, error: unknown): string {
  if (error instanceof ApiError) {
    return t(`errors.${error.code}`, { ns: "auth", defaultValue: t("errors.generic", { ns: "auth" }) });
  }
  return t("errors.network", { ns: "auth" });
}

/** Where to go after signing in: only a path on this site. */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/studio/image";
}

/** A form's submit handler around `action`: busy while it runs, its failure as translated
 * text in `error` (cleared on each try). */
export function useFormAction(action: () => Promise<void>) {
  const { t } = useTranslation("auth");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(errorText(t, e));
    } finally {
      setBusy(false);
    }
  }
  return { busy, error, setError, submit };
}
