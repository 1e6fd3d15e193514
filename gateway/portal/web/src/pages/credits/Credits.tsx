import { useEffect, useState } from "react";
import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useSearchParams } from "react-router";
import { useTranslation } from "react-i18next";
import { api, ApiError, unwrap, type Schemas } from "../../api/client";
import { useBalance } from "../../components/useBalance";
import { formatCredits, formatDate } from "../../i18n";
import { useSession } from "../../session";
import "./credits.css";

type Purchase = Schemas["PurchaseOut"];

/** A price in the currency's smallest unit (Stripe's), in the page's language. */
export function formatPrice(cents: number, currency: string, lang: string): string {
  const format = new Intl.NumberFormat(lang === "ar" ? "ar-EG" : "en-US",
    { style: "currency", currency: currency.toUpperCase() });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(cents / 10 ** digits);
}

/** Back-off while Stripe's webhook is on its way: 1 s, 2 s, 4 s … up to 15 s. */
export function pollDelay(attempt: number): number {
  return Math.min(1000 * 2 ** attempt, 15_000);
}

/** Where Stripe Checkout sends the buyer back (/portal/credits?purchase=<id>): paid,
 * confirming (polls until the webhook lands), canceled or refunded. */
function PurchaseResult({ id, canceled }: { id: string; canceled: boolean }) {
  const { t, i18n } = useTranslation("credits");
  const queryClient = useQueryClient();
  const [attempt, setAttempt] = useState(0);
  const purchase = useQuery<Purchase>({
    queryKey: ["purchase", id],
    queryFn: async () => {
      const answer = unwrap(await api.GET("/v1/credits/purchases/{purchase_id}",
        { params: { path: { purchase_id: id } } }));
      setAttempt((n) => n + 1);
      return answer;
    },
    retry: false,
    refetchInterval: (query) => (!canceled && query.state.data?.status === "open" ? pollDelay(attempt) : false),
  });
  const status = purchase.data?.status;
  useEffect(() => {
    if (status === "paid") {
      // The credits landed: the balance and the history show them.
      void queryClient.invalidateQueries({ queryKey: ["balance"] });
      void queryClient.invalidateQueries({ queryKey: ["transactions"] });
    }
  }, [status, queryClient]);

  let state: string;
  if (purchase.isError) {
    state = purchase.error instanceof ApiError && purchase.error.status === 404 ? "not_found" : "error";
  } else if (!purchase.data) {
    state = "loading";
  } else if (canceled) {
    state = "canceled";
  } else if (status === "open") {
    state = "confirming";
  } else {
    state = status === "paid" || status === "refunded" || status === "failed" ? status : "error";
  }
  const credits = purchase.data ? formatCredits(purchase.data.credits, i18n.language) : "";
  return (
    <div className={`card purchase-result purchase-${state}`} role="status" aria-live="polite"
         data-state={state}>
      <h2>{t(`purchase.${state}.title`)}</h2>
      <p>{t(`purchase.${state}.text`, { credits })}</p>
      {state === "confirming" ? <span className="spinner" aria-hidden="true" /> : null}
    </div>
  );
}

function Packages() {
  const { t, i18n } = useTranslation("credits");
  const packages = useQuery({
    queryKey: ["packages"],
    queryFn: async () => unwrap(await api.GET("/v1/credits/packages", { params: { query: { limit: 50 } } })).data,
  });
  const [error, setError] = useState<string | null>(null);
  const buy = useMutation({
    mutationFn: async (packageId: string) => unwrap(await api.POST("/v1/credits/purchase",
      { body: { package_id: packageId } })),
    onSuccess: (purchase) => {
      if (purchase.checkout_url) window.location.assign(purchase.checkout_url);
    },
    onError: (e) => setError(e instanceof ApiError
      ? t(`errors.${e.code}`, { defaultValue: t("errors.buy") }) : t("errors.buy")),
  });
  const list = (packages.data ?? []).filter((p) => p.active);
  return (
    <section aria-labelledby="packages-heading" className="credits-section">
      <h2 id="packages-heading">{t("packages.title")}</h2>
      {packages.isSuccess && list.length === 0 ? <p className="muted">{t("packages.none")}</p> : null}
      <ul className="package-grid">
        {list.map((p) => (
          <li key={p.id} className="card package">
            <h3>{p.name}</h3>
            <p className="package-credits">{t("packages.credits", { credits: formatCredits(p.credits, i18n.language) })}</p>
            <p className="package-price">{formatPrice(p.price_cents, p.currency, i18n.language)}</p>
            <button type="button" className="primary" disabled={buy.isPending}
                    aria-label={t("packages.buy_named", { name: p.name })}
                    onClick={() => { setError(null); buy.mutate(p.id); }}>
              {t("packages.buy")}
            </button>
          </li>
        ))}
      </ul>
      {error ? <p role="alert" className="error">{error}</p> : null}
    </section>
  );
}

function History() {
  const { t, i18n } = useTranslation("credits");
  const { teamId } = useSession();
  const history = useInfiniteQuery({
    queryKey: ["transactions", teamId],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }) => unwrap(await api.GET("/v1/credits/transactions",
      { params: { query: { limit: 20, ...(pageParam ? { cursor: pageParam } : {}) } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  });
  const rows = history.data?.pages.flatMap((page) => page.data) ?? [];
  return (
    <section aria-labelledby="history-heading" className="credits-section">
      <h2 id="history-heading">{t("history.title")}</h2>
      {history.isSuccess && rows.length === 0 ? <p className="muted">{t("history.none")}</p> : null}
      {rows.length > 0 ? (
        <table className="history">
          <thead>
            <tr><th scope="col">{t("history.date")}</th><th scope="col">{t("history.kind")}</th>
              <th scope="col" className="amount">{t("history.amount")}</th></tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.id}>
                <td>{formatDate(row.created_at, i18n.language)}</td>
                <td>{t(`kind.${row.kind}`, { defaultValue: row.kind })}
                  {row.status !== "posted" ? <span className="muted"> ({t(`status.${row.status}`, { defaultValue: row.status })})</span> : null}</td>
                <td className={`amount ${row.amount < 0 ? "debit" : "credit"}`}>
                  <bdi>{row.amount > 0 ? "+" : ""}{formatCredits(row.amount, i18n.language)}</bdi>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {history.hasNextPage ? (
        <button type="button" onClick={() => void history.fetchNextPage()} disabled={history.isFetchingNextPage}>
          {history.isFetchingNextPage ? t("history.loading") : t("history.more")}
        </button>
      ) : null}
    </section>
  );
}

export default function Credits() {
  const { t, i18n } = useTranslation("credits");
  const [params] = useSearchParams();
  const balance = useBalance();
  const purchaseId = params.get("purchase");
  return (
    <div className="credits">
      <h1>{t("title")}</h1>
      {purchaseId ? <PurchaseResult id={purchaseId} canceled={params.get("canceled") === "1"} /> : null}
      <div className="card balance-card">
        <span className="muted">{t("balance.available")}</span>
        <span className="balance-amount" data-testid="balance">
          {balance.data ? formatCredits(balance.data.available, i18n.language) : "…"}
        </span>
        {balance.data && balance.data.pending !== 0 ? (
          <span className="muted small">{t("balance.pending", { credits: formatCredits(Math.abs(balance.data.pending), i18n.language) })}</span>
        ) : null}
      </div>
      <Packages />
      <History />
    </div>
  );
}
