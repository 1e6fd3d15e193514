// Small line icons for outputs without a picture (3D models, audio without peaks, files).
// Decorative: the tile or button around them carries the accessible name.
export function MediaIcon({ kind }: { kind: string }) {
  const common = { width: 48, height: 48, viewBox: "0 0 24 24", fill: "none", stroke: "currentColor",
                   strokeWidth: 1.5, strokeLinecap: "round" as const, strokeLinejoin: "round" as const,
                   "aria-hidden": true, focusable: false };
  if (kind === "model_3d") {
    return (
      <svg {...common}>
        <path d="M12 2 3 7v10l9 5 9-5V7z" /><path d="m3 7 9 5 9-5" /><path d="M12 12v10" />
      </svg>
    );
  }
  if (kind === "audio") {
    return (
      <svg {...common}>
        <path d="M9 18V5l12-2v13" /><circle cx="6" cy="18" r="3" /><circle cx="18" cy="16" r="3" />
      </svg>
    );
  }
  if (kind === "video") {
    return <svg {...common}><rect x="2" y="5" width="15" height="14" rx="2" /><path d="m17 10 5-3v10l-5-3" /></svg>;
  }
  return (
    <svg {...common}>
      <path d="M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z" /><path d="M14 2v6h6" />
    </svg>
  );
}

/** A waveform picture from the worker's peaks (0..1), drawn as bars: no audio download. */
export function PeaksTile({ peaks }: { peaks: number[] }) {
  const bars = 64;
  const step = peaks.length / bars;
  const heights = Array.from({ length: bars }, (_, i) => {
    const slice = peaks.slice(Math.floor(i * step), Math.max(Math.floor((i + 1) * step), Math.floor(i * step) + 1));
    return Math.max(0.04, Math.min(1, Math.max(...slice.map(Math.abs))));
  });
  return (
    <svg className="peaks" viewBox={`0 0 ${bars * 2} 100`} preserveAspectRatio="none" aria-hidden="true" focusable="false">
      {heights.map((h, i) => (
        <rect key={i} x={i * 2 + 0.3} y={50 - h * 45} width={1.4} height={h * 90} rx={0.6} />
      ))}
    </svg>
  );
}
