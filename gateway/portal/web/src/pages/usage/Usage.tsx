// The customer's usage (/usage): credits spent over time by content type, and per member in
// a team workspace (the workspace switch's X-Team-Id picks whose), over a chosen interval
// and period (GET /v1/analytics/me/credits; docs/analytics.md).
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { apiHeaders } from "../../api/client";
import ChartPanel from "../../components/charts/ChartPanel";
import PeriodPicker, { apiTo, defaultPeriod, type Period } from "../../components/charts/PeriodPicker";
import { useCsvBlobHref, useSeries } from "../../components/charts/useSeries";
import { usePortalConfig } from "../../config";
import { useSession } from "../../session";

function creditsUrl(period: Period, groupBy: "type" | "member", format?: "csv"): string {
  const params = new URLSearchParams({ interval: period.interval, group_by: groupBy, from: period.from, to: apiTo(period) });
  if (format) params.set("format", format);
  return `/v1/analytics/me/credits?${params.toString()}`;
}

function CreditsPanels({ period, groupBy, teamId }: { period: Period; groupBy: "type" | "member"; teamId: string | null }) {
  const { t } = useTranslation("usage");
  const url = creditsUrl(period, groupBy);
  const state = useSeries(url, () => apiHeaders("GET"), teamId ?? "personal");
  // A plain link carries the session cookie but not X-Team-Id: a team's CSV is made in the
  // browser from the loaded series (same columns and raw values).
  const teamCsv = useCsvBlobHref(teamId ? state.series : undefined);
  const csv = teamId ? teamCsv : creditsUrl(period, groupBy, "csv");
  return (
    <>
      <ChartPanel title={t(`panels.${groupBy}`)} series={state.series} loading={state.loading} error={state.error}
                  kind="stacked-bar" x="period" y={["charged_mc"]} groupBy="group" csvHref={csv} />
      <ChartPanel title={t(`panels.${groupBy}_share`)} series={state.series} loading={state.loading} error={state.error}
                  kind="pie" x="group" y={["charged_mc"]} />
    </>
  );
}

export default function Usage() {
  const { t } = useTranslation("usage");
  const { teamId } = useSession();
  const { time_zone: zone } = usePortalConfig();
  const [chosen, setPeriod] = useState<Period | null>(null);
  const period = chosen ?? defaultPeriod(zone);
  return (
    <div className="usage-page">
      <h1>{t("title")}</h1>
      <p className="muted">{teamId ? t("intro_team") : t("intro")}</p>
      <PeriodPicker value={period} onChange={setPeriod} />
      <div className="chart-grid">
        <CreditsPanels period={period} groupBy="type" teamId={teamId} />
        {teamId ? <CreditsPanels period={period} groupBy="member" teamId={teamId} /> : null}
      </div>
    </div>
  );
}
