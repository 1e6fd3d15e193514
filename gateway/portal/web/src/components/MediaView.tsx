// The player an output needs: a zoomable image, audio with its waveform, video with its
// poster frame and a quality choice, or a 3D model. Used by the viewer and the share page.
import { useState } from "react";
import { useTranslation } from "react-i18next";
import { kindOf, type MediaOutput } from "../pages/gallery/api";
import { MediaIcon } from "./MediaIcon";
import ModelViewer from "./ModelViewer";
import Waveform from "./Waveform";
import ZoomableImage from "./ZoomableImage";

function qualityLabel(output: MediaOutput, index: number, t: (key: string, o?: Record<string, unknown>) => string): string {
  return output.height ? `${output.height}p` : t("video.rendition", { n: index + 1 });
}

function VideoPlayer({ outputs, label }: { outputs: MediaOutput[]; label: string }) {
  const { t } = useTranslation("viewer");
  // Best first: the renditions sorted by height, tallest first.
  const renditions = [...outputs].sort((a, b) => (b.height ?? 0) - (a.height ?? 0));
  const [chosen, setChosen] = useState(0);
  const output = renditions[chosen] ?? renditions[0]!;
  return (
    <div className="video-player">
      <video key={output.url} src={output.url} poster={output.thumbnail_url ?? undefined}
             controls playsInline preload="metadata" aria-label={label} />
      {renditions.length > 1 ? (
        <label className="inline-field">
          {t("video.quality")}
          <select value={chosen} onChange={(e) => setChosen(Number(e.target.value))}>
            {renditions.map((r, i) => <option key={r.url} value={i}>{qualityLabel(r, i, t)}</option>)}
          </select>
        </label>
      ) : null}
    </div>
  );
}

export default function MediaView({ type, outputs, prompt }: { type: string; outputs: MediaOutput[]; prompt: string }) {
  const { t } = useTranslation("viewer");
  const [index, setIndex] = useState(0);
  const first = outputs[0];
  if (!first) return <div className="media-empty"><MediaIcon kind={type} /></div>;
  const kind = kindOf(first, type);
  const label = prompt || t(`types.${type}`, { defaultValue: type });
  if (kind === "video") return <VideoPlayer outputs={outputs} label={label} />;
  const output = outputs[index] ?? first;
  let player;
  if (kind === "image") player = <ZoomableImage key={output.url} src={output.url} alt={label} />;
  else if (kind === "audio") {
    player = <Waveform url={output.url} peaks={output.peaks} duration={output.duration_s} label={t("audio.waveform", { prompt: label })} />;
  } else if (kind === "model_3d") player = <ModelViewer url={output.url} label={t("model.label", { prompt: label })} />;
  else {
    player = (
      <div className="media-empty">
        <MediaIcon kind="file" />
        <a href={output.url} download>{t("download")}</a>
      </div>
    );
  }
  return (
    <div className="media-view">
      {player}
      {outputs.length > 1 ? (
        <div className="output-picker" role="group" aria-label={t("outputs")}>
          {outputs.map((o, i) => (
            <button key={o.url} type="button" aria-pressed={i === index} onClick={() => setIndex(i)}>
              {t("output_n", { n: i + 1 })}
            </button>
          ))}
        </div>
      ) : null}
    </div>
  );
}
