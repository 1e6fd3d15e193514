// The operator console's API client: the same typed client as the portal's, but it sends
// the operator token (kept in sessionStorage, so it ends with the tab) as a Bearer token,
// and only on /admin/v1 calls. No cookie goes with these calls.
import createClient, { type Middleware } from "openapi-fetch";
import type { Schemas } from "../../api/client";
import type { paths } from "../../api/schema";

const TOKEN_KEY = "operator.token";

export function operatorToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setOperatorToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function isAdminPath(url: string): boolean {
  return new URL(url, window.location.origin).pathname.startsWith("/admin/v1/");
}

/** Headers of an /admin/v1 call: the operator's Bearer token. */
export function adminHeaders(url: string): Record<string, string> {
  const token = operatorToken();
  return token && isAdminPath(url) ? { Authorization: `Bearer ${token}` } : {};
}

const bearer: Middleware = {
  onRequest({ request }) {
    for (const [name, value] of Object.entries(adminHeaders(request.url))) request.headers.set(name, value);
    return request;
  },
};

export const admin = createClient<paths>({ baseUrl: "", credentials: "omit" });
admin.use(bearer);

/** An /admin/v1 series (`analytics.series`); query keys with empty values are left out. */
export function adminSeriesUrl(series: string, query: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value) params.set(key, value);
  return `/admin/v1/analytics/${series}?${params.toString()}`;
}

export type Tenant = Schemas["TenantOut"];
export type ProviderState = Schemas["ProviderStateOut"];
export type AuditEvent = Schemas["AuditEventOut"];
