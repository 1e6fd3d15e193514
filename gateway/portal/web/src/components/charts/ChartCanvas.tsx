// The drawing half of ChartPanel, on Recharts: its own chunk, loaded only when a chart is
// shown (docs/console.md, "Charts"). In Arabic the x axis runs right to left and the value
// axis stands on the right; the SVG itself stays left-to-right so that text anchors keep
// their meaning (Arabic labels still read right to left inside their own text runs).
import {
  Bar, BarChart, CartesianGrid, Cell, Legend, Line, LineChart, Pie, PieChart,
  ResponsiveContainer, Tooltip, XAxis, YAxis,
} from "recharts";
import { useMemo } from "react";
import { useTranslation } from "react-i18next";
import { isRtl } from "../../i18n";
import {
  columnType, formatCell, formatPlotted, formatTick, palette, pivot, slices, type Series,
} from "./series";

export interface CanvasProps {
  series: Series;
  kind: "line" | "bar" | "stacked-bar" | "pie";
  x: string;
  y: string[];
  groupBy?: string;
  /** Names shown for the plotted keys (column labels); group values show as they are. */
  label: (key: string) => string;
}

export default function ChartCanvas({ series, kind, x, y, groupBy, label }: CanvasProps) {
  const { i18n } = useTranslation();
  const lang = i18n.language;
  const rtl = isRtl(lang);
  const colours = useMemo(() => palette(), []);
  const xType = columnType(series, x);
  const tooltipValue = (type: ReturnType<typeof columnType>) =>
    (value: unknown) => (typeof value === "number" ? formatPlotted(value, type, lang) : String(value));

  if (kind === "pie") {
    const parts = slices(series, x, y, groupBy);
    const type = columnType(series, y[0] ?? "");
    return (
      <ResponsiveContainer width="100%" height={280}>
        <PieChart>
          <Pie data={parts} dataKey="value" nameKey="name" outerRadius="75%" isAnimationActive={false}
               label={false}>
            {parts.map((part, i) => <Cell key={part.name} fill={colours[i % colours.length]} />)}
          </Pie>
          <Tooltip formatter={tooltipValue(type)} />
          <Legend />
        </PieChart>
      </ResponsiveContainer>
    );
  }

  const plot = pivot(series, x, y, groupBy);
  const name = (key: string) => (groupBy ? key : label(key));
  const axes = (
    <>
      <CartesianGrid strokeDasharray="3 3" stroke="var(--color-border)" />
      <XAxis dataKey={x} reversed={rtl} tickFormatter={(v: unknown) => formatCell(v as string, xType, lang)}
             tick={{ fontSize: 12, fill: "var(--color-muted)" }} minTickGap={16} />
      <YAxis orientation={rtl ? "right" : "left"} width={56}
             tickFormatter={(v: number) => formatTick(v, plot.type, lang)}
             tick={{ fontSize: 12, fill: "var(--color-muted)" }} />
      <Tooltip formatter={tooltipValue(plot.type)}
               labelFormatter={(v: unknown) => formatCell(v as string, xType, lang)} />
      <Legend />
    </>
  );
  if (kind === "line") {
    return (
      <ResponsiveContainer width="100%" height={280}>
        <LineChart data={plot.rows} margin={{ top: 8, right: 8, bottom: 8, left: 8 }}>
          {axes}
          {plot.keys.map((key, i) => (
            <Line key={key} type="monotone" dataKey={key} name={name(key)} isAnimationActive={false}
                  stroke={colours[i % colours.length]} strokeWidth={2} dot={plot.rows.length < 40} connectNulls />
          ))}
        </LineChart>
      </ResponsiveContainer>
    );
  }
  return (
    <ResponsiveContainer width="100%" height={280}>
      <BarChart data={plot.rows} margin={{ top: 8, right: 8, bottom: 8, left: 8 }}>
        {axes}
        {plot.keys.map((key, i) => (
          <Bar key={key} dataKey={key} name={name(key)} isAnimationActive={false}
               stackId={kind === "stacked-bar" ? "stack" : undefined} fill={colours[i % colours.length]} />
        ))}
      </BarChart>
    </ResponsiveContainer>
  );
}
