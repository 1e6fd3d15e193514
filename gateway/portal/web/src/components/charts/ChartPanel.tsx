// One chart of an analytics series, shared by every dashboard (operator, reseller, the
// customer's usage page). The series is the analytics API's envelope; the panel shows it as
// a chart or, at the press of a button, as a real table (the accessible and printable
// view), with a CSV link to the same series. The drawing library loads only when a chart
// is actually drawn (ChartCanvas is its own chunk).
import { lazy, Suspense, useId, useState } from "react";
import { useTranslation } from "react-i18next";
import { columnType, formatCell, resolveAxes, type Series } from "./series";
import "./charts.css";

export type { Column, ColumnType, Series, SeriesEnvelope } from "./series";

const ChartCanvas = lazy(() => import("./ChartCanvas"));

export interface ChartPanelProps {
  title: string;
  series: Series | undefined;
  loading?: boolean;
  error?: string;
  kind: "line" | "bar" | "stacked-bar" | "pie";
  /** Column for the x axis / categories, e.g. "period" or "group". */
  x: string;
  /** Value columns. */
  y: string[];
  /** Column whose values become separate lines/stacks (e.g. "group"). */
  groupBy?: string;
  /** The same series with format=csv (a plain `<a download>`). */
  csvHref?: string;
  /** What the panel opens on: a table first for series that chart poorly. */
  initialView?: "chart" | "table";
}

type View = "chart" | "table";

function SeriesTable({ series, caption, label }: { series: Series; caption: string; label: (n: string) => string }) {
  const { i18n } = useTranslation();
  const lang = i18n.language;
  const numeric = (name: string) => !["date", "string"].includes(columnType(series, name));
  return (
    <div className="chart-table-wrap" tabIndex={0} role="region" aria-label={caption}>
      <table className="chart-table">
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>{series.columns.map((c) => <th key={c.name} scope="col" className={numeric(c.name) ? "num" : ""}>{label(c.name)}</th>)}</tr>
        </thead>
        <tbody>
          {series.data.map((row, i) => (
            <tr key={i}>
              {series.columns.map((c, j) => {
                const text = formatCell(row[c.name] ?? null, c.type, lang);
                return j === 0
                  ? <th key={c.name} scope="row">{text}</th>
                  : <td key={c.name} className={numeric(c.name) ? "num" : ""}>{text}</td>;
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export default function ChartPanel(props: ChartPanelProps) {
  const { title, series, loading, error, kind, x, y, groupBy, csvHref, initialView = "chart" } = props;
  const { t } = useTranslation("charts");
  const [view, setView] = useState<View>(initialView);
  const headingId = useId();
  const label = (name: string) => t(`columns.${name}`, { defaultValue: name });
  const empty = !!series && series.data.length === 0;

  let body;
  if (error) {
    body = <p className="chart-state error" role="alert">{t("error", { message: error })}</p>;
  } else if (loading || !series) {
    body = <p className="chart-state muted" role="status">{t("loading")}</p>;
  } else if (empty) {
    body = <p className="chart-state muted">{t("empty")}</p>;
  } else if (view === "table") {
    body = <SeriesTable series={series} caption={title} label={label} />;
  } else {
    body = (
      <figure className="chart-canvas" aria-label={t("chart_label", { title })}>
        <Suspense fallback={<p className="chart-state muted" role="status">{t("loading")}</p>}>
          <ChartCanvas series={series} kind={kind} {...resolveAxes(series, x, y, groupBy)} label={label} />
        </Suspense>
      </figure>
    );
  }

  return (
    <section className="card chart-panel" aria-labelledby={headingId} data-view={view}
             data-state={error ? "error" : loading || !series ? "loading" : empty ? "empty" : "ready"}>
      <header className="chart-head">
        <h2 id={headingId}>{title}</h2>
        <div className="chart-tools">
          <div className="chart-toggle" role="group" aria-label={t("view")}>
            {(["chart", "table"] as const).map((v) => (
              <button key={v} type="button" aria-pressed={view === v} onClick={() => setView(v)}>
                {t(`views.${v}`)}
              </button>
            ))}
          </div>
          {csvHref ? <a className="chart-csv" href={csvHref} download>{t("csv")}</a> : null}
        </div>
      </header>
      {body}
    </section>
  );
}
