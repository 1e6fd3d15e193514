"""The gallery's list filters (docs/gallery.md): dates, cost, favourites and full-text search
over prompts, as SQL conditions on `generations` for `service.list_page`.

Full-text search runs on what migration 0017_gallery built: PostgreSQL's generated
`search_vector` (`to_tsvector('simple', prompt)`, GIN-indexed), SQLite's FTS5 table
`generations_fts` (external content, kept by triggers). Both tokenise on word characters
with no stemming or stop words, so any language, Arabic too, matches word for word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, text

from gateway.generations.models import Generation
from tenants.kernel.errors import InvalidRequest

#: A word of a query: letters and digits of any script (`_` splits, as both parsers do).
_WORD = re.compile(r"[^\W_]+")
MAX_QUERY_WORDS = 16


@dataclass(frozen=True, slots=True)
class Filters:
    """The gallery filters of one list request; None: not filtered on."""

    created_after: datetime | None = None
    created_before: datetime | None = None
    min_cost: int | None = None
    max_cost: int | None = None
    favourite: bool | None = None
    q: str | None = None


def words(q: str) -> list[str]:
    """The words of a search query, lower-cased, in order; 422 `invalid_query` for a query
    with none (it would match everything) or more than `MAX_QUERY_WORDS`."""
    found = [w.lower() for w in _WORD.findall(q)]
    if not found:
        raise InvalidRequest("q has no words to search for", code="invalid_query", param="q")
    if len(found) > MAX_QUERY_WORDS:
        raise InvalidRequest(f"q has more than {MAX_QUERY_WORDS} words", code="invalid_query",
                             param="q")
    return found


def _utc(moment: datetime, param: str) -> datetime:
    # A time without an offset is read as UTC (the API's times are all UTC).
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00-01:00 is before the first representable UTC time.
        raise InvalidRequest(f"{param} is out of range", code="invalid_time",
                             param=param) from None


def shown_cost(customer: bool) -> ColumnElement[Any]:
    """The cost the caller is shown (views.render): charged, else estimated; a customer whose
    tenant paid wholesale sees the retail price instead."""
    own = func.coalesce(Generation.charged_mc, Generation.estimated_mc)
    if not customer:
        return own
    return case((Generation.customer_reservation_id.is_(None), Generation.retail_mc),
                else_=own)


def full_text(q: str, dialect: str) -> ColumnElement[bool]:
    """The prompt matches every word of `q`, the last one as a prefix (typing "sun" finds
    "sunset")."""
    found = words(q)
    if dialect == "postgresql":
        # Words hold letters and digits only, so quoting them needs no escaping.
        query = " & ".join([f"'{w}'" for w in found[:-1]] + [f"'{found[-1]}':*"])
        return text("generations.search_vector @@ to_tsquery('simple', :gallery_q)"
                    ).bindparams(gallery_q=query).self_group()  # type: ignore[return-value]
    query = " ".join([f'"{w}"' for w in found[:-1]] + [f'"{found[-1]}"*'])
    return text("generations.rowid IN (SELECT rowid FROM generations_fts "
                "WHERE generations_fts MATCH :gallery_q)"
                ).bindparams(gallery_q=query).self_group()  # type: ignore[return-value]


def conditions(filters: Filters, *, customer: bool, dialect: str) -> list[ColumnElement[bool]]:
    """The SQL conditions of `filters` (ANDed with the caller's scope by `list_page`)."""
    found: list[ColumnElement[bool]] = []
    if filters.created_after is not None:
        found.append(Generation.created_at >= _utc(filters.created_after, "created_after"))
    if filters.created_before is not None:
        found.append(Generation.created_at < _utc(filters.created_before, "created_before"))
    if filters.min_cost is not None or filters.max_cost is not None:
        cost = shown_cost(customer)
        if filters.min_cost is not None:
            found.append(cost >= filters.min_cost)
        if filters.max_cost is not None:
            found.append(cost <= filters.max_cost)
    if filters.favourite is not None:
        found.append(Generation.favourite.is_(filters.favourite))
    if filters.q is not None:
        found.append(full_text(filters.q, dialect))
    return [and_(*found)] if found else []
