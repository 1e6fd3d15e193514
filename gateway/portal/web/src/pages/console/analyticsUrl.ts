// URLs of the tenant's analytics series (GET /v1/analytics/{series}), shared by the
// analytics page and the overview's chart.
import { apiTo, type Period } from "../../components/charts/PeriodPicker";

/** The series' URL over `period` (its days, both ends included) with `query` added. */
export function seriesUrl(series: string, period: Period | null, query: Record<string, string> = {}): string {
  const params = new URLSearchParams(query);
  if (period) {
    params.set("from", period.from);
    params.set("to", apiTo(period));
  }
  return `/v1/analytics/${series}?${params.toString()}`;
}
