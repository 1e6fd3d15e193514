// The pricing worked example (POST /v1/tenant/pricing/example), added to the API on another
// branch (issue #15, consoleapi). Until its generated types are in src/api/schema.d.ts this
// file declares its shape and calls it with fetch.
// TODO(merge): switch to `api.POST("/v1/tenant/pricing/example")` and Schemas["PricingExample…"]
// once the endpoint is in the generated schema.
import { apiHeaders, ApiError } from "../../api/client";

export interface PricingExampleRequest {
  type: string;
  tier?: string;
  operation?: string;
  params?: Record<string, unknown>;
  provider?: string;
}

export interface PricingStep {
  label: string;
  amount: number;
  /** "usd_micros" or "millicredit". */
  unit: string;
  detail: string;
}

export interface PricingExample {
  provider: string;
  model: string | null;
  tier: string;
  cost_usd_micros: number;
  wholesale_mc: number;
  retail_mc: number;
  steps: PricingStep[];
}

/** The worked example, or null when this gateway has no such endpoint (404/405). */
export async function fetchPricingExample(body: PricingExampleRequest): Promise<PricingExample | null> {
  const r = await fetch("/v1/tenant/pricing/example", {
    method: "POST", credentials: "same-origin", body: JSON.stringify(body),
    headers: { ...apiHeaders("POST"), "Content-Type": "application/json" },
  });
  const answer = await r.json().catch(() => null) as
    (PricingExample & { error?: { code?: string; message?: string; param?: string } }) | null;
  if (r.status === 405 || (r.status === 404 && (!answer?.error || answer.error.code === "not_found"
      || answer.error.code === "route_not_found"))) return null;
  if (!r.ok || !answer) {
    throw new ApiError(r.status, answer?.error?.code ?? "error", answer?.error?.message ?? r.statusText,
                       answer?.error?.param);
  }
  return answer;
}
