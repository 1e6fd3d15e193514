// Replaying a webhook delivery (POST /v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay
// → 202 with the new delivery, `replay_of` naming the original).
import { api, unwrap, type Schemas } from "../../api/client";

export type ReplayedDelivery = Schemas["DeliveryOut"];

/** Queues the delivery again; answers the new delivery (throws ApiError, e.g. 404). */
export async function replayDelivery(endpointId: string, deliveryId: string): Promise<ReplayedDelivery> {
  return unwrap(await api.POST("/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay", {
    params: { path: { endpoint_id: endpointId, delivery_id: deliveryId } } }));
}
