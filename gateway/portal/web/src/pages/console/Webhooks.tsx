// Webhooks: the tenant's endpoints (create: the signing secret is shown once; rotate; delete)
// and each one's delivery log (every attempt: event, status code, attempt number, error),
// paged, with a Replay button that sends a delivery again; the new delivery shows at the top.
import { useState, type FormEvent } from "react";
import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, unwrap, type Schemas } from "../../api/client";
import { formatDate } from "../../i18n";
import { ConfirmButton, errorText, Field, FormError, ListState, MoreButton, SecretOnce, useAction } from "./ui";
import { replayDelivery, type ReplayedDelivery } from "./webhookReplay";

type Endpoint = Schemas["EndpointOut"];
const EVENTS = ["generation.succeeded", "generation.failed", "generation.canceled", "credits.low"] as const;

function EndpointForm({ onCreated, onDone }: { onCreated: (e: Schemas["EndpointCreated"]) => void; onDone: () => void }) {
  const { t } = useTranslation("console");
  const queryClient = useQueryClient();
  const action = useAction();
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [events, setEvents] = useState<string[]>([...EVENTS]);
  async function submit(event: FormEvent) {
    event.preventDefault();
    const ok = await action.run(async () => {
      onCreated(unwrap(await api.POST("/v1/webhook_endpoints", { body: {
        url: url.trim(), description, events: events as Schemas["EndpointCreate"]["events"] } })));
      await queryClient.invalidateQueries({ queryKey: ["console", "webhooks"] });
    });
    if (ok) onDone();
  }
  return (
    <form className="card c-form" onSubmit={(e) => void submit(e)}>
      <h2>{t("webhooks.new")}</h2>
      <Field label={t("webhooks.url")} param="url" action={action}>
        {(p) => <input {...p} type="url" dir="ltr" required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://" />}
      </Field>
      <Field label={t("webhooks.description")} param="description" action={action}>
        {(p) => <input {...p} value={description} maxLength={500} onChange={(e) => setDescription(e.target.value)} />}
      </Field>
      <fieldset>
        <legend>{t("webhooks.events")}</legend>
        <div className="c-checks">
          {EVENTS.map((ev) => (
            <label key={ev} className="c-check">
              <input type="checkbox" checked={events.includes(ev)}
                     onChange={(e) => setEvents(e.target.checked ? [...events, ev] : events.filter((x) => x !== ev))} />
              <code dir="ltr">{ev}</code>
            </label>
          ))}
        </div>
        <p className="muted small">{t("webhooks.events_hint")}</p>
      </fieldset>
      <FormError action={action} fields={["url", "description"]} />
      <div className="c-actions">
        <button type="submit" className="primary" disabled={action.busy}>{action.busy ? t("common.saving") : t("webhooks.create")}</button>
        <button type="button" onClick={onDone}>{t("common.cancel")}</button>
      </div>
    </form>
  );
}

function Deliveries({ endpoint }: { endpoint: Endpoint }) {
  const { t, i18n } = useTranslation("console");
  const lang = i18n.language;
  const queryClient = useQueryClient();
  const [replays, setReplays] = useState<ReplayedDelivery[]>([]);
  const [notice, setNotice] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const log = useInfiniteQuery({
    queryKey: ["console", "deliveries", endpoint.id],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }) => unwrap(await api.GET("/v1/webhook_endpoints/{endpoint_id}/deliveries", {
      params: { path: { endpoint_id: endpoint.id }, query: { limit: 20, ...(pageParam ? { cursor: pageParam } : {}) } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  });
  async function replay(deliveryId: string) {
    setBusy(deliveryId);
    setNotice(null);
    try {
      const created = await replayDelivery(endpoint.id, deliveryId);
      setReplays((r) => [created, ...r]);
      setNotice({ ok: true, text: t("webhooks.replayed") });
      await queryClient.invalidateQueries({ queryKey: ["console", "deliveries", endpoint.id] });
    } catch (e) {
      setNotice({ ok: false, text: errorText(t, e) });
    } finally {
      setBusy(null);
    }
  }
  const rows = log.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <section className="c-section" aria-label={t("webhooks.log_for", { url: endpoint.url })}>
      <div className="c-domain-head">
        <h3>{t("webhooks.log")}</h3>
        <button type="button" onClick={() => void log.refetch()} disabled={log.isFetching}>{t("webhooks.refresh")}</button>
      </div>
      {notice ? <p role={notice.ok ? "status" : "alert"} className={notice.ok ? "c-ok" : "error"}>{notice.text}</p> : null}
      {replays.length > 0 ? (
        <ul className="c-replays" data-testid="replays">
          {replays.map((r) => (
            <li key={r.id} className="c-replay">
              <span className="c-badge ok">{t("webhooks.new_delivery")}</span>{" "}
              <code dir="ltr">{r.id}</code>{" "}
              {r.replay_of ? <span className="muted small">{t("webhooks.replay_of", { id: r.replay_of })}</span> : null}
              {r.status ? <span className="muted small"> · {r.status}</span> : null}
            </li>
          ))}
        </ul>
      ) : null}
      <ListState loading={log.isPending} error={log.error} empty={rows.length === 0} emptyText={t("webhooks.log_none")} />
      {rows.length > 0 ? (
        <table className="c-table" data-testid="deliveries">
          <thead><tr><th scope="col">{t("webhooks.when")}</th><th scope="col">{t("webhooks.event")}</th>
            <th scope="col">{t("webhooks.status")}</th><th scope="col">{t("webhooks.attempt")}</th>
            <th scope="col">{t("webhooks.duration")}</th>
            <th scope="col"><span className="visually-hidden">{t("common.actions")}</span></th></tr></thead>
          <tbody>
            {rows.map((a) => {
              const ok = a.status_code !== null && a.status_code >= 200 && a.status_code < 300;
              return (
                <tr key={a.id} data-delivery-id={a.delivery_id}>
                  <td data-label={t("webhooks.when")}>{formatDate(a.created_at, lang)}</td>
                  <td data-label={t("webhooks.event")}><code dir="ltr">{a.event_type}</code></td>
                  <td data-label={t("webhooks.status")}>
                    <span className={`c-badge ${ok ? "ok" : "bad"}`} data-testid="delivery-status">
                      {a.status_code ?? t("webhooks.no_answer")}
                    </span>
                    {a.error ? <span className="muted small" dir="ltr"> {a.error}</span> : null}
                    {a.next_attempt_at ? <span className="muted small"> {t("webhooks.next_at", { date: formatDate(a.next_attempt_at, lang) })}</span> : null}
                  </td>
                  <td data-label={t("webhooks.attempt")}>{a.attempt}</td>
                  <td data-label={t("webhooks.duration")}>{t("webhooks.ms", { ms: a.duration_ms })}</td>
                  <td className="c-cell-actions">
                    <button type="button" disabled={busy !== null} onClick={() => void replay(a.delivery_id)}
                            aria-label={t("webhooks.replay_named", { event: a.event_type, attempt: a.attempt })}>
                      {busy === a.delivery_id ? t("webhooks.replaying") : t("webhooks.replay")}
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}
      <MoreButton hasMore={!!log.hasNextPage} loading={log.isFetchingNextPage} onMore={() => void log.fetchNextPage()} />
    </section>
  );
}

function EndpointCard({ endpoint, onSecret }: { endpoint: Endpoint; onSecret: (s: { title: string; secret: string }) => void }) {
  const { t, i18n } = useTranslation("console");
  const queryClient = useQueryClient();
  const action = useAction();
  const [open, setOpen] = useState(false);
  return (
    <li className="card c-endpoint" data-endpoint-id={endpoint.id}>
      <div className="c-domain-head">
        <h2 dir="ltr" className="c-url">{endpoint.url}</h2>
      </div>
      {endpoint.description ? <p>{endpoint.description}</p> : null}
      <p className="muted small">{endpoint.events.length ? endpoint.events.join(", ") : t("webhooks.all_events")}
        {" · "}{t("webhooks.created", { date: formatDate(endpoint.created_at, i18n.language) })}</p>
      <div className="c-actions">
        <button type="button" aria-expanded={open} onClick={() => setOpen((o) => !o)}>
          {open ? t("webhooks.hide_log") : t("webhooks.show_log")}
        </button>
        <ConfirmButton label={t("webhooks.rotate")} className="" question={t("webhooks.rotate_q")} disabled={action.busy}
                       onConfirm={() => void action.run(async () => {
                         const s = unwrap(await api.POST("/v1/webhook_endpoints/{endpoint_id}/rotate_secret",
                           { params: { path: { endpoint_id: endpoint.id } } }));
                         onSecret({ title: t("webhooks.secret_title", { url: endpoint.url }), secret: s.secret });
                       })} />
        <ConfirmButton label={t("webhooks.delete")} ariaLabel={t("webhooks.delete_named", { url: endpoint.url })} question={t("webhooks.delete_q", { url: endpoint.url })} disabled={action.busy}
                       onConfirm={() => void action.run(async () => {
                         unwrap(await api.DELETE("/v1/webhook_endpoints/{endpoint_id}", { params: { path: { endpoint_id: endpoint.id } } }));
                         await queryClient.invalidateQueries({ queryKey: ["console", "webhooks"] });
                       })} />
      </div>
      <FormError action={action} />
      {open ? <Deliveries endpoint={endpoint} /> : null}
    </li>
  );
}

export default function Webhooks() {
  const { t } = useTranslation("console");
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<{ title: string; secret: string } | null>(null);
  const endpoints = useInfiniteQuery({
    queryKey: ["console", "webhooks"],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }) => unwrap(await api.GET("/v1/webhook_endpoints",
      { params: { query: { limit: 20, ...(pageParam ? { cursor: pageParam } : {}) } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  });
  const rows = endpoints.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <div className="c-page">
      <h1>{t("webhooks.title")}</h1>
      <p className="muted">{t("webhooks.intro")}</p>
      {secret ? <SecretOnce title={secret.title} secret={secret.secret} onDone={() => setSecret(null)} /> : null}
      {!creating ? <button type="button" className="primary" onClick={() => setCreating(true)}>{t("webhooks.new")}</button> : null}
      {creating ? <EndpointForm onDone={() => setCreating(false)}
                                onCreated={(e) => setSecret({ title: t("webhooks.secret_title", { url: e.url }), secret: e.secret })} /> : null}
      <ListState loading={endpoints.isPending} error={endpoints.error} empty={rows.length === 0} emptyText={t("webhooks.none")} />
      <ul className="c-cards">{rows.map((e) => <EndpointCard key={e.id} endpoint={e} onSecret={setSecret} />)}</ul>
      <MoreButton hasMore={!!endpoints.hasNextPage} loading={endpoints.isFetchingNextPage} onMore={() => void endpoints.fetchNextPage()} />
    </div>
  );
}
