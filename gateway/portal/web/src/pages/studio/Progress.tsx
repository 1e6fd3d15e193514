// A submitted generation while it runs (an aria-live status, a progress bar when the stream
// reports progress, Cancel) and its result once done, previewed inline with a link to its
// viewer page.
import { lazy, Suspense } from "react";
import { Link } from "react-router";
import { useTranslation } from "react-i18next";
import { formatNumber } from "../../i18n";
import { TERMINAL, type Generation, type Output } from "./catalogue";
import type { Tracked } from "./useGeneration";

const ModelViewer = lazy(() => import("../../components/ModelViewer"));

export function OutputPreview({ output, alt }: { output: Output; alt: string }) {
  const type = output.content_type;
  if (type.startsWith("image/")) return <img className="result-media" src={output.url} alt={alt} />;
  if (type.startsWith("audio/")) return <audio className="result-media" controls src={output.url} aria-label={alt} />;
  if (type.startsWith("video/")) {
    return <video className="result-media" controls playsInline src={output.url} aria-label={alt}
                  poster={output.thumbnail_url ?? undefined} />;
  }
  if (type.startsWith("model/") || output.url.endsWith(".glb")) {
    return <Suspense fallback={null}><ModelViewer url={output.url} label={alt} /></Suspense>;
  }
  return <a href={output.url} target="_blank" rel="noreferrer">{alt}</a>;
}

function Result({ generation }: { generation: Generation }) {
  const { t } = useTranslation("studio");
  if (generation.status !== "succeeded") {
    return (
      <p className="error" role="alert">
        {generation.status === "failed"
          ? t("progress.failed", { message: generation.error?.message ?? "" })
          : t("progress.cancelled")}
      </p>
    );
  }
  return (
    <div className="result" data-testid="result">
      <div className="result-grid">
        {generation.outputs.map((output, index) => (
          <OutputPreview key={output.url} output={output as Output}
                         alt={t("progress.output", { n: index + 1 })} />
        ))}
      </div>
      <Link className="button-link" to={`/gallery/${generation.id}`}>{t("progress.open")}</Link>
    </div>
  );
}

export default function Progress({ tracked }: { tracked: Tracked }) {
  const { t, i18n } = useTranslation("studio");
  const { status, progress, generation } = tracked;
  if (status === null) return null;
  const running = !TERMINAL.has(status);
  const percent = progress === null ? null : Math.round(progress * 100);
  return (
    <section className="progress card" aria-label={t("progress.label")}>
      <p role="status" aria-live="polite" className="progress-status">
        {t(`progress.status.${status}`, { defaultValue: status })}
        {running && percent !== null && ` · ${formatNumber(percent, i18n.language)}%`}
      </p>
      {running && (
        <>
          {percent !== null
            ? <progress max={100} value={percent} aria-label={t("progress.label")} />
            : <progress aria-label={t("progress.label")} />}
          <button type="button" onClick={() => void tracked.cancel()}>{t("progress.cancel")}</button>
        </>
      )}
      {generation && <Result generation={generation} />}
    </section>
  );
}
