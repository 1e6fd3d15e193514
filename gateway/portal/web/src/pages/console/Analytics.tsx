// The tenant's analytics (/console/analytics): credits, success, popular types, costs,
// latency and margin over a chosen period, the customer segments and their thresholds, on
// the analytics API (docs/analytics.md, docs/analytics-segments.md). Every series panel has
// a table view and a CSV link (format=csv: a plain link carries the session cookie).
// Dates are the tenant's local days; the page names the time zone and lets admins change it.
import { useState, type FormEvent } from "react";
import { useQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { useTranslation } from "react-i18next";
import { api, apiHeaders, unwrap, type Schemas } from "../../api/client";
import ChartPanel from "../../components/charts/ChartPanel";
import PeriodPicker, { defaultPeriod, type Period } from "../../components/charts/PeriodPicker";
import { formatCell } from "../../components/charts/series";
import { useSeries } from "../../components/charts/useSeries";
import { formatCredits, formatDate, formatNumber } from "../../i18n";
import { useSession } from "../../session";
import { seriesUrl } from "./analyticsUrl";
import { useTenant, useTenantPatch } from "./tenant";
import { Field, useAction } from "./ui";

const GROUPS = ["type", "provider", "customer", "team", "key"] as const;
type Group = (typeof GROUPS)[number];
type Thresholds = Schemas["TenantAnalytics"];
const DEFAULT_THRESHOLDS: Thresholds = { new_days: 30, active_days: 30, lapsed_days: 90, top_spender_percent: 10 };
// An error naming one threshold shows on its field; one naming the whole object (lapsed
// not after active) on the form.
const FIELDS = Object.keys(DEFAULT_THRESHOLDS).map((k) => `analytics.${k}`);

function useTenantSeries(url: string, zone: string) {
  return useSeries(url, () => apiHeaders("GET"), zone);
}

interface PanelProps {
  series: string; title: string; period: Period; zone: string; periodic: boolean;
  kind: "line" | "bar" | "stacked-bar" | "pie"; x: string; y: string[]; groupBy?: string;
  query?: Record<string, string>;
}

function Panel({ series, title, period, zone, periodic, kind, x, y, groupBy, query = {} }: PanelProps) {
  const q = periodic ? { interval: period.interval, ...query } : query;
  const state = useTenantSeries(seriesUrl(series, period, q), zone);
  return (
    <ChartPanel title={title} series={state.series} loading={state.loading} error={state.error}
                kind={kind} x={x} y={y} groupBy={groupBy}
                csvHref={seriesUrl(series, period, { ...q, format: "csv" })} />
  );
}

function sum(series: { data: Record<string, unknown>[] } | undefined, key: string): number {
  return (series?.data ?? []).reduce((total, row) => total + (typeof row[key] === "number" ? row[key] : 0), 0);
}

/** The period's money in one line: retail charged, wholesale paid, margin and margin %. */
function Roi({ period, zone }: { period: Period; zone: string }) {
  const { t, i18n } = useTranslation("console");
  const lang = i18n.language;
  const state = useTenantSeries(seriesUrl("margin", period, { interval: period.interval }), zone);
  if (!state.series) return <p className="muted" role="status">{state.error ?? t("common.loading")}</p>;
  const charged = sum(state.series, "charged_mc");
  const wholesale = sum(state.series, "wholesale_mc");
  const margin = charged - wholesale;
  const pct = charged > 0 ? formatNumber(margin / charged, lang, { style: "percent", maximumFractionDigits: 1 }) : "—";
  return (
    <p className="card a-roi" data-testid="roi">
      {t("analytics.roi", { charged: formatCredits(charged, lang), wholesale: formatCredits(wholesale, lang),
                            margin: formatCredits(margin, lang), pct })}
    </p>
  );
}

/** Credits in the segment tables as in the chart tables: three decimals. */
function mc(value: number, lang: string): string {
  return formatCell(value, "millicredits", lang);
}

function SegmentCustomers({ segment }: { segment: string }) {
  const { t, i18n } = useTranslation("console");
  const lang = i18n.language;
  const list = useQuery({
    queryKey: ["console", "segment-customers", segment],
    queryFn: async () => unwrap(await api.GET("/v1/analytics/segments/{segment}/customers", {
      params: { path: { segment }, query: { limit: 100 } } })),
  });
  if (!list.data) return <p className="muted" role="status">{t("common.loading")}</p>;
  if (list.data.data.length === 0) return <p className="muted">{t("analytics.segment_empty")}</p>;
  return (
    <div className="chart-table-wrap" tabIndex={0} role="region" aria-label={t("analytics.segment_customers", { segment: t(`analytics.segment.${segment}`) })}>
      <table className="chart-table" data-testid="segment-customers">
        <thead>
          <tr><th scope="col">{t("analytics.customer")}</th><th scope="col">{t("analytics.tier")}</th>
            <th scope="col">{t("analytics.last_at")}</th><th scope="col" className="num">{t("analytics.spend")}</th></tr>
        </thead>
        <tbody>
          {list.data.data.map((c) => (
            <tr key={c.id}>
              <th scope="row"><Link to={`/console/customers/${c.id}`}>{c.external_id}</Link></th>
              <td>{c.tier}</td>
              <td>{formatDate(c.last_at, lang)}</td>
              <td className="num">{mc(c.spend_mc, lang)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Segments() {
  const { t, i18n } = useTranslation("console");
  const lang = i18n.language;
  const [open, setOpen] = useState<string | null>(null);
  const report = useQuery({
    queryKey: ["console", "segments"],
    queryFn: async () => unwrap(await api.GET("/v1/analytics/segments")),
  });
  return (
    <section className="card chart-panel a-wide" aria-labelledby="segments-heading">
      <header className="chart-head">
        <h2 id="segments-heading">{t("analytics.segments")}</h2>
        <div className="chart-tools"><a className="chart-csv" href="/v1/analytics/segments?format=csv" download>{t("analytics.csv")}</a></div>
      </header>
      {report.isError ? <p className="error" role="alert">{(report.error as Error).message}</p> : null}
      {report.data ? (
        <div className="chart-table-wrap" tabIndex={0} role="region" aria-label={t("analytics.segments")}>
          <table className="chart-table" data-testid="segments">
            <thead>
              <tr><th scope="col">{t("analytics.segment_col")}</th><th scope="col" className="num">{t("analytics.customers")}</th>
                <th scope="col" className="num">{t("analytics.spend")}</th><th scope="col" className="num">{t("analytics.wholesale")}</th>
                <th scope="col" className="num">{t("analytics.margin")}</th></tr>
            </thead>
            <tbody>
              {report.data.data.map((row) => (
                <tr key={row.segment} data-segment={row.segment}>
                  <th scope="row">
                    <button type="button" className="link" aria-expanded={open === row.segment}
                            onClick={() => setOpen(open === row.segment ? null : row.segment)}>
                      {t(`analytics.segment.${row.segment}`, { defaultValue: row.segment })}
                    </button>
                  </th>
                  <td className="num">{formatNumber(row.customers, lang)}</td>
                  <td className="num">{mc(row.spend_mc, lang)}</td>
                  <td className="num">{mc(row.wholesale_mc, lang)}</td>
                  <td className="num">{mc(row.margin_mc, lang)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : report.isPending ? <p className="muted" role="status">{t("common.loading")}</p> : null}
      {open ? (
        <div className="c-section">
          <h3>{t("analytics.segment_customers", { segment: t(`analytics.segment.${open}`, { defaultValue: open }) })}</h3>
          <SegmentCustomers segment={open} />
        </div>
      ) : null}
    </section>
  );
}

/** The time zone and the segment thresholds (PATCH /v1/tenant): owners and admins. */
function Settings({ zone, thresholds }: { zone: string; thresholds: Thresholds }) {
  const { t } = useTranslation("console");
  const patch = useTenantPatch();
  const zoneAction = useAction();
  const limitsAction = useAction();
  const [draftZone, setDraftZone] = useState(zone);
  const [draft, setDraft] = useState<Record<keyof Thresholds, string>>({
    new_days: String(thresholds.new_days), active_days: String(thresholds.active_days),
    lapsed_days: String(thresholds.lapsed_days), top_spender_percent: String(thresholds.top_spender_percent) });
  const [saved, setSaved] = useState<"zone" | "thresholds" | null>(null);
  async function saveZone(event: FormEvent) {
    event.preventDefault();
    setSaved(null);
    if (await zoneAction.run(async () => { await patch.mutateAsync({ time_zone: draftZone.trim() }); })) setSaved("zone");
  }
  async function saveThresholds(event: FormEvent) {
    event.preventDefault();
    setSaved(null);
    const analytics = Object.fromEntries(Object.entries(draft).map(([k, v]) => [k, Number(v)])) as Thresholds;
    if (await limitsAction.run(async () => { await patch.mutateAsync({ analytics }); })) setSaved("thresholds");
  }
  return (
    <section className="card a-wide" id="analytics-settings" aria-labelledby="settings-heading">
      <h2 id="settings-heading">{t("analytics.settings")}</h2>
      <form className="c-form" onSubmit={saveZone}>
        <div className="c-row">
          <Field label={t("analytics.time_zone")} param="time_zone" action={zoneAction} hint={t("analytics.time_zone_hint")}>
            {(p) => <input {...p} dir="ltr" value={draftZone} onChange={(e) => setDraftZone(e.target.value)} required />}
          </Field>
          <button type="submit" className="primary" disabled={zoneAction.busy}>{t("analytics.save_zone")}</button>
        </div>
        {zoneAction.formError(["time_zone"]) ? <p className="error" role="alert">{zoneAction.formError(["time_zone"])}</p> : null}
        {saved === "zone" ? <p className="c-ok" role="status">{t("analytics.saved")}</p> : null}
      </form>
      <form className="c-form" onSubmit={saveThresholds}>
        <fieldset>
          <legend>{t("analytics.thresholds")}</legend>
          <div className="c-grid">
            {(Object.keys(DEFAULT_THRESHOLDS) as (keyof Thresholds)[]).map((key) => (
              <Field key={key} label={t(`analytics.threshold.${key}`)} param={`analytics.${key}`} action={limitsAction}>
                {(p) => <input {...p} type="number" min={1} max={key === "top_spender_percent" ? 100 : 3650} required
                               value={draft[key]} onChange={(e) => setDraft({ ...draft, [key]: e.target.value })} />}
              </Field>
            ))}
          </div>
        </fieldset>
        {limitsAction.formError(FIELDS) ? <p className="error" role="alert">{limitsAction.formError(FIELDS)}</p> : null}
        <div><button type="submit" className="primary" disabled={limitsAction.busy}>{t("analytics.save_thresholds")}</button></div>
        {saved === "thresholds" ? <p className="c-ok" role="status">{t("analytics.saved")}</p> : null}
      </form>
    </section>
  );
}

export default function Analytics() {
  const { t } = useTranslation("console");
  const { user } = useSession();
  const tenant = useTenant();
  // Until one is chosen, the period is the last 30 days in the tenant's (current) zone.
  const [chosen, setPeriod] = useState<Period | null>(null);
  const [group, setGroup] = useState<Group>("type");
  const admin = user?.role === "owner" || user?.role === "admin";
  if (!tenant.data) {
    return tenant.isError ? <p className="error" role="alert">{(tenant.error as Error).message}</p>
      : <p className="muted" role="status">{t("common.loading")}</p>;
  }
  const zone = tenant.data.time_zone;
  const period = chosen ?? defaultPeriod(zone);
  const common = { period, zone };
  return (
    <div className="c-page">
      <h1>{t("analytics.title")}</h1>
      <p className="muted" data-testid="time-zone">
        {t("analytics.zone", { zone })}{" "}
        {admin ? <a href="#analytics-settings">{t("analytics.change_zone")}</a> : null}
      </p>
      <div className="a-controls">
        <PeriodPicker value={period} onChange={setPeriod} />
      </div>
      <Roi {...common} />
      <div className="chart-grid">
        <div className="a-wide a-stack">
          <div className="c-inline">
            <Field label={t("analytics.group_by")}>
              {(p) => <select {...p} value={group} data-testid="group-by" onChange={(e) => setGroup(e.target.value as Group)}>
                {GROUPS.map((g) => <option key={g} value={g}>{t(`analytics.group.${g}`)}</option>)}
              </select>}
            </Field>
          </div>
          <Panel {...common} series="credits" periodic title={t("analytics.credits", { group: t(`analytics.group.${group}`) })}
                 kind="stacked-bar" x="period" y={["charged_mc"]} groupBy="group" query={{ group_by: group }} />
        </div>
        <Panel {...common} series="success" periodic title={t("analytics.success_type")}
               kind="line" x="period" y={["success_rate"]} groupBy="group" query={{ group_by: "type" }} />
        <Panel {...common} series="success" periodic title={t("analytics.success_provider")}
               kind="line" x="period" y={["success_rate"]} groupBy="group" query={{ group_by: "provider" }} />
        <Panel {...common} series="types" periodic={false} title={t("analytics.types")} kind="pie" x="group" y={["count"]} />
        <CostsPanel {...common} />
        <LatencyPanel {...common} />
        <Panel {...common} series="margin" periodic title={t("analytics.margin_title")} kind="line" x="period"
               y={["charged_mc", "wholesale_mc", "margin_mc"]} />
        <Segments />
        {admin ? <Settings key={`${zone}`} zone={zone} thresholds={{ ...DEFAULT_THRESHOLDS, ...tenant.data.analytics }} /> : null}
      </div>
    </div>
  );
}

/** Latency per provider × type: a table first (two dimensions chart poorly). */
function LatencyPanel({ period, zone }: { period: Period; zone: string }) {
  const { t } = useTranslation("console");
  const state = useTenantSeries(seriesUrl("latency", period), zone);
  // One row (and one bar group) per "provider · type".
  const series = state.series && {
    ...state.series,
    columns: [{ name: "group", type: "string" as const },
              ...state.series.columns.filter((c) => c.name !== "provider" && c.name !== "type")],
    data: state.series.data.map((row) => ({ group: `${String(row.provider)} · ${String(row.type)}`, ...row })),
  };
  return (
    <ChartPanel title={t("analytics.latency")} series={series} loading={state.loading} error={state.error}
                kind="bar" x="group" y={["p50_ms", "p95_ms", "p99_ms"]} initialView="table"
                csvHref={seriesUrl("latency", period, { format: "csv" })} />
  );
}

/** Cost by provider: the provider's cost, what the tenant paid wholesale and what it charged,
 * all in credits so the bars compare (the platform's one conversion: 1 millicredit = 10 USD
 * micros, billing/pricing.py); the table keeps the cost in dollars as well. */
function CostsPanel({ period, zone }: { period: Period; zone: string }) {
  const { t } = useTranslation("console");
  const state = useTenantSeries(seriesUrl("costs", period), zone);
  const series = state.series && {
    ...state.series,
    columns: [...state.series.columns, { name: "cost_mc", type: "millicredits" as const }],
    data: state.series.data.map((row) => ({
      ...row, cost_mc: typeof row.cost_usd_micros === "number" ? Math.round(row.cost_usd_micros / 10) : null })),
  };
  return (
    <ChartPanel title={t("analytics.costs")} series={series} loading={state.loading} error={state.error}
                kind="bar" x="group" y={["cost_mc", "wholesale_mc", "charged_mc"]}
                csvHref={seriesUrl("costs", period, { format: "csv" })} />
  );
}
