// Painting the area an edit redraws: the picture with a canvas over it; what is painted
// becomes transparent in the mask (the API's convention: transparency marks what to redraw).
// The mask is made at the picture's own size, whatever size it is shown at.
import { useCallback, useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";

interface Props {
  /** The picture, as a data: or same-origin URL. */
  src: string;
  /** Called with the mask as a PNG data: URL, or null when nothing is painted. */
  onMask(mask: string | null): void;
}

type Stroke = { size: number; points: [number, number][] };

export default function MaskPainter({ src, onMask }: Props) {
  const { t } = useTranslation("studio");
  const canvas = useRef<HTMLCanvasElement>(null);
  const [natural, setNatural] = useState<{ w: number; h: number } | null>(null);
  const [brush, setBrush] = useState(40);
  const [strokes, setStrokes] = useState<Stroke[]>([]);
  const drawing = useRef<Stroke | null>(null);

  useEffect(() => {
    const image = new Image();
    image.onload = () => setNatural({ w: image.naturalWidth, h: image.naturalHeight });
    image.src = src;
    setStrokes([]);
  }, [src]);

  const paint = useCallback((ctx: CanvasRenderingContext2D, all: Stroke[], colour: string) => {
    ctx.strokeStyle = colour;
    ctx.fillStyle = colour;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    for (const stroke of all) {
      ctx.lineWidth = stroke.size;
      ctx.beginPath();
      stroke.points.forEach(([x, y], i) => (i === 0 ? ctx.moveTo(x, y) : ctx.lineTo(x, y)));
      if (stroke.points.length === 1) {
        const [x, y] = stroke.points[0]!;
        ctx.arc(x, y, stroke.size / 2, 0, Math.PI * 2);
        ctx.fill();
      } else {
        ctx.stroke();
      }
    }
  }, []);

  const redraw = useCallback((all: Stroke[]) => {
    const ctx = canvas.current?.getContext("2d");
    if (!ctx || !canvas.current) return;
    ctx.clearRect(0, 0, canvas.current.width, canvas.current.height);
    paint(ctx, all, "rgba(236, 72, 153, 0.55)");
  }, [paint]);

  // The mask: opaque everywhere except the painted strokes.
  const exportMask = useCallback((all: Stroke[]) => {
    if (!natural || all.length === 0) {
      onMask(null);
      return;
    }
    const out = document.createElement("canvas");
    out.width = natural.w;
    out.height = natural.h;
    const ctx = out.getContext("2d")!;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.globalCompositeOperation = "destination-out";
    paint(ctx, all, "#000");
    onMask(out.toDataURL("image/png"));
  }, [natural, onMask, paint]);

  useEffect(() => { redraw(strokes); exportMask(strokes); }, [strokes, redraw, exportMask]);

  const point = (e: React.PointerEvent<HTMLCanvasElement>): [number, number] => {
    const rect = e.currentTarget.getBoundingClientRect();
    const scale = e.currentTarget.width / rect.width;
    return [(e.clientX - rect.left) * scale, (e.clientY - rect.top) * scale];
  };
  const scaledBrush = () => {
    const el = canvas.current;
    if (!el) return brush;
    return brush * (el.width / el.getBoundingClientRect().width);
  };

  return (
    <div className="mask-painter">
      <div className="mask-stage">
        <img src={src} alt={t("edit.source_alt")} />
        {natural && (
          <canvas ref={canvas} width={natural.w} height={natural.h} data-testid="mask-canvas"
                  aria-label={t("edit.canvas")} role="img"
                  onPointerDown={(e) => {
                    e.currentTarget.setPointerCapture(e.pointerId);
                    drawing.current = { size: scaledBrush(), points: [point(e)] };
                    redraw([...strokes, drawing.current]);
                  }}
                  onPointerMove={(e) => {
                    if (!drawing.current) return;
                    drawing.current.points.push(point(e));
                    redraw([...strokes, drawing.current]);
                  }}
                  onPointerUp={() => {
                    const done = drawing.current;
                    drawing.current = null;
                    if (done) setStrokes((old) => [...old, done]);
                  }} />
        )}
      </div>
      <div className="mask-tools">
        <label className="param">
          <span>{t("edit.brush")}</span>
          <input type="range" min={5} max={120} value={brush}
                 onChange={(e) => setBrush(Number(e.target.value))} />
        </label>
        <button type="button" disabled={strokes.length === 0}
                onClick={() => setStrokes((old) => old.slice(0, -1))}>{t("edit.undo")}</button>
        <button type="button" disabled={strokes.length === 0}
                onClick={() => setStrokes([])}>{t("edit.clear")}</button>
      </div>
      <p className="muted">{t("edit.hint")}</p>
    </div>
  );
}
