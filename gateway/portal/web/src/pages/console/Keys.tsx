// API keys: the tenant's keys (prefix only: secrets are stored hashed), creating one (the
// secret is shown once, with a copy button), its scopes, an optional customer it is bound
// to, a monthly budget and its own rate limit; editing those and revoking a key.
import { useState, type FormEvent } from "react";
import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, unwrap, type Schemas } from "../../api/client";
import { formatCredits, formatDate } from "../../i18n";
import { ConfirmButton, creditsToMc, Field, FormError, intOrNull, ListState, MoreButton, SecretOnce, useAction } from "./ui";

type Key = Schemas["KeyOut"];
const SCOPES = ["generate", "read", "billing", "tenant_admin"] as const;

function rateLimitOf(rpm: string, burst: string): Schemas["KeyRateLimit"] | null {
  const r = intOrNull(rpm);
  if (r === null) return null;
  // The API's default burst is 1 (one request, then the steady rate).
  return { requests_per_minute: r, burst: intOrNull(burst) ?? 1 };
}

function KeyForm({ initial, onCreated, onDone }: {
  initial?: Key; onCreated?: (secret: Schemas["KeyCreated"]) => void; onDone: () => void }) {
  const { t } = useTranslation("console");
  const queryClient = useQueryClient();
  const action = useAction();
  const [name, setName] = useState(initial?.name ?? "");
  const [scopes, setScopes] = useState<string[]>(initial?.scopes ?? ["generate", "read"]);
  const [customer, setCustomer] = useState(initial?.customer_id ?? "");
  const [budget, setBudget] = useState(initial?.monthly_budget_mc != null ? String(initial.monthly_budget_mc / 1000) : "");
  const [rpm, setRpm] = useState(initial?.rate_limit ? String(initial.rate_limit.requests_per_minute) : "");
  const [burst, setBurst] = useState(initial?.rate_limit?.burst != null ? String(initial.rate_limit.burst) : "");
  async function submit(event: FormEvent) {
    event.preventDefault();
    const ok = await action.run(async () => {
      const common = { name: name.trim(), monthly_budget_mc: creditsToMc(budget), rate_limit: rateLimitOf(rpm, burst) };
      if (initial) {
        unwrap(await api.PATCH("/v1/keys/{key_id}", { params: { path: { key_id: initial.id } }, body: common }));
      } else {
        const created = unwrap(await api.POST("/v1/keys", { body: {
          ...common, scopes: scopes as Schemas["KeyCreate"]["scopes"], customer_id: customer.trim() || null } }));
        onCreated?.(created);
      }
      await queryClient.invalidateQueries({ queryKey: ["console", "keys"] });
    });
    if (ok) onDone();
  }
  return (
    <form className="card c-form" onSubmit={(e) => void submit(e)}>
      <h2>{initial ? t("keys.edit_title", { name: initial.name }) : t("keys.new")}</h2>
      <div className="c-grid">
        <Field label={t("keys.name")} param="name" action={action}>
          {(p) => <input {...p} value={name} required onChange={(e) => setName(e.target.value)} />}
        </Field>
        {!initial ? (
          <Field label={t("keys.customer")} param="customer_id" action={action} hint={t("keys.customer_hint")}>
            {(p) => <input {...p} dir="ltr" value={customer} onChange={(e) => setCustomer(e.target.value)} />}
          </Field>
        ) : null}
        <Field label={t("keys.budget")} param="monthly_budget_mc" action={action} hint={t("keys.budget_hint")}>
          {(p) => <input {...p} inputMode="decimal" value={budget} onChange={(e) => setBudget(e.target.value)} />}
        </Field>
        <Field label={t("keys.rpm")} param="rate_limit.requests_per_minute" action={action} hint={t("keys.rpm_hint")}>
          {(p) => <input {...p} inputMode="numeric" value={rpm} onChange={(e) => setRpm(e.target.value)} />}
        </Field>
        <Field label={t("keys.burst")} param="rate_limit.burst" action={action}>
          {(p) => <input {...p} inputMode="numeric" value={burst} onChange={(e) => setBurst(e.target.value)} />}
        </Field>
      </div>
      {!initial ? (
        <fieldset>
          <legend>{t("keys.scopes")}</legend>
          <div className="c-checks">
            {SCOPES.map((s) => (
              <label key={s} className="c-check">
                <input type="checkbox" checked={scopes.includes(s)}
                       onChange={(e) => setScopes(e.target.checked ? [...scopes, s] : scopes.filter((x) => x !== s))} />
                {t(`keys.scope.${s}`)}
              </label>
            ))}
          </div>
          {action.fieldError("scopes") ? <p className="error small" role="alert">{action.fieldError("scopes")}</p> : null}
        </fieldset>
      ) : null}
      <FormError action={action} fields={["name", "customer_id", "monthly_budget_mc", "rate_limit", "scopes"]} />
      <div className="c-actions">
        <button type="submit" className="primary" disabled={action.busy}>
          {action.busy ? t("common.saving") : initial ? t("common.save") : t("keys.create")}
        </button>
        <button type="button" onClick={onDone}>{t("common.cancel")}</button>
      </div>
    </form>
  );
}

export default function Keys() {
  const { t, i18n } = useTranslation("console");
  const lang = i18n.language;
  // "A, B, C" in English, "A، B، C" in Arabic.
  const list = new Intl.ListFormat(lang === "ar" ? "ar" : "en", { type: "unit", style: "short" });
  const queryClient = useQueryClient();
  const [editing, setEditing] = useState<Key | "new" | null>(null);
  const [secret, setSecret] = useState<Schemas["KeyCreated"] | null>(null);
  const revoke = useAction();
  const keys = useInfiniteQuery({
    queryKey: ["console", "keys"],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }) => unwrap(await api.GET("/v1/keys",
      { params: { query: { limit: 50, ...(pageParam ? { cursor: pageParam } : {}) } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  });
  const rows = keys.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <div className="c-page">
      <h1>{t("keys.title")}</h1>
      <p className="muted">{t("keys.intro")}</p>
      {secret ? <SecretOnce title={t("keys.secret_title", { name: secret.name })} secret={secret.key}
                            onDone={() => setSecret(null)} /> : null}
      {editing === null && !secret ? <button type="button" className="primary" onClick={() => setEditing("new")}>{t("keys.new")}</button> : null}
      {editing !== null ? <KeyForm key={editing === "new" ? "new" : editing.id}
                                   initial={editing === "new" ? undefined : editing}
                                   onCreated={setSecret} onDone={() => setEditing(null)} /> : null}
      <FormError action={revoke} />
      <ListState loading={keys.isPending} error={keys.error} empty={rows.length === 0} emptyText={t("keys.none")} />
      {rows.length > 0 ? (
        <table className="c-table">
          <thead><tr>
            <th scope="col">{t("keys.name")}</th><th scope="col">{t("keys.prefix")}</th>
            <th scope="col">{t("keys.scopes")}</th><th scope="col">{t("keys.customer")}</th>
            <th scope="col">{t("keys.budget")}</th><th scope="col">{t("keys.rpm")}</th>
            <th scope="col">{t("keys.state")}</th>
            <th scope="col"><span className="visually-hidden">{t("common.actions")}</span></th>
          </tr></thead>
          <tbody>
            {rows.map((k) => (
              <tr key={k.id} data-key-id={k.id}>
                <td data-label={t("keys.name")}>{k.name}</td>
                <td data-label={t("keys.prefix")}><code dir="ltr">{k.prefix}…</code></td>
                <td data-label={t("keys.scopes")}>{list.format(k.scopes.map((s) => t(`keys.scope.${s}`, { defaultValue: s })))}</td>
                <td data-label={t("keys.customer")}><span dir="ltr">{k.customer_id ?? "—"}</span></td>
                <td data-label={t("keys.budget")}>{k.monthly_budget_mc != null
                  ? t("keys.spent_of", { spent: formatCredits(k.month_spend_mc ?? 0, lang), budget: formatCredits(k.monthly_budget_mc, lang) })
                  : "—"}</td>
                <td data-label={t("keys.rpm")}>{k.rate_limit ? k.rate_limit.requests_per_minute : "—"}</td>
                <td data-label={t("keys.state")}>{k.revoked_at
                  ? <span className="c-badge">{t("keys.revoked_at", { date: formatDate(k.revoked_at, lang) })}</span>
                  : <span className="c-badge ok">{t("keys.active")}</span>}</td>
                <td className="c-cell-actions">
                  {!k.revoked_at ? (
                    <>
                      <button type="button" onClick={() => { setSecret(null); setEditing(k); }}
                              aria-label={t("keys.edit_named", { name: k.name })}>{t("common.edit")}</button>
                      <ConfirmButton label={t("keys.revoke")} ariaLabel={t("keys.revoke_named", { name: k.name })} question={t("keys.revoke_q", { name: k.name })}
                                     disabled={revoke.busy}
                                     onConfirm={() => void revoke.run(async () => {
                                       unwrap(await api.DELETE("/v1/keys/{key_id}", { params: { path: { key_id: k.id } } }));
                                       await queryClient.invalidateQueries({ queryKey: ["console", "keys"] });
                                     })} />
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <MoreButton hasMore={!!keys.hasNextPage} loading={keys.isFetchingNextPage} onMore={() => void keys.fetchNextPage()} />
    </div>
  );
}
