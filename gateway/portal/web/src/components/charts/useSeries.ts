// Fetching one analytics series for a ChartPanel: the caller says how to authenticate (the
// portal's session headers, the operator's Bearer token), the hook answers what the panel
// takes: the series, whether it is loading, and an error message in the page's language.
import { useEffect, useMemo } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import type { ApiErrorBody } from "../../api/client";
import type { Column, Series, SeriesEnvelope } from "./series";

export interface SeriesState {
  series: SeriesEnvelope | undefined;
  loading: boolean;
  error: string | undefined;
}

class SeriesError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

/** Some series (the operator's breakers) name their columns without types: a period is a
 * date, a group a string, anything else a count. */
function withTypedColumns(envelope: SeriesEnvelope): SeriesEnvelope {
  const columns = (envelope.columns as (Column | string)[]).map((c): Column => typeof c !== "string" ? c
    : { name: c, type: c === "period" ? "date" : c === "group" ? "string" : "integer" });
  return { ...envelope, columns };
}

/** GET `url` (null: nothing yet) with `headers`; `scope` tells workspaces apart in the cache. */
export function useSeries(url: string | null, headers: () => Record<string, string>,
                          scope: string = ""): SeriesState {
  const { t } = useTranslation("charts");
  const query = useQuery<SeriesEnvelope, SeriesError>({
    queryKey: ["analytics-series", url, scope],
    enabled: url !== null,
    retry: false,
    queryFn: async ({ signal }) => {
      const response = await fetch(url!, { signal, credentials: "same-origin",
                                           headers: { Accept: "application/json", ...headers() } });
      const body = (await response.json().catch(() => null)) as unknown;
      if (!response.ok) {
        const message = (body as Partial<ApiErrorBody> | null)?.error?.message ?? response.statusText;
        throw new SeriesError(response.status, message);
      }
      return withTypedColumns(body as SeriesEnvelope);
    },
  });
  let error: string | undefined;
  if (query.error) {
    const status = query.error.status;
    // The analytics endpoints may not exist on this deployment yet: say so plainly.
    error = status === 404 || status === 405 ? t("unavailable") : query.error.message || t("failed");
  }
  return { series: query.data, loading: query.isLoading, error };
}

/** The series as CSV in a blob: URL, for callers whose CSV link cannot carry their
 * credentials (the operator's Bearer token); same columns and raw values as `format=csv`. */
export function useCsvBlobHref(series: Series | undefined): string | undefined {
  const href = useMemo(() => csvBlobHref(series), [series]);
  useEffect(() => () => { if (href) URL.revokeObjectURL(href); }, [href]);
  return href;
}

function csvBlobHref(series: Series | undefined): string | undefined {
  if (!series || series.data.length === 0) return undefined;
  const quote = (v: unknown) => {
    const text = v === null || v === undefined ? "" : String(v);
    return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  const lines = [series.columns.map((c) => quote(c.name)).join(",")];
  for (const row of series.data) lines.push(series.columns.map((c) => quote(row[c.name])).join(","));
  return URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
}
