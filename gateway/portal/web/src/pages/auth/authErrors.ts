// Error text for the auth pages: the API's error code, translated; its message otherwise.
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
