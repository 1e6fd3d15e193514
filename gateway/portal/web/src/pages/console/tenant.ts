// The tenant's settings (GET /v1/tenant) shared by the branding, pricing, limits and
// providers sections, and the PATCH they each send (only the fields they own).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { api, unwrap, type Schemas } from "../../api/client";

export type Tenant = Schemas["TenantOut"];
export type TenantPatch = Schemas["TenantSelfUpdate"];

export function useTenant() {
  return useQuery({
    queryKey: ["console", "tenant"],
    queryFn: async () => unwrap(await api.GET("/v1/tenant")),
  });
}

/** PATCH /v1/tenant; the answer replaces the cached tenant. */
export function useTenantPatch() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (body: TenantPatch) => unwrap(await api.PATCH("/v1/tenant", { body })),
    onSuccess: (tenant) => queryClient.setQueryData(["console", "tenant"], tenant),
  });
}
