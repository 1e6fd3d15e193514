// Branding: every field of the tenant's branding, its images, and a live preview of the
// real portal (two iframes of this host, desktop and phone) that follows the draft as it is
// typed: the draft is posted into the frames (preview.ts is their side), nothing is saved
// until "Save".
import { useEffect, useRef, useState, type FormEvent } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, apiHeaders, ApiError, unwrap, type Schemas } from "../../api/client";
import { PREVIEW_MESSAGE, type PreviewDraft } from "../../preview";
import { ConfirmButton, Field, FormError, useAction, type Action } from "./ui";
import { useTenant, useTenantPatch, type Tenant } from "./tenant";

type BrandingIn = Schemas["BrandingIn"];
const COLORS = ["primary", "secondary", "accent", "background", "surface", "text", "muted",
  "border", "success", "warning", "error"] as const;
const FONT_ROLES = ["body", "heading", "mono"] as const;
const SUPPORT = ["email", "url", "terms_url", "privacy_url"] as const;
const IMAGES = ["logo", "favicon", "icon"] as const;
const HEX = /^#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i;

interface Draft {
  name: string;
  display_name: string;
  colors: Record<string, string>;
  fonts: Record<string, { family: string; fallbacks: string }>;
  css: { name: string; value: string }[];
  support: Record<string, string>;
  show_provider_names: boolean;
  open_signup: boolean;
  sender_email: string;
}

function draftOf(tenant: Tenant): Draft {
  const b = tenant.branding;
  const colors = (b.colors ?? {}) as Record<string, string | null | undefined>;
  const support = (b.support ?? {}) as Record<string, string | null | undefined>;
  return {
    name: tenant.name,
    display_name: b.display_name ?? "",
    colors: Object.fromEntries(COLORS.map((c) => [c, colors[c] ?? ""])),
    fonts: Object.fromEntries(FONT_ROLES.map((r) => [r, {
      family: b.fonts?.[r]?.family ?? "", fallbacks: (b.fonts?.[r]?.fallbacks ?? []).join(", ") }])),
    css: Object.entries(b.css_variables ?? {}).map(([name, value]) => ({ name, value })),
    support: Object.fromEntries(SUPPORT.map((s) => [s, support[s] ?? ""])),
    show_provider_names: b.show_provider_names ?? false,
    open_signup: b.open_signup ?? false,
    sender_email: b.sender_email ?? "",
  };
}

const orNull = (text: string) => (text.trim() ? text.trim() : null);

function brandingOf(draft: Draft): BrandingIn {
  const fonts: NonNullable<BrandingIn["fonts"]> = {};
  for (const role of FONT_ROLES) {
    const font = draft.fonts[role];
    if (font?.family.trim()) {
      fonts[role] = { family: font.family.trim(),
        fallbacks: font.fallbacks.split(",").map((f) => f.trim()).filter(Boolean) };
    }
  }
  return {
    display_name: orNull(draft.display_name),
    colors: Object.fromEntries(COLORS.map((c) => [c, orNull(draft.colors[c] ?? "")])),
    fonts,
    css_variables: Object.fromEntries(draft.css.filter((v) => v.name.trim())
      .map((v) => [v.name.trim(), v.value])),
    support: Object.fromEntries(SUPPORT.map((s) => [s, orNull(draft.support[s] ?? "")])),
    show_provider_names: draft.show_provider_names,
    open_signup: draft.open_signup,
    sender_email: orNull(draft.sender_email),
  };
}

/** What the framed portal applies: only colours that are valid yet (a half-typed "#0f" is not). */
function previewOf(draft: Draft, tenant: Tenant): PreviewDraft {
  const branding = brandingOf(draft);
  const colors = Object.fromEntries(Object.entries(branding.colors ?? {})
    .filter(([, v]) => typeof v === "string" && HEX.test(v)));
  return {
    type: PREVIEW_MESSAGE,
    name: draft.display_name.trim() || draft.name.trim() || tenant.name,
    branding: { colors, fonts: branding.fonts ?? {}, css_variables: branding.css_variables ?? {},
                support: branding.support ?? null, logo: tenant.branding.logo ?? null,
                favicon: tenant.branding.favicon ?? null, icon: tenant.branding.icon ?? null },
  };
}

/** The real portal (this host's sign-in page) at one size, scaled down, fed the draft. */
function PreviewFrame({ kind, draft }: { kind: "desktop" | "phone"; draft: PreviewDraft }) {
  const { t } = useTranslation("console");
  const frame = useRef<HTMLIFrameElement>(null);
  const latest = useRef(draft);
  latest.current = draft;
  const send = () => frame.current?.contentWindow?.postMessage(latest.current, window.location.origin);
  useEffect(() => { send(); }, [draft]);
  useEffect(() => {
    // The frame says when its listener is up: send the draft then (it may have changed
    // while the frame loaded).
    const onReady = (event: MessageEvent) => {
      if (event.origin === window.location.origin && event.source === frame.current?.contentWindow
          && (event.data as { type?: string } | null)?.type === `${PREVIEW_MESSAGE}:ready`) send();
    };
    window.addEventListener("message", onReady);
    return () => window.removeEventListener("message", onReady);
  }, []);
  return (
    <figure className={`c-preview c-preview-${kind}`}>
      <figcaption>{t(`branding.preview_${kind}`)}</figcaption>
      <div className="c-preview-box" inert>
        <iframe ref={frame} src="/signin" title={t(`branding.preview_${kind}`)}
                data-testid={`preview-${kind}`} onLoad={send} tabIndex={-1} />
      </div>
    </figure>
  );
}

function ImageSlot({ name, tenant }: { name: (typeof IMAGES)[number]; tenant: Tenant }) {
  const { t } = useTranslation("console");
  const queryClient = useQueryClient();
  const action = useAction();
  const asset = tenant.branding[name];
  const refresh = () => queryClient.invalidateQueries({ queryKey: ["console", "tenant"] });
  async function upload(file: File) {
    await action.run(async () => {
      const r = await fetch(`/v1/tenant/branding/${name}`, {
        method: "PUT", body: file, credentials: "same-origin",
        headers: { ...apiHeaders("PUT"), "Content-Type": file.type || "application/octet-stream" } });
      if (!r.ok) {
        const body = await r.json().catch(() => null) as { error?: { code?: string; message?: string; param?: string } } | null;
        throw new ApiError(r.status, body?.error?.code ?? "error", body?.error?.message ?? r.statusText, body?.error?.param);
      }
      await refresh();
    });
  }
  return (
    <li className="card c-image">
      <h3>{t(`branding.image.${name}`)}</h3>
      {asset ? <img src={asset.url} alt={t("branding.image.current", { name: t(`branding.image.${name}`) })} /> :
        <p className="muted">{t("branding.image.none")}</p>}
      <Field label={t("branding.image.upload")} param="body" action={action} hint={t("branding.image.hint")}>
        {(p) => <input {...p} type="file" accept="image/png,image/jpeg,image/webp,image/x-icon"
                       disabled={action.busy}
                       onChange={(e) => { const f = e.target.files?.[0]; if (f) void upload(f); e.target.value = ""; }} />}
      </Field>
      {asset ? (
        <ConfirmButton label={t("branding.image.delete")} question={t("branding.image.delete_q")}
                       disabled={action.busy}
                       onConfirm={() => void action.run(async () => {
                         unwrap(await api.DELETE("/v1/tenant/branding/{name}", { params: { path: { name } } }));
                         await refresh();
                       })} />
      ) : null}
      <FormError action={action} fields={["body"]} />
    </li>
  );
}

function ColorField({ name, value, onChange, action }: {
  name: string; value: string; onChange: (v: string) => void; action: Action }) {
  const { t } = useTranslation("console");
  const label = t(`branding.color.${name}`);
  // An empty field means "the portal's default": the swatch and placeholder show that colour
  // (as this page has it) rather than a black that nobody chose.
  const [effective] = useState(() => getComputedStyle(document.documentElement)
    .getPropertyValue(`--color-${name}`).trim().toLowerCase());
  // The picker takes #rrggbb only: #rgb is widened, anything else shows the default.
  const six = (v: string) => {
    const short = /^#([0-9a-f])([0-9a-f])([0-9a-f])$/i.exec(v);
    if (short) return `#${short[1]}${short[1]}${short[2]}${short[2]}${short[3]}${short[3]}`;
    return /^#[0-9a-f]{6}$/i.test(v) ? v : null;
  };
  const swatch = six(value) ?? six(effective) ?? "#000000";
  return (
    <Field label={label} param={`branding.colors.${name}`} action={action}>
      {(p) => (
        <span className="c-color">
          <input {...p} type="text" value={value} placeholder={effective || "#rrggbb"} dir="ltr" spellCheck={false}
                 onChange={(e) => onChange(e.target.value)} name={`color-${name}`} />
          <input type="color" value={swatch} aria-label={t("branding.color.pick", { name: label })}
                 onChange={(e) => onChange(e.target.value)} />
        </span>
      )}
    </Field>
  );
}

function BrandingForm({ tenant }: { tenant: Tenant }) {
  const { t } = useTranslation("console");
  const [draft, setDraft] = useState(() => draftOf(tenant));
  const [saved, setSaved] = useState(false);
  const action = useAction();
  const patch = useTenantPatch();
  const set = (change: Partial<Draft>) => { setSaved(false); setDraft((d) => ({ ...d, ...change })); };
  const preview = previewOf(draft, tenant);
  async function save(event: FormEvent) {
    event.preventDefault();
    const ok = await action.run(async () => {
      await patch.mutateAsync({ name: draft.name.trim(), branding: brandingOf(draft) });
    });
    setSaved(ok);
  }
  return (
    <div className="c-branding">
      <form className="c-form" onSubmit={(e) => void save(e)} noValidate>
        <fieldset>
          <legend>{t("branding.identity")}</legend>
          <Field label={t("branding.name")} param="name" action={action}>
            {(p) => <input {...p} name="name" value={draft.name} required maxLength={200}
                           onChange={(e) => set({ name: e.target.value })} />}
          </Field>
          <Field label={t("branding.display_name")} param="branding.display_name" action={action}
                 hint={t("branding.display_name_hint")}>
            {(p) => <input {...p} name="display_name" value={draft.display_name}
                           onChange={(e) => set({ display_name: e.target.value })} />}
          </Field>
        </fieldset>
        <fieldset>
          <legend>{t("branding.colors")}</legend>
          <div className="c-grid">
            {COLORS.map((c) => (
              <ColorField key={c} name={c} value={draft.colors[c] ?? ""} action={action}
                          onChange={(v) => set({ colors: { ...draft.colors, [c]: v } })} />
            ))}
          </div>
        </fieldset>
        <fieldset>
          <legend>{t("branding.fonts")}</legend>
          <div className="c-grid">
            {FONT_ROLES.map((r) => (
              <div key={r} className="c-font">
                <Field label={t(`branding.font.${r}`)} param={`branding.fonts.${r}`} action={action}>
                  {(p) => <input {...p} value={draft.fonts[r]?.family ?? ""} dir="ltr"
                                 onChange={(e) => set({ fonts: { ...draft.fonts, [r]: { family: e.target.value, fallbacks: draft.fonts[r]?.fallbacks ?? "" } } })} />}
                </Field>
                <Field label={t("branding.font.fallbacks", { role: t(`branding.font.${r}`) })} hint={t("branding.font.fallbacks_hint")}>
                  {(p) => <input {...p} value={draft.fonts[r]?.fallbacks ?? ""} dir="ltr"
                                 onChange={(e) => set({ fonts: { ...draft.fonts, [r]: { family: draft.fonts[r]?.family ?? "", fallbacks: e.target.value } } })} />}
                </Field>
              </div>
            ))}
          </div>
        </fieldset>
        <fieldset>
          <legend>{t("branding.css")}</legend>
          <p className="muted small">{t("branding.css_hint")}</p>
          {draft.css.map((v, i) => (
            <div key={i} className="c-row">
              <Field label={t("branding.css_name")} param={`branding.css_variables`} action={action}>
                {(p) => <input {...p} value={v.name} dir="ltr" placeholder="--radius"
                               onChange={(e) => set({ css: draft.css.map((x, j) => j === i ? { ...x, name: e.target.value } : x) })} />}
              </Field>
              <Field label={t("branding.css_value")}>
                {(p) => <input {...p} value={v.value} dir="ltr"
                               onChange={(e) => set({ css: draft.css.map((x, j) => j === i ? { ...x, value: e.target.value } : x) })} />}
              </Field>
              <button type="button" onClick={() => set({ css: draft.css.filter((_, j) => j !== i) })}
                      aria-label={t("branding.css_remove", { name: v.name || i + 1 })}>{t("common.remove")}</button>
            </div>
          ))}
          <button type="button" onClick={() => set({ css: [...draft.css, { name: "", value: "" }] })}>
            {t("branding.css_add")}
          </button>
        </fieldset>
        <fieldset>
          <legend>{t("branding.support")}</legend>
          <div className="c-grid">
            {SUPPORT.map((s) => (
              <Field key={s} label={t(`branding.support_${s}`)} param={`branding.support.${s}`} action={action}>
                {(p) => <input {...p} type={s === "email" ? "email" : "url"} dir="ltr" value={draft.support[s] ?? ""}
                               onChange={(e) => set({ support: { ...draft.support, [s]: e.target.value } })} />}
              </Field>
            ))}
          </div>
        </fieldset>
        <fieldset>
          <legend>{t("branding.behaviour")}</legend>
          <Field label={t("branding.sender_email")} param="branding.sender_email" action={action}
                 hint={t("branding.sender_email_hint")}>
            {(p) => <input {...p} type="email" dir="ltr" value={draft.sender_email}
                           onChange={(e) => set({ sender_email: e.target.value })} />}
          </Field>
          <label className="c-check">
            <input type="checkbox" checked={draft.show_provider_names}
                   onChange={(e) => set({ show_provider_names: e.target.checked })} />
            {t("branding.show_provider_names")}
          </label>
          <label className="c-check">
            <input type="checkbox" checked={draft.open_signup}
                   onChange={(e) => set({ open_signup: e.target.checked })} />
            {t("branding.open_signup")}
          </label>
        </fieldset>
        <FormError action={action} fields={["name", "branding.display_name", "branding.colors",
          "branding.fonts", "branding.css_variables", "branding.support", "branding.sender_email"]} />
        <div className="c-actions c-sticky">
          <button type="submit" className="primary" disabled={action.busy}>
            {action.busy ? t("common.saving") : t("common.save")}
          </button>
          <button type="button" disabled={action.busy} onClick={() => { action.reset(); setDraft(draftOf(tenant)); }}>
            {t("common.discard")}
          </button>
          {saved ? <span role="status" className="c-ok">{t("common.saved")}</span> : null}
        </div>
      </form>
      <aside className="c-previews" aria-label={t("branding.preview")}>
        <h2>{t("branding.preview")}</h2>
        <p className="muted small">{t("branding.preview_hint")}</p>
        <PreviewFrame kind="desktop" draft={preview} />
        <PreviewFrame kind="phone" draft={preview} />
      </aside>
    </div>
  );
}

export default function Branding() {
  const { t } = useTranslation("console");
  const tenant = useTenant();
  return (
    <div className="c-page">
      <h1>{t("branding.title")}</h1>
      {tenant.isError ? <p role="alert" className="error">{t("errors.load")}</p> : null}
      {tenant.data ? (
        <>
          <BrandingForm tenant={tenant.data} />
          <section aria-labelledby="images-heading">
            <h2 id="images-heading">{t("branding.images")}</h2>
            <ul className="c-images">
              {IMAGES.map((name) => <ImageSlot key={name} name={name} tenant={tenant.data} />)}
            </ul>
          </section>
        </>
      ) : <p className="muted" role="status">{t("common.loading")}</p>}
    </div>
  );
}
