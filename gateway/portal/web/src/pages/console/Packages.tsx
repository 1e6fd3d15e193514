// Credit packages: what the tenant's customers can buy with Stripe Checkout. Create, edit
// (name, credits, price) and retire (a retired package is no longer on sale; bought ones stay).
import { useState, type FormEvent } from "react";
import { useInfiniteQuery, useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, unwrap, type Schemas } from "../../api/client";
import { formatCredits } from "../../i18n";
import { formatPrice } from "../credits/Credits";
import { ConfirmButton, creditsToMc, Field, FormError, ListState, MoreButton, useAction } from "./ui";

type Package = Schemas["PackageOut"];

function PackageForm({ initial, onDone }: { initial?: Package; onDone: () => void }) {
  const { t } = useTranslation("console");
  const queryClient = useQueryClient();
  const action = useAction();
  const [name, setName] = useState(initial?.name ?? "");
  const [credits, setCredits] = useState(initial ? String(initial.credits / 1000) : "");
  const [price, setPrice] = useState(initial ? String(initial.price_cents / 100) : "");
  const [currency, setCurrency] = useState(initial?.currency ?? "usd");
  async function submit(event: FormEvent) {
    event.preventDefault();
    const ok = await action.run(async () => {
      const body = { name: name.trim(), credits: creditsToMc(credits) ?? 0,
                     price_cents: Math.round(Number(price) * 100) };
      if (initial) {
        unwrap(await api.PATCH("/v1/credits/packages/{package_id}",
          { params: { path: { package_id: initial.id } }, body }));
      } else {
        unwrap(await api.POST("/v1/credits/packages", { body: { ...body, currency } }));
      }
      await queryClient.invalidateQueries({ queryKey: ["console", "packages"] });
    });
    if (ok) onDone();
  }
  return (
    <form className="card c-form" onSubmit={(e) => void submit(e)}>
      <h2>{initial ? t("packages.edit_title", { name: initial.name }) : t("packages.new")}</h2>
      <div className="c-grid">
        <Field label={t("packages.name")} param="name" action={action}>
          {(p) => <input {...p} value={name} required onChange={(e) => setName(e.target.value)} />}
        </Field>
        <Field label={t("packages.credits")} param="credits" action={action}>
          {(p) => <input {...p} inputMode="decimal" value={credits} required onChange={(e) => setCredits(e.target.value)} />}
        </Field>
        <Field label={t("packages.price")} param="price_cents" action={action} hint={t("packages.price_hint")}>
          {(p) => <input {...p} inputMode="decimal" value={price} required onChange={(e) => setPrice(e.target.value)} />}
        </Field>
        {!initial ? (
          <Field label={t("packages.currency")} param="currency" action={action}>
            {(p) => <input {...p} value={currency} maxLength={3} dir="ltr" onChange={(e) => setCurrency(e.target.value.toLowerCase())} />}
          </Field>
        ) : null}
      </div>
      <FormError action={action} fields={["name", "credits", "price_cents", "currency"]} />
      <div className="c-actions">
        <button type="submit" className="primary" disabled={action.busy}>{action.busy ? t("common.saving") : t("common.save")}</button>
        <button type="button" onClick={onDone}>{t("common.cancel")}</button>
      </div>
    </form>
  );
}

export default function Packages() {
  const { t, i18n } = useTranslation("console");
  const queryClient = useQueryClient();
  const [editing, setEditing] = useState<Package | "new" | null>(null);
  const retire = useAction();
  const packages = useInfiniteQuery({
    queryKey: ["console", "packages"],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }) => unwrap(await api.GET("/v1/credits/packages",
      { params: { query: { limit: 50, ...(pageParam ? { cursor: pageParam } : {}) } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  });
  const rows = packages.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <div className="c-page">
      <h1>{t("packages.title")}</h1>
      <p className="muted">{t("packages.intro")}</p>
      {editing === null ? <button type="button" className="primary" onClick={() => setEditing("new")}>{t("packages.new")}</button> : null}
      {editing !== null ? <PackageForm key={editing === "new" ? "new" : editing.id}
                                       initial={editing === "new" ? undefined : editing}
                                       onDone={() => setEditing(null)} /> : null}
      <FormError action={retire} />
      <ListState loading={packages.isPending} error={packages.error} empty={rows.length === 0} emptyText={t("packages.none")} />
      {rows.length > 0 ? (
        <table className="c-table">
          <thead><tr>
            <th scope="col">{t("packages.name")}</th><th scope="col">{t("packages.credits")}</th>
            <th scope="col">{t("packages.price")}</th><th scope="col">{t("packages.state")}</th>
            <th scope="col"><span className="visually-hidden">{t("common.actions")}</span></th>
          </tr></thead>
          <tbody>
            {rows.map((p) => (
              <tr key={p.id}>
                <td data-label={t("packages.name")}>{p.name}</td>
                <td data-label={t("packages.credits")}>{formatCredits(p.credits, i18n.language)}</td>
                <td data-label={t("packages.price")}>{formatPrice(p.price_cents, p.currency, i18n.language)}</td>
                <td data-label={t("packages.state")}>
                  <span className={`c-badge ${p.active ? "ok" : ""}`}>{p.active ? t("packages.active") : t("packages.retired")}</span>
                </td>
                <td className="c-cell-actions">
                  {p.active ? (
                    <>
                      <button type="button" onClick={() => setEditing(p)}
                              aria-label={t("packages.edit_named", { name: p.name })}>{t("common.edit")}</button>
                      <ConfirmButton label={t("packages.retire")} ariaLabel={t("packages.retire_named", { name: p.name })} disabled={retire.busy}
                                     question={t("packages.retire_q", { name: p.name })}
                                     onConfirm={() => void retire.run(async () => {
                                       unwrap(await api.POST("/v1/credits/packages/{package_id}/retire",
                                         { params: { path: { package_id: p.id } } }));
                                       await queryClient.invalidateQueries({ queryKey: ["console", "packages"] });
                                     })} />
                    </>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <MoreButton hasMore={!!packages.hasNextPage} loading={packages.isFetchingNextPage}
                  onMore={() => void packages.fetchNextPage()} />
    </div>
  );
}
