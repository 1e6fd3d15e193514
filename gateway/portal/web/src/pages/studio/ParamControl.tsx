// One declared parameter as a control, chosen by what the provider declared: choices → a
// segmented control (few) or a select (many); a number with a range → a slider and a number
// box; integer/number → a number box; boolean → a switch; string/scalar → a text box.
import { useId } from "react";
import { useTranslation } from "react-i18next";
import { formatNumber } from "../../i18n";
import type { ParamInfo } from "./catalogue";

interface Props {
  param: ParamInfo;
  value: unknown;
  error?: string | null;
  onChange(value: unknown): void;
}

/** The kinds the generic form can draw (inputs, lists and objects have their own widgets). */
export function drawable(param: ParamInfo): boolean {
  return param.choices !== null && param.choices.length > 0
    || ["string", "integer", "number", "boolean", "scalar"].includes(param.kind);
}

export function useParamLabel(): (name: string) => string {
  const { t } = useTranslation("studio");
  return (name) => t(`param.${name}`, {
    defaultValue: name.replace(/_/g, " ").replace(/^\w/, (c) => c.toUpperCase()) });
}

function choiceLabel(choice: string | number, lang: string,
                     t: (key: string, options: { defaultValue: string }) => string): string {
  return typeof choice === "number" ? formatNumber(choice, lang)
    : t(`choice.${choice}`, { defaultValue: choice });
}

export default function ParamControl({ param, value, error, onChange }: Props) {
  const { t, i18n } = useTranslation("studio");
  const label = useParamLabel()(param.name);
  const id = useId();
  const shown = value ?? param.default ?? undefined;
  // The provider's help line is English; other languages show the catalogue's own line
  // for the parameter, or none.
  const helpText = t(`help.${param.name}`, {
    defaultValue: i18n.language === "en" ? (param.description ?? "") : "" });
  const help = helpText ? <span className="param-help muted">{helpText}</span> : null;
  const errorLine = error ? <span className="field-error error" id={`${id}-error`}>{error}</span> : null;
  const describedBy = error ? `${id}-error` : undefined;

  if (param.choices && param.choices.length > 0) {
    const choices = param.choices;
    const fromString = (raw: string): string | number => {
      const found = choices.find((c) => String(c) === raw);
      return found ?? raw;
    };
    if (choices.length <= 4) {
      return (
        <fieldset className="param segmented" data-param={param.name}>
          <legend>{label}</legend>
          <div className="segments">
            {choices.map((choice) => (
              <label key={String(choice)} className="segment">
                <input type="radio" name={id} value={String(choice)}
                       checked={String(shown) === String(choice)}
                       aria-describedby={describedBy}
                       onChange={(e) => onChange(fromString(e.target.value))} />
                <span>{choiceLabel(choice, i18n.language, t)}</span>
              </label>
            ))}
          </div>
          {help}{errorLine}
        </fieldset>
      );
    }
    return (
      <label className="param" data-param={param.name}>
        <span>{label}</span>
        <select value={shown === undefined ? "" : String(shown)} aria-describedby={describedBy}
                onChange={(e) => onChange(e.target.value === "" ? undefined : fromString(e.target.value))}>
          {shown === undefined && <option value="">{t("form.default")}</option>}
          {choices.map((choice) => (
            <option key={String(choice)} value={String(choice)}>
              {choiceLabel(choice, i18n.language, t)}
            </option>
          ))}
        </select>
        {help}{errorLine}
      </label>
    );
  }

  if (param.kind === "boolean") {
    return (
      <label className="param switch" data-param={param.name}>
        <input type="checkbox" role="switch" checked={shown === true}
               aria-describedby={describedBy} onChange={(e) => onChange(e.target.checked)} />
        <span>{label}</span>
        {help}{errorLine}
      </label>
    );
  }

  if (param.kind === "integer" || param.kind === "number") {
    const integer = param.kind === "integer";
    const step = integer ? 1 : (param.maximum !== null && param.minimum !== null
      && param.maximum - param.minimum <= 2 ? 0.05 : 0.1);
    const parse = (raw: string): number | undefined => {
      if (raw === "") return undefined;
      const n = integer ? parseInt(raw, 10) : parseFloat(raw);
      return Number.isNaN(n) ? undefined : n;
    };
    const numeric = typeof shown === "number" ? shown : undefined;
    const ranged = param.minimum !== null && param.maximum !== null;
    return (
      <div className="param number" data-param={param.name}>
        <label htmlFor={id}>{label}</label>
        <div className="number-row">
          {ranged && (
            <input type="range" aria-label={label} min={param.minimum ?? undefined}
                   max={param.maximum ?? undefined} step={step}
                   value={numeric ?? param.minimum ?? 0}
                   onChange={(e) => onChange(parse(e.target.value))} />
          )}
          <input id={id} type="number" inputMode={integer ? "numeric" : "decimal"}
                 min={param.minimum ?? undefined} max={param.maximum ?? undefined} step={step}
                 value={numeric ?? ""} placeholder={t("form.default")}
                 aria-describedby={describedBy}
                 onChange={(e) => onChange(parse(e.target.value))} />
        </div>
        {help}{errorLine}
      </div>
    );
  }

  const long = param.name === "negative_prompt";
  return (
    <label className="param" data-param={param.name}>
      <span>{label}</span>
      {long ? (
        <textarea rows={2} value={typeof shown === "string" ? shown : ""}
                  aria-describedby={describedBy}
                  onChange={(e) => onChange(e.target.value === "" ? undefined : e.target.value)} />
      ) : (
        <input type="text" value={shown === undefined || shown === null ? "" : String(shown)}
               aria-describedby={describedBy}
               onChange={(e) => onChange(e.target.value === "" ? undefined : e.target.value)} />
      )}
      {help}{errorLine}
    </label>
  );
}
