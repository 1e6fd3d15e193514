"""Prompt suggestions (issue 15): curated templates, the caller's own successful prompts
and, when the tenant enabled one, its text model; and the rule-based "improve" check.

History never crosses a visibility line: a customer sees its own prompts and its current
team's, a tenant key or staff member the tenant's; never another tenant's. The work is
bounded: the latest `MAX_HISTORY` succeeded prompts of the type, read through the
`(tenant_id, created_at, id)` index, deduplicated, then ranked with BM25 against `context`.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Final

from sqlalchemy import ColumnElement, or_, select

from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from gateway.generations.models import SUCCEEDED, Generation
from gateway.generations.services import Services
from gateway.suggestions import model, rules
from gateway.suggestions.schemas import (
    Improvement,
    ImproveRequest,
    Suggestion,
    SuggestionList,
    Variant,
)
from gateway.suggestions.text import BM25, dedupe_key, tokens
from tenants.users.models import User

#: The most recent succeeded prompts read per request (the bound on work per call).
MAX_HISTORY: Final = 2000
#: Model suggestions shown at most per answer.
MAX_MODEL: Final = 3
LANGUAGES: Final = ("en", "ar")
_TEMPLATES: Final = Path(__file__).parent / "templates"
_ARABIC: Final = re.compile("[\u0600-\u06ff]")
_ACCEPT: Final = re.compile(r"\s*([A-Za-z]{2,3})(?:-[A-Za-z0-9]+)?\s*(?:;\s*q=([0-9.]+))?")

_WHAT: Final = {"image": "image", "audio": "text-to-speech", "video": "video",
                "design": "graphic design", "model_3d": "3D model"}


@functools.cache
def templates(lang: str) -> dict[str, list[str]]:
    """The curated prompts of `lang` by media type (`templates/<lang>.json`, read once)."""
    data: dict[str, list[str]] = json.loads((_TEMPLATES / f"{lang}.json").read_text("utf-8"))
    return data


def language_of(text: str) -> str:
    """`ar` for text with Arabic letters, else `en`."""
    return "ar" if _ARABIC.search(text) else "en"


def preferred(accept_language: str | None) -> str | None:
    """The first of `LANGUAGES` an `Accept-Language` header asks for (by q), or None."""
    best: tuple[float, str] | None = None
    for part in (accept_language or "").split(","):
        found = _ACCEPT.fullmatch(part)
        if not found or found[1].lower() not in LANGUAGES:
            continue
        try:
            weight = float(found[2]) if found[2] else 1.0
        except ValueError:
            continue
        if best is None or weight > best[0]:
            best = (weight, found[1].lower())
    return best[1] if best else None


async def language(runtime: Runtime, principal: Principal, lang: str | None,
                   accept_language: str | None) -> str:
    """The answer's language: `lang` when given, else the signed-in user's chosen locale,
    else `Accept-Language`, else English."""
    if lang is not None:
        return lang
    if principal.user_id is not None:
        async with runtime.db.session() as session:
            locale = await session.scalar(select(User.locale).where(
                User.tenant_id == principal.tenant, User.id == principal.user_id))
        if locale in LANGUAGES:
            return str(locale)
    return preferred(accept_language) or "en"


def visible(principal: Principal) -> list[ColumnElement[bool]]:
    """The generations whose prompts the caller may be shown: the tenant's (staff, tenant
    keys), a customer's own, plus its current team's when acting for one."""
    where: list[ColumnElement[bool]] = [Generation.tenant_id == principal.tenant,
                                        Generation.deleted_at.is_(None)]
    if principal.customer_id is not None:
        own = Generation.customer_id == principal.customer_id
        if principal.team_id is not None:
            own = or_(own, Generation.team_id == principal.team_id)
        where.append(own)
    return where


async def history(runtime: Runtime, principal: Principal, media_type: str) -> list[str]:
    """The caller's latest succeeded prompts of `media_type`, newest first (at most
    `MAX_HISTORY`, repeats included)."""
    async with runtime.db.session() as session:
        found = await session.scalars(
            select(Generation.prompt)
            .where(*visible(principal), Generation.status == SUCCEEDED,
                   Generation.type == media_type, Generation.prompt != "")
            .order_by(Generation.created_at.desc(), Generation.id.desc())
            .limit(MAX_HISTORY))
        return list(found)


def rank(context: str, history_prompts: list[str], curated: list[str], lang: str,
         limit: int) -> list[Suggestion]:
    """The `limit` best suggestions for `context`: history and templates deduplicated
    (history first, so a prompt the caller used keeps its `history` source), scored with
    BM25 over both (scaled so the best is 1), then ordered by score. Without a context, or
    when fewer match, the rest are filled in: the caller's latest prompts for up to half
    the list with no context, then templates in their curated order."""
    seen = {dedupe_key(context)} if context.strip() else set()
    pool: list[Suggestion] = []
    for text, source in [*((p, "history") for p in history_prompts),
                         *((t, "template") for t in curated)]:
        key = dedupe_key(text)
        if not key or key in seen:
            continue
        seen.add(key)
        own = language_of(text) if source == "history" else lang
        pool.append(Suggestion(text=text, source=source, score=0.0, lang=own))
    query = tokens(context)
    chosen: list[Suggestion] = []
    if query:
        index = BM25([tokens(s.text) for s in pool])
        scored = [(score, i) for i, score in enumerate(index.scores(query)) if score > 0]
        top = max((score for score, _ in scored), default=0.0)
        for score, i in sorted(scored, key=lambda pair: (-pair[0], pair[1]))[:limit]:
            pool[i].score = round(score / top, 4)
            chosen.append(pool[i])
    else:
        chosen = [s for s in pool if s.source == "history"][:limit // 2]
    taken = {id(s) for s in chosen}
    for source in ("template", "history"):
        for suggestion in pool:
            if len(chosen) >= limit:
                return chosen
            if suggestion.source == source and id(suggestion) not in taken:
                chosen.append(suggestion)
                taken.add(id(suggestion))
    return chosen


def _system(media_type: str, lang: str, count: int) -> str:
    return (f"You write prompts for an AI {_WHAT[media_type]} generator. Answer with "
            f"exactly {count} prompts in {model.LANGUAGE_NAMES[lang]}, one per line, "
            "without numbering, quotes or commentary.")


async def suggest(services: Services, principal: Principal, *, media_type: str, context: str,
                  lang: str, limit: int, use_model: bool = True) -> SuggestionList:
    """Called for `GET /v1/suggestions`: up to `limit` suggestions for `media_type` in
    `lang` (history prompts keep their own language), most relevant to `context` first.
    With the tenant's model enabled, up to `MAX_MODEL` model-written ones come first
    (source `model`, score 1) unless `use_model` is false; if it fails, `model_error`
    carries its code."""
    runtime = services.runtime
    tenant = await runtime.tenant_views.tenant(principal.tenant)
    ranked = rank(context, await history(runtime, principal, media_type),
                  templates(lang).get(media_type, []), lang, limit)
    setting = tenant.suggestions
    if setting.model is None or not use_model:
        return SuggestionList(data=ranked)
    topic = context.strip() or "something people love to make"
    try:
        written = await model.ask(services, principal, setting,
                                  system=_system(media_type, lang, MAX_MODEL),
                                  prompt=f"Write prompts about: {topic}")
    except model.ModelFailed as exc:
        return SuggestionList(data=ranked, model_error=exc.code)
    keys = {dedupe_key(s.text) for s in ranked}
    own = [Suggestion(text=text, source="model", score=1.0, lang=lang)
           for text in written[:MAX_MODEL] if dedupe_key(text) not in keys]
    return SuggestionList(data=(own + ranked)[:limit])


async def improve(services: Services, principal: Principal, body: ImproveRequest,
                  lang: str) -> Improvement:
    """Called for `POST /v1/suggestions/improve`: the rule-based missing aspects and
    rewrites (`rules.improve`), plus the tenant model's rewrites (source `model`) when it
    is enabled and something is missing; its failure is `model_error`."""
    found = rules.improve(body.type, body.prompt, lang)
    tenant = await services.runtime.tenant_views.tenant(principal.tenant)
    setting = tenant.suggestions
    if setting.model is None or not found.missing:
        return found
    aspects = ", ".join(m.aspect.replace("_", " ") for m in found.missing)
    try:
        written = await model.ask(
            services, principal, setting, system=_system(body.type, lang, 2),
            prompt=f"Rewrite this prompt, adding {aspects}: {body.prompt}")
    except model.ModelFailed as exc:
        found.model_error = exc.code
        return found
    found.variants += [Variant(text=text, source="model") for text in written[:2]]
    return found
