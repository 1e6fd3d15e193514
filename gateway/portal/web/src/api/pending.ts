// Calls to routes the shared contracts promise (C2 web push, C3 PATCH /v1/users/me) that
// are not in schema.d.ts yet: plain fetch with the client's headers, so they work the day
// the routes land and fail softly (null) until then. Move them to `api` once typed.
import { apiHeaders } from "./client";

export async function callPending<T>(method: string, path: string, body?: unknown): Promise<T | null> {
  const headers: Record<string, string> = { ...apiHeaders(method) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) return null;
  const text = await response.text();
  return (text ? JSON.parse(text) : {}) as T;
}
