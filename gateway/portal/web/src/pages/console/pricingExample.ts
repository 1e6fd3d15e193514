// The pricing worked example (POST /v1/tenant/pricing/example): how one request's price is
// made for a tier, step by step, by the same code the estimate endpoint prices with.
import { api, unwrap, type Schemas } from "../../api/client";

export type PricingExampleRequest = Schemas["PricingExampleIn"];
export type PricingExample = Schemas["PricingExample"];
export type PricingStep = Schemas["PricingStep"];

/** The worked example for `body`; throws ApiError (422 params, 503 nothing can serve it). */
export async function fetchPricingExample(body: PricingExampleRequest): Promise<PricingExample> {
  return unwrap(await api.POST("/v1/tenant/pricing/example", { body }));
}
