// The gallery: everything the customer (or the workspace's team) made, newest first, as a
// grid of tiles with filters kept in the URL (a reload or Back keeps them), full-text
// search, infinite scroll on the cursor API, favourites and bulk actions.
import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router";
import { useTranslation } from "react-i18next";
import { useInfiniteQuery, useMutation, useQueryClient, type InfiniteData } from "@tanstack/react-query";
import { ApiError } from "../../api/client";
import { MediaIcon, PeaksTile } from "../../components/MediaIcon";
import { formatCredits, formatDate, formatNumber } from "../../i18n";
import { useSession } from "../../session";
import {
  archiveUrl, bulk, filtersOf, hasFilters, kindOf, listGenerations, MEDIA_TYPES, previewUrl,
  setFavourite, STATUSES, type Filters, type Generation, type GenerationPage,
} from "./api";
import "./gallery.css";

type Pages = InfiniteData<GenerationPage, string | null>;

function Thumbnail({ generation }: { generation: Generation }) {
  const output = generation.outputs[0];
  const kind = kindOf(output, generation.type);
  const preview = previewUrl(output);
  if (preview) return <img src={preview} alt="" loading="lazy" decoding="async" />;
  if (kind === "video" && output) {
    return <video src={output.url} muted playsInline preload="metadata" aria-hidden="true" tabIndex={-1} />;
  }
  if (kind === "audio" && output?.peaks?.length) return <PeaksTile peaks={output.peaks} />;
  return <MediaIcon kind={output ? kind : generation.type} />;
}

function Tile({ generation, selected, onSelect, onFavourite, ids }: {
  generation: Generation; selected: boolean; onSelect(on: boolean): void;
  onFavourite(on: boolean): void; ids: string[];
}) {
  const { t, i18n } = useTranslation("gallery");
  const [params] = useSearchParams();
  const title = generation.prompt || t(`types.${generation.type}`);
  const cost = generation.cost.charged ?? generation.cost.estimated;
  const favourite = generation.favourite;
  return (
    <li className={`tile${selected ? " selected" : ""}`} data-id={generation.id} data-type={generation.type}>
      <Link to={`/gallery/${generation.id}`} state={{ ids, back: params.toString() }} className="tile-link">
        <span className="tile-media"><Thumbnail generation={generation} /></span>
        <span className="tile-title" dir="auto">{title}</span>
        <span className="tile-meta muted">
          {t(`types.${generation.type}`)} · {formatDate(generation.created_at, i18n.language)}
          {" · "}{t("credits", { amount: formatCredits(cost, i18n.language) })}
        </span>
      </Link>
      {generation.status !== "succeeded" ? (
        <span className={`badge status-${generation.status}`}>{t(`status.${generation.status}`)}</span>
      ) : null}
      <label className="tile-check">
        <input type="checkbox" checked={selected} onChange={(e) => onSelect(e.target.checked)} />
        <span className="visually-hidden">{t("select", { title })}</span>
      </label>
      <button type="button" className="tile-fav" aria-pressed={favourite}
              aria-label={t("favourite", { title })} onClick={() => onFavourite(!favourite)}>
        <span aria-hidden="true">{favourite ? "★" : "☆"}</span>
      </button>
    </li>
  );
}

function FilterBar({ filters, update }: { filters: Filters; update(changes: Record<string, string>): void }) {
  const { t } = useTranslation("gallery");
  const [q, setQ] = useState(filters.q);
  // Search as the person types, once they pause (the URL, and so the query, follow).
  useEffect(() => setQ(filters.q), [filters.q]);
  useEffect(() => {
    if (q === filters.q) return;
    const timer = setTimeout(() => update({ q }), 350);
    return () => clearTimeout(timer);
  }, [q, filters.q, update]);
  // On a phone the filters other than search fold away (open when one is in use).
  const advanced = Boolean(filters.type || filters.status || filters.from || filters.to
                           || filters.min || filters.max || filters.favourite);
  const [open, setOpen] = useState(() => advanced || window.matchMedia("(min-width: 700px)").matches);
  function submit(event: FormEvent) {
    event.preventDefault();
    update({ q });
  }
  return (
    <form className="filters" role="search" onSubmit={submit}>
      <label className="filter-q">
        {t("filters.search")}
        <input type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder={t("filters.search_hint")} />
      </label>
      <details className="more-filters" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>{t("filters.more")}</summary>
      <div className="filter-fields">
      <label>
        {t("filters.type")}
        <select value={filters.type} onChange={(e) => update({ type: e.target.value })}>
          <option value="">{t("filters.any")}</option>
          {MEDIA_TYPES.map((type) => <option key={type} value={type}>{t(`types.${type}`)}</option>)}
        </select>
      </label>
      <label>
        {t("filters.status")}
        <select value={filters.status} onChange={(e) => update({ status: e.target.value })}>
          <option value="">{t("filters.any")}</option>
          {STATUSES.map((s) => <option key={s} value={s}>{t(`status.${s}`)}</option>)}
        </select>
      </label>
      <label>
        {t("filters.from")}
        <input type="date" value={filters.from} max={filters.to || undefined} onChange={(e) => update({ from: e.target.value })} />
      </label>
      <label>
        {t("filters.to")}
        <input type="date" value={filters.to} min={filters.from || undefined} onChange={(e) => update({ to: e.target.value })} />
      </label>
      <label>
        {t("filters.min")}
        <input type="number" inputMode="decimal" min={0} step="any" value={filters.min} onChange={(e) => update({ min: e.target.value })} />
      </label>
      <label>
        {t("filters.max")}
        <input type="number" inputMode="decimal" min={0} step="any" value={filters.max} onChange={(e) => update({ max: e.target.value })} />
      </label>
      <label className="filter-check">
        <input type="checkbox" checked={filters.favourite} onChange={(e) => update({ favourite: e.target.checked ? "1" : "" })} />
        {t("filters.favourites")}
      </label>
      </div>
      </details>
    </form>
  );
}

function ConfirmDelete({ count, onConfirm, onCancel }: { count: number; onConfirm(): void; onCancel(): void }) {
  const { t, i18n } = useTranslation("gallery");
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    dialog.current?.showModal();
  }, []);
  return (
    <dialog ref={dialog} className="confirm" aria-labelledby="confirm-title" onCancel={onCancel}>
      <h2 id="confirm-title">{t("delete.title", { n: formatNumber(count, i18n.language) })}</h2>
      <p>{t("delete.body")}</p>
      <div className="actions">
        <button type="button" onClick={onCancel} autoFocus>{t("delete.cancel")}</button>
        <button type="button" className="danger" onClick={onConfirm}>{t("delete.confirm")}</button>
      </div>
    </dialog>
  );
}

export default function Gallery() {
  const { t, i18n } = useTranslation("gallery");
  const { teamId } = useSession();
  const [params, setParams] = useSearchParams();
  const filters = useMemo(() => filtersOf(params), [params]);
  const queryClient = useQueryClient();
  const key = useMemo(() => ["generations", "gallery", teamId, filters] as const, [teamId, filters]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [confirming, setConfirming] = useState(false);
  const [notice, setNotice] = useState("");

  const update = useCallback((changes: Record<string, string>) => {
    setParams((current) => {
      const next = new URLSearchParams(current);
      for (const [name, value] of Object.entries(changes)) {
        if (value) next.set(name, value);
        else next.delete(name);
      }
      return next;
    }, { replace: "q" in changes });
  }, [setParams]);

  const list = useInfiniteQuery({
    queryKey: key,
    queryFn: ({ pageParam }) => listGenerations(filters, pageParam),
    initialPageParam: null as string | null,
    getNextPageParam: (last) => last.next_cursor,
    retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 1,
    // Running generations change: look again while any is in flight.
    refetchInterval: (query) => query.state.data?.pages.some((p) => p.data.some((g) => g.status === "queued" || g.status === "running")) ? 4000 : false,
  });
  const items = useMemo(() => list.data?.pages.flatMap((p) => p.data) ?? [], [list.data]);
  const ids = useMemo(() => items.map((g) => g.id), [items]);

  // Drop selections of tiles no longer listed (deleted, or filtered out).
  useEffect(() => {
    setSelected((current) => {
      const kept = new Set([...current].filter((id) => ids.includes(id)));
      return kept.size === current.size ? current : kept;
    });
  }, [ids]);

  // Infinite scroll: the next page loads when the end of the grid comes into view.
  const sentinel = useRef<HTMLDivElement>(null);
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = list;
  useEffect(() => {
    const element = sentinel.current;
    if (!element || !hasNextPage) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && !isFetchingNextPage) void fetchNextPage();
    }, { rootMargin: "400px" });
    observer.observe(element);
    return () => observer.disconnect();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage]);

  function patch(changed: (g: Generation) => Generation | null) {
    queryClient.setQueryData<Pages>(key, (data) => data && {
      ...data,
      pages: data.pages.map((p) => ({
        ...p, data: p.data.map(changed).filter((g): g is Generation => g !== null),
      })),
    });
  }

  const favourite = useMutation({
    mutationFn: ({ id, on }: { id: string; on: boolean }) => setFavourite(id, on),
    onMutate: ({ id, on }) => patch((g) => (g.id === id ? { ...g, favourite: on } : g)),
    onSuccess: (g) => patch((old) => (old.id === g.id ? { ...old, favourite: g.favourite } : old)),
    // Lists read while the change was in flight (the favourites filter, the viewer) are
    // stale: read them again once the server has it, or has refused it.
    onSettled: () => void queryClient.invalidateQueries({ queryKey: ["generations"] }),
  });

  const bulkAction = useMutation({
    mutationFn: ({ action, chosen }: { action: "delete" | "favourite" | "unfavourite"; chosen: string[] }) => bulk(action, chosen),
    onSuccess: (results, { action }) => {
      const done = new Set(results.filter((r) => r.ok).map((r) => r.id));
      const failed = results.length - done.size;
      if (action === "delete") patch((g) => (done.has(g.id) ? null : g));
      else patch((g) => (done.has(g.id) ? { ...g, favourite: action === "favourite" } : g));
      setSelected(new Set(results.filter((r) => !r.ok).map((r) => r.id)));
      setNotice(t(`bulk.done_${action}`, { n: formatNumber(done.size, i18n.language) })
                + (failed ? ` ${t("bulk.failed", { n: formatNumber(failed, i18n.language) })}` : ""));
      void queryClient.invalidateQueries({ queryKey: ["generations"] });
    },
    onError: () => setNotice(t("bulk.error")),
  });

  function toggle(id: string, on: boolean) {
    setSelected((current) => {
      const next = new Set(current);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });
  }

  const chosen = [...selected];
  const filtered = hasFilters(filters);
  return (
    <section className="gallery">
      <h1>{t("title")}</h1>
      <FilterBar filters={filters} update={update} />
      {filtered ? (
        <button type="button" className="link-button" onClick={() => setParams(new URLSearchParams())}>
          {t("filters.clear")}
        </button>
      ) : null}

      <div className="bulk-bar" role="toolbar" aria-label={t("bulk.label")}>
        <span aria-live="polite">{t("bulk.selected", { n: formatNumber(selected.size, i18n.language) })}</span>
        <button type="button" onClick={() => setSelected(new Set(ids))} disabled={!ids.length}>
          {t("bulk.select_all")}
        </button>
        {selected.size ? (
          <>
            <button type="button" onClick={() => setSelected(new Set())}>{t("bulk.clear")}</button>
            <button type="button" onClick={() => bulkAction.mutate({ action: "favourite", chosen })}>{t("bulk.favourite")}</button>
            <button type="button" onClick={() => bulkAction.mutate({ action: "unfavourite", chosen })}>{t("bulk.unfavourite")}</button>
            <a className="button" href={archiveUrl(chosen)} download>{t("bulk.download")}</a>
            <button type="button" className="danger" onClick={() => setConfirming(true)}>{t("bulk.delete")}</button>
          </>
        ) : null}
      </div>
      <p className="notice" role="status">{notice}</p>

      {list.isPending ? <p className="loading" role="status">{t("loading")}</p> : null}
      {list.isError ? (
        // A filter the API refuses (a hand-edited URL) is cleared, not retried.
        list.error instanceof ApiError && list.error.status === 422 ? (
          <div className="empty" role="alert">
            <p>{t("bad_filter")}</p>
            <button type="button" onClick={() => setParams(new URLSearchParams())}>{t("filters.clear")}</button>
          </div>
        ) : (
          <div className="empty" role="alert">
            <p>{t("error")}</p>
            <button type="button" onClick={() => void list.refetch()}>{t("retry")}</button>
          </div>
        )
      ) : null}
      {list.isSuccess && !items.length ? (
        filtered ? (
          <div className="empty">
            <p>{t("empty.no_match")}</p>
            <button type="button" onClick={() => setParams(new URLSearchParams())}>{t("filters.clear")}</button>
          </div>
        ) : (
          <div className="empty">
            <p>{t("empty.nothing")}</p>
            <Link to="/studio/image" className="button primary">{t("empty.studio")}</Link>
          </div>
        )
      ) : null}

      {items.length ? (
        <ul className="grid" aria-label={t("results")}>
          {items.map((g) => (
            <Tile key={g.id} generation={g} ids={ids} selected={selected.has(g.id)}
                  onSelect={(on) => toggle(g.id, on)}
                  onFavourite={(on) => favourite.mutate({ id: g.id, on })} />
          ))}
        </ul>
      ) : null}
      <div ref={sentinel} />
      {hasNextPage ? (
        <button type="button" className="load-more" onClick={() => void fetchNextPage()} disabled={isFetchingNextPage}>
          {isFetchingNextPage ? t("loading") : t("load_more")}
        </button>
      ) : null}

      {confirming ? (
        <ConfirmDelete count={selected.size}
                       onCancel={() => setConfirming(false)}
                       onConfirm={() => { setConfirming(false); bulkAction.mutate({ action: "delete", chosen }); }} />
      ) : null}
    </section>
  );
}
