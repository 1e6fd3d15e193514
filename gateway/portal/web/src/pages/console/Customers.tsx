// Customers: search by the tenant's own id (`?q=` matches its start), filter by tier, page
// through; a customer's page edits its tier and monthly budget and moves credits between
// the tenant's wallet and the customer's (grant / take back), each submission with its own
// Idempotency-Key so a retried click is never a second move.
import { useState, type FormEvent } from "react";
import { useInfiniteQuery, useQuery, useQueryClient } from "@tanstack/react-query";
import { Link, Route, Routes, useParams, useSearchParams } from "react-router";
import { useTranslation } from "react-i18next";
import { api, unwrap, type Schemas } from "../../api/client";
import { formatCredits, formatDate } from "../../i18n";
import { creditsToMc, Field, FormError, idempotencyKey, ListState, MoreButton, useAction } from "./ui";

type Customer = Schemas["CustomerOut"];

function CustomerList() {
  const { t, i18n } = useTranslation("console");
  const lang = i18n.language;
  const [params, setParams] = useSearchParams();
  const q = params.get("q") ?? "";
  const tier = params.get("tier") ?? "";
  const [qDraft, setQDraft] = useState(q);
  const [tierDraft, setTierDraft] = useState(tier);
  const customers = useInfiniteQuery({
    queryKey: ["console", "customers", q, tier],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }) => unwrap(await api.GET("/v1/customers", { params: { query: {
      limit: 25, ...(q ? { q } : {}), ...(tier ? { tier } : {}), ...(pageParam ? { cursor: pageParam } : {}) } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  });
  function search(event: FormEvent) {
    event.preventDefault();
    const next = new URLSearchParams();
    if (qDraft.trim()) next.set("q", qDraft.trim());
    if (tierDraft.trim()) next.set("tier", tierDraft.trim());
    setParams(next);
  }
  const rows = customers.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <div className="c-page">
      <h1>{t("customers.title")}</h1>
      <form role="search" className="card c-form c-inline" onSubmit={search}>
        <Field label={t("customers.search")}>
          {(p) => <input {...p} type="search" dir="ltr" value={qDraft} onChange={(e) => setQDraft(e.target.value)}
                         placeholder={t("customers.search_hint")} />}
        </Field>
        <Field label={t("customers.tier")}>
          {(p) => <input {...p} value={tierDraft} onChange={(e) => setTierDraft(e.target.value)} placeholder={t("customers.any_tier")} />}
        </Field>
        <button type="submit" className="primary">{t("customers.search_go")}</button>
      </form>
      <ListState loading={customers.isPending} error={customers.error} empty={rows.length === 0}
                 emptyText={q || tier ? t("customers.none_match") : t("customers.none")} />
      {rows.length > 0 ? (
        <table className="c-table" data-testid="customers">
          <thead><tr><th scope="col">{t("customers.id")}</th><th scope="col">{t("customers.tier")}</th>
            <th scope="col">{t("customers.balance")}</th><th scope="col">{t("customers.month_spend")}</th>
            <th scope="col">{t("customers.created")}</th></tr></thead>
          <tbody>
            {rows.map((c) => (
              <tr key={c.id}>
                <td data-label={t("customers.id")}><Link to={`/console/customers/${encodeURIComponent(c.id)}`} dir="ltr">{c.external_id}</Link></td>
                <td data-label={t("customers.tier")}>{c.tier}</td>
                <td data-label={t("customers.balance")}>{c.balance ? formatCredits(c.balance.available, lang) : "—"}</td>
                <td data-label={t("customers.month_spend")}>{formatCredits(c.month_spend_mc, lang)}
                  {c.monthly_budget_mc != null ? ` / ${formatCredits(c.monthly_budget_mc, lang)}` : ""}</td>
                <td data-label={t("customers.created")}>{formatDate(c.created_at, lang)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <MoreButton hasMore={!!customers.hasNextPage} loading={customers.isFetchingNextPage}
                  onMore={() => void customers.fetchNextPage()} />
    </div>
  );
}

function SettingsForm({ customer }: { customer: Customer }) {
  const { t } = useTranslation("console");
  const queryClient = useQueryClient();
  const action = useAction();
  const [tier, setTier] = useState(customer.tier);
  const [budget, setBudget] = useState(customer.monthly_budget_mc != null ? String(customer.monthly_budget_mc / 1000) : "");
  const [saved, setSaved] = useState(false);
  async function submit(event: FormEvent) {
    event.preventDefault();
    const ok = await action.run(async () => {
      const answer = unwrap(await api.PATCH("/v1/customers/{customer_id}", { params: { path: { customer_id: customer.id } },
        body: { tier: tier.trim(), monthly_budget_mc: creditsToMc(budget) } }));
      queryClient.setQueryData(["console", "customer", customer.id], answer);
      await queryClient.invalidateQueries({ queryKey: ["console", "customers"] });
    });
    setSaved(ok);
  }
  return (
    <form className="card c-form" onSubmit={(e) => void submit(e)}>
      <h2>{t("customers.settings")}</h2>
      <Field label={t("customers.tier")} param="tier" action={action}>
        {(p) => <input {...p} value={tier} maxLength={32} required onChange={(e) => { setSaved(false); setTier(e.target.value); }} />}
      </Field>
      <Field label={t("customers.budget")} param="monthly_budget_mc" action={action} hint={t("customers.budget_hint")}>
        {(p) => <input {...p} inputMode="decimal" value={budget} onChange={(e) => { setSaved(false); setBudget(e.target.value); }} />}
      </Field>
      <FormError action={action} fields={["tier", "monthly_budget_mc"]} />
      <div className="c-actions">
        <button type="submit" className="primary" disabled={action.busy}>{action.busy ? t("common.saving") : t("common.save")}</button>
        {saved ? <span role="status" className="c-ok">{t("common.saved")}</span> : null}
      </div>
    </form>
  );
}

function CreditMove({ customer }: { customer: Customer }) {
  const { t, i18n } = useTranslation("console");
  const queryClient = useQueryClient();
  const action = useAction();
  const [direction, setDirection] = useState<"grant" | "take_back">("grant");
  const [amount, setAmount] = useState("");
  const [reason, setReason] = useState("");
  const [done, setDone] = useState<string | null>(null);
  async function submit(event: FormEvent) {
    event.preventDefault();
    setDone(null);
    // One key per submission: a network retry of this same submission is the same move.
    const key = idempotencyKey();
    await action.run(async () => {
      const options = { params: { path: { customer_id: customer.id }, header: { "Idempotency-Key": key } },
                        body: { amount: creditsToMc(amount) ?? 0, reason: reason.trim() } };
      const move = unwrap(direction === "grant"
        ? await api.POST("/v1/customers/{customer_id}/credits", options)
        : await api.POST("/v1/customers/{customer_id}/credits/take_back", options));
      setDone(t(direction === "grant" ? "customers.granted" : "customers.taken", {
        credits: formatCredits(move.amount, i18n.language),
        balance: formatCredits(move.customer_available, i18n.language) }));
      setAmount("");
      setReason("");
      await queryClient.invalidateQueries({ queryKey: ["console", "customer", customer.id] });
      await queryClient.invalidateQueries({ queryKey: ["console", "customers"] });
      await queryClient.invalidateQueries({ queryKey: ["console", "balance"] });
    });
  }
  return (
    <form className="card c-form" onSubmit={(e) => void submit(e)}>
      <h2>{t("customers.credits")}</h2>
      <div className="c-checks" role="radiogroup" aria-label={t("customers.direction")}>
        {(["grant", "take_back"] as const).map((d) => (
          <label key={d} className="c-check">
            <input type="radio" name="direction" checked={direction === d} onChange={() => setDirection(d)} />
            {t(`customers.${d}`)}
          </label>
        ))}
      </div>
      <Field label={t("customers.amount")} param="amount" action={action}>
        {(p) => <input {...p} inputMode="decimal" value={amount} required onChange={(e) => setAmount(e.target.value)} />}
      </Field>
      <Field label={t("customers.reason")} param="reason" action={action}>
        {(p) => <input {...p} value={reason} required maxLength={500} onChange={(e) => setReason(e.target.value)} />}
      </Field>
      <FormError action={action} fields={["amount", "reason"]} />
      <div className="c-actions">
        <button type="submit" className="primary" disabled={action.busy}>
          {action.busy ? t("common.saving") : t(direction === "grant" ? "customers.grant_go" : "customers.take_back_go")}
        </button>
      </div>
      {done ? <p role="status" className="c-ok" data-testid="move-result">{done}</p> : null}
    </form>
  );
}

function CustomerDetail() {
  const { t, i18n } = useTranslation("console");
  const lang = i18n.language;
  const { id = "" } = useParams();
  const customer = useQuery({
    queryKey: ["console", "customer", id],
    queryFn: async () => unwrap(await api.GET("/v1/customers/{customer_id}", { params: { path: { customer_id: id } } })),
  });
  const c = customer.data;
  return (
    <div className="c-page">
      <p><Link to="/console/customers">{t("customers.back")}</Link></p>
      <ListState loading={customer.isPending} error={customer.error} empty={false} emptyText="" />
      {c ? (
        <>
          <h1 dir="auto">{t("customers.detail_title", { id: c.external_id })}</h1>
          <dl className="c-dl card">
            <div><dt>{t("customers.our_id")}</dt><dd dir="ltr"><code>{c.id}</code></dd></div>
            <div><dt>{t("customers.tier")}</dt><dd>{c.tier}</dd></div>
            <div><dt>{t("customers.balance")}</dt><dd data-testid="customer-balance">{c.balance ? formatCredits(c.balance.available, lang) : "—"}</dd></div>
            <div><dt>{t("customers.month_spend")}</dt><dd>{formatCredits(c.month_spend_mc, lang)}</dd></div>
            <div><dt>{t("customers.budget")}</dt><dd>{c.monthly_budget_mc != null ? formatCredits(c.monthly_budget_mc, lang) : t("customers.no_budget")}</dd></div>
            <div><dt>{t("customers.created")}</dt><dd>{formatDate(c.created_at, lang)}</dd></div>
          </dl>
          <div className="c-two">
            <SettingsForm key={`${c.id}-${c.tier}-${c.monthly_budget_mc}`} customer={c} />
            {c.balance ? <CreditMove customer={c} /> : <p className="muted">{t("customers.self_mode")}</p>}
          </div>
        </>
      ) : null}
    </div>
  );
}

export default function Customers() {
  return (
    <Routes>
      <Route index element={<CustomerList />} />
      <Route path=":id" element={<CustomerDetail />} />
    </Routes>
  );
}
