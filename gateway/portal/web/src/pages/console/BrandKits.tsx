// Brand kits (docs/brand-kits.md): the kits the signed-in staff member may read (the
// tenant's, and the team and customer kits the API shows them), and a kit's editor: named
// colours, fonts with a live sample in the uploaded face, logos, default voice, word lists as
// chips, version history and delete. Every change is a new version on the server.
import { useEffect, useId, useState, type FormEvent, type KeyboardEvent } from "react";
import { Link, Route, Routes, useNavigate, useParams } from "react-router";
import { useInfiniteQuery, useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, apiHeaders, ApiError, unwrap, type Schemas } from "../../api/client";
import { formatDate, formatNumber } from "../../i18n";
import { ConfirmButton, Field, FormError, ListState, MoreButton, useAction, type Action } from "./ui";

type Kit = Schemas["BrandKitOut"];
type Asset = Schemas["AssetOut"];
type Version = Schemas["VersionOut"];
const WORD_LISTS = ["tone_words", "style_words", "do_words", "dont_words"] as const;
type WordList = (typeof WORD_LISTS)[number];
const HEX6 = /^#[0-9a-f]{6}$/i;
const MAX_COLORS = 16;
const MAX_WORDS = 32;

interface Draft {
  name: string;
  colors: { name: string; hex: string }[];
  default_voice: string;
  words: Record<WordList, string[]>;
}

function draftOf(kit: Kit | null): Draft {
  return {
    name: kit?.name ?? "",
    colors: kit ? kit.colors.map((c) => ({ name: c.name, hex: c.hex })) : [{ name: "Primary", hex: "#0A7C66" }],
    default_voice: kit?.default_voice ?? "",
    words: Object.fromEntries(WORD_LISTS.map((w) => [w, kit ? [...kit[w]] : []])) as Record<WordList, string[]>,
  };
}

function bodyOf(draft: Draft) {
  return {
    name: draft.name.trim(),
    colors: draft.colors.map((c) => ({ name: c.name.trim(), hex: c.hex.trim() })),
    default_voice: draft.default_voice || null,
    ...draft.words,
  };
}

/** POSTs a file as the raw body (the API reads its type from Content-Type). */
async function uploadFile(kitId: string, kind: "fonts" | "logos", file: File): Promise<Kit> {
  const r = await fetch(`/v1/brand_kits/${encodeURIComponent(kitId)}/${kind}?filename=${encodeURIComponent(file.name)}`, {
    method: "POST", body: file, credentials: "same-origin",
    headers: { ...apiHeaders("POST"), "Content-Type": file.type || "application/octet-stream" } });
  const body = await r.json().catch(() => null) as (Kit & { error?: { code?: string; message?: string; param?: string } }) | null;
  if (!r.ok || !body) {
    throw new ApiError(r.status, body?.error?.code ?? "error", body?.error?.message ?? r.statusText, body?.error?.param);
  }
  return body;
}

export function Swatches({ colors, label }: { colors: readonly { name: string; hex: string }[]; label: string }) {
  return (
    <ul className="c-swatches" aria-label={label}>
      {colors.map((c, i) => (
        <li key={`${c.hex}-${i}`} title={`${c.name} ${c.hex}`}>
          <span className="c-swatch" style={{ background: c.hex }} aria-hidden="true" />
          <span className="small">{c.name} <bdi dir="ltr" className="muted">{c.hex.toUpperCase()}</bdi></span>
        </li>
      ))}
    </ul>
  );
}

function OwnerBadge({ owner }: { owner: Kit["owner"] }) {
  const { t } = useTranslation("console");
  return <span className="c-badge">{t(`brand_kits.owner.${owner.type}`, { defaultValue: owner.type })}</span>;
}

function KitList() {
  const { t, i18n } = useTranslation("console");
  const kits = useInfiniteQuery({
    queryKey: ["console", "brand-kits"],
    initialPageParam: null as string | null,
    queryFn: async ({ pageParam }) => unwrap(await api.GET("/v1/brand_kits",
      { params: { query: { limit: 25, ...(pageParam ? { after: pageParam } : {}) } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  });
  const rows = kits.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <div className="c-page">
      <div className="c-domain-head">
        <h1>{t("brand_kits.title")}</h1>
        <Link className="button primary" to="/console/brand-kits/new">{t("brand_kits.new")}</Link>
      </div>
      <p className="muted">{t("brand_kits.intro")}</p>
      <ListState loading={kits.isPending} error={kits.error} empty={rows.length === 0} emptyText={t("brand_kits.none")} />
      <ul className="c-cards">
        {rows.map((kit) => (
          <li key={kit.id} className="card" data-testid="brand-kit">
            <div className="c-domain-head">
              <h2><Link to={`/console/brand-kits/${kit.id}`}>{kit.name}</Link></h2>
              <span className="c-actions">
                <OwnerBadge owner={kit.owner} />
                <span className="c-badge" data-testid="kit-version">{t("brand_kits.version_n", { n: formatNumber(kit.version, i18n.language) })}</span>
              </span>
            </div>
            <Swatches colors={kit.colors} label={t("brand_kits.colors")} />
            <p className="muted small">{t("brand_kits.summary", {
              fonts: kit.fonts.length, logos: kit.logos.length, date: formatDate(kit.updated_at, i18n.language) })}</p>
          </li>
        ))}
      </ul>
      <MoreButton hasMore={!!kits.hasNextPage} loading={kits.isFetchingNextPage} onMore={() => void kits.fetchNextPage()} />
    </div>
  );
}

function ChipInput({ list, label, values, onChange, action }: {
  list: WordList; label: string; values: string[]; onChange: (v: string[]) => void; action: Action }) {
  const { t } = useTranslation("console");
  const [text, setText] = useState("");
  const add = () => {
    const word = text.trim();
    if (!word || values.includes(word) || values.length >= MAX_WORDS) return;
    onChange([...values, word]);
    setText("");
  };
  const onKey = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "Enter" || e.key === ",") { e.preventDefault(); add(); }
  };
  return (
    <Field label={label} param={list} action={action} hint={t("brand_kits.words_hint")}>
      {(p) => (
        <div className="c-chips">
          <ul aria-label={t("brand_kits.chosen_words", { list: label })}>
            {values.map((w) => (
              <li key={w} className="c-chip">
                <span>{w}</span>
                <button type="button" aria-label={t("brand_kits.remove_word", { word: w })}
                        onClick={() => onChange(values.filter((x) => x !== w))}>×</button>
              </li>
            ))}
          </ul>
          <span className="c-color">
            <input {...p} value={text} maxLength={64} name={list} onChange={(e) => setText(e.target.value)} onKeyDown={onKey} />
            <button type="button" onClick={add} disabled={!text.trim()}
                    aria-label={t("brand_kits.add_word", { list: label })}>{t("brand_kits.add")}</button>
          </span>
        </div>
      )}
    </Field>
  );
}

function VoicePicker({ value, onChange, action }: { value: string; onChange: (v: string) => void; action: Action }) {
  const { t } = useTranslation("console");
  // Voices are per provider: every configured provider that speaks lists its own.
  const speakers = useQuery({
    queryKey: ["console", "speech-providers"],
    queryFn: async () => unwrap(await api.GET("/v1/providers", { params: { query: { type: "audio" } as never } }))
      .data.filter((p) => p.operations.includes("text_to_speech") && p.status !== "unconfigured").map((p) => p.name),
    staleTime: 300_000,
  });
  const lists = useQueries({
    queries: (speakers.data ?? []).map((provider) => ({
      queryKey: ["console", "voices", provider],
      queryFn: async () => unwrap(await api.GET("/v1/voices", { params: { query: { provider } } })).data,
      staleTime: 300_000,
    })),
  });
  const voices = { isError: speakers.isError || lists.some((q) => q.isError) };
  const list = lists.flatMap((q) => q.data ?? []);
  const known = !value || list.some((v) => v.id === value);
  return (
    <Field label={t("brand_kits.voice")} param="default_voice" action={action}
           hint={voices.isError ? t("brand_kits.voices_unavailable") : undefined}>
      {(p) => (
        <select {...p} value={value} name="default_voice" onChange={(e) => onChange(e.target.value)}>
          <option value="">{t("brand_kits.no_voice")}</option>
          {!known ? <option value={value}>{value}</option> : null}
          {list.map((v) => <option key={`${v.provider}:${v.id}`} value={v.id}>{v.name} ({v.provider})</option>)}
        </select>
      )}
    </Field>
  );
}

function KitForm({ kit, onSaved }: { kit: Kit | null; onSaved: (kit: Kit) => void }) {
  const { t, i18n } = useTranslation("console");
  const [draft, setDraft] = useState(() => draftOf(kit));
  const [saved, setSaved] = useState(false);
  const action = useAction();
  useEffect(() => { setDraft(draftOf(kit)); }, [kit?.id, kit?.version]);
  const set = (change: Partial<Draft>) => { setSaved(false); setDraft((d) => ({ ...d, ...change })); };
  const setColor = (i: number, change: Partial<Draft["colors"][number]>) =>
    set({ colors: draft.colors.map((c, j) => (j === i ? { ...c, ...change } : c)) });
  async function save(event: FormEvent) {
    event.preventDefault();
    let result: Kit | null = null;
    const ok = await action.run(async () => {
      result = kit
        ? unwrap(await api.PATCH("/v1/brand_kits/{kit_id}", { params: { path: { kit_id: kit.id } }, body: bodyOf(draft) }))
        : unwrap(await api.POST("/v1/brand_kits", { body: bodyOf(draft) }));
    });
    setSaved(ok);
    if (ok && result) onSaved(result);
  }
  return (
    <form className="c-form" onSubmit={(e) => void save(e)} noValidate aria-label={t("brand_kits.details")}>
      <fieldset>
        <legend>{t("brand_kits.details")}</legend>
        <Field label={t("brand_kits.name")} param="name" action={action}>
          {(p) => <input {...p} name="name" value={draft.name} required maxLength={200}
                         onChange={(e) => set({ name: e.target.value })} />}
        </Field>
        <VoicePicker value={draft.default_voice} onChange={(v) => set({ default_voice: v })} action={action} />
      </fieldset>
      <fieldset>
        <legend>{t("brand_kits.colors")}</legend>
        {draft.colors.map((c, i) => (
          <div key={i} className="c-row c-kit-color">
            <Field label={t("brand_kits.color_name")} param={`colors[${i}].name`} action={action}>
              {(p) => <input {...p} value={c.name} maxLength={64} name={`color-name-${i}`}
                             onChange={(e) => setColor(i, { name: e.target.value })} />}
            </Field>
            <Field label={t("brand_kits.color_hex")} param={`colors[${i}].hex`} action={action}>
              {(p) => (
                <span className="c-color">
                  <input {...p} value={c.hex} dir="ltr" spellCheck={false} placeholder="#rrggbb" name={`color-hex-${i}`}
                         onChange={(e) => setColor(i, { hex: e.target.value })} />
                  <input type="color" value={HEX6.test(c.hex) ? c.hex.toLowerCase() : "#000000"}
                         aria-label={t("brand_kits.pick_color", { name: c.name || i + 1 })}
                         onChange={(e) => setColor(i, { hex: e.target.value.toUpperCase() })} />
                </span>
              )}
            </Field>
            <button type="button" disabled={draft.colors.length <= 1}
                    aria-label={t("brand_kits.remove_color", { name: c.name || i + 1 })}
                    onClick={() => set({ colors: draft.colors.filter((_, j) => j !== i) })}>{t("common.remove")}</button>
          </div>
        ))}
        {draft.colors.length < MAX_COLORS ? (
          <button type="button" className="c-start"
                  onClick={() => set({ colors: [...draft.colors, { name: "", hex: "#FFFFFF" }] })}>
            {t("brand_kits.add_color")}
          </button>
        ) : null}
      </fieldset>
      <fieldset>
        <legend>{t("brand_kits.words")}</legend>
        <div className="c-grid c-grid-wide">
          {WORD_LISTS.map((w) => (
            <ChipInput key={w} list={w} label={t(`brand_kits.${w}`)} values={draft.words[w]} action={action}
                       onChange={(v) => set({ words: { ...draft.words, [w]: v } })} />
          ))}
        </div>
      </fieldset>
      <FormError action={action} fields={["name", "colors", "default_voice", ...WORD_LISTS]} />
      <div className="c-actions">
        <button type="submit" className="primary" disabled={action.busy}>
          {action.busy ? t("common.saving") : kit ? t("common.save") : t("brand_kits.create")}
        </button>
        {kit ? (
          <button type="button" disabled={action.busy} onClick={() => { action.reset(); setDraft(draftOf(kit)); }}>
            {t("common.discard")}
          </button>
        ) : null}
        {saved && kit ? <span role="status" className="c-ok">{t("brand_kits.saved", { n: formatNumber(kit.version, i18n.language) })}</span> : null}
      </div>
    </form>
  );
}

/** The font's own face, loaded from its asset URL through the FontFace API. */
function FontSample({ asset }: { asset: Asset }) {
  const { t } = useTranslation("console");
  const family = `brandkit-${asset.id}`;
  const [state, setState] = useState<"loading" | "ready" | "failed">("loading");
  useEffect(() => {
    let live = true;
    const face = new FontFace(family, `url(${asset.url})`);
    face.load().then((loaded) => {
      document.fonts.add(loaded);
      if (live) setState("ready");
    }, () => { if (live) setState("failed"); });
    return () => { live = false; };
  }, [asset.url, family]);
  return (
    <p className="c-font-sample" data-testid="font-sample" data-state={state} dir="ltr"
       style={state === "ready" ? { fontFamily: `"${family}", sans-serif` } : undefined}>
      {state === "failed" ? <span className="muted small">{t("brand_kits.font_sample_failed")}</span>
        : t("brand_kits.font_sample")}
    </p>
  );
}

function Assets({ kit, kind, onChange }: { kit: Kit; kind: "fonts" | "logos"; onChange: (kit: Kit) => void }) {
  const { t, i18n } = useTranslation("console");
  const action = useAction();
  const list = kit[kind];
  const accept = kind === "fonts" ? ".ttf,.otf,.woff2,font/ttf,font/otf,font/woff2" : "image/png,image/jpeg,image/webp";
  async function upload(file: File) {
    await action.run(async () => { onChange(await uploadFile(kit.id, kind, file)); });
  }
  return (
    <section className="card c-section c-assets" aria-labelledby={`${kind}-heading`}>
      <h2 id={`${kind}-heading`}>{t(`brand_kits.${kind}`)}</h2>
      {list.length === 0 ? <p className="muted">{t(`brand_kits.no_${kind}`)}</p> : null}
      <ul className="c-cards">
        {list.map((asset) => (
          <li key={asset.id} className="c-asset" data-testid={`kit-${kind}`}>
            {kind === "logos"
              ? <img src={asset.url} alt={t("brand_kits.logo_alt", { name: asset.filename })} className="c-logo" />
              : <FontSample asset={asset} />}
            <div className="c-asset-meta">
              <strong><bdi>{kind === "fonts" ? (asset.family ?? t("brand_kits.family_unknown")) : asset.filename}</bdi></strong>
              <span className="muted small">
                {kind === "fonts" ? <><bdi dir="ltr">{asset.filename}</bdi> · </> : null}
                <bdi>{t("brand_kits.kb", { n: formatNumber(Math.ceil(asset.bytes / 1024), i18n.language) })}</bdi>
                {asset.width && asset.height ? <> · <bdi dir="ltr">{asset.width}×{asset.height}</bdi></> : null}</span>
            </div>
            <ConfirmButton label={t("common.remove")} question={t("brand_kits.remove_asset_q", { name: asset.filename })}
                           ariaLabel={t("brand_kits.remove_asset", { name: asset.filename })} disabled={action.busy}
                           onConfirm={() => void action.run(async () => {
                             unwrap(await api.DELETE("/v1/brand_kits/{kit_id}/assets/{asset_id}",
                               { params: { path: { kit_id: kit.id, asset_id: asset.id } } }));
                             onChange(unwrap(await api.GET("/v1/brand_kits/{kit_id}", { params: { path: { kit_id: kit.id } } })));
                           })} />
          </li>
        ))}
      </ul>
      <Field label={t(`brand_kits.upload_${kind}`)} param="body" action={action} hint={t(`brand_kits.${kind}_hint`)}>
        {(p) => <input {...p} type="file" accept={accept} disabled={action.busy} name={`upload-${kind}`}
                       onChange={(e) => { const f = e.target.files?.[0]; if (f) void upload(f); e.target.value = ""; }} />}
      </Field>
      {action.busy ? <p className="muted small" role="status">{t("brand_kits.uploading")}</p> : null}
      <FormError action={action} fields={["body"]} />
    </section>
  );
}

function Snapshot({ version }: { version: Version }) {
  const { t } = useTranslation("console");
  return (
    <dl className="c-dl">
      <div><dt>{t("brand_kits.name")}</dt><dd>{version.name}</dd></div>
      <div><dt>{t("brand_kits.colors")}</dt><dd><Swatches colors={version.colors} label={t("brand_kits.colors")} /></dd></div>
      <div><dt>{t("brand_kits.fonts")}</dt><dd>{version.fonts.map((f) => f.family ?? f.filename).join(", ") || "—"}</dd></div>
      <div><dt>{t("brand_kits.logos")}</dt><dd>{version.logos.map((f) => f.filename).join(", ") || "—"}</dd></div>
      <div><dt>{t("brand_kits.voice")}</dt><dd><bdi dir="ltr">{version.default_voice ?? "—"}</bdi></dd></div>
      {WORD_LISTS.map((w) => (
        <div key={w}><dt>{t(`brand_kits.${w}`)}</dt><dd>{version[w].join(", ") || "—"}</dd></div>
      ))}
    </dl>
  );
}

function Versions({ kit }: { kit: Kit }) {
  const { t, i18n } = useTranslation("console");
  const versions = useInfiniteQuery({
    queryKey: ["console", "brand-kit-versions", kit.id, kit.version],
    initialPageParam: null as number | null,
    queryFn: async ({ pageParam }) => unwrap(await api.GET("/v1/brand_kits/{kit_id}/versions", {
      params: { path: { kit_id: kit.id }, query: { limit: 20, ...(pageParam ? { after: pageParam } : {}) } } })),
    getNextPageParam: (page) => page.next_cursor ?? null,
  });
  const rows = versions.data?.pages.flatMap((p) => p.data) ?? [];
  return (
    <section className="card c-section c-events" aria-labelledby="versions-heading">
      <h2 id="versions-heading">{t("brand_kits.versions")}</h2>
      <ListState loading={versions.isPending} error={versions.error} empty={rows.length === 0} emptyText={t("brand_kits.no_versions")} />
      <ul className="c-cards" data-testid="kit-versions">
        {rows.map((v) => (
          <li key={v.version}>
            <details>
              <summary>
                <strong>{t("brand_kits.version_n", { n: formatNumber(v.version, i18n.language) })}</strong>
                <span className="muted small">{formatDate(v.created_at, i18n.language)}</span>
                {v.version === kit.version ? <span className="c-badge ok">{t("brand_kits.current")}</span> : null}
              </summary>
              <Snapshot version={v} />
            </details>
          </li>
        ))}
      </ul>
      <MoreButton hasMore={!!versions.hasNextPage} loading={versions.isFetchingNextPage} onMore={() => void versions.fetchNextPage()} />
    </section>
  );
}

function KitEditor() {
  const { t, i18n } = useTranslation("console");
  const { kitId = "" } = useParams();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const del = useAction();
  const headingId = useId();
  const kit = useQuery({
    queryKey: ["console", "brand-kit", kitId],
    queryFn: async () => unwrap(await api.GET("/v1/brand_kits/{kit_id}", { params: { path: { kit_id: kitId } } })),
  });
  const update = (next: Kit) => {
    queryClient.setQueryData(["console", "brand-kit", kitId], next);
    void queryClient.invalidateQueries({ queryKey: ["console", "brand-kits"] });
  };
  if (kit.isPending || kit.isError) {
    return <div className="c-page"><ListState loading={kit.isPending} error={kit.error} empty={false} emptyText="" /></div>;
  }
  const data = kit.data;
  return (
    <div className="c-page" aria-labelledby={headingId}>
      <p><Link to="/console/brand-kits">{t("brand_kits.back")}</Link></p>
      <div className="c-domain-head">
        <h1 id={headingId}>{data.name}</h1>
        <span className="c-actions">
          <OwnerBadge owner={data.owner} />
          <span className="c-badge" data-testid="kit-version">{t("brand_kits.version_n", { n: formatNumber(data.version, i18n.language) })}</span>
        </span>
      </div>
      <KitForm kit={data} onSaved={update} />
      <div className="c-kit-assets">
        <Assets kit={data} kind="fonts" onChange={update} />
        <Assets kit={data} kind="logos" onChange={update} />
      </div>
      <Versions kit={data} />
      <section className="c-section c-kit-delete">
        <ConfirmButton label={t("brand_kits.delete")} question={t("brand_kits.delete_q", { name: data.name })}
                       disabled={del.busy}
                       onConfirm={() => void del.run(async () => {
                         unwrap(await api.DELETE("/v1/brand_kits/{kit_id}", { params: { path: { kit_id: data.id } } }));
                         await queryClient.invalidateQueries({ queryKey: ["console", "brand-kits"] });
                         void navigate("/console/brand-kits");
                       })} />
        <FormError action={del} />
      </section>
    </div>
  );
}

function NewKit() {
  const { t } = useTranslation("console");
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  return (
    <div className="c-page">
      <p><Link to="/console/brand-kits">{t("brand_kits.back")}</Link></p>
      <h1>{t("brand_kits.new")}</h1>
      <p className="muted">{t("brand_kits.new_intro")}</p>
      <KitForm kit={null} onSaved={(kit) => {
        queryClient.setQueryData(["console", "brand-kit", kit.id], kit);
        void queryClient.invalidateQueries({ queryKey: ["console", "brand-kits"] });
        void navigate(`/console/brand-kits/${kit.id}`);
      }} />
    </div>
  );
}

export default function BrandKits() {
  return (
    <Routes>
      <Route index element={<KitList />} />
      <Route path="new" element={<NewKit />} />
      <Route path=":kitId" element={<KitEditor />} />
    </Routes>
  );
}
