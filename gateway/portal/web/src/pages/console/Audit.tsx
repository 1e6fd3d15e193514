// The audit log: the tenant's events, newest first, filtered by action (the one filter the
// API has), paged; each event opens to what changed (before → after, field by field).
import { useState, type FormEvent } from "react";
import { useInfiniteQuery } from "@tanstack/react-query";
import { useSearchParams } from "react-router";
import { useTranslation } from "react-i18next";
import { api, unwrap, type Schemas } from "../../api/client";
import { formatDate } from "../../i18n";
import { Field, ListState, MoreButton } from "./ui";

type AuditEvent = Schemas["AuditEventOut"];

/** Flattens nested objects into dotted paths, so a diff lists the fields that changed. */
function flatten(value: unknown, prefix = "", out: Record<string, string> = {}): Record<string, string> {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = JSON.stringify(value);
  }
  return out;
}

export function diff(before: unknown, after: unknown): { field: string; before?: string; after?: string }[] {
  const a = flatten(before);
  const b = flatten(after);
  const fields = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return fields.filter((f) => a[f] !== b[f]).map((f) => ({ field: f, before: a[f], after: b[f] }));
}

function Diff({ event }: { event: AuditEvent }) {
  const { t } = useTranslation("console");
  const rows = diff(event.before, event.after);
  if (rows.length === 0) return <p className="muted small">{t("audit.no_diff")}</p>;
  return (
    <table className="c-table c-diff">
      <thead><tr><th scope="col">{t("audit.field")}</th><th scope="col">{t("audit.before")}</th><th scope="col">{t("audit.after")}</th></tr></thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.field}>
            <td data-label={t("audit.field")}><code dir="ltr">{r.field}</code></td>
            <td data-label={t("audit.before")} className="c-del"><code dir="ltr">{r.before ?? "—"}</code></td>
            <td data-label={t("audit.after")} className="c-ins"><code dir="ltr">{r.after ?? "—"}</code></td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function EventItem({ event }: { event: AuditEvent }) {
  const { t, i18n } = useTranslation("console");
  return (
    <li className="card c-event">
      <details>
        <summary>
          <code dir="ltr" className="c-action">{event.action}</code>
          <span className="muted small">{formatDate(event.created_at, i18n.language)}</span>
          <span className="small">{t("audit.by", { actor: event.actor })}</span>
          <span className="muted small" dir="ltr">{event.target_type}:{event.target_id}</span>
        </summary>
        <Diff event={event} />
      </details>
    </li>
  );
}

export default function Audit() {
  const { t } = useTranslation("console");
  const [params, setParams] = useSearchParams();
  const action = params.get("action") ?? "";
  const [draft, setDraft] = useState(action);
  const log = useInfiniteQuery({
    queryKey: ["console", "audit", action],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }) => unwrap(await api.GET("/v1/audit_log", { params: { query: {
      limit: 25, ...(action ? { action } : {}), ...(pageParam ? { cursor: pageParam } : {}) } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  });
  function filter(event: FormEvent) {
    event.preventDefault();
    setParams(draft.trim() ? { action: draft.trim() } : {});
  }
  const rows = log.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <div className="c-page">
      <h1>{t("audit.title")}</h1>
      <form role="search" className="card c-form c-inline" onSubmit={filter}>
        <Field label={t("audit.action")} hint={t("audit.action_hint")}>
          {(p) => <input {...p} dir="ltr" value={draft} list="audit-actions" onChange={(e) => setDraft(e.target.value)} />}
        </Field>
        <datalist id="audit-actions">
          {["tenant.updated", "branding.asset_set", "branding.asset_deleted", "domain.created", "domain.verified",
            "domain.deleted", "key.created", "key.revoked", "customer.created", "customer.updated",
            "user.invited", "user.role_changed", "user.disabled"].map((a) => <option key={a} value={a} />)}
        </datalist>
        <button type="submit" className="primary">{t("audit.filter")}</button>
      </form>
      <ListState loading={log.isPending} error={log.error} empty={rows.length === 0} emptyText={t("audit.none")} />
      <ul className="c-cards c-events">{rows.map((e) => <EventItem key={e.id} event={e} />)}</ul>
      <MoreButton hasMore={!!log.hasNextPage} loading={log.isFetchingNextPage} onMore={() => void log.fetchNextPage()} />
    </div>
  );
}
