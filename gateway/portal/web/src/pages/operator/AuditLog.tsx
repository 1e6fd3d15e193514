// The audit log of every tenant (or one: ?tenant_id=), newest first, a page at a time;
// each entry opens to a before/after diff of what changed.
import { useState, type FormEvent } from "react";
import { useInfiniteQuery } from "@tanstack/react-query";
import { useSearchParams } from "react-router";
import { useTranslation } from "react-i18next";
import { unwrap } from "../../api/client";
import { formatDate } from "../../i18n";
import { admin, type AuditEvent } from "./api";

type Flat = Record<string, string>;

/** Nested before/after values as dotted paths (`caps.burst`) with JSON-ish text values. */
export function flatten(value: unknown, prefix = "", out: Flat = {}): Flat {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0 && prefix) out[prefix] = "{}";
    for (const [key, inner] of entries) flatten(inner, prefix ? `${prefix}.${key}` : key, out);
  } else if (prefix || value !== null && value !== undefined) {
    out[prefix || "value"] = value === undefined ? "" : JSON.stringify(value);
  }
  return out;
}

export function diff(before: unknown, after: unknown): { path: string; before?: string; after?: string }[] {
  const a = flatten(before);
  const b = flatten(after);
  const paths = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return paths.filter((p) => a[p] !== b[p]).map((p) => ({ path: p, before: a[p], after: b[p] }));
}

function Diff({ event }: { event: AuditEvent }) {
  const { t } = useTranslation("operator");
  const rows = diff(event.before, event.after);
  if (rows.length === 0) return <p className="muted">{t("audit.no_changes")}</p>;
  return (
    <div className="op-table-wrap" tabIndex={0} role="region"
         aria-label={t("audit.diff_caption", { action: event.action })}>
      <table className="op-table audit-diff">
        <caption className="visually-hidden">{t("audit.diff_caption", { action: event.action })}</caption>
        <thead>
          <tr><th scope="col">{t("audit.field")}</th><th scope="col">{t("audit.before")}</th><th scope="col">{t("audit.after")}</th></tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.path}>
              <th scope="row"><bdi>{row.path}</bdi></th>
              <td className="diff-before">{row.before === undefined ? <span className="muted">—</span> : <del><bdi>{row.before}</bdi></del>}</td>
              <td className="diff-after">{row.after === undefined ? <span className="muted">—</span> : <ins><bdi>{row.after}</bdi></ins>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export default function AuditLog() {
  const { t, i18n } = useTranslation("operator");
  const [params, setParams] = useSearchParams();
  const tenantId = params.get("tenant_id") ?? "";
  const action = params.get("action") ?? "";
  const [tenantField, setTenantField] = useState(tenantId);
  const [actionField, setActionField] = useState(action);
  const log = useInfiniteQuery({
    queryKey: ["operator", "audit", tenantId, action],
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam }) => unwrap(await admin.GET("/admin/v1/audit_log", { params: { query: {
      limit: 25, cursor: pageParam, tenant_id: tenantId || undefined, action: action || undefined } } })),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  function filter(event: FormEvent) {
    event.preventDefault();
    const next = new URLSearchParams();
    if (tenantField.trim()) next.set("tenant_id", tenantField.trim());
    if (actionField.trim()) next.set("action", actionField.trim());
    setParams(next);
  }
  const events = log.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <div className="op-page">
      <h1>{t("audit.title")}</h1>
      <form className="card form op-inline-form" onSubmit={filter} role="search">
        <label>{t("audit.tenant")}
          <input value={tenantField} dir="ltr" onChange={(e) => setTenantField(e.target.value)} placeholder="ten_…" />
        </label>
        <label>{t("audit.action")}
          <input value={actionField} dir="ltr" onChange={(e) => setActionField(e.target.value)} placeholder="credits.granted" />
        </label>
        <div className="op-form-end"><button type="submit" className="primary">{t("audit.filter")}</button></div>
      </form>
      {log.isError ? <p className="error" role="alert">{(log.error as Error).message}</p> : null}
      {log.isLoading ? <p className="muted" role="status">{t("loading")}</p> : null}
      {!log.isLoading && events.length === 0 ? <p className="muted">{t("audit.empty")}</p> : null}
      <ol className="audit-list">
        {events.map((event) => (
          <li key={event.id} className="card audit-entry" data-action={event.action}>
            <details>
              <summary>
                <bdi className="audit-action">{event.action}</bdi>
                <span className="muted"> · {formatDate(event.created_at, i18n.language)}</span>
                <span className="audit-meta muted">
                  <bdi>{event.actor} → {event.target_type} {event.target_id}{event.tenant_id ? ` (${event.tenant_id})` : ""}</bdi>
                </span>
              </summary>
              <Diff event={event} />
            </details>
          </li>
        ))}
      </ol>
      {log.hasNextPage ? (
        <button type="button" onClick={() => void log.fetchNextPage()} disabled={log.isFetchingNextPage}>{t("load_more")}</button>
      ) : null}
    </div>
  );
}
