// The studio's "Brand kit" choice: shown only when the caller may read a kit (the tenant's,
// its team's, its own; GET /v1/brand_kits lists exactly those). The chosen kit goes with the
// generation as `brand_kit_id`; its colours show as swatches so the choice is visible.
import { useId } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, currentTeam, unwrap, type Schemas } from "../../api/client";

export type BrandKit = Schemas["BrandKitOut"];

/** The kits the caller may apply (the first 100: a picker longer than that is not a picker). */
export function useBrandKits() {
  return useQuery({
    queryKey: ["brand-kits", currentTeam()],
    queryFn: async () => unwrap(await api.GET("/v1/brand_kits", { params: { query: { limit: 100 } } })).data,
    staleTime: 60_000,
  });
}

export function KitSwatches({ kit }: { kit: BrandKit }) {
  const { t } = useTranslation("studio");
  return (
    <ul className="kit-swatches" aria-label={t("brand.colors", { name: kit.name })}>
      {kit.colors.map((c, i) => (
        <li key={`${c.hex}-${i}`}>
          <span className="kit-swatch" style={{ background: c.hex }} aria-hidden="true" />
          <span>{c.name} <bdi dir="ltr" className="muted">{c.hex.toUpperCase()}</bdi></span>
        </li>
      ))}
    </ul>
  );
}

export default function BrandKitPicker({ value, onChange }: { value: string | null; onChange(id: string | null): void }) {
  const { t } = useTranslation("studio");
  const id = useId();
  const kits = useBrandKits();
  const list = kits.data ?? [];
  if (list.length === 0) return null;
  const chosen = list.find((k) => k.id === value) ?? null;
  return (
    <div className="param brand-kit-picker">
      <label htmlFor={id}>{t("brand.kit")}</label>
      <select id={id} name="brand_kit_id" value={value ?? ""} onChange={(e) => onChange(e.target.value || null)}
              aria-describedby={`${id}-help`}>
        <option value="">{t("brand.none")}</option>
        {list.map((k) => <option key={k.id} value={k.id}>{k.name}</option>)}
      </select>
      <span id={`${id}-help`} className="param-help muted">{t("brand.help")}</span>
      {chosen ? <KitSwatches kit={chosen} /> : null}
    </div>
  );
}
