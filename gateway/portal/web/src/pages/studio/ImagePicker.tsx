// Choosing an input picture: a file from the device, one of the person's own image
// generations (GET /v1/generations?type=image), or the last result of this panel.
import { useId, useState } from "react";
import { useQuery } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, currentTeam, unwrap } from "../../api/client";
import { readAsDataUrl } from "./catalogue";

interface Props {
  value: string | null;
  onChange(dataUrl: string | null): void;
  /** A picture this panel just made, offered first. */
  last?: string | null;
  /** Show the chosen picture (off when another widget shows it). */
  preview?: boolean;
}

/** A same-origin output URL as a data: URL (the API takes inputs inline). */
async function urlToDataUrl(url: string): Promise<string> {
  const response = await fetch(url, { credentials: "same-origin" });
  return readAsDataUrl(await response.blob());
}

export default function ImagePicker({ value, onChange, last, preview = true }: Props) {
  const { t } = useTranslation("studio");
  const id = useId();
  const [browsing, setBrowsing] = useState(false);
  const gallery = useQuery({
    queryKey: ["generations", "image-picker", currentTeam()],
    enabled: browsing,
    queryFn: async () => unwrap(await api.GET("/v1/generations", {
      params: { query: { type: "image", status: "succeeded", limit: 24 } } })),
  });
  const images = (gallery.data?.data ?? []).flatMap((g) => g.outputs
    .filter((o) => o.content_type.startsWith("image/")).slice(0, 1)
    .map((o) => ({ id: g.id, url: o.url })));

  return (
    <div className="image-picker">
      <div className="picker-row">
        <label htmlFor={id} className="file-label">{t("picker.upload")}</label>
        <input id={id} type="file" accept="image/png,image/jpeg,image/webp"
               onChange={(e) => {
                 const file = e.target.files?.[0];
                 if (file) void readAsDataUrl(file).then(onChange);
               }} />
        {last && (
          <button type="button" onClick={() => void urlToDataUrl(last).then(onChange)}>
            {t("picker.last")}
          </button>
        )}
        <button type="button" aria-expanded={browsing} onClick={() => setBrowsing((b) => !b)}>
          {t("picker.gallery")}
        </button>
        {value && <button type="button" onClick={() => onChange(null)}>{t("picker.remove")}</button>}
      </div>
      {browsing && (
        <div className="picker-grid" role="group" aria-label={t("picker.gallery")}>
          {gallery.isLoading && <p className="muted">{t("loading", { ns: "common" })}</p>}
          {!gallery.isLoading && images.length === 0 && <p className="muted">{t("picker.none")}</p>}
          {images.map((image, i) => (
            <button type="button" key={image.id} className="picker-thumb"
                    onClick={() => { setBrowsing(false); void urlToDataUrl(image.url).then(onChange); }}>
              <img src={image.url} alt={t("picker.thumb", { n: i + 1 })} />
            </button>
          ))}
        </div>
      )}
      {preview && value && !browsing && <img className="picker-preview" src={value} alt={t("picker.chosen")} />}
    </div>
  );
}
