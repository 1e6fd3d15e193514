// Providers and routing: which providers the tenant's generations may use (within the
// operator's permission), how one is picked (strategy, pinned order, balanced weights),
// the result cache, and the tenant's own provider keys (write-only: only the last four
// characters come back).
import { useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, unwrap, type Schemas } from "../../api/client";
import { formatDate } from "../../i18n";
import { useTenant, useTenantPatch, type Tenant } from "./tenant";
import { ConfirmButton, Field, FormError, intOrNull, ListState, useAction } from "./ui";

const STRATEGIES = ["balanced", "cheapest", "fastest", "pinned"] as const;
const WEIGHTS = ["cost", "speed", "availability", "load"] as const;
/** The API's defaults (plugins/routing): a weight left empty keeps its default. */
const WEIGHT_DEFAULTS: Record<(typeof WEIGHTS)[number], number> = { cost: 35, speed: 25, availability: 20, load: 20 };

function useProviderNames() {
  return useQuery({
    queryKey: ["console", "providers"],
    queryFn: async () => unwrap(await api.GET("/v1/providers")).data.map((p) => p.name).sort(),
  });
}

function RoutingForm({ tenant, names }: { tenant: Tenant; names: string[] }) {
  const { t } = useTranslation("console");
  const routing: Partial<Schemas["TenantRouting"]> = tenant.routing ?? {};
  const cache: Partial<Schemas["TenantCache"]> = tenant.cache ?? {};
  const permitted = tenant.caps?.allowed_providers;
  const choices = permitted && !permitted.includes("*") ? names.filter((n) => permitted.includes(n)) : names;
  const [restrict, setRestrict] = useState(routing.allowed_providers != null);
  const [allowed, setAllowed] = useState<string[]>(routing.allowed_providers ?? []);
  const [strategy, setStrategy] = useState<string>(routing.strategy ?? "balanced");
  const [order, setOrder] = useState((routing.order ?? []).join(", "));
  const [includeOthers, setIncludeOthers] = useState(routing.include_others ?? true);
  const [weights, setWeights] = useState<Record<string, string>>(() => Object.fromEntries(
    WEIGHTS.map((w) => [w, routing.weights ? String((routing.weights as Record<string, number>)[w] ?? "") : ""])));
  const [cacheOn, setCacheOn] = useState(cache.enabled ?? true);
  const [ttl, setTtl] = useState(cache.ttl_s != null ? String(cache.ttl_s) : "");
  const initialCharge = cache.charge;
  const [charge, setCharge] = useState<string>(typeof initialCharge === "object" && initialCharge ? "percent" : initialCharge ?? "full");
  const [percent, setPercent] = useState(typeof initialCharge === "object" && initialCharge ? String(initialCharge.percent) : "50");
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const patch = useTenantPatch();
  async function save(event: FormEvent) {
    event.preventDefault();
    const ok = await action.run(async () => {
      const hasWeights = strategy === "balanced" && WEIGHTS.some((w) => weights[w]?.trim());
      await patch.mutateAsync({
        routing: {
          strategy: strategy as NonNullable<Tenant["routing"]>["strategy"],
          order: strategy === "pinned" ? order.split(",").map((name: string) => name.trim()).filter(Boolean) : [],
          include_others: includeOthers,
          weights: hasWeights ? {
            cost: intOrNull(weights.cost ?? "") ?? WEIGHT_DEFAULTS.cost,
            speed: intOrNull(weights.speed ?? "") ?? WEIGHT_DEFAULTS.speed,
            availability: intOrNull(weights.availability ?? "") ?? WEIGHT_DEFAULTS.availability,
            load: intOrNull(weights.load ?? "") ?? WEIGHT_DEFAULTS.load,
          } : null,
          allowed_providers: restrict ? allowed : null,
        },
        cache: { enabled: cacheOn, ttl_s: intOrNull(ttl),
                 charge: charge === "percent" ? { percent: intOrNull(percent) ?? 0 } : charge as "free" | "full" },
      });
    });
    setSaved(ok);
  }
  const touch = () => setSaved(false);
  return (
    <form className="c-form" onSubmit={(e) => void save(e)} noValidate>
      <fieldset>
        <legend>{t("providers.allowed")}</legend>
        <label className="c-check">
          <input type="checkbox" checked={restrict} onChange={(e) => { touch(); setRestrict(e.target.checked); }} />
          {t("providers.restrict")}
        </label>
        {restrict ? (
          <div className="c-checks" role="group" aria-label={t("providers.allowed")}>
            {choices.map((n) => (
              <label key={n} className="c-check">
                <input type="checkbox" checked={allowed.includes(n)}
                       onChange={(e) => { touch(); setAllowed(e.target.checked ? [...allowed, n] : allowed.filter((x) => x !== n)); }} />
                <span dir="ltr">{n}</span>
              </label>
            ))}
          </div>
        ) : <p className="muted small">{t("providers.unrestricted")}</p>}
        {action.fieldError("routing.allowed_providers") ? <p className="error small" role="alert">{action.fieldError("routing.allowed_providers")}</p> : null}
      </fieldset>
      <fieldset>
        <legend>{t("providers.routing")}</legend>
        <Field label={t("providers.strategy")} param="routing.strategy" action={action}>
          {(p) => <select {...p} value={strategy} onChange={(e) => { touch(); setStrategy(e.target.value); }}>
            {STRATEGIES.map((s) => <option key={s} value={s}>{t(`providers.strategies.${s}`)}</option>)}
          </select>}
        </Field>
        {strategy === "pinned" ? (
          <>
            <Field label={t("providers.order")} param="routing.order" action={action} hint={t("providers.order_hint")}>
              {(p) => <input {...p} dir="ltr" value={order} onChange={(e) => { touch(); setOrder(e.target.value); }} />}
            </Field>
            <label className="c-check">
              <input type="checkbox" checked={includeOthers} onChange={(e) => { touch(); setIncludeOthers(e.target.checked); }} />
              {t("providers.include_others")}
            </label>
          </>
        ) : null}
        {strategy === "balanced" ? (
          <div className="c-grid">
            {WEIGHTS.map((w) => (
              <Field key={w} label={t(`providers.weight.${w}`)} param={`routing.weights.${w}`} action={action}>
                {(p) => <input {...p} inputMode="numeric" value={weights[w] ?? ""} placeholder={t("limits.default")}
                               onChange={(e) => { touch(); setWeights({ ...weights, [w]: e.target.value }); }} />}
              </Field>
            ))}
          </div>
        ) : null}
      </fieldset>
      <fieldset>
        <legend>{t("providers.cache")}</legend>
        <label className="c-check">
          <input type="checkbox" checked={cacheOn} onChange={(e) => { touch(); setCacheOn(e.target.checked); }} />
          {t("providers.cache_on")}
        </label>
        <Field label={t("providers.cache_ttl")} param="cache.ttl_s" action={action} hint={t("providers.cache_ttl_hint")}>
          {(p) => <input {...p} inputMode="numeric" value={ttl} placeholder={t("limits.default")}
                         onChange={(e) => { touch(); setTtl(e.target.value); }} />}
        </Field>
        <Field label={t("providers.cache_charge")} param="cache.charge" action={action}>
          {(p) => <select {...p} value={charge} onChange={(e) => { touch(); setCharge(e.target.value); }}>
            {["full", "free", "percent"].map((c) => <option key={c} value={c}>{t(`providers.charge.${c}`)}</option>)}
          </select>}
        </Field>
        {charge === "percent" ? (
          <Field label={t("providers.cache_percent")} param="cache.charge.percent" action={action}>
            {(p) => <input {...p} inputMode="numeric" value={percent} onChange={(e) => { touch(); setPercent(e.target.value); }} />}
          </Field>
        ) : null}
      </fieldset>
      <FormError action={action} fields={["routing", "cache"]} />
      <div className="c-actions">
        <button type="submit" className="primary" disabled={action.busy}>{action.busy ? t("common.saving") : t("common.save")}</button>
        {saved ? <span role="status" className="c-ok">{t("common.saved")}</span> : null}
      </div>
    </form>
  );
}

function ProviderKeys({ names }: { names: string[] }) {
  const { t, i18n } = useTranslation("console");
  const queryClient = useQueryClient();
  const action = useAction();
  const remove = useAction();
  const [provider, setProvider] = useState("");
  const [apiKey, setApiKey] = useState("");
  const [apiSecret, setApiSecret] = useState("");
  const keys = useQuery({
    queryKey: ["console", "provider-keys"],
    queryFn: async () => unwrap(await api.GET("/v1/provider_keys")).data,
  });
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["console", "provider-keys"] });
  async function submit(event: FormEvent) {
    event.preventDefault();
    const ok = await action.run(async () => {
      unwrap(await api.PUT("/v1/provider_keys/{provider}", { params: { path: { provider } },
        body: { api_key: apiKey, api_secret: apiSecret || null } }));
      await refresh();
    });
    if (ok) { setApiKey(""); setApiSecret(""); }
  }
  const list = keys.data ?? [];
  return (
    <section aria-labelledby="pk-heading" className="c-section">
      <h2 id="pk-heading">{t("providers.keys")}</h2>
      <p className="muted small">{t("providers.keys_hint")}</p>
      <ListState loading={keys.isPending} error={keys.error} empty={list.length === 0} emptyText={t("providers.keys_none")} />
      {list.length > 0 ? (
        <table className="c-table">
          <thead><tr><th scope="col">{t("providers.provider")}</th><th scope="col">{t("providers.key_end")}</th>
            <th scope="col">{t("providers.updated")}</th><th scope="col"><span className="visually-hidden">{t("common.actions")}</span></th></tr></thead>
          <tbody>
            {list.map((k) => (
              <tr key={k.provider}>
                <td data-label={t("providers.provider")}><span dir="ltr">{k.provider}</span></td>
                <td data-label={t("providers.key_end")}><code dir="ltr">…{k.last4}</code></td>
                <td data-label={t("providers.updated")}>{formatDate(k.updated_at, i18n.language)}</td>
                <td className="c-cell-actions">
                  <ConfirmButton label={t("providers.key_delete")} ariaLabel={t("providers.key_delete_named", { provider: k.provider })} question={t("providers.key_delete_q", { provider: k.provider })}
                                 disabled={remove.busy}
                                 onConfirm={() => void remove.run(async () => {
                                   unwrap(await api.DELETE("/v1/provider_keys/{provider}", { params: { path: { provider: k.provider } } }));
                                   await refresh();
                                 })} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <FormError action={remove} />
      <form className="card c-form" onSubmit={(e) => void submit(e)}>
        <h3>{t("providers.key_set")}</h3>
        <div className="c-grid">
          <Field label={t("providers.provider")} param="provider" action={action}>
            {(p) => <select {...p} value={provider} required onChange={(e) => setProvider(e.target.value)}>
              <option value="">{t("providers.choose")}</option>
              {names.map((n) => <option key={n} value={n}>{n}</option>)}
            </select>}
          </Field>
          <Field label={t("providers.api_key")} param="api_key" action={action}>
            {(p) => <input {...p} type="password" autoComplete="off" value={apiKey} required onChange={(e) => setApiKey(e.target.value)} />}
          </Field>
          <Field label={t("providers.api_secret")} param="api_secret" action={action}>
            {(p) => <input {...p} type="password" autoComplete="off" value={apiSecret} onChange={(e) => setApiSecret(e.target.value)} />}
          </Field>
        </div>
        <FormError action={action} fields={["provider", "api_key", "api_secret"]} />
        <div className="c-actions">
          <button type="submit" className="primary" disabled={action.busy || !provider}>{action.busy ? t("common.saving") : t("common.save")}</button>
        </div>
      </form>
    </section>
  );
}

export default function Providers() {
  const { t } = useTranslation("console");
  const tenant = useTenant();
  const names = useProviderNames();
  return (
    <div className="c-page">
      <h1>{t("providers.title")}</h1>
      {tenant.isError ? <p role="alert" className="error">{t("errors.load")}</p> : null}
      {tenant.data && names.data ? <RoutingForm tenant={tenant.data} names={names.data} />
        : <p className="muted" role="status">{t("common.loading")}</p>}
      <ProviderKeys names={names.data ?? []} />
    </div>
  );
}
