// The form every studio panel shares: the prompt with its counter, starter chips and the
// "Improve" check (PromptHelp), the parameters the providers declare (the rest under
// "Advanced"), the batch count, the provider
// and model when the tenant shows provider names, the live estimate beside the balance, and
// the submit button, disabled with the reason when the price is unknown or too high. After a
// submit it follows the generation (Progress).
import { useEffect, useId, useMemo, useState, type ReactNode } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, ApiError, unwrap, type Schemas } from "../../api/client";
import { usePortalConfig } from "../../config";
import { formatCredits, formatNumber } from "../../i18n";
import {
  ADVANCED_PARAMS, modelsFor, paramsFor, SPECIAL_PARAMS, useBalance,
  type Generation, type MediaType, type Operation, type Provider,
} from "./catalogue";
import ParamControl, { drawable } from "./ParamControl";
import BrandKitPicker from "./BrandKitPicker";
import PromptHelp from "./PromptHelp";
import Progress from "./Progress";
import { useEstimate } from "./useEstimate";
import { useGeneration } from "./useGeneration";

const PROMPT_MAX = 4000;
/** Media a brand kit changes or records (3D models take nothing from it). */
const BRANDED: readonly MediaType[] = ["image", "design", "audio", "video"];

/** A fresh key per submit (crypto.randomUUID needs a secure context; a tenant's domain may
 * be plain http in development). */
function idempotencyKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

interface Props {
  type: MediaType;
  operation: Operation;
  providers: Provider[];
  /** Values the panel's own widgets give (input files, voice, template fields...). */
  extra?: Record<string, unknown>;
  /** Declared parameters the panel draws itself. */
  hidden?: readonly string[];
  /** Why the form cannot be sent yet (a missing input), or null. */
  missing?: string | null;
  promptLabel?: string;
  promptRequired?: boolean;
  /** Rendered between the prompt and the parameters. */
  children?: ReactNode;
  onFinished?(generation: Generation): void;
}

export default function GenerationForm({ type, operation, providers, extra = {}, hidden = [],
                                         missing = null, promptLabel, promptRequired = true,
                                         children, onFinished }: Props) {
  const { t, i18n } = useTranslation("studio");
  const config = usePortalConfig();
  const queryClient = useQueryClient();
  const promptId = useId();
  const [prompt, setPrompt] = useState("");
  const [values, setValues] = useState<Record<string, unknown>>({});
  const [provider, setProvider] = useState<string | null>(null);
  const [model, setModel] = useState<string | null>(null);
  const [brandKit, setBrandKit] = useState<string | null>(null);
  const [submitting, setSubmitting] = useState(false);
  const [submitError, setSubmitError] = useState<ApiError | null>(null);
  const [generationId, setGenerationId] = useState<string | null>(null);
  const balance = useBalance();

  // Another operation or provider declares other parameters: start those afresh.
  useEffect(() => { setValues({}); setModel(null); }, [operation, provider]);

  const serving = providers.filter((p) => p.operations.includes(operation));
  const params = paramsFor(providers, operation, provider, model)
    .filter((p) => !SPECIAL_PARAMS.has(p.name) && !hidden.includes(p.name) && drawable(p));
  const batch = params.find((p) => p.name === "n");
  const main = params.filter((p) => p.name !== "n" && !ADVANCED_PARAMS.has(p.name));
  const advanced = params.filter((p) => ADVANCED_PARAMS.has(p.name));
  const models = config.show_provider_names ? modelsFor(providers, operation, provider) : [];

  const body = useMemo<Schemas["GenerationCreate"] | null>(() => {
    if (serving.length === 0) return null;
    if (promptRequired && prompt.trim() === "") return null;
    if (missing !== null) return null;
    const sent: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(values)) {
      if (value !== undefined) sent[name] = value;
    }
    if (model !== null) sent.model = model;
    return {
      type, operation, ...(prompt.trim() ? { prompt } : {}),
      params: { ...sent, ...extra },
      ...(provider !== null ? { provider } : {}),
      ...(brandKit !== null ? { brand_kit_id: brandKit } : {}),
    };
    // `extra` is compared by value: panels build it afresh on each render.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [type, operation, prompt, values, model, provider, brandKit, missing, promptRequired,
      JSON.stringify(extra), serving.length]);

  const estimate = useEstimate(body);
  const tracked = useGeneration(generationId, (g) => {
    void queryClient.invalidateQueries({ queryKey: ["balance"] });
    void queryClient.invalidateQueries({ queryKey: ["generations"] });
    onFinished?.(g);
  });

  const available = balance.data?.available ?? null;
  const estimateError = estimate.state === "error" ? estimate.error : null;
  const fieldError = (name: string): string | null =>
    estimateError?.param === `params.${name}` ? estimateError.message : null;
  const tooDear = estimate.state === "ready" && available !== null && estimate.amount > available;
  const reason = serving.length === 0 ? t("form.unavailable")
    : missing ?? (promptRequired && prompt.trim() === "" ? t("form.need_prompt")
    : estimateError ? t("form.invalid", { message: estimateError.message })
    : tooDear ? t("form.too_dear") : null);
  const canSubmit = body !== null && estimate.state === "ready" && !tooDear && !submitting;

  const setValue = (name: string, value: unknown) =>
    setValues((old) => ({ ...old, [name]: value }));

  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    if (!canSubmit || body === null) return;
    setSubmitting(true);
    setSubmitError(null);
    try {
      const created = unwrap(await api.POST("/v1/generations", {
        body, headers: { "Idempotency-Key": idempotencyKey() } }));
      setGenerationId(created.id);
      void queryClient.invalidateQueries({ queryKey: ["balance"] });
    } catch (error) {
      setSubmitError(error instanceof ApiError ? error : new ApiError(0, "network", String(error)));
    } finally {
      setSubmitting(false);
    }
  };

  return (
    <form className="studio-form" onSubmit={(e) => void submit(e)} noValidate>
      <div className="prompt-field">
        <label htmlFor={promptId}>{promptLabel ?? t("form.prompt")}</label>
        <textarea id={promptId} name="prompt" rows={4} maxLength={PROMPT_MAX} value={prompt}
                  aria-describedby={`${promptId}-count`}
                  onChange={(e) => setPrompt(e.target.value)} />
        <span id={`${promptId}-count`} className="counter muted" aria-live="off">
          {t("form.count", { count: prompt.length, used: formatNumber(prompt.length, i18n.language),
                             max: formatNumber(PROMPT_MAX, i18n.language) })}
        </span>
        <PromptHelp type={type} prompt={prompt} onChoose={setPrompt} />
      </div>

      {children}

      {BRANDED.includes(type) && <BrandKitPicker value={brandKit} onChange={setBrandKit} />}

      {config.show_provider_names && serving.length > 1 && (
        <label className="param">
          <span>{t("form.provider")}</span>
          <select value={provider ?? ""} onChange={(e) => setProvider(e.target.value || null)}>
            <option value="">{t("form.auto")}</option>
            {serving.map((p) => <option key={p.name} value={p.name}>{p.name}</option>)}
          </select>
        </label>
      )}
      {models.length > 0 && (
        <label className="param">
          <span>{t("form.model")}</span>
          <select value={model ?? ""} onChange={(e) => setModel(e.target.value || null)}>
            <option value="">{t("form.auto")}</option>
            {models.map((m) => <option key={m.name} value={m.name}>{m.name}</option>)}
          </select>
        </label>
      )}

      <div className="params">
        {main.map((p) => (
          <ParamControl key={p.name} param={p} value={values[p.name]} error={fieldError(p.name)}
                        onChange={(v) => setValue(p.name, v)} />
        ))}
        {batch && (
          <ParamControl param={{ ...batch, minimum: batch.minimum ?? 1, maximum: batch.maximum ?? 4 }}
                        value={values.n} error={fieldError("n")} onChange={(v) => setValue("n", v)} />
        )}
      </div>

      {advanced.length > 0 && (
        <details className="advanced">
          <summary>{t("form.advanced")}</summary>
          <div className="params">
            {advanced.map((p) => (
              <ParamControl key={p.name} param={p} value={values[p.name]} error={fieldError(p.name)}
                            onChange={(v) => setValue(p.name, v)} />
            ))}
          </div>
        </details>
      )}

      <div className="submit-bar">
        <dl className="price">
          <div>
            <dt>{t("form.estimate")}</dt>
            <dd data-testid="estimate" aria-live="polite">
              {estimate.state === "ready" ? formatCredits(estimate.amount, i18n.language)
                : estimate.state === "loading" ? t("form.estimating") : "—"}
            </dd>
          </div>
          <div>
            <dt>{t("form.balance")}</dt>
            <dd data-testid="balance">
              {available === null ? "—" : formatCredits(available, i18n.language)}
            </dd>
          </div>
        </dl>
        <button type="submit" className="primary" disabled={!canSubmit}
                aria-describedby={reason ? `${promptId}-reason` : undefined}>
          {submitting ? t("form.submitting") : t("form.submit")}
        </button>
        {reason && <p id={`${promptId}-reason`} className="reason muted" data-testid="reason">{reason}</p>}
        {submitError && <p className="error" role="alert">{submitError.message}</p>}
      </div>

      {generationId && <Progress tracked={tracked} />}
    </form>
  );
}
