// One generation: its output in the player it needs (zoomable image, waveform, video with
// renditions, 3D model), what was asked and what it cost, and what can be done with it
// (download, favourite, share, delete). Prev/next follow the gallery listing it came from.
import { useEffect, useRef, useState } from "react";
import { Link, useLocation, useNavigate, useParams } from "react-router";
import { useTranslation } from "react-i18next";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { ApiError } from "../../api/client";
import MediaView from "../../components/MediaView";
import { usePortalConfig } from "../../config";
import { formatCredits, formatDate } from "../../i18n";
import {
  ACTIVE, deleteGeneration, getGeneration, setFavourite, share, type Generation, type Share,
} from "../gallery/api";
import BrandCheck, { checkable } from "./BrandCheck";
import "./viewer.css";

interface FromGallery { ids?: string[]; back?: string }

function ShareBox({ id }: { id: string }) {
  const { t, i18n } = useTranslation("viewer");
  const [copied, setCopied] = useState(false);
  const link = useMutation<Share, Error>({ mutationFn: () => share(id) });
  const field = useRef<HTMLInputElement>(null);
  async function copy(url: string) {
    try {
      // The Clipboard API exists on secure origins only; elsewhere copy the selected field.
      if (navigator.clipboard) await navigator.clipboard.writeText(url);
      else {
        field.current?.select();
        if (!document.execCommand("copy")) throw new Error("copy refused");
      }
      setCopied(true);
    } catch {
      setCopied(false);
    }
  }
  return (
    <div className="share">
      <button type="button" onClick={() => link.mutate(undefined, {
                onSuccess: (s) => { setTimeout(() => void copy(s.url)); } })}
              disabled={link.isPending}>
        {t("share.create")}
      </button>
      {link.data ? (
        <div className="share-link">
          <label>
            {t("share.link")}
            <input ref={field} type="url" readOnly value={link.data.url} onFocus={(e) => e.target.select()} />
          </label>
          <button type="button" onClick={() => void copy(link.data.url)}>{t("share.copy")}</button>
          <p className="muted" role="status">
            {copied ? `${t("share.copied")} ` : ""}
            {t("share.expires", { date: formatDate(link.data.expires_at, i18n.language) })}
          </p>
        </div>
      ) : null}
      {link.isError ? <p className="error" role="alert">{t("share.error")}</p> : null}
    </div>
  );
}

function Details({ generation }: { generation: Generation }) {
  const { t, i18n } = useTranslation("viewer");
  const config = usePortalConfig();
  const lang = i18n.language;
  // `brand` is the kit's snapshot the gateway wrote into the params; it shows as one line below.
  const params = Object.entries(generation.params).filter(([name]) => name !== "brand");
  const brand = generation.params.brand as { name?: string } | undefined;
  return (
    <dl className="details">
      {generation.prompt ? (<><dt>{t("meta.prompt")}</dt><dd className="prompt"><bdi>{generation.prompt}</bdi></dd></>) : null}
      <dt>{t("meta.type")}</dt><dd>{t(`types.${generation.type}`, { defaultValue: generation.type })}</dd>
      <dt>{t("meta.status")}</dt><dd>{t(`status.${generation.status}`, { defaultValue: generation.status })}</dd>
      <dt>{t("meta.cost")}</dt>
      <dd>{t("meta.credits", { amount: formatCredits(generation.cost.charged ?? generation.cost.estimated, lang) })}
        {generation.cost.charged === null ? ` (${t("meta.estimated")})` : ""}</dd>
      <dt>{t("meta.created")}</dt><dd>{formatDate(generation.created_at, lang)}</dd>
      {generation.completed_at ? (<><dt>{t("meta.completed")}</dt><dd>{formatDate(generation.completed_at, lang)}</dd></>) : null}
      {config.show_provider_names ? (<><dt>{t("meta.provider")}</dt><dd>{generation.provider}</dd></>) : null}
      {generation.brand_kit_id ? (<><dt>{t("meta.brand_kit")}</dt>
        <dd><bdi>{t("meta.brand_kit_value", { name: brand?.name ?? generation.brand_kit_id, version: generation.brand_kit_version ?? "" })}</bdi></dd></>) : null}
      {generation.error ? (<><dt>{t("meta.error")}</dt><dd className="error">{generation.error.message}</dd></>) : null}
      {params.length ? (
        <>
          <dt>{t("meta.params")}</dt>
          <dd>
            <ul className="params">
              {params.map(([name, value]) => (
                <li key={name}><span className="param-name">{name}</span>{" "}
                  <bdi>{typeof value === "string" ? value : JSON.stringify(value)}</bdi></li>
              ))}
            </ul>
          </dd>
        </>
      ) : null}
    </dl>
  );
}

export default function Viewer() {
  const { t } = useTranslation("viewer");
  const { id = "" } = useParams();
  const location = useLocation();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const from = (location.state ?? {}) as FromGallery;
  const heading = useRef<HTMLHeadingElement>(null);
  const [confirming, setConfirming] = useState(false);
  const dialog = useRef<HTMLDialogElement>(null);

  const query = useQuery({
    queryKey: ["generations", "one", id],
    queryFn: () => getGeneration(id),
    refetchInterval: (q) => (q.state.data && ACTIVE.has(q.state.data.status) ? 2000 : false),
    retry: (count, error) => !(error instanceof ApiError && error.status === 404) && count < 1,
  });
  const generation = query.data;
  useEffect(() => heading.current?.focus(), [id]);
  useEffect(() => {
    if (confirming) dialog.current?.showModal();
  }, [confirming]);

  const favourite = useMutation({
    mutationFn: (on: boolean) => setFavourite(id, on),
    onSuccess: (g) => {
      queryClient.setQueryData(["generations", "one", id], g);
      void queryClient.invalidateQueries({ queryKey: ["generations", "gallery"] });
    },
  });
  const remove = useMutation({
    mutationFn: () => deleteGeneration(id),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ["generations", "gallery"] });
      void navigate(`/gallery${from.back ? `?${from.back}` : ""}`);
    },
  });

  const ids = from.ids ?? [];
  const at = ids.indexOf(id);
  const prev = at > 0 ? ids[at - 1] : undefined;
  const next = at >= 0 && at < ids.length - 1 ? ids[at + 1] : undefined;
  const back = `/gallery${from.back ? `?${from.back}` : ""}`;

  if (query.isPending) return <p className="loading" role="status">{t("loading")}</p>;
  if (query.isError || !generation) {
    const missing = query.error instanceof ApiError && query.error.status === 404;
    return (
      <section className="viewer">
        <h1 ref={heading} tabIndex={-1}>{missing ? t("not_found") : t("error")}</h1>
        {!missing ? <button type="button" onClick={() => void query.refetch()}>{t("retry")}</button> : null}
        <Link to={back}>{t("back")}</Link>
      </section>
    );
  }

  const isFavourite = generation.favourite;
  const output = generation.outputs[0];
  const active = ACTIVE.has(generation.status);
  return (
    <section className="viewer">
      <nav className="viewer-nav" aria-label={t("nav")}>
        <Link to={back}>{t("back")}</Link>
        <span className="spacer" />
        {prev ? <Link to={`/gallery/${prev}`} state={from} rel="prev">{t("prev")}</Link> : null}
        {next ? <Link to={`/gallery/${next}`} state={from} rel="next">{t("next")}</Link> : null}
      </nav>
      <h1 ref={heading} tabIndex={-1} className="viewer-title">
        <bdi>{generation.prompt || t(`types.${generation.type}`, { defaultValue: generation.type })}</bdi>
      </h1>
      <div className="viewer-body">
        <div className="viewer-media">
          {active ? (
            <p className="loading" role="status" aria-live="polite">{t(`status.${generation.status}`)}</p>
          ) : (
            <MediaView type={generation.type} outputs={generation.outputs} prompt={generation.prompt} />
          )}
        </div>
        <aside className="viewer-side">
          <div className="viewer-actions">
            {output ? <a className="button primary" href={output.url} download>{t("download")}</a> : null}
            <button type="button" aria-pressed={isFavourite} onClick={() => favourite.mutate(!isFavourite)}
                    disabled={favourite.isPending}>
              {isFavourite ? `★ ${t("favourite.on")}` : `☆ ${t("favourite.off")}`}
            </button>
            <button type="button" className="danger" onClick={() => setConfirming(true)} disabled={active}>
              {t("delete.action")}
            </button>
          </div>
          {generation.status === "succeeded" ? <ShareBox id={generation.id} /> : null}
          <Details generation={generation} />
          {checkable(generation) ? <BrandCheck key={generation.id} generation={generation} /> : null}
        </aside>
      </div>
      {confirming ? (
        <dialog ref={dialog} className="confirm" aria-labelledby="viewer-confirm" onCancel={() => setConfirming(false)}>
          <h2 id="viewer-confirm">{t("delete.title")}</h2>
          <p>{t("delete.body")}</p>
          {remove.isError ? <p className="error" role="alert">{t("delete.error")}</p> : null}
          <div className="actions">
            <button type="button" autoFocus onClick={() => setConfirming(false)}>{t("delete.cancel")}</button>
            <button type="button" className="danger" onClick={() => remove.mutate()} disabled={remove.isPending}>
              {t("delete.confirm")}
            </button>
          </div>
        </dialog>
      ) : null}
    </section>
  );
}
