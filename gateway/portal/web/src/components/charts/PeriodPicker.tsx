// The interval and date range every analytics page offers (`interval`, `from`, `to` of the
// analytics API: ISO dates in the tenant's time zone, `to` inclusive of its day).
import { useId } from "react";
import { useTranslation } from "react-i18next";
import "./charts.css";

export type Interval = "day" | "week" | "month";
export interface Period { interval: Interval; from: string; to: string }

function iso(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/** Today's date in `zone` (IANA), as `YYYY-MM-DD`. */
export function todayIn(zone: string, now: Date = new Date()): string {
  try {
    // en-CA writes dates as ISO does.
    return new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" }).format(now);
  } catch {
    return iso(now);
  }
}

/** The last 30 days by day, today being today in the tenant's time zone `zone` (the days
 * of every series are its local days: a browser elsewhere must not cut the last one off):
 * what the analytics API answers when asked nothing. */
export function defaultPeriod(zone: string = "UTC", now: Date = new Date()): Period {
  const today = todayIn(zone, now);
  const from = new Date(`${today}T00:00:00Z`);
  from.setUTCDate(from.getUTCDate() - 30);
  return { interval: "day", from: iso(from), to: today };
}

/** The API's `to` (exclusive) for the picker's `to` (the last day shown): the day after. */
export function apiTo(period: Period): string {
  const day = new Date(`${period.to}T00:00:00Z`);
  day.setUTCDate(day.getUTCDate() + 1);
  return iso(day);
}

export default function PeriodPicker({ value, onChange }: { value: Period; onChange: (p: Period) => void }) {
  const { t } = useTranslation("charts");
  const id = useId();
  return (
    <fieldset className="period-picker">
      <legend className="visually-hidden">{t("period.legend")}</legend>
      <label htmlFor={`${id}-interval`}>{t("period.interval")}</label>
      <select id={`${id}-interval`} value={value.interval}
              onChange={(e) => onChange({ ...value, interval: e.target.value as Interval })}>
        {(["day", "week", "month"] as const).map((i) => <option key={i} value={i}>{t(`period.intervals.${i}`)}</option>)}
      </select>
      <label htmlFor={`${id}-from`}>{t("period.from")}</label>
      <input id={`${id}-from`} type="date" value={value.from} max={value.to}
             onChange={(e) => e.target.value && onChange({ ...value, from: e.target.value })} />
      <label htmlFor={`${id}-to`}>{t("period.to")}</label>
      <input id={`${id}-to`} type="date" value={value.to} min={value.from}
             onChange={(e) => e.target.value && onChange({ ...value, to: e.target.value })} />
    </fieldset>
  );
}
