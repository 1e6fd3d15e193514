"""Generations as the caller sees them: read one, list, wait for one, cancel, estimate.
Submitting is `submit.py`; the worker side `worker.py`; every row change `lifecycle.py`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Select, or_, select

from gateway.core.auth import Principal
from gateway.generations import brand, lifecycle, search
from gateway.generations import inputs as media_urls
from gateway.generations import team_spend as team_views
from gateway.generations.models import FINAL_STATES, Generation
from gateway.generations.planning import plan
from gateway.generations.schemas import Estimate, GenerationCreate
from gateway.generations.services import Services
from gateway.providers.credentials import credentials_for
from gateway.providers.states import provider_label, resolve_label
from tenants.kernel.errors import Conflict, NotFound
from tenants.kernel.pagination import keyset, page

log = logging.getLogger(__name__)


MAX_WAIT_S = 60

_Query = TypeVar("_Query", bound=Select[Any])


def _scoped(query: _Query, principal: Principal, *, shared: bool = False) -> _Query:
    """Every generation query goes through here: it always filters by tenant (and customer,
    or the team the principal acts for). `shared`: a customer also sees its teams'
    generations (reading one by id; docs/teams.md). A deleted generation is nobody's: every
    surface (REST, `/v1/videos`, MCP) reads through here."""
    query = query.where(Generation.tenant_id == principal.tenant,
                        Generation.deleted_at.is_(None))
    if principal.team_id is not None:
        return query.where(Generation.team_id == principal.team_id)
    if principal.customer_id is not None:
        own = Generation.customer_id == principal.customer_id
        if shared:
            own = or_(own, Generation.team_id.in_(team_views.teams_of(principal)))
        query = query.where(own)
    return query


async def get(services: Services, principal: Principal, generation_id: str, *,
              shared: bool = True) -> Generation:
    """One generation of the principal's tenant (and customer, or one of its teams: not with
    `shared=False`, what a cancel asks for); another's is `NotFound`."""
    async with services.runtime.db.session() as session:
        found = await session.scalar(
            _scoped(select(Generation).where(Generation.id == generation_id), principal,
                    shared=shared)
        )
    if found is None:
        raise NotFound("no such generation", code="generation_not_found", param="id")
    return found


async def _status(services: Services, principal: Principal, generation_id: str) -> str:
    """The status of one generation the principal may read (`get`'s scope)."""
    async with services.runtime.db.session() as session:
        status = await session.scalar(
            _scoped(select(Generation.status).where(Generation.id == generation_id),
                    principal, shared=True))
    if not isinstance(status, str):
        raise NotFound("no such generation", code="generation_not_found", param="id")
    return status


async def wait_until_final(services: Services, principal: Principal, generation: Generation,
                           seconds: float, *,
                           disconnected: Callable[[], Awaitable[object]] | None = None,
                           ) -> Generation:
    """Called by the submit route for `Prefer: wait=N`: wait up to `seconds` (at most
    `MAX_WAIT_S`) for the generation to end; returns its latest state.

    Waits on the end's notification (`Completions`), holding no database connection: the row
    is read once when the wait starts (after subscribing, so an end in between is seen) and
    once after the wake-up or at the deadline (so a missed notification costs time, not the
    result). Only a wake-up that is no end (the subscription came back after a loss, when
    an end may have gone unheard) reads again and goes on waiting. `disconnected`, when
    given, returns once the client has hung up: the wait then stops at once and returns the
    state last read, which no one will see.
    """
    if generation.status in FINAL_STATES:
        return generation
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(seconds, MAX_WAIT_S)
    async with services.completions.watching(generation.id) as ended:
        # Its status only: the whole row is read once, after the wake-up or at the deadline.
        if await _status(services, principal, generation.id) in FINAL_STATES:
            return await get(services, principal, generation.id)
        while True:
            waits: list[asyncio.Future[object]] = [asyncio.ensure_future(ended.wait())]
            if disconnected is not None:
                waits.append(asyncio.ensure_future(disconnected()))
            try:
                done, _ = await asyncio.wait(waits, timeout=max(0.0, deadline - loop.time()),
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
                await asyncio.gather(*waits, return_exceptions=True)
            if len(waits) > 1 and waits[1] in done:
                return generation
            # Cleared before the read: a wake-up from now on is not lost.
            ended.clear()
            generation = await get(services, principal, generation.id)
            if generation.status in FINAL_STATES or loop.time() >= deadline:
                return generation


async def list_page(services: Services, principal: Principal, *, media_type: str | None,
                    status: str | None, limit: int, cursor: str | None,
                    newest_first: bool = True, filters: search.Filters | None = None,
                    ) -> tuple[list[Generation], str | None]:
    """Newest first (or oldest first); returns one page and the cursor of the next (None at
    the end). `filters`: the gallery's (dates, cost, favourites, full-text `q`)."""
    query = _scoped(select(Generation), principal)
    if filters is not None:
        query = query.where(*search.conditions(
            filters, customer=principal.customer_id is not None,
            dialect=services.runtime.db.engine.dialect.name))
    if media_type:
        query = query.where(Generation.type == media_type)
    if status:
        query = query.where(Generation.status == status)
    query = keyset(query, Generation.created_at, Generation.id, cursor, limit,
                   newest_first=newest_first)
    async with services.runtime.db.session() as session:
        return page(list(await session.scalars(query)), limit)


async def cancel(services: Services, principal: Principal, generation_id: str) -> Generation:
    """Cancel a queued or running generation and void its reservation; a final one is 409."""
    generation = await get(services, principal, generation_id, shared=False)
    if generation.status in FINAL_STATES or not await lifecycle.end(
        services, generation, lifecycle.Failed("canceled", "canceled", status="canceled"),
    ):
        current = await get(services, principal, generation_id)
        raise Conflict(f"the generation is already {current.status}",
                       code="generation_finished", param="id")
    canceled = await get(services, principal, generation_id)
    await _cancel_at_providers(services, canceled)
    return canceled


async def _cancel_at_providers(services: Services, generation: Generation) -> None:
    """After a cancel: stop the provider's task, when one was recorded (best effort; a job
    that records a task after the cancel cancels it itself, seeing the generation ended)."""
    for name, task in lifecycle.pending_tasks(generation.attempts_log or []).items():
        provider = services.runtime.plugins.get(name)
        if provider is None:
            continue
        try:
            credentials = await credentials_for(services.runtime, generation.tenant_id, name)
            await provider.cancel(task, credentials, services.runtime.http)
        except Exception:
            log.warning("could not cancel task %s at %s", task.task_id, name, exc_info=True,
                        extra={"generation_id": generation.id})


async def estimate(services: Services, principal: Principal, body: GenerationCreate) -> Estimate:
    """What `body` would cost the caller, reserving nothing; called by the estimate route.

    A tenant (no customer) is shown what `submit` would reserve from its wallet (wholesale)
    and the whole breakdown: the provider's cost in USD micros, wholesale and retail. A
    customer is shown its retail price only, whoever pays it (in `self` billing mode the
    tenant bills its customers itself, at retail): the provider's cost and the reseller's
    wholesale price are the tenant's business, and so is the provider's name
    (`provider_label`).
    """
    tenant, tier = await services.runtime.tenant_views.tenant_and_tier(principal.tenant,
                                                                       principal.customer_id)
    customer = principal.customer_id is not None
    if body.provider is not None:
        body = msgspec.structs.replace(body, provider=resolve_label(
            services.runtime, tenant, body.provider, customer=customer))
    plain, inputs = media_urls.split(body.params)
    branded = await brand.with_kit(services.runtime, principal,
                                   msgspec.structs.replace(body, params=plain), inputs)
    await services.providers.refresh(services.runtime)
    chosen = plan(services.runtime, services.providers, tenant, branded.body, tier,
                  branded.inputs, optional=branded.optional)
    provider = provider_label(services.runtime, tenant, chosen.provider.name, customer=customer)
    if customer:
        return Estimate(amount=chosen.price.retail_mc, provider=provider,
                        breakdown={"retail": chosen.price.retail_mc})
    return Estimate(
        amount=chosen.price.wholesale_mc, provider=provider,
        breakdown={"cost_usd_micros": chosen.price.cost_usd_micros,
                   "wholesale": chosen.price.wholesale_mc,
                   "retail": chosen.price.retail_mc})
