// Platform analytics for the operator: volume and money, tenants, providers and breaker
// openings, over a chosen interval and date range (GET /admin/v1/analytics/*; see
// docs/analytics.md for the series and their columns). The CSV links are built in the
// browser from the loaded series: a plain link could not carry the operator's token.
import { useState } from "react";
import { useTranslation } from "react-i18next";
import ChartPanel from "../../components/charts/ChartPanel";
import PeriodPicker, { apiTo, defaultPeriod, type Period } from "../../components/charts/PeriodPicker";
import { useCsvBlobHref, useSeries } from "../../components/charts/useSeries";
import { adminHeaders, adminSeriesUrl } from "./api";

interface PanelSpec {
  series: string;
  title: string;
  kind: "line" | "bar" | "stacked-bar" | "pie";
  x: string;
  y: string[];
  groupBy?: string;
  periodic: boolean;
}

function Panel({ spec, period }: { spec: PanelSpec; period: Period }) {
  const url = adminSeriesUrl(spec.series, {
    from: period.from, to: apiTo(period), interval: spec.periodic ? period.interval : undefined });
  const state = useSeries(url, () => adminHeaders(url));
  const csv = useCsvBlobHref(state.series);
  return (
    <ChartPanel title={spec.title} series={state.series} loading={state.loading} error={state.error}
                kind={spec.kind} x={spec.x} y={spec.y} groupBy={spec.groupBy} csvHref={csv} />
  );
}

export default function Analytics() {
  const { t } = useTranslation("operator");
  const [period, setPeriod] = useState<Period>(() => defaultPeriod("UTC"));
  const panels: PanelSpec[] = [
    { series: "platform", title: t("analytics.platform_credits"), kind: "line", x: "period",
      y: ["charged_mc", "wholesale_mc"], periodic: true },
    { series: "platform", title: t("analytics.platform_cost"), kind: "bar", x: "period",
      y: ["cost_usd_micros"], periodic: true },
    { series: "tenants", title: t("analytics.tenants"), kind: "bar", x: "group",
      y: ["wholesale_mc"], periodic: false },
    { series: "providers", title: t("analytics.provider_latency"), kind: "bar", x: "group",
      y: ["p50_ms", "p95_ms", "p99_ms"], periodic: false },
    { series: "providers", title: t("analytics.provider_success"), kind: "bar", x: "group",
      y: ["success_rate", "failover_rate"], periodic: false },
    { series: "breakers", title: t("analytics.breakers"), kind: "stacked-bar", x: "period",
      y: ["openings"], groupBy: "group", periodic: true },
  ];
  return (
    <div className="op-page">
      <h1>{t("analytics.title")}</h1>
      <PeriodPicker value={period} onChange={setPeriod} />
      <div className="chart-grid">
        {panels.map((spec) => <Panel key={spec.title} spec={spec} period={period} />)}
      </div>
    </div>
  );
}
