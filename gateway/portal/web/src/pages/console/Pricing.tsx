// Pricing: the tenant's markups by media type and by customer tier (a customer pays both,
// added), the minimum charge, and a worked example of one request priced by the gateway:
// provider cost → wholesale → retail. The example follows the saved markups.
import { useState, type FormEvent } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { formatCredits, formatNumber } from "../../i18n";
import { fetchPricingExample, type PricingExampleRequest } from "./pricingExample";
import { useTenant, useTenantPatch, type Tenant } from "./tenant";
import { creditsToMc, errorText, Field, FormError, useAction } from "./ui";

const TYPES = ["default", "image", "audio", "video", "design", "model_3d"] as const;

const pct = (bps: number) => String(bps / 100);
function toBps(text: string): number | null {
  if (!text.trim()) return null;
  const value = Number(text);
  return Number.isFinite(value) ? Math.round(value * 100) : NaN;
}

interface Draft { types: Record<string, string>; tiers: { name: string; pct: string }[]; minCharge: string }

function draftOf(tenant: Tenant): Draft {
  const p = tenant.pricing ?? {};
  const types = (p.markup_bps ?? {}) as Record<string, number>;
  const tiers = Object.entries((p.tier_markup_bps ?? {}) as Record<string, number>);
  if (!tiers.some(([n]) => n === "standard")) tiers.unshift(["standard", 0]);
  return {
    types: Object.fromEntries(TYPES.map((k) => [k, types[k] !== undefined ? pct(types[k]) : ""])),
    tiers: tiers.map(([name, bps]) => ({ name, pct: pct(bps) })),
    minCharge: p.min_charge_mc ? String(p.min_charge_mc / 1000) : "",
  };
}

function Example({ tenant }: { tenant: Tenant }) {
  const { t, i18n } = useTranslation("console");
  const lang = i18n.language;
  const tiers = ["standard", ...Object.keys(tenant.pricing?.tier_markup_bps ?? {}).filter((n) => n !== "standard")];
  const [type, setType] = useState("image");
  const [tier, setTier] = useState("standard");
  const example = useQuery({
    // The saved pricing is part of the key: saving new markups fetches a new example.
    queryKey: ["console", "pricing-example", type, tier, tenant.pricing],
    queryFn: () => fetchPricingExample({ type: type as PricingExampleRequest["type"], tier }),
    retry: false,
  });
  const amount = (value: number, unit: string) => unit === "usd_micros"
    ? formatNumber(value / 1_000_000, lang, { style: "currency", currency: "USD", maximumFractionDigits: 6 })
    : t("pricing.credits", { credits: formatCredits(value, lang) });
  return (
    <section className="card c-example" aria-labelledby="example-heading">
      <h2 id="example-heading">{t("pricing.example")}</h2>
      <div className="c-inline">
        <Field label={t("pricing.example_type")}>
          {(p) => <select {...p} value={type} onChange={(e) => setType(e.target.value)}>
            {TYPES.filter((k) => k !== "default").map((k) => <option key={k} value={k}>{t(`types.${k}`)}</option>)}
          </select>}
        </Field>
        <Field label={t("pricing.example_tier")}>
          {(p) => <select {...p} value={tier} onChange={(e) => setTier(e.target.value)}>
            {tiers.map((n) => <option key={n} value={n}>{n}</option>)}
          </select>}
        </Field>
      </div>
      {example.isPending ? <p className="muted" role="status">{t("common.loading")}</p> : null}
      {example.isError ? <p role="alert" className="error">{errorText(t, example.error)}</p> : null}
      {example.data ? (
        <div data-testid="pricing-example">
          <p className="muted small">{t("pricing.example_for", { provider: example.data.provider,
            model: example.data.model ?? "—", tier: example.data.tier })}</p>
          <ol className="c-steps">
            {example.data.steps.map((step, i) => (
              <li key={i}>
                <span className="c-step-label">{t(`pricing.step.${step.label.replace(/\s+/g, "_")}`, { defaultValue: step.label })}</span>
                <strong className="c-step-amount"><bdi>{amount(step.amount, step.unit)}</bdi></strong>
                <span className="muted small" dir="ltr">{step.detail}</span>
              </li>
            ))}
          </ol>
          <p><strong data-testid="example-retail">{t("pricing.retail_total", { credits: formatCredits(example.data.retail_mc, lang) })}</strong></p>
        </div>
      ) : null}
    </section>
  );
}

export function PricingForm({ tenant }: { tenant: Tenant }) {
  const { t, i18n } = useTranslation("console");
  const [draft, setDraft] = useState(() => draftOf(tenant));
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const patch = useTenantPatch();
  const set = (d: Draft) => { setSaved(false); setDraft(d); };
  async function save(event: FormEvent) {
    event.preventDefault();
    const ok = await action.run(async () => {
      const markup: Record<string, number> = {};
      for (const k of TYPES) {
        const bps = toBps(draft.types[k] ?? "");
        if (bps !== null) markup[k] = bps;
      }
      const tiers: Record<string, number> = {};
      for (const row of draft.tiers) {
        const bps = toBps(row.pct);
        if (row.name.trim() && bps !== null) tiers[row.name.trim()] = bps;
      }
      await patch.mutateAsync({ pricing: { markup_bps: markup, tier_markup_bps: tiers,
                                           min_charge_mc: creditsToMc(draft.minCharge) ?? 0 } });
    });
    setSaved(ok);
  }
  const typeBps = (k: string) => toBps(draft.types[k] ?? "") ?? toBps(draft.types.default ?? "") ?? 0;
  return (
    <form className="c-form" onSubmit={(e) => void save(e)} noValidate>
      <fieldset>
        <legend>{t("pricing.by_type")}</legend>
        <p className="muted small">{t("pricing.by_type_hint")}</p>
        <div className="c-grid">
          {TYPES.map((k) => (
            <Field key={k} label={t("pricing.type_markup", { type: t(`types.${k}`) })} param={`pricing.markup_bps.${k}`} action={action}>
              {(p) => <input {...p} inputMode="decimal" value={draft.types[k] ?? ""} name={`markup-${k}`}
                             placeholder={k === "default" ? "0" : t("pricing.inherits")}
                             onChange={(e) => set({ ...draft, types: { ...draft.types, [k]: e.target.value } })} />}
            </Field>
          ))}
        </div>
      </fieldset>
      <fieldset>
        <legend>{t("pricing.by_tier")}</legend>
        {draft.tiers.map((row, i) => (
          <div key={i} className="c-row">
            <Field label={t("pricing.tier_name")} param={`pricing.tier_markup_bps`} action={action}>
              {(p) => <input {...p} value={row.name} maxLength={32} name={`tier-name-${i}`}
                             onChange={(e) => set({ ...draft, tiers: draft.tiers.map((x, j) => j === i ? { ...x, name: e.target.value } : x) })} />}
            </Field>
            <Field label={t("pricing.tier_markup", { tier: row.name || "…" })}>
              {(p) => <input {...p} inputMode="decimal" value={row.pct} name={`tier-${row.name}`}
                             onChange={(e) => set({ ...draft, tiers: draft.tiers.map((x, j) => j === i ? { ...x, pct: e.target.value } : x) })} />}
            </Field>
            <button type="button" aria-label={t("pricing.tier_remove", { tier: row.name })}
                    onClick={() => set({ ...draft, tiers: draft.tiers.filter((_, j) => j !== i) })}>{t("common.remove")}</button>
          </div>
        ))}
        <button type="button" onClick={() => set({ ...draft, tiers: [...draft.tiers, { name: "", pct: "" }] })}>
          {t("pricing.tier_add")}
        </button>
      </fieldset>
      <Field label={t("pricing.min_charge")} param="pricing.min_charge_mc" action={action} hint={t("pricing.min_charge_hint")}>
        {(p) => <input {...p} inputMode="decimal" value={draft.minCharge}
                       onChange={(e) => set({ ...draft, minCharge: e.target.value })} />}
      </Field>
      <div className="c-matrix-wrap">
        <table className="c-matrix">
          <caption>{t("pricing.matrix")}</caption>
          <thead><tr><th scope="col">{t("pricing.type")}</th>
            {draft.tiers.map((row, i) => <th key={i} scope="col">{row.name || "…"}</th>)}</tr></thead>
          <tbody>
            {TYPES.map((k) => (
              <tr key={k}><th scope="row">{t(`types.${k}`)}</th>
                {draft.tiers.map((row, i) => (
                  <td key={i}>{formatNumber((typeBps(k) + (toBps(row.pct) ?? 0)) / 100, i18n.language)}%</td>
                ))}</tr>
            ))}
          </tbody>
        </table>
      </div>
      <FormError action={action} fields={["pricing.markup_bps", "pricing.tier_markup_bps", "pricing.min_charge_mc"]} />
      <div className="c-actions">
        <button type="submit" className="primary" disabled={action.busy}>{action.busy ? t("common.saving") : t("common.save")}</button>
        {saved ? <span role="status" className="c-ok">{t("common.saved")}</span> : null}
      </div>
    </form>
  );
}

export default function Pricing() {
  const { t } = useTranslation("console");
  const tenant = useTenant();
  return (
    <div className="c-page">
      <h1>{t("pricing.title")}</h1>
      <p className="muted">{t("pricing.intro")}</p>
      {tenant.isError ? <p role="alert" className="error">{t("errors.load")}</p> : null}
      {tenant.data ? (
        <div className="c-two">
          <PricingForm tenant={tenant.data} />
          <Example tenant={tenant.data} />
        </div>
      ) : <p className="muted" role="status">{t("common.loading")}</p>}
    </div>
  );
}
