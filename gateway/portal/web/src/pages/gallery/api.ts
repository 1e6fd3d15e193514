// The gallery's calls (API.md "Generations": listing filters, favourites, delete, bulk,
// archive and share links). They go through fetch with the client's headers (CSRF token,
// workspace team) and fail with the client's ApiError, like `unwrap`.
import { ApiError, apiHeaders, currentTeam, type ApiErrorBody, type Schemas } from "../../api/client";

/** An output: `thumbnail_url` and waveform `peaks` are made by the worker when it stores
 * the output (null for older ones). */
export type MediaOutput = Schemas["Output"];

/** A generation with what the gallery shows besides the API's common fields. */
export type Generation = Omit<Schemas["GenerationOut"], "outputs"> & {
  outputs: MediaOutput[];
  prompt?: string;
  params?: Record<string, unknown>;
  favourite?: boolean;
  team_id?: string | null;
};

export interface GenerationPage {
  data: Generation[];
  next_cursor: string | null;
}

export interface BulkResult {
  id: string;
  ok: boolean;
  error: { code: string; message: string } | null;
}

export interface Share {
  url: string;
  token: string;
  expires_at: string;
}

export interface SharedGeneration {
  id: string;
  type: string;
  prompt: string;
  outputs: MediaOutput[];
  created_at: string;
}

export const MEDIA_TYPES = ["image", "audio", "video", "design", "model_3d"] as const;
export const STATUSES = ["queued", "running", "succeeded", "failed", "canceled"] as const;
export const ACTIVE = new Set(["queued", "running"]);

/** The gallery's filters, as kept in the page's URL query (dates are yyyy-mm-dd, costs in
 * credits, so the URL reads like the form). */
export interface Filters {
  type: string;
  status: string;
  from: string;
  to: string;
  min: string;
  max: string;
  favourite: boolean;
  q: string;
}

export function filtersOf(params: URLSearchParams): Filters {
  return {
    type: params.get("type") ?? "", status: params.get("status") ?? "",
    from: params.get("from") ?? "", to: params.get("to") ?? "",
    min: params.get("min") ?? "", max: params.get("max") ?? "",
    favourite: params.get("favourite") === "1", q: params.get("q") ?? "",
  };
}

export function hasFilters(f: Filters): boolean {
  return Boolean(f.type || f.status || f.from || f.to || f.min || f.max || f.favourite || f.q);
}

function millicredits(credits: string): string | null {
  const value = Number(credits);
  return credits.trim() !== "" && Number.isFinite(value) && value >= 0
    ? String(Math.round(value * 1000)) : null;
}

/** The API's query for the filters: local days become UTC instants (the whole `to` day
 * included), credits become millicredits. */
export function listQuery(f: Filters, cursor: string | null): URLSearchParams {
  const q = new URLSearchParams();
  if (f.type) q.set("type", f.type);
  if (f.status) q.set("status", f.status);
  if (f.from) q.set("created_after", new Date(`${f.from}T00:00:00`).toISOString());
  if (f.to) {
    const end = new Date(`${f.to}T00:00:00`);
    end.setDate(end.getDate() + 1);
    q.set("created_before", end.toISOString());
  }
  const min = millicredits(f.min);
  if (min !== null) q.set("min_cost", min);
  const max = millicredits(f.max);
  if (max !== null) q.set("max_cost", max);
  if (f.favourite) q.set("favourite", "true");
  if (f.q.trim()) q.set("q", f.q.trim());
  if (cursor) q.set("cursor", cursor);
  q.set("limit", "24");
  return q;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...apiHeaders(method) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const error = (await response.json().catch(() => null)) as Partial<ApiErrorBody> | null;
    throw new ApiError(response.status, error?.error?.code ?? "error",
                       error?.error?.message ?? response.statusText, error?.error?.param);
  }
  return (await response.json()) as T;
}

export function listGenerations(f: Filters, cursor: string | null): Promise<GenerationPage> {
  return call("GET", `/v1/generations?${listQuery(f, cursor).toString()}`);
}

export function getGeneration(id: string): Promise<Generation> {
  return call("GET", `/v1/generations/${encodeURIComponent(id)}`);
}

export function setFavourite(id: string, favourite: boolean): Promise<Generation> {
  return call(favourite ? "PUT" : "DELETE", `/v1/generations/${encodeURIComponent(id)}/favourite`);
}

export function deleteGeneration(id: string): Promise<{ id: string; deleted: boolean }> {
  return call("DELETE", `/v1/generations/${encodeURIComponent(id)}`);
}

export async function bulk(action: "delete" | "favourite" | "unfavourite",
                           ids: string[]): Promise<BulkResult[]> {
  const answer = await call<{ results: BulkResult[] }>("POST", "/v1/generations/bulk",
                                                       { action, ids });
  return answer.results;
}

/** The zip of these generations' outputs: a plain link (the browser downloads it as it
 * streams; the session cookie goes along, the workspace as `team_id`). */
export function archiveUrl(ids: string[]): string {
  const q = new URLSearchParams({ ids: ids.join(",") });
  const team = currentTeam();
  if (team) q.set("team_id", team);
  return `/v1/generations/archive?${q.toString()}`;
}

export function share(id: string): Promise<Share> {
  return call("POST", `/v1/generations/${encodeURIComponent(id)}/share`, {});
}

export function getShared(token: string): Promise<SharedGeneration> {
  return call("GET", `/v1/shared/${encodeURIComponent(token)}`);
}

/** What a tile or the viewer shows first: the worker's thumbnail, else the output itself
 * when the browser can show it as an image. */
export function previewUrl(output: MediaOutput | undefined): string | null {
  if (!output) return null;
  if (output.thumbnail_url) return output.thumbnail_url;
  return output.content_type.startsWith("image/") ? output.url : null;
}

/** Which player an output needs. */
export function kindOf(output: MediaOutput | undefined, type: string): string {
  const ct = output?.content_type ?? "";
  if (ct.startsWith("image/")) return "image";
  if (ct.startsWith("audio/")) return "audio";
  if (ct.startsWith("video/")) return "video";
  if (ct.startsWith("model/") || type === "model_3d") return "model_3d";
  return type === "design" ? "file" : type;
}
