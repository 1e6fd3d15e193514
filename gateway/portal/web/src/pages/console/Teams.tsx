// Teams: every team of the tenant (a staff owner or admin sees them all), with its wallet's
// balance and, opened, its members and their allocations.
import { useState } from "react";
import { useInfiniteQuery, useQuery } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, unwrap, type Schemas } from "../../api/client";
import { formatCredits, formatDate } from "../../i18n";
import { ListState, MoreButton } from "./ui";

type Team = Schemas["TeamOut"];

function Members({ team }: { team: Team }) {
  const { t, i18n } = useTranslation("console");
  const lang = i18n.language;
  const members = useQuery({
    queryKey: ["console", "team-members", team.id],
    queryFn: async () => unwrap(await api.GET("/v1/teams/{team_id}/members", { params: { path: { team_id: team.id } } })).data,
  });
  const list = members.data ?? [];
  return (
    <>
      <ListState loading={members.isPending} error={members.error} empty={list.length === 0} emptyText={t("teams.no_members")} />
      {list.length > 0 ? (
        <table className="c-table">
          <thead><tr><th scope="col">{t("teams.member")}</th><th scope="col">{t("teams.role")}</th>
            <th scope="col">{t("teams.allocation")}</th><th scope="col">{t("teams.joined")}</th></tr></thead>
          <tbody>
            {list.map((m) => (
              <tr key={m.customer_id}>
                <td data-label={t("teams.member")}><span dir="ltr">{m.customer_id}</span></td>
                <td data-label={t("teams.role")}>{t(`teams.roles.${m.role}`, { defaultValue: m.role })}</td>
                <td data-label={t("teams.allocation")}>{m.allocation ? t("teams.allocation_value", {
                  spent: formatCredits(m.allocation.spent, lang), limit: formatCredits(m.allocation.limit, lang) }) : "—"}</td>
                <td data-label={t("teams.joined")}>{formatDate(m.created_at, lang)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </>
  );
}

function TeamCard({ team }: { team: Team }) {
  const { t, i18n } = useTranslation("console");
  const [open, setOpen] = useState(false);
  const balance = useQuery({
    queryKey: ["console", "team-balance", team.id],
    queryFn: async () => unwrap(await api.GET("/v1/teams/{team_id}/balance", { params: { path: { team_id: team.id } } })),
  });
  return (
    <li className="card c-team">
      <div className="c-domain-head">
        <h2>{team.name}</h2>
        <span className="c-badge">{t("teams.balance", { credits: balance.data ? formatCredits(balance.data.available, i18n.language) : "—" })}</span>
      </div>
      <p className="muted small">{t("teams.created", { date: formatDate(team.created_at, i18n.language) })}</p>
      <button type="button" aria-expanded={open} onClick={() => setOpen((o) => !o)}>
        {open ? t("teams.hide_members") : t("teams.show_members")}
      </button>
      {open ? <Members team={team} /> : null}
    </li>
  );
}

export default function Teams() {
  const { t } = useTranslation("console");
  const teams = useInfiniteQuery({
    queryKey: ["console", "teams"],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }) => unwrap(await api.GET("/v1/teams",
      { params: { query: { limit: 25, ...(pageParam ? { cursor: pageParam } : {}) } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  });
  const rows = teams.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <div className="c-page">
      <h1>{t("teams.title")}</h1>
      <p className="muted">{t("teams.intro")}</p>
      <ListState loading={teams.isPending} error={teams.error} empty={rows.length === 0} emptyText={t("teams.none")} />
      <ul className="c-cards">{rows.map((team) => <TeamCard key={team.id} team={team} />)}</ul>
      <MoreButton hasMore={!!teams.hasNextPage} loading={teams.isFetchingNextPage} onMore={() => void teams.fetchNextPage()} />
    </div>
  );
}
