// Starter chips: GET /v1/suggestions with what the user has typed as context, debounced
// (~350 ms after the last keystroke) and cancelled when the prompt changes again, so an old
// answer never replaces the chips of the current prompt. Curated templates in the portal's
// language and the user's own successful prompts; never the tenant's text model (`model:
// false`), which would charge a generation per keystroke pause: "Improve" asks it instead.
import { useEffect, useState } from "react";
import { api, unwrap, type Schemas } from "../../api/client";

export type Suggestion = Schemas["Suggestion"];
export type SuggestionType = Schemas["ImproveRequest"]["type"];
export type Language = NonNullable<Schemas["ImproveRequest"]["lang"]>;

export function useSuggestions(type: SuggestionType, context: string, lang: Language,
                               limit = 6, delayMs = 350): Suggestion[] | null {
  const [found, setFound] = useState<Suggestion[] | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    const timer = window.setTimeout(() => {
      api.GET("/v1/suggestions", {
        params: { query: { type, context: context.trim(), lang, limit, model: false } },
        signal: controller.signal,
      }).then((answer) => setFound(unwrap(answer).data), () => {
        if (!controller.signal.aborted) setFound([]);
      });
    }, delayMs);
    return () => {
      window.clearTimeout(timer);
      controller.abort();
    };
  }, [type, context, lang, limit, delayMs]);

  return found;
}

export async function improvePrompt(type: SuggestionType, prompt: string,
                                    lang: Language): Promise<Schemas["Improvement"]> {
  return unwrap(await api.POST("/v1/suggestions/improve", { body: { type, prompt, lang } }));
}
