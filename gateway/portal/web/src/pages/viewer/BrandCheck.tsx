// The viewer's "Brand check": one output of an image, video or design generation judged
// against a brand kit (GET /v1/generations/{id}/brand_compliance; docs/brand-compliance.md).
// The kit defaults to the one the generation used. The verdict shows as colour, icon and
// word; the reasons are told in the page's language from their codes and the report's
// numbers (the server's sentences are English).
import { useEffect, useId, useState, type CSSProperties } from "react";
import { useMutation } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import type { TFunction } from "i18next";
import { api, ApiError, unwrap, type Schemas } from "../../api/client";
import { formatNumber } from "../../i18n";
import { useBrandKits } from "../studio/BrandKitPicker";
import type { Generation } from "../gallery/api";

type Report = Schemas["BrandComplianceOut"];
const ICONS = { pass: "✓", warn: "!", fail: "✕" } as const;
const HEX = /#[0-9A-F]{6}/i;

/** Whether the check applies: a finished picture or video (a PDF design has no pixels). */
export function checkable(generation: Generation): boolean {
  const output = generation.outputs[0];
  return generation.status === "succeeded" && ["image", "video", "design"].includes(generation.type)
    && !!output && /^(image|video)\//.test(output.content_type);
}

function percent(share: number, lang: string): string {
  // Small shares keep a decimal: "0%" beside a listed colour would read as "absent".
  return formatNumber(share, lang, { style: "percent", maximumFractionDigits: share < 0.1 ? 1 : 0 });
}

function reasonText(t: TFunction, lang: string, report: Report, reason: Report["reasons"][number]): string {
  const n = (v: number, digits = 1) => formatNumber(v, lang, { maximumFractionDigits: digits });
  switch (reason.code) {
    case "off_palette": {
      const hex = HEX.exec(reason.message)?.[0]?.toUpperCase();
      const colour = report.dominant_colours.find((c) => c.hex.toUpperCase() === hex);
      if (colour && colour.delta_e !== null) {
        return t("brand.reason.off_palette", { hex: colour.hex, share: percent(colour.share, lang),
          delta: n(colour.delta_e), nearest: colour.nearest ?? "", nearest_hex: colour.nearest_hex ?? "",
          tolerance: n(report.tolerance) });
      }
      break;
    }
    case "low_palette_share":
      return t("brand.reason.low_palette_share", { share: percent(report.within_tolerance_share, lang),
        tolerance: n(report.tolerance), pass: percent(0.7, lang), fail: percent(0.4, lang) });
    case "low_contrast":
      return t("brand.reason.low_contrast");
    case "logo_missing":
      return report.logo.score === null ? t("brand.reason.logo_unsearchable")
        : t("brand.reason.logo_missing", { score: n(report.logo.score, 2), needed: n(0.8, 2) });
    case "no_palette":
      return t("brand.reason.no_palette");
  }
  return reason.message;
}

/** The picture with the found logo's box drawn over it (image pixels: physical left/top). */
function LogoBox({ src, box, width, height }: { src: string; box: readonly number[]; width: number; height: number }) {
  const { t } = useTranslation("viewer");
  const [x = 0, y = 0, w = 0, h = 0] = box;
  const style: CSSProperties = { left: `${(x / width) * 100}%`, top: `${(y / height) * 100}%`,
    width: `${(w / width) * 100}%`, height: `${(h / height) * 100}%` };
  return (
    <figure className="brand-logo-figure">
      <div className="brand-logo-frame">
        <img src={src} alt={t("brand.logo_where")} />
        <span className="brand-logo-box" style={style} data-testid="logo-box" />
      </div>
      <figcaption className="muted small">{t("brand.logo_box", { x, y, w, h })}</figcaption>
    </figure>
  );
}

function ReportView({ report, generation }: { report: Report; generation: Generation }) {
  const { t, i18n } = useTranslation("viewer");
  const lang = i18n.language;
  const output = generation.outputs[report.output_index];
  const n = (v: number, digits = 1) => formatNumber(v, lang, { maximumFractionDigits: digits });
  const [size, setSize] = useState<{ w: number; h: number } | null>(
    output?.width && output.height ? { w: output.width, h: output.height } : null);
  useEffect(() => {
    if (size || !output || !output.content_type.startsWith("image/")) return;
    const img = new Image();
    img.onload = () => setSize({ w: img.naturalWidth, h: img.naturalHeight });
    img.src = output.url;
  }, [output, size]);
  return (
    <div className="brand-report" data-testid="brand-report">
      <p className={`brand-verdict ${report.verdict}`} data-testid="brand-verdict" data-verdict={report.verdict}>
        <span aria-hidden="true" className="brand-icon">{ICONS[report.verdict]}</span>
        <strong>{t(`brand.verdict.${report.verdict}`)}</strong>
        <span className="muted small">{t("brand.against", { version: formatNumber(report.brand_kit_version, lang) })}</span>
      </p>
      {report.reasons.length > 0 ? (
        <>
          <h3>{t("brand.reasons")}</h3>
          <ul className="brand-reasons" data-testid="brand-reasons">
            {report.reasons.map((r, i) => (
              <li key={i} data-code={r.code}>{reasonText(t, lang, report, r)}</li>
            ))}
          </ul>
        </>
      ) : null}
      <h3>{t("brand.colours")}</h3>
      <p className="small">{t("brand.within", { share: percent(report.within_tolerance_share, lang), tolerance: n(report.tolerance) })}</p>
      <table className="brand-colours">
        <thead>
          <tr><th scope="col">{t("brand.colour")}</th><th scope="col">{t("brand.share")}</th>
            <th scope="col">{t("brand.nearest")}</th><th scope="col">{t("brand.delta_e")}</th></tr>
        </thead>
        <tbody>
          {report.dominant_colours.map((c) => {
            const within = c.delta_e !== null && c.delta_e <= report.tolerance;
            return (
              <tr key={c.hex}>
                <td className="nowrap"><span className="brand-swatch" style={{ background: c.hex }} aria-hidden="true" /> <bdi dir="ltr">{c.hex}</bdi></td>
                <td>{percent(c.share, lang)}</td>
                <td>{c.nearest ? <><span className="brand-swatch" style={{ background: c.nearest_hex ?? undefined }} aria-hidden="true" /> {c.nearest}</> : "—"}</td>
                <td className={`nowrap ${within ? "ok" : "off"}`}>{c.delta_e === null ? "—" : `${n(c.delta_e)} ${within ? "✓" : "✕"}`}
                  <span className="visually-hidden">{within ? t("brand.in_tolerance") : t("brand.out_of_tolerance")}</span></td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {report.contrast.length > 0 ? (
        <>
          <h3>{t("brand.contrast")}</h3>
          <ul className="brand-reasons">
            {report.contrast.map((c, i) => (
              <li key={i}>{t(c.passes_aa ? "brand.contrast_ok" : "brand.contrast_low", {
                text: c.text || "—", ratio: n(c.ratio, 2), fg: c.foreground, bg: c.background })}</li>
            ))}
          </ul>
        </>
      ) : null}
      <h3>{t("brand.logo")}</h3>
      <p data-testid="brand-logo">{!report.logo.expected ? t("brand.logo_none")
        : report.logo.found ? t("brand.logo_found", { score: n(report.logo.score ?? 0, 2) })
        : t("brand.logo_not_found")}</p>
      {report.logo.found && report.logo.box && output && output.content_type.startsWith("image/") && size ? (
        <LogoBox src={output.url} box={report.logo.box} width={size.w} height={size.h} />
      ) : null}
    </div>
  );
}

export default function BrandCheck({ generation }: { generation: Generation }) {
  const { t } = useTranslation("viewer");
  const id = useId();
  const kits = useBrandKits();
  const list = kits.data ?? [];
  const [kit, setKit] = useState<string>(generation.brand_kit_id ?? "");
  useEffect(() => {
    if (!kit && list.length > 0 && !generation.brand_kit_id) setKit(list[0]!.id);
  }, [kit, list, generation.brand_kit_id]);
  const run = useMutation<Report, Error, string>({
    mutationFn: async (kitId) => unwrap(await api.GET("/v1/generations/{generation_id}/brand_compliance", {
      params: { path: { generation_id: generation.id }, query: { brand_kit_id: kitId } } })) as Report,
  });
  if (!kits.isPending && list.length === 0 && !generation.brand_kit_id) return null;
  const usedKnown = !generation.brand_kit_id || list.some((k) => k.id === generation.brand_kit_id);
  const error = run.error instanceof ApiError
    ? t(`brand.errors.${run.error.code}`, { defaultValue: run.error.message }) : run.error ? t("brand.errors.network") : null;
  return (
    <section className="brand-check" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>{t("brand.title")}</h2>
      <div className="brand-controls">
        <label htmlFor={`${id}-kit`}>{t("brand.kit")}</label>
        <select id={`${id}-kit`} value={kit} onChange={(e) => { setKit(e.target.value); run.reset(); }}>
          {!usedKnown ? <option value={generation.brand_kit_id ?? ""}>{t("brand.used_kit")}</option> : null}
          {list.map((k) => (
            <option key={k.id} value={k.id}>
              {k.id === generation.brand_kit_id ? t("brand.kit_used", { name: k.name }) : k.name}
            </option>
          ))}
        </select>
        <button type="button" onClick={() => run.mutate(kit)} disabled={!kit || run.isPending}>
          {run.isPending ? t("brand.running") : t("brand.run")}
        </button>
      </div>
      <div aria-live="polite">
        {error ? <p className="error" role="alert">{error}</p> : null}
        {run.data ? <ReportView report={run.data} generation={generation} /> : null}
      </div>
    </section>
  );
}
