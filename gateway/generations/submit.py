"""Submitting a generation: validate → price → reserve → persist → enqueue (DESIGN.md, "One
request", steps 3 to 6), with idempotency keys, the result cache and coalescing."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger, wallets
from gateway.core.auth import Principal, with_team
from gateway.core.ratelimit import effective_limits
from gateway.core.runtime import Runtime
from gateway.generations import brand, budgets, cache, jobs, lifecycle, quotas, team_spend
from gateway.generations import inputs as media_urls
from gateway.generations.models import QUEUED, SUCCEEDED, Generation
from gateway.generations.planning import plan
from gateway.generations.schemas import GenerationCreate
from gateway.generations.services import Services
from gateway.providers.models import VoiceClone
from gateway.providers.states import resolve_label
from gateway.webhooks import outbox
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import Conflict, InvalidRequest, Unavailable
from tenants.models import Tenant

log = logging.getLogger(__name__)


def request_hash(body: GenerationCreate) -> str:
    fields = msgspec.structs.asdict(body)
    for name in ("team_id", "brand_kit_id"):
        if fields.get(name) is None:
            del fields[name]  # so requests without one hash as they did before it existed
    return hashlib.sha256(msgspec.json.encode(fields, order="sorted")).hexdigest()


async def _by_idempotency_key(services: Services, principal: Principal, key: str,
                              digest: str) -> Generation | None:
    """The generation this caller submitted earlier with `key` (None: none yet), or
    `Conflict` when it was for another request. Keys are per caller, as the unique indexes on
    the table are: a customer's (`customer_id`) are its own, the tenant's (no customer) its
    own, so one customer replaying another's key gets a new generation, never theirs."""
    customer = (Generation.customer_id.is_(None) if principal.customer_id is None
                else Generation.customer_id == principal.customer_id)
    async with services.runtime.db.session() as session:
        found = await session.scalar(
            select(Generation).where(Generation.tenant_id == principal.tenant, customer,
                                     Generation.idempotency_key == key)
        )
    if found is not None and found.request_hash != digest:
        raise Conflict("Idempotency-Key was used with a different request",
                       code="idempotency_key_reused", param="Idempotency-Key")
    if found is not None and found.deleted_at is not None:
        # Answering the deleted generation would show it again; making a new one would
        # charge again under a key that promised "once". Neither silently: say so.
        raise Conflict("the generation this Idempotency-Key made was deleted; use a new key",
                       code="generation_deleted", param="Idempotency-Key")
    return found


async def _refuse_others_voice(runtime: Runtime, principal: Principal, voice: object) -> None:
    """Refuse `params.voice` naming a clone another tenant (or, for a customer, another
    customer) owns: clones share the platform's account at the provider, which would speak
    with any of them. Raises `InvalidRequest` as for a voice that does not exist."""
    if not isinstance(voice, str):
        return
    async with runtime.db.session() as session:
        owner = (await session.execute(
            select(VoiceClone.tenant_id, VoiceClone.customer_id)
            .where(VoiceClone.voice_id == voice))).first()
    if owner is None or (owner.tenant_id == principal.tenant and (
            principal.customer_id is None or owner.customer_id == principal.customer_id)):
        return
    raise InvalidRequest("no such voice: see GET /v1/voices for the ones you may use",
                         code="voice_not_found", param="params.voice")


async def submit(services: Services, principal: Principal, body: GenerationCreate, *,
                 idempotency_key: str | None, cache_control: str | None = None) -> Generation:
    """Reserve credits, persist the generation, then queue its job.

    Returns the generation (for a repeated Idempotency-Key, the first one's; for a request
    the result cache answers, a new succeeded one marked `cached`; for a follower of an
    identical request in flight, a queued one whose job waits for that one, see `cache.py`).
    Raises `InsufficientCredits` with nothing written or queued when the wallet is short.
    """
    principal = await with_team(services.runtime, principal, body.team_id)
    digest = request_hash(body)
    if idempotency_key is not None:
        found = await _by_idempotency_key(services, principal, idempotency_key, digest)
        if found is not None:
            return found
    runtime = services.runtime
    tenant, tier = await runtime.tenant_views.tenant_and_tier(principal.tenant,
                                                              principal.customer_id)
    if body.provider is not None:
        # A white-label customer pins a provider by the neutral name it was shown.
        body = msgspec.structs.replace(body, provider=resolve_label(
            runtime, tenant, body.provider, customer=principal.customer_id is not None))
    body, inputs = await media_urls.prepare(runtime, body)
    branded = await brand.with_kit(runtime, principal, body, inputs)
    body, inputs = branded.body, branded.inputs
    await services.providers.refresh(runtime)
    chosen = plan(runtime, services.providers, tenant, body, tier, inputs,
                  optional=branded.optional)
    await _refuse_others_voice(runtime, principal, chosen.request.params.get("voice"))
    lookup = cache.consult(runtime, tenant, chosen.request, provider=chosen.provider,
                           pinned=body.provider, cache_control=cache_control,
                           brand_kit=branded.stamp)
    original = await cache.find(runtime, lookup) if lookup is not None else None
    generation = Generation(
        id=new_id("gen"), tenant_id=principal.tenant, customer_id=principal.customer_id,
        api_key_id=principal.key_id, type=body.type, operation=chosen.request.operation,
        prompt=chosen.request.prompt,
        params=await media_urls.stow_inputs(runtime, principal.tenant, body.params, inputs),
        provider=chosen.provider.name,
        candidates=[p.name for p in chosen.candidates], attempts_log=[], status=QUEUED,
        cost_usd_micros=chosen.price.cost_usd_micros,
        wholesale_mc=chosen.price.wholesale_mc, retail_mc=chosen.price.retail_mc,
        estimated_mc=chosen.price.wholesale_mc, metadata_=body.metadata,
        webhook_url=body.webhook_url, idempotency_key=idempotency_key, request_hash=digest,
        brand_kit_id=branded.kit_id, brand_kit_version=branded.kit_version,
        # Now, not at the INSERT: the reservations, made before it, count the team's
        # allocation in the month the row is created in.
        created_at=utcnow(),
    )
    timeout_at = utcnow() + timedelta(seconds=services.runtime.settings.reservation_timeout_s)
    if lookup is not None:
        generation.fingerprint = lookup.fingerprint
        if original is not None:
            generation = cache.cached_copy(original, generation, cache.hit_price(
                runtime, tenant, tier, body.type, original, lookup.policy))
        else:
            generation.coalesced_from = await cache.current_leader(runtime, lookup)
    team_spend.mark(principal, generation)  # on the row to persist: a cached copy too
    announced = False
    # Budget presence from the caches already read (no budget: no budget query).
    budgeted = Budgeted(key=principal.key_budgeted, customer=await runtime.tenant_views
                        .customer_budgeted(principal.tenant, principal.customer_id))
    try:
        if generation.cached:
            # A hit takes no job slot and its charge (if any) is posted at once: no quota.
            announced = await services.runtime.db.grouped(
                lambda session: _persist_hit(session, tenant, generation, timeout_at,
                                             budgeted))
        else:
            quota = _quota(runtime, tenant, body.type)
            await services.runtime.db.grouped(lambda session: _persist(session, tenant, generation,
                                                               timeout_at, quota, budgeted))
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key committed first.
        if idempotency_key is None:
            raise
        found = await _by_idempotency_key(services, principal, idempotency_key, digest)
        if found is None:
            raise
        return found
    await lifecycle.announce(services, generation, generation.status)
    if generation.cached:
        if announced or tenant.low_balance_threshold_mc:
            services.webhooks.wake()  # its event (and a charged hit's `credits.low`)
        return generation
    if lookup is not None and await cache.hold_back(runtime, lookup, generation):
        return generation
    await _enqueue(services, generation)
    if tenant.low_balance_threshold_mc:
        services.webhooks.wake()  # the reservation may have written `credits.low`
    return generation


def _quota(runtime: Runtime, tenant: Tenant, media_type: str) -> quotas.Quota:
    limits = effective_limits(runtime.settings, tenant.rate_limits)
    return quotas.quota_for(limits, tenant.id, media_type, runtime.limiter.clock())


@dataclass(frozen=True, slots=True)
class Budgeted:
    """Whether the caller's key and customer have monthly budgets (`budgets.admit`)."""

    key: bool
    customer: bool


async def _persist(session: AsyncSession, tenant: Tenant, generation: Generation,
                   timeout_at: datetime, quota: quotas.Quota, budgeted: Budgeted) -> None:
    """The submit's unit of work (group-committed): the quotas, the generation's
    reservations and its row. The reservations come first so that the row is inserted with
    their ids (one INSERT, no UPDATE after it); nothing references the row before the
    commit, and a failure of either rolls back both."""
    await quotas.admit(session, quota, generation)
    await budgets.admit(session, tenant, generation, quota.day, key_budgeted=budgeted.key,
                        customer_budgeted=budgeted.customer)
    await _reserve(session, tenant, generation, timeout_at)
    session.add(generation)
    await session.flush()


async def _persist_hit(session: AsyncSession, tenant: Tenant, generation: Generation,
                       timeout_at: datetime, budgeted: Budgeted) -> bool:
    """A cached answer's unit of work: the succeeded row and, when the tenant's cache policy
    charges for hits, its reservations posted at once (same idempotency keys as a run).
    Returns whether a webhook event was written."""
    session.add(generation)
    await session.flush()
    # Subscribers hear of a hit as of any success (the row is born succeeded).
    announced = await outbox.generation_ended(
        session, tenant.id, generation.id, SUCCEEDED,
        has_webhook_url=generation.webhook_url is not None)
    if generation.wholesale_mc == 0 and generation.retail_mc == 0:
        return announced  # free: nothing reserved, nothing moved
    await budgets.admit(session, tenant, generation, utcnow().date(),
                        key_budgeted=budgeted.key, customer_budgeted=budgeted.customer)
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

    The customer (in `mediahub` mode) sees and pays retail, or its team's wallet with the
    member's allocation counted first (`team_spend`); the tenant always pays wholesale.
    """
    await team_spend.take(session, tenant, generation)
    paying = await wallets.payers(session, tenant, generation.customer_id, generation.team_id)
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


async def _enqueue(services: Services, generation: Generation) -> None:
    try:
        await jobs.enqueue_run(services.runtime, generation.id, generation.type)
    except Exception as exc:
        # The row exists but no job does: fail it now and release the credits rather than
        # leave the customer's money reserved until the sweeper's timeout. Nothing was
        # charged, so the Idempotency-Key is let go: the client's retry with it must run.
        log.exception("enqueue failed", extra={"generation_id": generation.id})
        await lifecycle.end(services, generation,
                            lifecycle.Failed("queue_unavailable",
                                             "the job queue is unavailable", frees_key=True),
                            from_states=(QUEUED,))
        raise Unavailable("the job queue is unavailable; nothing was charged",
                          code="queue_unavailable") from exc
