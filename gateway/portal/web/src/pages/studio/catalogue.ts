// What the studio's forms are made of: the providers' declared parameters and models
// (GET /v1/providers?type=..., contract C3), the wallet balance, and the helpers that turn a
// declaration into a control. Nothing here lists a provider's values itself: choices, ranges
// and defaults all come from the API, so a new provider plugin shows up without UI changes.
import { useQuery } from "@tanstack/react-query";
import { api, currentTeam, unwrap, type Schemas } from "../../api/client";

/** The studio's media types: every generation type but `text`, which has no panel (the
 * gateway writes text for prompt suggestions). */
export type MediaType = Exclude<Schemas["GenerationCreate"]["type"], "text">;
export type Operation = NonNullable<Schemas["GenerationCreate"]["operation"]>;
export type Generation = Schemas["GenerationOut"];
export type Output = Schemas["Output"] & { thumbnail_url?: string | null; peaks?: number[] | null };

export const MEDIA_TYPES: readonly MediaType[] = ["image", "audio", "video", "design", "model_3d"];

/** One declared parameter, a model's narrower limits, a provider (C3: GET /v1/providers). */
export type ParamInfo = Schemas["ParamInfo"];
export type ParamLimits = Schemas["LimitsInfo"];
export type ModelInfo = Schemas["ModelInfo"];
export type Provider = Schemas["ProviderInfo"];

/** Parameters the generic form never draws: input files have their own pickers, `model`
 * is the model choice, `voice` the voice picker, design's template/fields their own form. */
export const SPECIAL_PARAMS = new Set([
  "image", "mask", "image_tail", "samples", "model", "voice", "template", "fields", "data",
  "brand_template_id", "colors",
]);

/** Declared parameters that go under "Advanced" rather than in the main form. */
export const ADVANCED_PARAMS = new Set([
  "steps", "guidance", "cfg_scale", "seed", "negative_prompt", "sampler", "clip_guidance_preset",
]);

export function useProviders(type: MediaType) {
  return useQuery({
    queryKey: ["providers", type, currentTeam()],
    queryFn: async () => {
      const data = unwrap(await api.GET("/v1/providers", {
        params: { query: { type } as never } }));
      // Providers with no key configured cannot serve anyone: their params would only
      // confuse the form (and be refused for the provider routing does pick).
      return (data.data as Provider[]).filter((p) => p.types.includes(type)
        && p.status !== "unconfigured");
    },
    staleTime: 60_000,
  });
}

export function useBalance() {
  return useQuery({
    queryKey: ["balance", currentTeam()],
    queryFn: async () => unwrap(await api.GET("/v1/credits/balance")),
  });
}

/** The operations any of `providers` serves, of those `wanted`, in `wanted`'s order. */
export function offered(providers: Provider[], wanted: readonly Operation[]): Operation[] {
  return wanted.filter((op) => providers.some((p) => p.operations.includes(op)));
}

/**
 * The parameters to draw for `operation`: those declared by the chosen provider (or, when
 * routing picks, merged over every provider serving it — the first declaration of a name wins),
 * narrowed by the chosen model's limits.
 */
export function paramsFor(providers: Provider[], operation: Operation, provider: string | null,
                          model: string | null): ParamInfo[] {
  const serving = providers.filter((p) => p.operations.includes(operation)
    && (provider === null || p.name === provider));
  const byName = new Map<string, ParamInfo>();
  for (const p of serving) {
    for (const param of p.params ?? []) {
      if (param.operations.length > 0 && !param.operations.includes(operation)) continue;
      if (!byName.has(param.name)) byName.set(param.name, param);
    }
  }
  const limits = modelLimits(serving, model);
  return [...byName.values()].map((param) => {
    const limit = limits[param.name];
    return limit ? { ...param, choices: limit.choices ?? param.choices,
                     minimum: limit.minimum ?? param.minimum,
                     maximum: limit.maximum ?? param.maximum } : param;
  });
}

function modelLimits(providers: Provider[], model: string | null): Record<string, ParamLimits> {
  if (model === null) return {};
  for (const p of providers) {
    const found = p.models.find((m) => m.name === model);
    if (found) return found.limits;
  }
  return {};
}

export function modelsFor(providers: Provider[], operation: Operation,
                          provider: string | null): ModelInfo[] {
  return providers.filter((p) => provider === null || p.name === provider)
    .flatMap((p) => p.models.filter((m) => m.operations.length === 0
      || m.operations.includes(operation)));
}

export const TERMINAL = new Set(["succeeded", "failed", "cancelled", "canceled"]);

/** A File as a data: URL (how the API takes inline inputs: params.image, params.samples). */
export function readAsDataUrl(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error("read failed"));
    reader.readAsDataURL(file);
  });
}
