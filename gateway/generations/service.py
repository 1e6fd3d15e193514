"""Generations: submit (validate → price → reserve → persist → enqueue), read, list, cancel,
estimate. The worker side lives in `pipeline.py`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger, wallets
from billing.pricing import Price, price
from gateway.core.ratelimit import effective_limits
from gateway.core.runtime import Runtime
from gateway.core.tenant_views import tenant_and_tier
from gateway.generations import cache, quotas
from gateway.generations import inputs as media_urls
from gateway.generations.models import (
    CANCELED,
    FAILED,
    FINAL_STATES,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Generation,
)
from gateway.generations.schemas import (
    Attempt,
    Cost,
    ErrorInfo,
    Estimate,
    GenerationCreate,
    GenerationOut,
    Output,
)
from gateway.providers.credentials import credentials_for
from gateway.providers.states import configured
from gateway.webhooks import outbox
from plugins.errors import InvalidParams
from plugins.provider import Provider, ProviderRequest, ProviderTask
from plugins.vocabulary import DEFAULT_OPERATIONS
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import Conflict, InvalidRequest, NotFound, Unavailable
from tenants.kernel.pagination import decode_cursor, encode_cursor
from tenants.models import Tenant
from tenants.schemas import rate_limits_of, routing_of
from tenants.service import KeyIdentity

log = logging.getLogger(__name__)

MAX_WAIT_S = 60
#: At most this many providers are kept on a generation to fail over through.
MAX_CANDIDATES = 5


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity a generation call acts as: a tenant, maybe one of its customers."""

    tenant_id: str
    customer_id: str | None
    key_id: str | None

    @classmethod
    def of(cls, identity: KeyIdentity, customer_id: str | None) -> Caller:
        return cls(tenant_id=identity.tenant_id, customer_id=customer_id,
                   key_id=identity.key_id)


@dataclass(frozen=True, slots=True)
class Plan:
    request: ProviderRequest
    #: The provider that prices the reservation: the first of `candidates`.
    provider: Provider
    price: Price
    #: Best first: the failover order the worker follows.
    candidates: tuple[Provider, ...]


#: Operations whose input is media or nothing, so a prompt is optional (empty when absent).
PROMPTLESS_OPERATIONS = frozenset({"list_voices", "image_variation", "image_to_3d"})


def _prompt(body: GenerationCreate) -> str:
    text = body.text if body.prompt is None else body.prompt
    if body.operation in PROMPTLESS_OPERATIONS and (text is None or not text.strip()):
        return ""
    if text is None or not text.strip():
        field = "text" if body.type == "audio" else "prompt"
        raise InvalidRequest(f"{field} is required", code="missing_field", param=field)
    return text


def _capable(runtime: Runtime, tenant: Tenant, media_type: str, operation: str,
             pinned: str | None) -> list[Provider]:
    """The providers that may serve the request: the pinned one, or every one configured
    (by the platform, or by the tenant's own key) that can do the operation (an
    unconfigured provider would only fail)."""
    if pinned is not None:
        provider = runtime.plugins.get(pinned)
        if provider is None:
            raise InvalidRequest(f"no provider named {pinned!r}", code="unknown_provider",
                                 param="provider")
        if media_type not in provider.media_types or operation not in provider.operations:
            raise InvalidRequest(f"provider {pinned!r} cannot do {operation} for {media_type}",
                                 code="unsupported_operation", param="provider")
        return [provider]
    candidates = [p for p in runtime.plugins.for_operation(media_type, operation)
                  if configured(runtime, p, own=tenant.provider_credentials)]
    if not candidates:
        raise Unavailable(f"no provider can do {operation} for {media_type}",
                          code="no_provider")
    return candidates


def _route(runtime: Runtime, tenant: Tenant, candidates: list[Provider],
           estimates: dict[str, int], pinned: str | None) -> list[Provider]:
    """Rank the candidates by the tenant's strategy (a pinned request: only that provider)."""
    if pinned is not None:
        return runtime.routing.rank(candidates, "pinned", estimates, order=[pinned],
                                    include_others=False)
    config = routing_of(tenant.routing)
    return runtime.routing.rank(candidates, config.strategy, estimates, order=config.order,
                                include_others=config.include_others, weights=config.weights)


def plan(runtime: Runtime, tenant: Tenant, body: GenerationCreate,
         tier: str | None = None, inputs: media_urls.Inputs | None = None) -> Plan:
    """Validate a request, route it and price it with the best provider.

    `inputs` are the decoded input media (`gateway.generations.inputs.prepare`); without them,
    inline inputs are decoded from `body.params` here. Raises `InvalidRequest` naming the bad
    field when no capable provider accepts the request, `Unavailable` when none can be called
    now (breakers open). A provider that rejects the parameters while another accepts them is
    simply not a candidate.
    """
    operation = body.operation or DEFAULT_OPERATIONS[body.type]
    params, inputs = ((body.params, inputs) if inputs is not None
                      else media_urls.split(body.params))
    request = ProviderRequest(type=body.type, operation=operation, prompt=_prompt(body),
                              params=params, inputs=inputs.media, samples=inputs.samples)
    estimates: dict[str, int] = {}
    accepted: list[Provider] = []
    rejection: InvalidParams | None = None
    for provider in _capable(runtime, tenant, body.type, operation, body.provider):
        try:
            provider.validate(request)
            estimates[provider.name] = provider.estimate_cost(request)
        except InvalidParams as exc:
            rejection = rejection or exc
            continue
        accepted.append(provider)
    if not accepted:
        assert rejection is not None
        raise InvalidRequest(rejection.message, code="invalid_parameter",
                             param=rejection.param)
    ranked = _route(runtime, tenant, accepted, estimates, body.provider)
    if not ranked:
        raise Unavailable("every provider that can serve this request is failing right now; "
                          "nothing was reserved, try again shortly",
                          code="providers_unavailable")
    chosen = ranked[0]
    return Plan(request=request, provider=chosen,
                price=price(estimates[chosen.name], media_type=body.type,
                            tenant_pricing=tenant.pricing, tier=tier,
                            platform_markup_bps=runtime.settings.platform_markup_bps),
                candidates=tuple(ranked[:MAX_CANDIDATES]))


def request_hash(body: GenerationCreate) -> str:
    return hashlib.sha256(msgspec.json.encode(body, order="sorted")).hexdigest()


async def _by_idempotency_key(runtime: Runtime, caller: Caller, key: str,
                              digest: str) -> Generation | None:
    async with runtime.db.session() as session:
        found = await session.scalar(
            select(Generation).where(Generation.tenant_id == caller.tenant_id,
                                     Generation.idempotency_key == key)
        )
    if found is not None and found.request_hash != digest:
        raise Conflict("Idempotency-Key was used with a different request",
                       code="idempotency_key_reused", param="Idempotency-Key")
    return found


async def submit(runtime: Runtime, caller: Caller, body: GenerationCreate, *,
                 idempotency_key: str | None, cache_control: str | None = None) -> Generation:
    """Reserve credits, persist the generation, then queue its job.

    Returns the generation (for a repeated Idempotency-Key, the first one's; for a request
    the result cache answers, a new succeeded one marked `cached`; for a follower of an
    identical request in flight, a queued one whose job waits for that one, see `cache.py`).
    Raises `InsufficientCredits` with nothing written or queued when the wallet is short.
    """
    digest = request_hash(body)
    if idempotency_key is not None:
        found = await _by_idempotency_key(runtime, caller, idempotency_key, digest)
        if found is not None:
            return found
    tenant, tier = await tenant_and_tier(runtime, caller.tenant_id, caller.customer_id)
    body, inputs = await media_urls.prepare(runtime, body)
    await runtime.routing.refresh(runtime)
    chosen = plan(runtime, tenant, body, tier, inputs)
    lookup = cache.consult(runtime, tenant, chosen.request, provider=chosen.provider,
                           pinned=body.provider, cache_control=cache_control)
    original = await cache.find(runtime, lookup) if lookup is not None else None
    generation = Generation(
        id=new_id("gen"), tenant_id=caller.tenant_id, customer_id=caller.customer_id,
        api_key_id=caller.key_id, type=body.type, operation=chosen.request.operation,
        prompt=chosen.request.prompt,
        params=await media_urls.stow_inputs(runtime, caller.tenant_id, body.params, inputs),
        provider=chosen.provider.name,
        candidates=[p.name for p in chosen.candidates], attempts_log=[], status=QUEUED,
        cost_usd_micros=chosen.price.cost_usd_micros,
        wholesale_mc=chosen.price.wholesale_mc, retail_mc=chosen.price.retail_mc,
        estimated_mc=chosen.price.wholesale_mc, metadata_=body.metadata,
        webhook_url=body.webhook_url, idempotency_key=idempotency_key, request_hash=digest,
    )
    timeout_at = utcnow() + timedelta(seconds=runtime.settings.reservation_timeout_s)
    if lookup is not None:
        generation.fingerprint = lookup.fingerprint
        if original is not None:
            generation = cache.cached_copy(original, generation, cache.hit_price(
                runtime, tenant, tier, body.type, original, lookup.policy))
        else:
            generation.coalesced_from = await cache.current_leader(runtime, lookup)
    announced = False
    try:
        if generation.cached:
            # A hit takes no job slot and its charge (if any) is posted at once: no quota.
            announced = await runtime.db.grouped(
                lambda session: _persist_hit(session, tenant, generation, timeout_at))
        else:
            quota = _quota(runtime, tenant, body.type)
            await runtime.db.grouped(lambda session: _persist(session, tenant, generation,
                                                               timeout_at, quota))
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key committed first.
        if idempotency_key is None:
            raise
        found = await _by_idempotency_key(runtime, caller, idempotency_key, digest)
        if found is None:
            raise
        return found
    if generation.cached:
        if announced or tenant.low_balance_threshold_mc:
            runtime.webhooks.wake()  # its event (and a charged hit's `credits.low`)
        return generation
    if lookup is not None and await cache.hold_back(runtime, lookup, generation):
        return generation
    await _enqueue(runtime, generation)
    if tenant.low_balance_threshold_mc:
        runtime.webhooks.wake()  # the reservation may have written `credits.low`
    return generation


def _quota(runtime: Runtime, tenant: Tenant, media_type: str) -> quotas.Quota:
    limits = effective_limits(runtime.settings, rate_limits_of(tenant.rate_limits))
    return quotas.quota_for(limits, tenant.id, media_type, runtime.limiter.clock())


async def _persist(session: AsyncSession, tenant: Tenant, generation: Generation,
                   timeout_at: datetime, quota: quotas.Quota) -> None:
    """The submit's unit of work (group-committed): the quotas, the generation row and its
    reservations."""
    await quotas.admit(session, quota, generation)
    session.add(generation)
    await session.flush()
    await _reserve(session, tenant, generation, timeout_at)


async def _persist_hit(session: AsyncSession, tenant: Tenant, generation: Generation,
                       timeout_at: datetime) -> bool:
    """A cached answer's unit of work: the succeeded row and, when the tenant's cache policy
    charges for hits, its reservations posted at once (same idempotency keys as a run).
    Returns whether a webhook event was written."""
    session.add(generation)
    await session.flush()
    # Subscribers hear of a hit as of any success (the row is born succeeded).
    announced = await outbox.generation_ended(session, tenant.id, generation.id, SUCCEEDED)
    if generation.wholesale_mc == 0 and generation.retail_mc == 0:
        return announced  # free: nothing reserved, nothing moved
    await _reserve(session, tenant, generation, timeout_at)
    assert generation.reservation_id is not None
    await ledger.post(session, tenant_id=tenant.id, pending_id=generation.reservation_id,
                      amount_mc=generation.wholesale_mc)
    if generation.customer_reservation_id is not None:
        await ledger.post(session, tenant_id=tenant.id,
                          pending_id=generation.customer_reservation_id,
                          amount_mc=generation.retail_mc)
    generation.charged_mc = generation.estimated_mc
    return announced


async def _reserve(session: AsyncSession, tenant: Tenant, generation: Generation,
                   timeout_at: datetime) -> None:
    """Reserve what each paying wallet owes, in the generation's own transaction.

    The customer (in `mediahub` mode) sees and pays retail; the tenant always pays wholesale.
    """
    paying = await wallets.payers(session, tenant, generation.customer_id)
    threshold = tenant.low_balance_threshold_mc or None
    if paying.customer_wallet is not None:
        retail = await ledger.reserve(
            session, tenant_id=tenant.id, from_account=paying.customer_wallet,
            amount_mc=generation.retail_mc, to_code=ledger.TENANT_REVENUE,
            idempotency_key=f"gen:{generation.id}:retail", timeout_at=timeout_at,
            generation_id=generation.id, low_threshold_mc=threshold)
        generation.customer_reservation_id = retail.id
        generation.estimated_mc = generation.retail_mc
    wholesale = await ledger.reserve(
        session, tenant_id=tenant.id, from_account=paying.tenant_wallet,
        amount_mc=generation.wholesale_mc, idempotency_key=f"gen:{generation.id}:wholesale",
        timeout_at=timeout_at, generation_id=generation.id, low_threshold_mc=threshold)
    generation.reservation_id = wholesale.id


async def _enqueue(runtime: Runtime, generation: Generation) -> None:
    assert runtime.queue is not None
    try:
        await runtime.queue.enqueue(generation.id, generation.type)
    except Exception as exc:
        # The row exists but no job does: fail it now and release the credits rather than
        # leave the customer's money reserved until the sweeper's timeout.
        log.exception("enqueue failed", extra={"generation_id": generation.id})
        await finish_failed(runtime, generation.tenant_id, generation.id,
                            code="queue_unavailable", message="the job queue is unavailable",
                            from_states=(QUEUED,))
        raise Unavailable("the job queue is unavailable; nothing was charged",
                          code="queue_unavailable") from exc


async def finish_failed(runtime: Runtime, tenant_id: str, generation_id: str, *, code: str,
                        message: str, from_states: tuple[str, ...] = (QUEUED, RUNNING),
                        status: str = FAILED,
                        attempts_log: list[dict[str, object]] | None = None) -> bool:
    """Move a generation to failed (or canceled) and void its reservation, in one transaction.

    `attempts_log`, when given, is saved with it (the worker's record of provider calls).
    Returns False when the generation was no longer in `from_states` (someone else ended it).
    """
    now = utcnow()
    values: dict[str, object] = {
        "status": status,
        "error": None if status == CANCELED else {"code": code, "message": message},
        "completed_at": now, "updated_at": now}
    if attempts_log is not None:
        values["attempts_log"] = attempts_log

    announced = False

    async def end(session: AsyncSession) -> bool:
        nonlocal announced
        announced = False
        result = await session.execute(
            update(Generation)
            .where(Generation.id == generation_id, Generation.tenant_id == tenant_id,
                   Generation.status.in_(from_states))
            .values(**values)
            .returning(Generation.customer_reservation_id, Generation.reservation_id,
                       Generation.spend_day, Generation.wholesale_mc)
        )
        row = result.first()
        if row is None:
            return False
        # The day's spend row before the wallets (the order every unit locks them in).
        await quotas.give_back(session, tenant_id, row.spend_day, row.wholesale_mc)
        for pending_id in (row.customer_reservation_id, row.reservation_id):
            if pending_id is not None:
                await ledger.void(session, tenant_id=tenant_id, pending_id=pending_id)
        announced = await outbox.generation_ended(session, tenant_id, generation_id, status)
        return True

    if not await runtime.db.grouped(end):
        return False
    # The in-flight marker goes before a waiting request is woken: an identical request it
    # sends next must not find a finished leader still marked as running.
    await cache.on_finished(runtime, generation_id)
    runtime.completions.done(generation_id)
    if announced:
        runtime.webhooks.wake()
    return True


def _scoped(query: Select[Generation], caller: Caller) -> Select[Generation]:
    """Every generation query goes through here: it always filters by tenant (and customer)."""
    query = query.where(Generation.tenant_id == caller.tenant_id)
    if caller.customer_id is not None:
        query = query.where(Generation.customer_id == caller.customer_id)
    return query


async def get(runtime: Runtime, caller: Caller, generation_id: str) -> Generation:
    """One generation of the caller's tenant (and customer); another's is `NotFound`."""
    async with runtime.db.session() as session:
        found = await session.scalar(
            _scoped(select(Generation).where(Generation.id == generation_id), caller)
        )
    if found is None:
        raise NotFound("no such generation", code="generation_not_found", param="id")
    return found


async def wait_until_final(runtime: Runtime, caller: Caller, generation: Generation,
                           seconds: float) -> Generation:
    """Wait up to `seconds` for the generation to finish; returns its latest state."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(seconds, MAX_WAIT_S)
    event = runtime.completions.event(generation.id)
    try:
        while generation.status not in FINAL_STATES:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            # Short re-reads catch a finish in another process (a SAQ worker).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=min(remaining, 0.25))
            generation = await get(runtime, caller, generation.id)
    finally:
        runtime.completions.forget(generation.id)
    return generation


async def list_page(runtime: Runtime, caller: Caller, *, media_type: str | None,
                    status: str | None, limit: int,
                    cursor: str | None) -> tuple[list[Generation], str | None]:
    """Newest first; returns one page and the cursor of the next (None at the end)."""
    query = _scoped(select(Generation), caller)
    if media_type:
        query = query.where(Generation.type == media_type)
    if status:
        query = query.where(Generation.status == status)
    if cursor:
        created, gid = decode_cursor(cursor)
        query = query.where(
            (Generation.created_at < created)
            | ((Generation.created_at == created) & (Generation.id < gid))
        )
    query = query.order_by(Generation.created_at.desc(), Generation.id.desc()).limit(limit + 1)
    async with runtime.db.session() as session:
        rows = list(await session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None


async def cancel(runtime: Runtime, caller: Caller, generation_id: str) -> Generation:
    """Cancel a queued or running generation and void its reservation; a final one is 409."""
    generation = await get(runtime, caller, generation_id)
    if generation.status in FINAL_STATES or not await finish_failed(
        runtime, caller.tenant_id, generation_id, code="canceled", message="canceled",
        status=CANCELED,
    ):
        current = await get(runtime, caller, generation_id)
        raise Conflict(f"the generation is already {current.status}",
                       code="generation_finished", param="id")
    canceled = await get(runtime, caller, generation_id)
    await _cancel_at_providers(runtime, canceled)
    return canceled


def pending_tasks(attempts_log: list[dict[str, Any]]) -> dict[str, ProviderTask]:
    """Asynchronous tasks submitted for a generation and never seen to finish, by provider
    (the `running` entries of its attempts log that carry a task id)."""
    return {a["provider"]: ProviderTask(task_id=a["task_id"],
                                        poll_after_s=a.get("poll_after_s", 5.0))
            for a in attempts_log if a.get("outcome") == "running" and a.get("task_id")}


async def _cancel_at_providers(runtime: Runtime, generation: Generation) -> None:
    """After a cancel: stop the provider's task, when one was recorded (best effort; a job
    that records a task after the cancel cancels it itself, seeing the generation ended)."""
    for name, task in pending_tasks(generation.attempts_log or []).items():
        provider = runtime.plugins.get(name)
        if provider is None:
            continue
        try:
            credentials = await credentials_for(runtime, generation.tenant_id, name)
            await provider.cancel(task, credentials, runtime.http)
        except Exception:
            log.warning("could not cancel task %s at %s", task.task_id, name, exc_info=True,
                        extra={"generation_id": generation.id})


async def estimate(runtime: Runtime, caller: Caller, body: GenerationCreate) -> Estimate:
    """What `submit` would reserve for `body` from the caller's wallet, reserving nothing."""
    tenant, tier = await tenant_and_tier(runtime, caller.tenant_id, caller.customer_id)
    await runtime.routing.refresh(runtime)
    chosen = plan(runtime, tenant, body, tier)
    customer_pays = caller.customer_id is not None and tenant.billing_mode == wallets.MEDIAHUB
    return Estimate(
        amount=chosen.price.retail_mc if customer_pays else chosen.price.wholesale_mc,
        provider=chosen.provider.name,
        breakdown={"cost_usd_micros": chosen.price.cost_usd_micros,
                   "wholesale": chosen.price.wholesale_mc,
                   "retail": chosen.price.retail_mc})


async def render(runtime: Runtime, generation: Generation) -> GenerationOut:
    """The API view of a generation, with freshly signed output URLs."""
    outputs = []
    for item in generation.outputs:
        url = await runtime.storage.signed_url(
            item["key"], expires_in_s=runtime.settings.media_url_ttl_s,
            base_url=runtime.settings.public_base_url)
        outputs.append(Output(url=url, content_type=item["content_type"], bytes=item["bytes"],
                              width=item.get("width"), height=item.get("height"),
                              duration_s=item.get("duration_s")))
    error = generation.error
    return GenerationOut(
        id=generation.id, type=generation.type, operation=generation.operation,
        status=generation.status, provider=generation.provider, cached=generation.cached,
        cost=Cost(estimated=generation.estimated_mc, charged=generation.charged_mc),
        outputs=outputs,
        error=ErrorInfo(code=error["code"], message=error["message"]) if error else None,
        metadata=generation.metadata_, created_at=generation.created_at,
        started_at=generation.started_at, completed_at=generation.completed_at,
        attempts=[Attempt(provider=a["provider"], outcome=a["outcome"],
                          error_code=a.get("error_code"), latency_ms=a.get("latency_ms", 0),
                          retry_after_s=a.get("retry_after_s"))
                  for a in generation.attempts_log or []],
    )
