// An image to look closely at: wheel or pinch to zoom, drag to pan, buttons and the keys
// + - 0 (when the picture has focus) for people without a wheel or touch screen.
import { useCallback, useRef, useState, type KeyboardEvent, type PointerEvent, type WheelEvent } from "react";
import { useTranslation } from "react-i18next";
import { formatNumber } from "../i18n";

const MIN = 1;
const MAX = 8;

interface View { scale: number; x: number; y: number }

function clamp(scale: number): number {
  return Math.min(MAX, Math.max(MIN, scale));
}

export default function ZoomableImage({ src, alt }: { src: string; alt: string }) {
  const { t, i18n } = useTranslation("viewer");
  const [view, setView] = useState<View>({ scale: 1, x: 0, y: 0 });
  const pointers = useRef(new Map<number, { x: number; y: number }>());
  const pinch = useRef<number | null>(null);

  const zoomBy = useCallback((factor: number) => {
    setView((v) => {
      const scale = clamp(v.scale * factor);
      return scale === 1 ? { scale, x: 0, y: 0 } : { scale, x: v.x, y: v.y };
    });
  }, []);
  const reset = useCallback(() => setView({ scale: 1, x: 0, y: 0 }), []);

  function onWheel(event: WheelEvent<HTMLDivElement>) {
    zoomBy(event.deltaY < 0 ? 1.15 : 1 / 1.15);
  }
  function onKeyDown(event: KeyboardEvent<HTMLDivElement>) {
    if (event.key === "+" || event.key === "=") zoomBy(1.25);
    else if (event.key === "-" || event.key === "_") zoomBy(1 / 1.25);
    else if (event.key === "0") reset();
    else return;
    event.preventDefault();
  }
  function onPointerDown(event: PointerEvent<HTMLDivElement>) {
    event.currentTarget.setPointerCapture(event.pointerId);
    pointers.current.set(event.pointerId, { x: event.clientX, y: event.clientY });
  }
  function onPointerMove(event: PointerEvent<HTMLDivElement>) {
    const before = pointers.current.get(event.pointerId);
    if (!before) return;
    pointers.current.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (pointers.current.size === 2) {
      const [a, b] = [...pointers.current.values()];
      const distance = Math.hypot(a!.x - b!.x, a!.y - b!.y);
      if (pinch.current) zoomBy(distance / pinch.current);
      pinch.current = distance;
      return;
    }
    setView((v) => v.scale === 1 ? v
      : { ...v, x: v.x + event.clientX - before.x, y: v.y + event.clientY - before.y });
  }
  function onPointerUp(event: PointerEvent<HTMLDivElement>) {
    pointers.current.delete(event.pointerId);
    if (pointers.current.size < 2) pinch.current = null;
  }

  const percent = formatNumber(view.scale, i18n.language, { style: "percent" });
  return (
    <div className="zoom">
      <div className="zoom-frame" tabIndex={0} role="group"
           aria-label={t("zoom.frame")} aria-describedby="zoom-help"
           onWheel={onWheel} onKeyDown={onKeyDown} onPointerDown={onPointerDown}
           onPointerMove={onPointerMove} onPointerUp={onPointerUp} onPointerCancel={onPointerUp}
           data-scale={view.scale}>
        <img src={src} alt={alt} draggable={false}
             style={{ transform: `translate(${view.x}px, ${view.y}px) scale(${view.scale})` }} />
      </div>
      <p id="zoom-help" className="visually-hidden">{t("zoom.help")}</p>
      <div className="zoom-controls">
        <button type="button" onClick={() => zoomBy(1 / 1.25)} disabled={view.scale <= MIN}
                aria-label={t("zoom.out")}>−</button>
        <output aria-live="polite" className="zoom-level">{percent}</output>
        <button type="button" onClick={() => zoomBy(1.25)} disabled={view.scale >= MAX}
                aria-label={t("zoom.in")}>+</button>
        <button type="button" onClick={reset}>{t("zoom.reset")}</button>
      </div>
    </div>
  );
}
