// Pieces every console form and list shares: an action runner that keeps the API's error
// (so a field can show the error whose `param` names it), field errors, a confirmation
// dialog for destructive actions, a secret shown once with a copy button, and the
// "load more" of keyset-paginated lists.
import { useEffect, useId, useRef, useState, type ReactNode } from "react";
import { useTranslation } from "react-i18next";
import type { TFunction } from "i18next";
import { ApiError } from "../../api/client";

/** The API's error in the page's language: `errors.<code>` when the catalogue has it,
 * else the server's own message (it names what was wrong). */
export function errorText(t: TFunction, error: unknown): string {
  if (error instanceof ApiError) {
    return t(`errors.${error.code}`, { ns: "console", defaultValue: error.message || t("errors.generic", { ns: "console" }) });
  }
  return t("errors.network", { ns: "console" });
}

export interface Action {
  busy: boolean;
  error: unknown;
  /** Runs `fn`; false when it threw (the error is kept for the form to show). */
  run(fn: () => Promise<void>): Promise<boolean>;
  /** The error text when the API named `param` (or a field inside it). */
  fieldError(param: string): string | null;
  /** The error text when no field shows it. */
  formError(fields?: readonly string[]): string | null;
  reset(): void;
}

export function useAction(): Action {
  const { t } = useTranslation("console");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const matches = (param: string) => error instanceof ApiError && !!error.param
    && (error.param === param || error.param.startsWith(`${param}.`) || error.param.startsWith(`${param}[`));
  return {
    busy, error,
    async run(fn) {
      setBusy(true);
      setError(null);
      try {
        await fn();
        return true;
      } catch (e) {
        setError(e);
        return false;
      } finally {
        setBusy(false);
      }
    },
    fieldError: (param) => (matches(param) ? errorText(t, error) : null),
    formError(fields = []) {
      if (!error) return null;
      if (error instanceof ApiError && error.param && fields.some((f) => matches(f))) return null;
      return errorText(t, error);
    },
    reset: () => setError(null),
  };
}

/** A labelled input whose API error (by `param`) shows under it. */
export function Field({ label, param, action, hint, children }: {
  label: string; param?: string; action?: Action; hint?: string; children: (props: {
    id: string; "aria-invalid"?: boolean; "aria-describedby"?: string }) => ReactNode;
}) {
  const id = useId();
  const error = param && action ? action.fieldError(param) : null;
  const describedBy = [hint ? `${id}-hint` : "", error ? `${id}-error` : ""].filter(Boolean).join(" ");
  return (
    <div className="c-field">
      <label htmlFor={id}>{label}</label>
      {children({ id, ...(error ? { "aria-invalid": true } : {}),
                  ...(describedBy ? { "aria-describedby": describedBy } : {}) })}
      {hint ? <span id={`${id}-hint`} className="muted small">{hint}</span> : null}
      {error ? <span id={`${id}-error`} className="error small" role="alert" data-param={param}>{error}</span> : null}
    </div>
  );
}

export function FormError({ action, fields }: { action: Action; fields?: readonly string[] }) {
  const text = action.formError(fields);
  return text ? <p role="alert" className="error">{text}</p> : null;
}

/** A button that asks before doing something that cannot be undone. */
export function ConfirmButton({ label, question, confirmLabel, onConfirm, disabled, className = "danger", ariaLabel }: {
  label: string; question: string; confirmLabel?: string; onConfirm: () => void;
  disabled?: boolean; className?: string;
  /** The button's accessible name when `label` alone is ambiguous (one per row). */
  ariaLabel?: string;
}) {
  const { t } = useTranslation("console");
  const dialog = useRef<HTMLDialogElement>(null);
  const headingId = useId();
  return (
    <>
      <button type="button" className={className} disabled={disabled} aria-label={ariaLabel}
              onClick={() => dialog.current?.showModal()}>{label}</button>
      <dialog ref={dialog} className="confirm" aria-labelledby={headingId}>
        <p id={headingId}>{question}</p>
        <div className="actions">
          <button type="button" onClick={() => dialog.current?.close()}>{t("common.cancel")}</button>
          <button type="button" className="danger" onClick={() => { dialog.current?.close(); onConfirm(); }}>
            {confirmLabel ?? label}
          </button>
        </div>
      </dialog>
    </>
  );
}

/** A secret the API shows only once: shown with a copy button until dismissed. */
export function SecretOnce({ title, secret, onDone }: { title: string; secret: string; onDone: () => void }) {
  const { t } = useTranslation("console");
  const [copied, setCopied] = useState(false);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => { ref.current?.focus(); }, []);
  return (
    <div className="card c-secret" role="region" aria-label={title} tabIndex={-1} ref={ref}>
      <h3>{title}</h3>
      <p className="muted">{t("common.secret_once")}</p>
      <code className="c-secret-value" data-testid="secret"><bdi>{secret}</bdi></code>
      <div className="c-actions">
        <button type="button" onClick={() => {
          void navigator.clipboard?.writeText(secret).then(() => setCopied(true), () => setCopied(false));
        }}>{copied ? t("common.copied") : t("common.copy")}</button>
        <button type="button" className="primary" onClick={onDone}>{t("common.done")}</button>
      </div>
    </div>
  );
}

export function MoreButton({ hasMore, loading, onMore }: { hasMore: boolean; loading: boolean; onMore: () => void }) {
  const { t } = useTranslation("console");
  if (!hasMore) return null;
  return (
    <button type="button" onClick={onMore} disabled={loading}>
      {loading ? t("common.loading") : t("common.more")}
    </button>
  );
}

/** Status and empty states of a query-backed list. */
export function ListState({ loading, error, empty, emptyText }: {
  loading: boolean; error: unknown; empty: boolean; emptyText: string;
}) {
  const { t } = useTranslation("console");
  if (error) return <p role="alert" className="error">{errorText(t, error)}</p>;
  if (loading) return <p className="muted" role="status">{t("common.loading")}</p>;
  if (empty) return <p className="muted c-empty">{emptyText}</p>;
  return null;
}

/** A new random Idempotency-Key: one per form submission, so a retried click is not a second move. */
export function idempotencyKey(): string {
  // getRandomValues works outside secure contexts too (randomUUID does not).
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Parses a credits field (decimal credits as typed) into millicredits; null when empty. */
export function creditsToMc(text: string): number | null {
  const trimmed = text.trim();
  if (!trimmed) return null;
  const value = Number(trimmed);
  return Number.isFinite(value) ? Math.round(value * 1000) : NaN;
}

/** Parses an optional integer field; null when empty, NaN when not a number. */
export function intOrNull(text: string): number | null {
  const trimmed = text.trim();
  if (!trimmed) return null;
  const value = Number(trimmed);
  return Number.isInteger(value) ? value : NaN;
}
