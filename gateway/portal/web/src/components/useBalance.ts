// The balance of the current workspace: the customer's wallet, or the team's.
import { useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { useSession } from "../session";

export interface Balance { available: number; pending: number; posted: number }

export function useBalance(enabled = true) {
  const { user, teamId } = useSession();
  return useQuery<Balance>({
    queryKey: ["balance", teamId],
    enabled: enabled && !!user,
    queryFn: async () => teamId
      ? unwrap(await api.GET("/v1/teams/{team_id}/balance", { params: { path: { team_id: teamId } } }))
      : unwrap(await api.GET("/v1/credits/balance")),
  });
}

export function useTeams() {
  const { user } = useSession();
  return useQuery({
    queryKey: ["teams", user?.id],
    enabled: !!user?.customer_id,
    queryFn: async () => unwrap(await api.GET("/v1/teams", { params: { query: { limit: 100 } } })).data,
  });
}
