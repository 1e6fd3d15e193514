// The gallery's calls (API.md "Generations": listing filters, favourites, delete, bulk,
// archive and share links), through the one typed API client.
import { api, currentTeam, unwrap, type Schemas } from "../../api/client";
import type { operations } from "../../api/schema";

/** An output: `thumbnail_url` and waveform `peaks` are made by the worker when it stores
 * the output (null for older ones). */
export type MediaOutput = Schemas["Output"];
export type Generation = Schemas["GenerationOut"];
export type GenerationPage = Schemas["GenerationList"];
export type BulkResult = Schemas["BulkResult"];
export type Share = Schemas["Share"];
export type SharedGeneration = Schemas["SharedGeneration"];

export const MEDIA_TYPES = ["image", "audio", "video", "design", "model_3d", "text"] as const;
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

function millicredits(credits: string): number | null {
  const value = Number(credits);
  return credits.trim() !== "" && Number.isFinite(value) && value >= 0
    ? Math.round(value * 1000) : null;
}

type ListQuery = operations["V1GenerationsList"]["parameters"]["query"];

/** The API's query for the filters: local days become UTC instants (the whole `to` day
 * included), credits become millicredits. */
export function listQuery(f: Filters, cursor: string | null): NonNullable<ListQuery> {
  const q: NonNullable<ListQuery> = { limit: 24 };
  if (f.type) q.type = f.type;
  if (f.status) q.status = f.status;
  if (f.from) q.created_after = new Date(`${f.from}T00:00:00`).toISOString();
  if (f.to) {
    const end = new Date(`${f.to}T00:00:00`);
    end.setDate(end.getDate() + 1);
    q.created_before = end.toISOString();
  }
  const min = millicredits(f.min);
  if (min !== null) q.min_cost = min;
  const max = millicredits(f.max);
  if (max !== null) q.max_cost = max;
  if (f.favourite) q.favourite = true;
  if (f.q.trim()) q.q = f.q.trim();
  if (cursor) q.cursor = cursor;
  return q;
}

export async function listGenerations(f: Filters, cursor: string | null): Promise<GenerationPage> {
  return unwrap(await api.GET("/v1/generations", { params: { query: listQuery(f, cursor) } }));
}

export async function getGeneration(id: string): Promise<Generation> {
  return unwrap(await api.GET("/v1/generations/{generation_id}",
                              { params: { path: { generation_id: id } } }));
}

export async function setFavourite(id: string, favourite: boolean): Promise<Generation> {
  const options = { params: { path: { generation_id: id } } };
  return unwrap(favourite ? await api.PUT("/v1/generations/{generation_id}/favourite", options)
                          : await api.DELETE("/v1/generations/{generation_id}/favourite", options));
}

export async function deleteGeneration(id: string): Promise<{ id: string; deleted: boolean }> {
  return unwrap(await api.DELETE("/v1/generations/{generation_id}",
                                 { params: { path: { generation_id: id } } }));
}

export async function bulk(action: "delete" | "favourite" | "unfavourite",
                           ids: string[]): Promise<BulkResult[]> {
  return unwrap(await api.POST("/v1/generations/bulk", { body: { action, ids } })).results;
}

/** The zip of these generations' outputs: a plain link (the browser downloads it as it
 * streams; the session cookie goes along, the workspace as `team_id`). */
export function archiveUrl(ids: string[]): string {
  const q = new URLSearchParams({ ids: ids.join(",") });
  const team = currentTeam();
  if (team) q.set("team_id", team);
  return `/v1/generations/archive?${q.toString()}`;
}

/** How long a share link works: the API's default, a week. */
const SHARE_FOR_S = 7 * 24 * 3600;

export async function share(id: string): Promise<Share> {
  return unwrap(await api.POST("/v1/generations/{generation_id}/share",
                               { params: { path: { generation_id: id } }, body: { expires_in_s: SHARE_FOR_S } }));
}

export async function getShared(token: string): Promise<SharedGeneration> {
  return unwrap(await api.GET("/v1/shared/{token}", { params: { path: { token } } }));
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
