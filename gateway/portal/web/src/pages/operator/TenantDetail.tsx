// One tenant: its settings, the operator's caps on it, wholesale credit grants to its
// wallet, and suspension.
import { useId, useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { useTranslation } from "react-i18next";
import { unwrap, type Schemas } from "../../api/client";
import { formatCredits, formatDate } from "../../i18n";
import { admin, type Tenant } from "./api";
import { SuspendedBadge } from "./Tenants";

type Caps = Schemas["TenantCaps"];
const LIMITS = ["requests_per_minute", "burst", "key_requests_per_minute", "key_burst", "concurrent_jobs"] as const;

/** Credits typed by a person (up to three decimals) as millicredits; null when not a number. */
export function toMillicredits(text: string): number | null {
  const value = Number(text.trim().replace(",", "."));
  return text.trim() !== "" && Number.isFinite(value) ? Math.round(value * 1000) : null;
}

function Settings({ tenant }: { tenant: Tenant }) {
  const { t, i18n } = useTranslation("operator");
  const lang = i18n.language;
  const rows: [string, string][] = [
    [t("tenants.fields.id"), tenant.id],
    [t("tenants.fields.slug"), tenant.slug],
    [t("tenants.fields.billing_mode"), t(`billing_modes.${tenant.billing_mode}`, { defaultValue: tenant.billing_mode })],
    [t("tenants.fields.domains"), tenant.domains.length ? tenant.domains.join(", ") : "—"],
    [t("tenants.fields.low_balance"), formatCredits(tenant.low_balance_threshold_mc, lang)],
    [t("tenants.fields.allowed_providers"), tenant.routing?.allowed_providers?.join(", ") ?? t("tenants.default")],
    [t("tenants.fields.created_at"), formatDate(tenant.created_at, lang)],
  ];
  return (
    <section className="card" aria-labelledby="settings">
      <h2 id="settings">{t("tenants.settings")}</h2>
      <dl className="op-facts">
        {rows.map(([term, value]) => (
          <div key={term}><dt>{term}</dt><dd><bdi>{value}</bdi></dd></div>
        ))}
      </dl>
    </section>
  );
}

function CapsForm({ tenant }: { tenant: Tenant }) {
  const { t } = useTranslation("operator");
  const queryClient = useQueryClient();
  const caps: Caps = tenant.caps ?? { max_domains: 10 };
  const [values, setValues] = useState<Record<string, string>>(() => ({
    ...Object.fromEntries(LIMITS.map((name) => [name, caps[name] == null ? "" : String(caps[name])])),
    daily_spend_cap: caps.daily_spend_cap_mc == null ? "" : String(caps.daily_spend_cap_mc / 1000),
    max_domains: String(caps.max_domains ?? 10),
    allowed_providers: caps.allowed_providers?.join(", ") ?? "",
  }));
  const save = useMutation({
    mutationFn: async () => {
      const number = (name: string) => (values[name]?.trim() ? Number(values[name]) : null);
      const providers = (values.allowed_providers ?? "").split(",").map((p) => p.trim()).filter(Boolean);
      const body: Caps = {
        ...Object.fromEntries(LIMITS.map((name) => [name, number(name)])),
        daily_spend_cap_mc: toMillicredits(values.daily_spend_cap ?? ""),
        max_domains: number("max_domains") ?? 10,
        allowed_providers: providers.length ? providers : null,
      };
      return unwrap(await admin.PATCH("/admin/v1/tenants/{tenant_id}", {
        params: { path: { tenant_id: tenant.id } }, body: { caps: body } }));
    },
    onSuccess: (updated) => queryClient.setQueryData(["operator", "tenant", tenant.id], updated),
  });
  const field = (name: string, type: "number" | "text" = "number", step?: string) => (
    <label key={name}>{t(`caps.${name}`)}
      <input type={type} inputMode={type === "number" ? "decimal" : undefined} min={0} step={step}
             value={values[name] ?? ""} dir="ltr" placeholder={type === "number" ? t("caps.none") : ""}
             onChange={(e) => setValues((v) => ({ ...v, [name]: e.target.value }))} />
    </label>
  );
  function submit(event: FormEvent) {
    event.preventDefault();
    save.mutate();
  }
  return (
    <section className="card" aria-labelledby="caps">
      <h2 id="caps">{t("caps.title")}</h2>
      <p className="muted">{t("caps.explain")}</p>
      <form className="form op-grid-form" onSubmit={submit}>
        {LIMITS.map((name) => field(name))}
        {field("daily_spend_cap", "number", "0.001")}
        {field("max_domains")}
        {field("allowed_providers", "text")}
        <div className="op-form-end">
          <button type="submit" className="primary" disabled={save.isPending}>{t("caps.save")}</button>
        </div>
      </form>
      <div aria-live="polite">
        {save.isSuccess ? <p className="ok" role="status">{t("caps.saved")}</p> : null}
        {save.error ? <p className="error" role="alert">{(save.error as Error).message}</p> : null}
      </div>
    </section>
  );
}

/** A fresh Idempotency-Key (getRandomValues: randomUUID needs a secure context). */
function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function Grant({ tenant }: { tenant: Tenant }) {
  const { t, i18n } = useTranslation("operator");
  const queryClient = useQueryClient();
  const [amount, setAmount] = useState("");
  const [reason, setReason] = useState("");
  // One key per grant: kept while the same grant is retried (a lost answer must not grant
  // twice), renewed once it succeeded or its amount or reason changed.
  const [key, setKey] = useState(newKey);
  const [balance, setBalance] = useState<number | null>(null);
  const grant = useMutation({
    mutationFn: async () => {
      const amount_mc = toMillicredits(amount);
      if (amount_mc === null || amount_mc <= 0) throw new Error(t("grant.bad_amount"));
      return unwrap(await admin.POST("/admin/v1/tenants/{tenant_id}/credits", {
        params: { path: { tenant_id: tenant.id }, header: { "Idempotency-Key": key } },
        body: { amount: amount_mc, reason: reason.trim() } }));
    },
    onSuccess: (out) => {
      setBalance(out.balance);
      setKey(newKey());
      setAmount("");
      setReason("");
      void queryClient.invalidateQueries({ queryKey: ["operator", "audit"] });
    },
  });
  const edit = (set: (v: string) => void) => (value: string) => {
    set(value);
    setKey(newKey());
  };
  function submit(event: FormEvent) {
    event.preventDefault();
    grant.mutate();
  }
  return (
    <section className="card" aria-labelledby="grant">
      <h2 id="grant">{t("grant.title")}</h2>
      <p className="muted">{t("grant.explain")}</p>
      <form className="form op-inline-form" onSubmit={submit}>
        <label>{t("grant.amount")}
          <input type="number" inputMode="decimal" min="0.001" step="0.001" required value={amount} dir="ltr"
                 onChange={(e) => edit(setAmount)(e.target.value)} />
        </label>
        <label>{t("grant.reason")}
          <input required maxLength={500} value={reason} onChange={(e) => edit(setReason)(e.target.value)} />
        </label>
        <div className="op-form-end">
          <button type="submit" className="primary" disabled={grant.isPending}>{t("grant.submit")}</button>
        </div>
      </form>
      <div aria-live="polite">
        {balance !== null ? (
          <p className="ok" role="status" data-testid="tenant-balance">
            {t("grant.balance", { amount: formatCredits(balance, i18n.language) })}
          </p>
        ) : null}
        {grant.error ? <p className="error" role="alert">{(grant.error as Error).message}</p> : null}
      </div>
    </section>
  );
}

function Suspend({ tenant }: { tenant: Tenant }) {
  const { t, i18n } = useTranslation("operator");
  const queryClient = useQueryClient();
  const [reason, setReason] = useState("");
  const reasonId = useId();
  const change = useMutation({
    mutationFn: async (action: "suspend" | "resume") => {
      const path = { tenant_id: tenant.id };
      return action === "suspend"
        ? unwrap(await admin.POST("/admin/v1/tenants/{tenant_id}/suspend", { params: { path }, body: { reason: reason.trim() } }))
        : unwrap(await admin.POST("/admin/v1/tenants/{tenant_id}/resume", { params: { path } }));
    },
    onSuccess: (updated) => {
      setReason("");
      queryClient.setQueryData(["operator", "tenant", tenant.id], { ...tenant, ...updated });
      void queryClient.invalidateQueries({ queryKey: ["operator", "tenants"] });
    },
  });
  const error = change.error;
  function submit(event: FormEvent) {
    event.preventDefault();
    change.mutate("suspend");
  }
  return (
    <section className="card" aria-labelledby="suspension">
      <h2 id="suspension">{t("suspend.title")}</h2>
      {tenant.suspended_at ? (
        <>
          <p>{t("suspend.since", { date: formatDate(tenant.suspended_at, i18n.language) })}</p>
          {tenant.suspension_reason ? <p className="muted">{t("suspend.reason_was", { reason: tenant.suspension_reason })}</p> : null}
          <button type="button" className="primary" disabled={change.isPending} onClick={() => change.mutate("resume")}>
            {t("suspend.resume")}
          </button>
        </>
      ) : (
        <form className="form op-inline-form" onSubmit={submit}>
          <label htmlFor={reasonId}>{t("suspend.reason")}
            <input id={reasonId} required maxLength={500} value={reason} onChange={(e) => setReason(e.target.value)} />
          </label>
          <div className="op-form-end">
            <button type="submit" className="danger" disabled={change.isPending}>{t("suspend.submit")}</button>
          </div>
        </form>
      )}
      <div aria-live="polite">
        {error ? <p className="error" role="alert">{error.message}</p> : null}
      </div>
    </section>
  );
}

export default function TenantDetail() {
  const { t } = useTranslation("operator");
  const { id = "" } = useParams();
  const tenant = useQuery({
    queryKey: ["operator", "tenant", id],
    queryFn: async () => unwrap(await admin.GET("/admin/v1/tenants/{tenant_id}", {
      params: { path: { tenant_id: id } } })),
  });
  if (tenant.isLoading) return <p className="loading" role="status">{t("loading")}</p>;
  if (!tenant.data) {
    return <p className="error" role="alert">{(tenant.error as Error | null)?.message ?? t("not_found")}</p>;
  }
  const data = tenant.data;
  return (
    <div className="op-page">
      <p><Link to="/operator/tenants">{t("tenants.back")}</Link></p>
      <div className="op-title start">
        <h1>{data.name}</h1>
        <SuspendedBadge tenant={data} />
      </div>
      <div className="op-columns">
        <Settings tenant={data} />
        <Grant tenant={data} />
        <CapsForm key={data.id} tenant={data} />
        <Suspend tenant={data} />
      </div>
      <p><Link to={`/operator/audit?tenant_id=${encodeURIComponent(data.id)}`}>{t("tenants.audit_link")}</Link></p>
    </div>
  );
}
