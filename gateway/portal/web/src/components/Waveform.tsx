// Audio with its waveform (wavesurfer.js). With the worker's peaks and the duration the
// waveform draws at once and the audio streams only when played.
import { useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import WaveSurfer from "wavesurfer.js";

interface Props { url: string; peaks?: number[] | null; duration?: number | null; label: string }

export default function Waveform({ url, peaks, duration, label }: Props) {
  const { t } = useTranslation("viewer");
  const container = useRef<HTMLDivElement>(null);
  const surfer = useRef<WaveSurfer | null>(null);
  const [playing, setPlaying] = useState(false);
  const [ready, setReady] = useState(false);

  useEffect(() => {
    if (!container.current) return;
    const styles = getComputedStyle(document.documentElement);
    const ws = WaveSurfer.create({
      container: container.current, url, height: 96, barWidth: 2, barGap: 1, barRadius: 2,
      waveColor: styles.getPropertyValue("--color-muted").trim() || "#475569",
      progressColor: styles.getPropertyValue("--color-primary").trim() || "#334155",
      ...(peaks && peaks.length && duration ? { peaks: [peaks], duration } : {}),
    });
    surfer.current = ws;
    const offs = [
      ws.on("ready", () => setReady(true)),
      ws.on("redraw", () => setReady(true)),
      ws.on("play", () => setPlaying(true)),
      ws.on("pause", () => setPlaying(false)),
      ws.on("finish", () => setPlaying(false)),
    ];
    return () => {
      offs.forEach((off) => off());
      ws.destroy();
      surfer.current = null;
    };
  }, [url, peaks, duration]);

  return (
    <div className="waveform-player">
      <div ref={container} className="waveform" role="img" aria-label={label} />
      <button type="button" className="primary" aria-pressed={playing}
              disabled={!ready && !(peaks && duration)}
              onClick={() => void surfer.current?.playPause()}>
        {playing ? t("audio.pause") : t("audio.play")}
      </button>
    </div>
  );
}
