// Under the prompt: starter chips from the suggestion API (ranked by what is typed so far)
// and an "Improve" button that lists what the prompt lacks and offers rewrites. Choosing a
// chip or a rewrite replaces the prompt.
import { useId, useState } from "react";
import { useTranslation } from "react-i18next";
import { ApiError, type Schemas } from "../../api/client";
import { improvePrompt, useSuggestions, type Language, type SuggestionType } from "./useSuggestions";

interface Props {
  type: SuggestionType;
  prompt: string;
  onChoose(text: string): void;
}

export default function PromptHelp({ type, prompt, onChoose }: Props) {
  const { t, i18n } = useTranslation("studio");
  const lang: Language = i18n.language.startsWith("ar") ? "ar" : "en";
  const chips = useSuggestions(type, prompt, lang);
  const panelId = useId();
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Schemas["Improvement"] | null>(null);
  const [error, setError] = useState<string | null>(null);

  const improve = async () => {
    setBusy(true);
    setError(null);
    try {
      setResult(await improvePrompt(type, prompt, lang));
    } catch (caught) {
      setResult(null);
      setError(caught instanceof ApiError ? caught.message : t("suggest.failed"));
    } finally {
      setBusy(false);
    }
  };

  const choose = (text: string) => {
    onChoose(text);
    setResult(null);
  };

  return (
    <div className="prompt-help">
      <div className="chips" role="group" aria-label={t("form.suggestions")} data-testid="chips">
        {(chips ?? []).map((s) => (
          <button type="button" key={`${s.source}:${s.text}`} lang={s.lang}
                  dir={s.lang === "ar" ? "rtl" : "ltr"}
                  className={`chip chip-${s.source}`} data-source={s.source}
                  title={s.source === "history" ? t("suggest.yours") : undefined}
                  onClick={() => choose(s.text)}>
            <span className="chip-text">{s.text}</span>
          </button>
        ))}
      </div>
      <div className="improve-bar">
        <button type="button" className="improve" disabled={busy || prompt.trim() === ""}
                aria-expanded={result !== null} aria-controls={panelId}
                title={prompt.trim() === "" ? t("suggest.need_prompt") : undefined}
                onClick={() => void improve()}>
          {busy ? t("suggest.improving") : t("suggest.improve")}
        </button>
        {error && <p className="error" role="alert">{error}</p>}
      </div>
      {result && (
        <section id={panelId} className="improve-panel" aria-live="polite" data-testid="improve">
          {result.missing.length === 0 ? <p>{t("suggest.complete")}</p> : (
            <>
              <h3>{t("suggest.missing")}</h3>
              <ul className="missing">
                {result.missing.map((m) => <li key={m.aspect} data-aspect={m.aspect}>{m.message}</li>)}
              </ul>
            </>
          )}
          {result.variants.length > 0 && (
            <>
              <h3>{t("suggest.variants")}</h3>
              <ul className="variants">
                {result.variants.map((v) => (
                  <li key={`${v.source}:${v.text}`}>
                    <p className="variant-text">{v.text}</p>
                    <button type="button" onClick={() => choose(v.text)}>{t("suggest.use")}</button>
                  </li>
                ))}
              </ul>
            </>
          )}
          <button type="button" className="link-button" onClick={() => setResult(null)}>{t("suggest.close")}</button>
        </section>
      )}
    </div>
  );
}
