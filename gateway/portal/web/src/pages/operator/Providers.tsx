// Providers: what routing sees of each installed provider (health, latency, errors,
// breaker), a "check now" that runs every health check, and a breaker reset per provider.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { unwrap } from "../../api/client";
import { formatDate, formatNumber } from "../../i18n";
import { admin, type ProviderState } from "./api";

const KEY = ["operator", "providers"];

function tone(state: ProviderState): "ok" | "warn" | "bad" | "off" {
  if (state.breaker === "open" || state.health === "unhealthy" || state.status === "unhealthy") return "bad";
  if (state.breaker === "half_open" || state.status === "rate_limited" || state.status === "circuit_open") return "warn";
  if (!state.configured) return "off";
  return "ok";
}

function ProviderCard({ state, onReset, busy }: { state: ProviderState; onReset: () => void; busy: boolean }) {
  const { t, i18n } = useTranslation("operator");
  const lang = i18n.language;
  const ms = (v: number | null) => (v === null ? "—" : formatNumber(v, lang, { style: "unit", unit: "millisecond", unitDisplay: "short" }));
  const facts: [string, string][] = [
    [t("providers.status"), t(`providers.statuses.${state.status}`, { defaultValue: state.status })],
    [t("providers.health"), t(`providers.healths.${state.health}`, { defaultValue: state.health })],
    [t("providers.latency"), ms(state.latency_ms)],
    [t("providers.check_latency"), ms(state.check_latency_ms)],
    [t("providers.error_rate"), formatNumber(state.error_rate, lang, { style: "percent", maximumFractionDigits: 1 })],
    [t("providers.calls"), t("providers.calls_value", { calls: formatNumber(state.calls, lang), failures: formatNumber(state.failures, lang) })],
    [t("providers.in_flight"), `${formatNumber(state.in_flight, lang)} / ${formatNumber(state.capacity, lang)}`],
    [t("providers.last_checked"), state.last_checked_at ? formatDate(state.last_checked_at, lang) : "—"],
  ];
  const breaker = state.breaker;
  return (
    <li className={`card provider tone-${tone(state)}`} aria-labelledby={`provider-${state.name}`} data-provider={state.name}>
      <div className="op-title">
        <h2 id={`provider-${state.name}`}><bdi>{state.name}</bdi></h2>
        <span className={`badge badge-${tone(state)}`} data-breaker={breaker}>
          {t("providers.breaker_state", { state: t(`providers.breakers.${breaker}`, { defaultValue: breaker }) })}
        </span>
      </div>
      <p className="muted"><bdi>{state.types.join(", ")}</bdi></p>
      <dl className="op-facts">
        {facts.map(([term, value]) => <div key={term}><dt>{term}</dt><dd>{value}</dd></div>)}
      </dl>
      {state.last_error ? <p className="provider-error"><strong>{t("providers.last_error")}</strong> <bdi>{state.last_error}</bdi></p> : null}
      {state.breaker_opened_at ? <p className="muted">{t("providers.opened_at", { date: formatDate(state.breaker_opened_at, lang) })}</p> : null}
      <button type="button" onClick={onReset} disabled={busy || (breaker === "closed" && !state.backoff_until)}
              aria-label={t("providers.reset_named", { name: state.name })}>
        {t("providers.reset")}
      </button>
    </li>
  );
}

export default function Providers() {
  const { t } = useTranslation("operator");
  const queryClient = useQueryClient();
  const list = useQuery({
    queryKey: KEY,
    queryFn: async () => unwrap(await admin.GET("/admin/v1/providers")).data,
  });
  const check = useMutation({
    mutationFn: async () => unwrap(await admin.POST("/admin/v1/providers/check")).data,
    onSuccess: (data) => queryClient.setQueryData(KEY, data),
  });
  const reset = useMutation({
    mutationFn: async (name: string) => unwrap(await admin.POST("/admin/v1/providers/{name}/reset", {
      params: { path: { name } } })).data,
    onSuccess: (data) => queryClient.setQueryData(KEY, data),
  });
  const error = list.error ?? check.error ?? reset.error;
  return (
    <div className="op-page">
      <div className="op-title">
        <h1>{t("providers.title")}</h1>
        <button type="button" className="primary" onClick={() => check.mutate()} disabled={check.isPending}>
          {check.isPending ? t("providers.checking") : t("providers.check")}
        </button>
      </div>
      <div aria-live="polite">
        {error ? <p className="error" role="alert">{(error as Error).message}</p> : null}
        {reset.isSuccess ? <p className="ok" role="status">{t("providers.reset_done", { name: reset.variables })}</p> : null}
      </div>
      {list.isLoading ? <p className="muted" role="status">{t("loading")}</p> : null}
      <ul className="op-cards">
        {(list.data ?? []).map((state) => (
          <ProviderCard key={state.name} state={state} busy={reset.isPending}
                        onReset={() => reset.mutate(state.name)} />
        ))}
      </ul>
    </div>
  );
}
