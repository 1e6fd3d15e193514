// The five studio panels. Each picks its operation from those some provider offers and adds
// its own widgets (input pictures, mask, voices, templates) to the shared GenerationForm.
import { useMemo, useState } from "react";
import { useQueries, useQuery } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, currentTeam, unwrap, type Schemas } from "../../api/client";
import {
  offered, readAsDataUrl, type Generation, type Operation, type Provider,
} from "./catalogue";
import GenerationForm from "./GenerationForm";
import ImagePicker from "./ImagePicker";
import MaskPainter from "./MaskPainter";

interface PanelProps { providers: Provider[] }

/** A segmented choice between the operations a panel offers (hidden when only one). */
function Modes({ modes, value, onChange }: { modes: Operation[]; value: Operation;
                                             onChange(op: Operation): void }) {
  const { t } = useTranslation("studio");
  if (modes.length < 2) return null;
  return (
    <fieldset className="modes segmented">
      <legend>{t("form.mode")}</legend>
      <div className="segments">
        {modes.map((op) => (
          <label key={op} className="segment">
            <input type="radio" name="mode" value={op} checked={op === value}
                   onChange={() => onChange(op)} />
            <span>{t(`operation.${op}`)}</span>
          </label>
        ))}
      </div>
    </fieldset>
  );
}

function useMode(providers: Provider[], wanted: Operation[]) {
  const modes = offered(providers, wanted);
  const [chosen, setChosen] = useState<Operation | null>(null);
  const mode = chosen !== null && modes.includes(chosen) ? chosen : (modes[0] ?? wanted[0]!);
  return { modes, mode, setMode: setChosen };
}

function firstOutput(g: Generation): string | null {
  return g.status === "succeeded" ? (g.outputs[0]?.url ?? null) : null;
}

export function ImagePanel({ providers }: PanelProps) {
  const { t } = useTranslation("studio");
  const { modes, mode, setMode } = useMode(providers, ["text_to_image", "image_edit", "image_variation"]);
  const [image, setImage] = useState<string | null>(null);
  const [mask, setMask] = useState<string | null>(null);
  const [last, setLast] = useState<string | null>(null);
  const needsImage = mode !== "text_to_image";
  const extra: Record<string, unknown> = needsImage && image
    ? { image, ...(mode === "image_edit" && mask ? { mask } : {}) } : {};
  const missing = needsImage && !image ? t("form.need_image")
    : mode === "image_edit" && !mask ? t("form.need_mask") : null;
  return (
    <>
      <Modes modes={modes} value={mode} onChange={setMode} />
      <GenerationForm key={mode} type="image" operation={mode} providers={providers} extra={extra}
                      missing={missing} promptRequired={mode !== "image_variation"}
                      onFinished={(g) => setLast(firstOutput(g))}>
        {needsImage && (
          <div className="inputs">
            <ImagePicker value={image} last={last} preview={mode !== "image_edit"}
                         onChange={(v) => { setImage(v); setMask(null); }} />
            {mode === "image_edit" && image && <MaskPainter src={image} onMask={setMask} />}
          </div>
        )}
      </GenerationForm>
    </>
  );
}

type Voice = Schemas["VoiceOut"];

function labelOf(voice: Voice, key: string): string | null {
  const labels = voice.labels;
  if (key === "language") return labels.language ?? labels.languages?.split(",")[0] ?? null;
  return labels[key] ?? null;
}

const VOICE_FILTERS = ["language", "gender", "accent"] as const;

/** A language code as its name in the page's language ("ar" → "Arabic" / "العربية"). */
function languageName(code: string, lang: string): string {
  try {
    return new Intl.DisplayNames([lang], { type: "language" }).of(code) ?? code;
  } catch {
    return code;
  }
}

function VoicePicker({ providers, value, onChange }: { providers: Provider[]; value: string | null;
                                                       onChange(voice: string | null): void }) {
  const { t, i18n } = useTranslation("studio");
  const [filters, setFilters] = useState<Record<string, string>>({});
  const lists = useQueries({
    queries: providers.map((p) => ({
      queryKey: ["voices", p.name, currentTeam()],
      queryFn: async () => unwrap(await api.GET("/v1/voices", { params: { query: { provider: p.name } } })).data,
      staleTime: 300_000,
    })),
  });
  const voices = lists.flatMap((q) => q.data ?? []);
  const options = useMemo(() => Object.fromEntries(VOICE_FILTERS.map((key) => [key,
    [...new Set(voices.map((v) => labelOf(v, key)).filter((x): x is string => !!x))].sort()])),
  [voices]);
  const shown = voices.filter((v) => VOICE_FILTERS.every((key) =>
    !filters[key] || labelOf(v, key) === filters[key]));
  const chosen = voices.find((v) => v.id === value) ?? null;
  return (
    <fieldset className="voice-picker">
      <legend>{t("audio.voice")}</legend>
      <div className="params">
        {VOICE_FILTERS.filter((key) => (options[key]?.length ?? 0) > 1).map((key) => (
          <label key={key} className="param">
            <span>{t(`audio.filter.${key}`)}</span>
            <select value={filters[key] ?? ""}
                    onChange={(e) => setFilters((f) => ({ ...f, [key]: e.target.value }))}>
              <option value="">{t("audio.any")}</option>
              {options[key]!.map((o) => (
                <option key={o} value={o}>{key === "language" ? languageName(o, i18n.language) : o}</option>
              ))}
            </select>
          </label>
        ))}
        <label className="param">
          <span>{t("audio.choose")}</span>
          <select value={value ?? ""} onChange={(e) => onChange(e.target.value || null)}>
            <option value="">{t("form.default")}</option>
            {shown.map((v) => <option key={`${v.provider}/${v.id}`} value={v.id}>{v.name}</option>)}
          </select>
        </label>
      </div>
      {chosen?.preview_url && (
        <audio controls src={chosen.preview_url} aria-label={t("audio.preview", { name: chosen.name })} />
      )}
    </fieldset>
  );
}

export function AudioPanel({ providers }: PanelProps) {
  const { t } = useTranslation("studio");
  const { modes, mode, setMode } = useMode(providers, ["text_to_speech", "voice_clone"]);
  const [voice, setVoice] = useState<string | null>(null);
  const [samples, setSamples] = useState<string[]>([]);
  const [consent, setConsent] = useState(false);
  const speaking = providers.filter((p) => p.operations.includes("text_to_speech"));
  const clone = mode === "voice_clone";
  const extra: Record<string, unknown> = clone ? (samples.length ? { samples } : {})
    : (voice ? { voice } : {});
  const missing = clone ? (samples.length === 0 ? t("audio.need_samples")
    : !consent ? t("audio.need_consent") : null) : null;
  return (
    <>
      <Modes modes={modes} value={mode} onChange={setMode} />
      <GenerationForm key={mode} type="audio" operation={mode} providers={providers} extra={extra}
                      missing={missing} hidden={["name"]}
                      promptLabel={clone ? t("audio.clone_name") : t("audio.text")}>
        {!clone && <VoicePicker providers={speaking} value={voice} onChange={setVoice} />}
        {clone && (
          <div className="inputs">
            <label className="param">
              <span>{t("audio.samples")}</span>
              <input type="file" accept="audio/*" multiple
                     onChange={(e) => void Promise.all([...(e.target.files ?? [])].map(readAsDataUrl))
                       .then(setSamples)} />
            </label>
            <label className="switch">
              <input type="checkbox" required checked={consent}
                     onChange={(e) => setConsent(e.target.checked)} />
              <span>{t("audio.consent")}</span>
            </label>
          </div>
        )}
      </GenerationForm>
    </>
  );
}

export function VideoPanel({ providers }: PanelProps) {
  const { t } = useTranslation("studio");
  const { modes, mode, setMode } = useMode(providers, ["text_to_video", "image_to_video"]);
  const [image, setImage] = useState<string | null>(null);
  const fromImage = mode === "image_to_video";
  return (
    <>
      <Modes modes={modes} value={mode} onChange={setMode} />
      <GenerationForm key={mode} type="video" operation={mode} providers={providers}
                      extra={fromImage && image ? { image } : {}}
                      missing={fromImage && !image ? t("form.need_image") : null}>
        {fromImage && <div className="inputs"><ImagePicker value={image} onChange={setImage} /></div>}
      </GenerationForm>
    </>
  );
}


export function DesignPanel({ providers }: PanelProps) {
  const { t } = useTranslation("studio");
  const templates = useQuery({
    queryKey: ["design-templates", currentTeam()],
    queryFn: async () => unwrap(await api.GET("/v1/design/templates")).data,
  });
  const [templateId, setTemplateId] = useState<string | null>(null);
  const [fields, setFields] = useState<Record<string, string>>({});
  const [picture, setPicture] = useState<string | null>(null);
  const [format, setFormat] = useState<string | null>(null);
  const list = templates.data ?? [];
  const template = list.find((x) => x.id === templateId) ?? null;
  const filled = Object.fromEntries(Object.entries(fields).filter(([, v]) => v.trim() !== ""));
  // Built-in templates take their text as params.fields and their picture as params.image;
  // a brand template (Canva) takes its fields as params.data.
  const extra: Record<string, unknown> = template ? {
    ...(template.brand ? { brand_template_id: template.id, data: filled }
      : { template: template.id, fields: filled, ...(picture ? { image: picture } : {}) }),
    ...(format ? { format } : {}),
  } : {};
  const fieldLabel = (name: string, label: string) => t(`field.${name}`, { defaultValue: label });
  return (
    <GenerationForm type="design" operation="design_autofill" providers={providers} extra={extra}
                    hidden={["format", "output_format"]}>
      <div className="inputs">
        <label className="param">
          <span>{t("design.template")}</span>
          <select value={templateId ?? ""} onChange={(e) => {
            setTemplateId(e.target.value || null); setFields({}); setFormat(null); setPicture(null);
          }}>
            <option value="">{t("form.default")}</option>
            {list.map((x) => (
              <option key={`${x.provider}/${x.id}`} value={x.id}>
                {x.brand ? t("design.brand", { name: x.name }) : x.name}
              </option>
            ))}
          </select>
        </label>
        {template?.fields.filter((f) => f.kind === "text").map((f) => (
          <label key={f.name} className="param">
            <span>{fieldLabel(f.name, f.label)}</span>
            <input type="text" value={fields[f.name] ?? ""}
                   onChange={(e) => setFields((old) => ({ ...old, [f.name]: e.target.value }))} />
          </label>
        ))}
        {template && !template.brand && template.fields.some((f) => f.kind === "image") && (
          <fieldset className="param">
            <legend>{fieldLabel("image", t("design.picture"))}</legend>
            <ImagePicker value={picture} onChange={setPicture} />
          </fieldset>
        )}
        {template && template.formats.length > 1 && (
          <label className="param">
            <span>{t("design.format")}</span>
            <select value={format ?? template.formats[0]} onChange={(e) => setFormat(e.target.value)}>
              {template.formats.map((f) => <option key={f} value={f}>{f.toUpperCase()}</option>)}
            </select>
          </label>
        )}
      </div>
    </GenerationForm>
  );
}

export function Model3DPanel({ providers }: PanelProps) {
  const { t } = useTranslation("studio");
  const { modes, mode, setMode } = useMode(providers, ["text_to_3d", "image_to_3d"]);
  const [image, setImage] = useState<string | null>(null);
  const fromImage = mode === "image_to_3d";
  return (
    <>
      <Modes modes={modes} value={mode} onChange={setMode} />
      <GenerationForm key={mode} type="model_3d" operation={mode} providers={providers}
                      extra={fromImage && image ? { image } : {}} promptRequired={!fromImage}
                      missing={fromImage && !image ? t("form.need_image") : null}>
        {fromImage && <div className="inputs"><ImagePicker value={image} onChange={setImage} /></div>}
      </GenerationForm>
    </>
  );
}
