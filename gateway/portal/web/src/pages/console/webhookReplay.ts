// Replaying a webhook delivery (POST …/deliveries/{delivery_id}/replay → 202 with the new
// delivery, `replay_of` = the original), added to the API on another branch (issue #15,
// consoleapi). The brief names `/v1/webhooks/{endpoint_id}/…`; the endpoints themselves
// live under `/v1/webhook_endpoints/`, so both are tried, in that order.
// TODO(merge): call the generated route through `api.POST` once it is in schema.d.ts.
import { apiHeaders, ApiError } from "../../api/client";

export interface ReplayedDelivery {
  id: string;
  replay_of?: string | null;
  event_id?: string;
  event_type?: string;
  status?: string;
  created_at?: string;
  [field: string]: unknown;
}

/** The new delivery; null when this gateway has no replay endpoint (404/405 on both paths). */
export async function replayDelivery(endpointId: string, deliveryId: string): Promise<ReplayedDelivery | null> {
  const tail = `${encodeURIComponent(endpointId)}/deliveries/${encodeURIComponent(deliveryId)}/replay`;
  for (const base of ["/v1/webhooks/", "/v1/webhook_endpoints/"]) {
    const r = await fetch(base + tail, { method: "POST", credentials: "same-origin",
      headers: { ...apiHeaders("POST"), "Content-Type": "application/json" }, body: "{}" });
    const body = await r.json().catch(() => null) as
      (ReplayedDelivery & { error?: { code?: string; message?: string; param?: string } }) | null;
    // A route that does not exist: try the other spelling.
    if (r.status === 405 || (r.status === 404 && (!body?.error || body.error.code === "not_found"))) continue;
    if (!r.ok || !body) {
      throw new ApiError(r.status, body?.error?.code ?? "error", body?.error?.message ?? r.statusText, body?.error?.param);
    }
    return body;
  }
  return null;
}
