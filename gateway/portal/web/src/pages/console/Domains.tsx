// Custom domains: the list with each one's state, adding one (the token and where to serve
// it), verifying it (the gateway fetches the token; a failure says why) and removing it.
import { useState, type FormEvent } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, unwrap, type Schemas } from "../../api/client";
import { formatDate } from "../../i18n";
import { ConfirmButton, errorText, Field, FormError, ListState, useAction } from "./ui";

type Domain = Schemas["DomainOut"];

function Verification({ domain }: { domain: Domain }) {
  const { t } = useTranslation("console");
  if (!domain.verification || domain.status === "verified") return null;
  return (
    <div className="c-verification">
      <p>{t("domains.how")}</p>
      <dl>
        <dt>{t("domains.url")}</dt><dd><code dir="ltr">{domain.verification.url}</code></dd>
        <dt>{t("domains.token")}</dt><dd><code dir="ltr" data-testid="domain-token">{domain.verification.token}</code></dd>
      </dl>
      <p className="muted small" dir="ltr" lang="en">{domain.verification.instructions}</p>
    </div>
  );
}

function DomainRow({ domain }: { domain: Domain }) {
  const { t, i18n } = useTranslation("console");
  const queryClient = useQueryClient();
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["console", "domains"] });
  const verify = useMutation({
    mutationFn: async () => unwrap(await api.POST("/v1/tenant/domains/{hostname}/verify",
      { params: { path: { hostname: domain.hostname } } })),
    onSuccess: () => { setResult({ ok: true, text: t("domains.verified_now") }); void refresh(); },
    onError: (e) => setResult({ ok: false, text: errorText(t, e) }),
  });
  const remove = useMutation({
    mutationFn: async () => unwrap(await api.DELETE("/v1/tenant/domains/{hostname}",
      { params: { path: { hostname: domain.hostname } } })),
    onSuccess: () => void refresh(),
    onError: (e) => setResult({ ok: false, text: errorText(t, e) }),
  });
  const verified = domain.status === "verified";
  return (
    <li className="card c-domain" data-hostname={domain.hostname}>
      <div className="c-domain-head">
        <h3 dir="ltr">{domain.hostname}</h3>
        <span className={`c-badge ${verified ? "ok" : "pending"}`} data-testid="domain-status">
          {t(`domains.status.${domain.status}`, { defaultValue: domain.status })}
        </span>
      </div>
      {verified && domain.verified_at ? (
        <p className="muted small">{t("domains.verified_at", { date: formatDate(domain.verified_at, i18n.language) })}</p>
      ) : null}
      <Verification domain={domain} />
      <div className="c-actions">
        {!verified ? (
          <button type="button" className="primary" disabled={verify.isPending}
                  onClick={() => { setResult(null); verify.mutate(); }}>
            {verify.isPending ? t("domains.verifying") : t("domains.verify")}
          </button>
        ) : null}
        <ConfirmButton label={t("domains.delete")} ariaLabel={t("domains.delete_named", { host: domain.hostname })} disabled={remove.isPending}
                       question={t("domains.delete_q", { host: domain.hostname })}
                       onConfirm={() => remove.mutate()} />
      </div>
      {result ? <p role={result.ok ? "status" : "alert"} className={result.ok ? "c-ok" : "error"}
                   data-testid="verify-result">{result.text}</p> : null}
    </li>
  );
}

export default function Domains() {
  const { t } = useTranslation("console");
  const queryClient = useQueryClient();
  const [hostname, setHostname] = useState("");
  const action = useAction();
  const domains = useQuery({
    queryKey: ["console", "domains"],
    queryFn: async () => unwrap(await api.GET("/v1/tenant/domains")).data,
  });
  async function add(event: FormEvent) {
    event.preventDefault();
    await action.run(async () => {
      unwrap(await api.POST("/v1/tenant/domains", { body: { hostname: hostname.trim().toLowerCase() } }));
      setHostname("");
      await queryClient.invalidateQueries({ queryKey: ["console", "domains"] });
    });
  }
  const list = domains.data ?? [];
  return (
    <div className="c-page">
      <h1>{t("domains.title")}</h1>
      <p className="muted">{t("domains.intro")}</p>
      <form className="card c-form c-inline" onSubmit={(e) => void add(e)}>
        <Field label={t("domains.hostname")} param="hostname" action={action}>
          {(p) => <input {...p} value={hostname} dir="ltr" required placeholder="portal.example.com"
                         onChange={(e) => setHostname(e.target.value)} />}
        </Field>
        <button type="submit" className="primary" disabled={action.busy}>
          {action.busy ? t("common.adding") : t("domains.add")}
        </button>
        <FormError action={action} fields={["hostname"]} />
      </form>
      <ListState loading={domains.isPending} error={domains.error} empty={list.length === 0}
                 emptyText={t("domains.none")} />
      <ul className="c-cards">
        {list.map((d) => <DomainRow key={d.hostname} domain={d} />)}
      </ul>
    </div>
  );
}
