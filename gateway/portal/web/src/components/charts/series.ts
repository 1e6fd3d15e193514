// The analytics API's series envelope (`{"object":"analytics.series", columns, data, …}`)
// and what every chart and table makes of it: values formatted per column type and
// language, rows pivoted so that a `groupBy` column's values become separate lines/stacks.
import { formatNumber } from "../../i18n";

export type ColumnType = "date" | "string" | "integer" | "millicredits" | "usd_micros" | "ratio" | "ms";
export type Column = { name: string; type: ColumnType };
export type Cell = string | number | null;
export type Series = { columns: Column[]; data: Record<string, Cell>[]; series?: string };

/** The whole answer of a series endpoint (the chart only needs `Series` of it). */
export interface SeriesEnvelope extends Series {
  object: "analytics.series";
  interval?: string | null;
  time_zone?: string | null;
  from?: string | null;
  to?: string | null;
  group_by?: string | null;
}

function locale(lang: string): string {
  return lang === "ar" ? "ar-EG" : "en-US";
}

/** A plain date (`2026-12-01`) is a calendar day, not an instant: shown as is, in UTC,
 * so no time zone moves it to the day before. */
function formatDay(value: string, lang: string): string {
  const day = /^\d{4}-\d{2}(-\d{2})?$/.test(value);
  const date = new Date(day && value.length === 7 ? `${value}-01T00:00:00Z` : day ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(date.getTime())) return value;
  const options: Intl.DateTimeFormatOptions = day
    ? (value.length === 7 ? { year: "numeric", month: "short", timeZone: "UTC" }
                          : { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" })
    : { dateStyle: "medium", timeStyle: "short" };
  return new Intl.DateTimeFormat(locale(lang), options).format(date);
}

/** One value as a person reads it: millicredits as credits with three decimals, USD micros
 * as dollars, ratios as percentages, milliseconds with their unit. */
export function formatCell(value: Cell, type: ColumnType, lang: string): string {
  if (value === null || value === undefined || value === "") return "—";
  if (type === "date") return formatDay(String(value), lang);
  if (type === "string") return String(value);
  const number = typeof value === "number" ? value : Number(value);
  if (Number.isNaN(number)) return String(value);
  switch (type) {
    case "millicredits":
      return formatNumber(number / 1000, lang, { minimumFractionDigits: 3, maximumFractionDigits: 3 });
    case "usd_micros":
      return formatNumber(number / 1_000_000, lang, { style: "currency", currency: "USD" });
    case "ratio":
      return formatNumber(number, lang, { style: "percent", maximumFractionDigits: 1 });
    case "ms":
      return formatNumber(number, lang, { style: "unit", unit: "millisecond", unitDisplay: "short", maximumFractionDigits: 0 });
    default:
      return formatNumber(number, lang, { maximumFractionDigits: 0 });
  }
}

/** Where a chart plots a value: credits rather than millicredits, dollars rather than
 * micros, so axes and tooltips read in the same units as the table. */
export function plotValue(value: Cell, type: ColumnType): number | null {
  if (value === null || value === undefined || value === "") return null;
  const number = typeof value === "number" ? value : Number(value);
  if (Number.isNaN(number)) return null;
  if (type === "millicredits") return number / 1000;
  if (type === "usd_micros") return number / 1_000_000;
  return number;
}

/** Axis ticks: the column's unit, compact. */
export function formatTick(value: number, type: ColumnType, lang: string): string {
  switch (type) {
    case "usd_micros":
      return formatNumber(value, lang, { style: "currency", currency: "USD", notation: "compact" });
    case "ratio":
      return formatNumber(value, lang, { style: "percent", maximumFractionDigits: 0 });
    case "ms":
      return formatNumber(value, lang, { style: "unit", unit: "millisecond", unitDisplay: "narrow", notation: "compact" });
    default:
      return formatNumber(value, lang, { notation: "compact", maximumFractionDigits: 2 });
  }
}

export function columnType(series: Series, name: string): ColumnType {
  return series.columns.find((c) => c.name === name)?.type ?? "string";
}

export interface Plot {
  /** One row per x value, in the series' order; each key of `keys` holds a plotted number. */
  rows: Record<string, string | number | null>[];
  /** The plotted keys: the y columns, or with `groupBy` the group values (of y[0]). */
  keys: string[];
  /** The type the plotted values share (the first y column's). */
  type: ColumnType;
}

/** Rows for a chart: with `groupBy`, the first y column spread into one key per group. */
export function pivot(series: Series, x: string, y: string[], groupBy?: string): Plot {
  const type = columnType(series, y[0] ?? "");
  if (!groupBy) {
    const rows = series.data.map((row) => {
      const out: Record<string, string | number | null> = { [x]: row[x] ?? null };
      for (const key of y) out[key] = plotValue(row[key] ?? null, columnType(series, key));
      return out;
    });
    return { rows, keys: y, type };
  }
  const byX = new Map<string, Record<string, string | number | null>>();
  const keys: string[] = [];
  const value = y[0] ?? "";
  for (const row of series.data) {
    const at = String(row[x] ?? "");
    const group = String(row[groupBy] ?? "—");
    if (!keys.includes(group)) keys.push(group);
    const out = byX.get(at) ?? { [x]: row[x] ?? null };
    const previous = typeof out[group] === "number" ? (out[group] as number) : 0;
    out[group] = previous + (plotValue(row[value] ?? null, type) ?? 0);
    byX.set(at, out);
  }
  return { rows: [...byX.values()], keys, type };
}

/** Slices of a pie: each x (or group) value with the total of the first y column. */
export function slices(series: Series, x: string, y: string[], groupBy?: string): { name: string; value: number }[] {
  const type = columnType(series, y[0] ?? "");
  const label = groupBy ?? x;
  const totals = new Map<string, number>();
  for (const row of series.data) {
    const name = String(row[label] ?? "—");
    totals.set(name, (totals.get(name) ?? 0) + (plotValue(row[y[0] ?? ""] ?? null, type) ?? 0));
  }
  return [...totals].map(([name, value]) => ({ name, value }));
}

/** The tenant's colours (config.tsx writes them onto :root), `--chart-1`…`--chart-6` first
 * so a tenant can give its charts their own palette through `css_variables`. */
export function palette(root: HTMLElement = document.documentElement): string[] {
  const style = getComputedStyle(root);
  const read = (name: string, fallback: string) => style.getPropertyValue(name).trim() || fallback;
  return [
    read("--chart-1", read("--color-primary", "#334155")),
    read("--chart-2", read("--color-accent", "#0ea5e9")),
    read("--chart-3", read("--color-warning", "#b45309")),
    read("--chart-4", read("--color-success", "#15803d")),
    read("--chart-5", read("--color-secondary", "#475569")),
    read("--chart-6", read("--color-error", "#b91c1c")),
  ];
}

/** A plotted value (credits, dollars: see `plotValue`) back in the table's wording. */
export function formatPlotted(value: number, type: ColumnType, lang: string): string {
  const raw = type === "millicredits" ? value * 1000 : type === "usd_micros" ? value * 1_000_000 : value;
  return formatCell(raw, type, lang);
}

/** The x and y columns a chart can draw from what the series actually has: asked-for
 * columns the series lacks are dropped, and an absent x falls back to the first date or
 * string column, so a panel still draws when a series grows or renames a dimension. */
export function resolveAxes(series: Series, x: string, y: string[], groupBy?: string):
    { x: string; y: string[]; groupBy?: string } {
  const names = new Set(series.columns.map((c) => c.name));
  const category = (c: Column) => c.type === "date" || c.type === "string";
  const resolvedX = names.has(x) ? x : series.columns.find(category)?.name ?? x;
  const resolvedGroup = groupBy && names.has(groupBy) && groupBy !== resolvedX ? groupBy : undefined;
  let resolvedY = y.filter((name) => names.has(name));
  if (resolvedY.length === 0) resolvedY = series.columns.filter((c) => !category(c)).map((c) => c.name).slice(0, 1);
  return { x: resolvedX, y: resolvedY, groupBy: resolvedGroup };
}
