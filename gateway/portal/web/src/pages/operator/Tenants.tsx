// Tenants: the list (newest first, a page at a time) and the form that creates one.
import { useState, type FormEvent } from "react";
import { useInfiniteQuery, useMutation, useQueryClient } from "@tanstack/react-query";
import { Link, useNavigate } from "react-router";
import { useTranslation } from "react-i18next";
import { ApiError, unwrap } from "../../api/client";
import { formatDate } from "../../i18n";
import { admin, type Tenant } from "./api";

function CreateTenant() {
  const { t } = useTranslation("operator");
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const [slug, setSlug] = useState("");
  const [mode, setMode] = useState<"self" | "mediahub">("self");
  const create = useMutation({
    mutationFn: async () => unwrap(await admin.POST("/admin/v1/tenants", {
      body: { name: name.trim(), slug: slug.trim(), billing_mode: mode, low_balance_threshold_mc: 0 } })),
    onSuccess: (tenant) => {
      void queryClient.invalidateQueries({ queryKey: ["operator", "tenants"] });
      void navigate(`/operator/tenants/${tenant.id}`);
    },
  });
  function submit(event: FormEvent) {
    event.preventDefault();
    create.mutate();
  }
  const error = create.error instanceof ApiError ? create.error : null;
  return (
    <section className="card" aria-labelledby="create-tenant">
      <h2 id="create-tenant">{t("tenants.create.title")}</h2>
      <form className="form op-inline-form" onSubmit={submit}>
        <label>{t("tenants.fields.name")}
          <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label>{t("tenants.fields.slug")}
          <input required pattern="[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?" value={slug} dir="ltr"
                 onChange={(e) => setSlug(e.target.value)} aria-describedby="slug-hint" />
          <span id="slug-hint" className="hint">{t("tenants.create.slug_hint")}</span>
        </label>
        <label>{t("tenants.fields.billing_mode")}
          <select value={mode} onChange={(e) => setMode(e.target.value as "self" | "mediahub")}>
            <option value="self">{t("billing_modes.self")}</option>
            <option value="mediahub">{t("billing_modes.mediahub")}</option>
          </select>
        </label>
        <div className="op-form-end">
          <button type="submit" className="primary" disabled={create.isPending}>{t("tenants.create.submit")}</button>
        </div>
      </form>
      {error ? <p className="error" role="alert">{error.message}</p> : null}
    </section>
  );
}

export function SuspendedBadge({ tenant }: { tenant: Tenant }) {
  const { t } = useTranslation("operator");
  return tenant.suspended_at ? <span className="badge badge-bad">{t("tenants.suspended")}</span>
                             : <span className="badge badge-ok">{t("tenants.active")}</span>;
}

export default function Tenants() {
  const { t, i18n } = useTranslation("operator");
  const list = useInfiniteQuery({
    queryKey: ["operator", "tenants"],
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam }) => unwrap(await admin.GET("/admin/v1/tenants", {
      params: { query: { limit: 25, cursor: pageParam } } })),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const tenants = (list.data?.pages.flatMap((p) => p.data) ?? []) as Tenant[];
  return (
    <div className="op-page">
      <h1>{t("tenants.title")}</h1>
      <CreateTenant />
      <section className="card" aria-labelledby="tenant-list">
        <h2 id="tenant-list">{t("tenants.list")}</h2>
        {list.isError ? <p className="error" role="alert">{(list.error as Error).message}</p> : null}
        {list.isLoading ? <p className="muted" role="status">{t("loading")}</p> : null}
        <div className="op-table-wrap" tabIndex={0} role="region" aria-labelledby="tenant-list">
          <table className="op-table tenant-table">
            <caption className="visually-hidden">{t("tenants.list")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("tenants.fields.name")}</th>
                <th scope="col">{t("tenants.fields.slug")}</th>
                <th scope="col">{t("tenants.fields.billing_mode")}</th>
                <th scope="col">{t("tenants.fields.status")}</th>
                <th scope="col">{t("tenants.fields.created_at")}</th>
              </tr>
            </thead>
            <tbody>
              {tenants.map((tenant) => (
                <tr key={tenant.id}>
                  <th scope="row"><Link to={`/operator/tenants/${tenant.id}`}>{tenant.name}</Link></th>
                  <td><bdi>{tenant.slug}</bdi></td>
                  <td>{t(`billing_modes.${tenant.billing_mode}`, { defaultValue: tenant.billing_mode })}</td>
                  <td><SuspendedBadge tenant={tenant} /></td>
                  <td>{formatDate(tenant.created_at, i18n.language)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {list.hasNextPage ? (
          <button type="button" onClick={() => void list.fetchNextPage()} disabled={list.isFetchingNextPage}>
            {t("load_more")}
          </button>
        ) : null}
      </section>
    </div>
  );
}
