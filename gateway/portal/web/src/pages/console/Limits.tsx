// Limits: the tenant's request rates, concurrent jobs per media type, daily spend cap and
// low-balance alert threshold; beside each, the operator's ceiling (caps), read-only.
// Empty means "the platform default" (the operator's MEDIAHUB_RATE_LIMIT_*).
import { useState, type FormEvent } from "react";
import { Link } from "react-router";
import { useTranslation } from "react-i18next";
import { formatCredits, formatNumber } from "../../i18n";
import type { Schemas } from "../../api/client";
import { useTenant, useTenantPatch, type Tenant } from "./tenant";
import { creditsToMc, Field, FormError, intOrNull, useAction } from "./ui";

const RATES = ["requests_per_minute", "burst", "key_requests_per_minute", "key_burst"] as const;
const TYPES = ["image", "audio", "video", "design", "model_3d"] as const;

function LimitsForm({ tenant }: { tenant: Tenant }) {
  const { t, i18n } = useTranslation("console");
  const lang = i18n.language;
  const limits = tenant.rate_limits ?? {};
  const caps: Partial<Schemas["TenantCaps"]> = tenant.caps ?? {};
  const capsRecord = caps as Record<string, number | null | undefined>;
  const str = (n: number | null | undefined) => (n === null || n === undefined ? "" : String(n));
  const [rates, setRates] = useState<Record<string, string>>(() =>
    Object.fromEntries(RATES.map((r) => [r, str((limits as Record<string, number | null | undefined>)[r])])));
  const [jobs, setJobs] = useState<Record<string, string>>(() =>
    Object.fromEntries(TYPES.map((k) => [k, str((limits.concurrent_jobs as Record<string, number> | undefined)?.[k])])));
  const [spendCap, setSpendCap] = useState(limits.daily_spend_cap_mc ? String(limits.daily_spend_cap_mc / 1000) : "");
  const [threshold, setThreshold] = useState(String(tenant.low_balance_threshold_mc / 1000));
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const patch = useTenantPatch();
  const capText = (n: number | null | undefined, credits = false) =>
    n === null || n === undefined ? t("limits.no_cap")
      : t("limits.cap", { value: credits ? formatCredits(n, lang) : formatNumber(n, lang) });
  async function save(event: FormEvent) {
    event.preventDefault();
    const ok = await action.run(async () => {
      const concurrent: Record<string, number> = {};
      for (const k of TYPES) {
        const n = intOrNull(jobs[k] ?? "");
        if (n !== null) concurrent[k] = n;
      }
      const policy: Record<string, unknown> = { concurrent_jobs: concurrent };
      for (const r of RATES) {
        const n = intOrNull(rates[r] ?? "");
        if (n !== null) policy[r] = n;
      }
      const cap = creditsToMc(spendCap);
      if (cap !== null) policy.daily_spend_cap_mc = cap;
      await patch.mutateAsync({ rate_limits: policy as Tenant["rate_limits"],
                                low_balance_threshold_mc: creditsToMc(threshold) ?? 0 });
    });
    setSaved(ok);
  }
  return (
    <form className="c-form" onSubmit={(e) => void save(e)} noValidate>
      <fieldset>
        <legend>{t("limits.rates")}</legend>
        <div className="c-grid">
          {RATES.map((r) => (
            <Field key={r} label={t(`limits.${r}`)} param={`rate_limits.${r}`} action={action} hint={capText(capsRecord[r])}>
              {(p) => <input {...p} inputMode="numeric" value={rates[r] ?? ""} placeholder={t("limits.default")}
                             onChange={(e) => { setSaved(false); setRates({ ...rates, [r]: e.target.value }); }} />}
            </Field>
          ))}
        </div>
      </fieldset>
      <fieldset>
        <legend>{t("limits.concurrent")}</legend>
        <p className="muted small">{capText(caps.concurrent_jobs)}</p>
        <div className="c-grid">
          {TYPES.map((k) => (
            <Field key={k} label={t(`types.${k}`)} param={`rate_limits.concurrent_jobs.${k}`} action={action}>
              {(p) => <input {...p} inputMode="numeric" value={jobs[k] ?? ""} placeholder={t("limits.default")}
                             onChange={(e) => { setSaved(false); setJobs({ ...jobs, [k]: e.target.value }); }} />}
            </Field>
          ))}
        </div>
      </fieldset>
      <fieldset>
        <legend>{t("limits.budgets")}</legend>
        <Field label={t("limits.daily_spend_cap")} param="rate_limits.daily_spend_cap_mc" action={action}
               hint={capText(caps.daily_spend_cap_mc, true)}>
          {(p) => <input {...p} inputMode="decimal" value={spendCap} placeholder={t("limits.default")}
                         onChange={(e) => { setSaved(false); setSpendCap(e.target.value); }} />}
        </Field>
        <Field label={t("limits.low_balance")} param="low_balance_threshold_mc" action={action} hint={t("limits.low_balance_hint")}>
          {(p) => <input {...p} inputMode="decimal" value={threshold}
                         onChange={(e) => { setSaved(false); setThreshold(e.target.value); }} />}
        </Field>
        <p className="muted small">{t("limits.other_budgets")} <Link to="/console/keys">{t("nav.keys")}</Link>{" · "}
          <Link to="/console/customers">{t("nav.customers")}</Link></p>
      </fieldset>
      <FormError action={action} fields={["rate_limits", "low_balance_threshold_mc"]} />
      <div className="c-actions">
        <button type="submit" className="primary" disabled={action.busy}>{action.busy ? t("common.saving") : t("common.save")}</button>
        {saved ? <span role="status" className="c-ok">{t("common.saved")}</span> : null}
      </div>
    </form>
  );
}

function Caps({ tenant }: { tenant: Tenant }) {
  const { t, i18n } = useTranslation("console");
  const caps = (tenant.caps ?? {}) as Record<string, unknown>;
  const entries = Object.entries(caps).filter(([, v]) => v !== null && v !== undefined);
  return (
    <section className="card" aria-labelledby="caps-heading">
      <h2 id="caps-heading">{t("limits.caps_title")}</h2>
      <p className="muted small">{t("limits.caps_hint")}</p>
      {entries.length === 0 ? <p className="muted">{t("limits.no_caps")}</p> : (
        <dl className="c-dl">
          {entries.map(([k, v]) => (
            <div key={k}><dt>{t(`limits.cap_name.${k}`, { defaultValue: k })}</dt>
              <dd>{Array.isArray(v) ? v.join(", ") : typeof v === "number"
                ? (k.endsWith("_mc") ? formatCredits(v, i18n.language) : formatNumber(v, i18n.language)) : String(v)}</dd></div>
          ))}
        </dl>
      )}
    </section>
  );
}

export default function Limits() {
  const { t } = useTranslation("console");
  const tenant = useTenant();
  return (
    <div className="c-page">
      <h1>{t("limits.title")}</h1>
      <p className="muted">{t("limits.intro")}</p>
      {tenant.isError ? <p role="alert" className="error">{t("errors.load")}</p> : null}
      {tenant.data ? (
        <div className="c-two">
          <LimitsForm tenant={tenant.data} />
          <Caps tenant={tenant.data} />
        </div>
      ) : <p className="muted" role="status">{t("common.loading")}</p>}
    </div>
  );
}
