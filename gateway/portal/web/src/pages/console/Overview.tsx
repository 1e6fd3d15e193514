// The console's first page: the tenant's wallet, how many customers, keys and domains it
// has, and links into the sections. A count the user's role may not read shows a dash.
import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { useTranslation } from "react-i18next";
import { api, unwrap } from "../../api/client";
import { formatCredits, formatNumber } from "../../i18n";
import { useSession } from "../../session";
import { apiHeaders } from "../../api/client";
import ChartPanel from "../../components/charts/ChartPanel";
import { useSeries } from "../../components/charts/useSeries";
import { seriesUrl } from "./analyticsUrl";
import { sectionsFor } from "./sections";

/** Counts a keyset-paginated list up to `cap` (then shows "cap+"): enough for a glance. */
async function countPages(fetchPage: (cursor: string | null) => Promise<{ data: unknown[]; next_cursor?: string | null }>,
                          cap = 1000): Promise<{ count: number; more: boolean }> {
  let count = 0;
  let cursor: string | null = null;
  do {
    const page = await fetchPage(cursor);
    count += page.data.length;
    cursor = page.next_cursor ?? null;
  } while (cursor && count < cap);
  return { count, more: !!cursor };
}

function Stat({ label, value, to, testId }: { label: string; value: string; to?: string; testId: string }) {
  const body = (
    <>
      <span className="c-stat-value" data-testid={testId}>{value}</span>
      <span className="c-stat-label">{label}</span>
    </>
  );
  return <li className="card c-stat">{to ? <Link to={to}>{body}</Link> : body}</li>;
}

/** The last 30 days' margin by day, for the roles that may read analytics (else nothing
 * is asked): the series, its margin and the margin's share of what was charged. */
function useMargin(allowed: boolean, lang: string) {
  // No period asked: the API's default is the last 30 days in the tenant's time zone.
  const url = allowed ? seriesUrl("margin", null, { interval: "day" }) : null;
  const state = useSeries(url, () => apiHeaders("GET"), "overview");
  const rows = state.series?.data ?? [];
  const total = (key: string) => rows.reduce((n, r) => n + (typeof r[key] === "number" ? r[key] : 0), 0);
  const charged = total("charged_mc");
  const margin = total("margin_mc");
  const pct = charged > 0 ? formatNumber(margin / charged, lang, { style: "percent", maximumFractionDigits: 1 }) : "—";
  return { state, margin, pct };
}

export default function Overview() {
  const { t, i18n } = useTranslation("console");
  const { user } = useSession();
  const lang = i18n.language;
  const admin = user?.role === "owner" || user?.role === "admin";
  const balance = useQuery({
    queryKey: ["console", "balance"],
    queryFn: async () => unwrap(await api.GET("/v1/credits/balance")),
  });
  const counts = useQuery({
    queryKey: ["console", "counts"],
    enabled: admin,
    queryFn: async () => {
      const [customers, keys, domains] = await Promise.all([
        countPages(async (cursor) => unwrap(await api.GET("/v1/customers",
          { params: { query: { limit: 100, ...(cursor ? { cursor } : {}) } } }))),
        countPages(async (cursor) => unwrap(await api.GET("/v1/keys",
          { params: { query: { limit: 100, ...(cursor ? { cursor } : {}) } } }))),
        unwrap(await api.GET("/v1/tenant/domains")).data,
      ]);
      return { customers, keys, domains: domains.length,
               verified: domains.filter((d) => d.status === "verified").length };
    },
  });
  const show = (c: { count: number; more: boolean } | undefined) =>
    c ? `${formatNumber(c.count, lang)}${c.more ? "+" : ""}` : "—";
  const links = sectionsFor(user?.role ?? "viewer").filter((s) => s.path);
  const analytics = links.some((s) => s.path === "analytics");
  const money = useMargin(analytics, lang);
  return (
    <div className="c-page">
      <h1>{t("overview.title")}</h1>
      <ul className="c-stats">
        <Stat label={t("overview.balance")} testId="tenant-balance"
              value={balance.data ? formatCredits(balance.data.available, lang) : "—"} />
        <Stat label={t("overview.customers")} testId="count-customers" value={show(counts.data?.customers)}
              to={admin ? "/console/customers" : undefined} />
        <Stat label={t("overview.keys")} testId="count-keys" value={show(counts.data?.keys)}
              to={admin ? "/console/keys" : undefined} />
        <Stat label={t("overview.domains")} testId="count-domains"
              value={counts.data ? t("overview.domains_value", {
                count: counts.data.domains, verified: formatNumber(counts.data.verified, lang),
                total: formatNumber(counts.data.domains, lang) }) : "—"}
              to={admin ? "/console/domains" : undefined} />
        {analytics ? (
          <Stat label={t("overview.margin")} testId="overview-margin" to="/console/analytics"
                value={money.state.series ? t("overview.margin_value", {
                  margin: formatCredits(money.margin, lang), pct: money.pct }) : "—"} />
        ) : null}
      </ul>
      {analytics ? (
        <ChartPanel title={t("overview.credits_chart")} series={money.state.series} loading={money.state.loading}
                    error={money.state.error} kind="line" x="period" y={["charged_mc"]} />
      ) : null}
      {balance.data && balance.data.pending !== 0 ? (
        <p className="muted">{t("overview.pending", { credits: formatCredits(Math.abs(balance.data.pending), lang) })}</p>
      ) : null}
      {!admin ? <p className="muted">{t("overview.limited")}</p> : null}
      {links.length > 0 ? (
        <section aria-labelledby="overview-links">
          <h2 id="overview-links">{t("overview.sections")}</h2>
          <ul className="c-links">
            {links.map((s) => <li key={s.path}><Link to={`/console/${s.path}`}>{t(s.labelKey)}</Link></li>)}
          </ul>
        </section>
      ) : null}
    </div>
  );
}
