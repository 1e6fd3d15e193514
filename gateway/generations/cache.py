"""The result cache and request coalescing (DESIGN.md "One request", step 4).

A request's **fingerprint** is a SHA-256 over a canonical encoding of the tenant, media type,
operation, prompt, parameters (the provider's defaults filled in, keys sorted, nulls dropped;
`metadata` and `webhook_url` are not part of it), its input media (type and SHA-256 of each,
when it has any), the pinned provider (or none), the tenant's branding version and the brand
kit applied with its version (`<kit id>:<version>`, when the request names one: a kit's new
version never answers with an output made with an older one). It never
matches across tenants: the tenant id is hashed in and every key and query is scoped by it.

- **Cache.** When a generation with a fingerprint succeeds, `{prefix}:cache:{tenant}:{fp}` →
  its id is stored for the tenant's `ttl_s`. An identical request then finds it and, if that
  generation is still `succeeded` (and not deleted) and its outputs are still stored, gets a
  new generation marked `cached: true`, succeeded at once with the same stored outputs,
  billed by the tenant's `charge` policy, without a job or a provider call. A request
  without a `seed` is cacheable like any other (a seed is just another parameter: a
  different seed, a different fingerprint); a tenant that wants fresh results turns the
  cache off or sends `Cache-Control: no-cache`, which skips the lookup and joining (its
  result is still stored).
- **Coalescing.** The first of identical requests in flight stores
  `{prefix}:inflight:{tenant}:{fp}` → its id (SET NX, after its row committed; expires with
  its reservation if its worker dies) and runs. Later ones become its followers
  (`coalesced_from`): each has its own row and reservation at its own price, but no job is
  queued for it while the leader works, so followers never hold a worker slot. When the
  leader ends, it stores the cache entry, clears the marker and queues its followers; each
  follower's job then copies the leader's outputs and settles its own reservation at its own
  price (the leader's provider cost, priced for this caller, never above what it reserved).
  If the leader **failed**, its followers fail with the same error and nothing is charged;
  if it was **canceled** (or vanished), each follower runs the provider itself.
- **Stores.** Valkey in production (shared by API processes and workers), a TTL dict in
  embedded mode (`gateway/result_store.py`). Valkey errors never fail a request: the cache
  degrades to a miss and the request runs alone.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import select, update

from billing.pricing import Price, div_ceil, price
from gateway.core.runtime import Runtime
from gateway.generations import jobs
from gateway.generations.models import (
    FAILED,
    FINAL_STATES,
    QUEUED,
    SUCCEEDED,
    Generation,
    StoredOutput,
)
from plugins.media import MediaInput
from plugins.provider import Provider, ProviderRequest
from tenants.kernel.db import new_id, utcnow
from tenants.models import Tenant
from tenants.schemas import CachePercent, TenantCache

log = logging.getLogger(__name__)

#: Bumped when the canonical encoding changes, so old entries stop matching.
FINGERPRINT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Lookup:
    """What one request may do with the cache: its fingerprint and the tenant's policy."""

    tenant_id: str
    fingerprint: str
    policy: TenantCache
    ttl_s: int
    #: `Cache-Control: no-cache`: no lookup, no joining; the result is still stored.
    bypass: bool


@dataclass(frozen=True, slots=True)
class LeaderOutcome:
    """How a follower ends, from its leader: the leader's outputs, or its error."""

    succeeded: bool
    provider: str
    outputs: list[StoredOutput]
    cost_usd_micros: int
    error_code: str | None = None
    error_message: str | None = None


def cache_key(prefix: str, tenant_id: str, fingerprint: str) -> str:
    return f"{prefix}:cache:{tenant_id}:{fingerprint}"


def inflight_key(prefix: str, tenant_id: str, fingerprint: str) -> str:
    return f"{prefix}:inflight:{tenant_id}:{fingerprint}"


def brand_version(branding: Any) -> str | None:
    """The brand kit's `version` when it has one, else a hash of the whole kit (None: none).
    `branding` is a tenant's `Branding` (or a plain mapping)."""
    if isinstance(branding, msgspec.Struct):
        branding = msgspec.to_builtins(branding)
    if not branding:
        return None
    version = branding.get("version")
    if isinstance(version, (str, int)) and not isinstance(version, bool):
        return str(version)
    return hashlib.sha256(msgspec.json.encode(branding, order="sorted")).hexdigest()


def fingerprint(tenant: Tenant, request: ProviderRequest, *, provider: Provider,
                pinned: str | None, brand_kit: str | None = None) -> str:
    """The request's fingerprint (see the module docstring). `provider` is the one routing
    chose: its `param_defaults` fill in what the request left out."""
    params = {**provider.param_defaults,
              **{k: v for k, v in request.params.items() if v is not None}}
    document: dict[str, Any] = {
        "v": FINGERPRINT_VERSION, "tenant": tenant.id, "type": request.type,
        "operation": request.operation, "prompt": request.prompt, "params": params,
        "provider": pinned, "brand": brand_version(tenant.branding)}
    if brand_kit is not None:
        # Only when given, so requests without a kit keep their fingerprints.
        document["brand_kit"] = brand_kit
    if request.inputs or request.samples:
        # Input media are not in `params` (providers get them decoded): their digests count.
        document["inputs"] = {name: _digest(m) for name, m in request.inputs.items()}
        document["samples"] = [_digest(m) for m in request.samples]
    return hashlib.sha256(msgspec.json.encode(document, order="sorted")).hexdigest()


def _digest(media: MediaInput) -> str:
    return f"{media.content_type}:{hashlib.sha256(media.data).hexdigest()}"


def wants_fresh(cache_control: str | None) -> bool:
    """True when `Cache-Control` carries the `no-cache` directive."""
    if not cache_control:
        return False
    return any(part.strip().lower().split("=")[0] == "no-cache"
               for part in cache_control.split(","))


def consult(runtime: Runtime, tenant: Tenant, request: ProviderRequest, *,
            provider: Provider, pinned: str | None,
            cache_control: str | None, brand_kit: str | None = None) -> Lookup | None:
    """Called by `submit` once the request is planned; None when the tenant's cache is off
    (then neither the cache nor coalescing applies), or for a voice clone: each makes a new
    voice its caller owns, and a copy would hand one caller's voice to another.
    `brand_kit`: `<kit id>:<version>` of the kit applied (`brand.stamp`)."""
    if request.operation == "voice_clone":
        return None
    policy = tenant.cache
    ttl_s = policy.ttl_s if policy.ttl_s is not None else runtime.settings.cache_ttl_s
    if not policy.enabled or ttl_s <= 0:
        return None
    return Lookup(tenant_id=tenant.id,
                  fingerprint=fingerprint(tenant, request, provider=provider, pinned=pinned,
                                          brand_kit=brand_kit),
                  policy=policy, ttl_s=ttl_s, bypass=wants_fresh(cache_control))


async def find(runtime: Runtime, lookup: Lookup) -> Generation | None:
    """The tenant's finished identical generation, if the cache points at one that is still
    `succeeded` with every output still stored; else None (a miss)."""
    if lookup.bypass:
        return None
    try:
        found_id = await runtime.results.get(
            cache_key(runtime.settings.queue_prefix, lookup.tenant_id, lookup.fingerprint))
    except Exception:
        log.warning("result cache unavailable; treating as a miss", exc_info=True)
        return None
    if found_id is None:
        return None
    original = _from_snapshot(found_id, lookup.tenant_id)
    if original is None:
        # An entry stored as a bare id (before snapshots): read the generation.
        async with runtime.db.session() as session:
            original = await session.scalar(
                select(Generation).where(Generation.id == found_id,
                                         Generation.tenant_id == lookup.tenant_id,
                                         Generation.status == SUCCEEDED))
    if original is None or not original.outputs:
        return None
    if not await _still_shown(runtime, original):
        return None
    for item in original.outputs:
        try:
            if not await runtime.storage.exists(item.key):
                return None
        except Exception:
            log.warning("media store unavailable; treating as a miss", exc_info=True)
            return None
    return original


async def _still_shown(runtime: Runtime, original: Generation) -> bool:
    """Whether the cache's generation was not deleted since it was stored: a deleted
    generation's outputs are never served again, even before its media is removed."""
    async with runtime.db.session() as session:
        found = await session.scalar(
            select(Generation.id).where(Generation.id == original.id,
                                        Generation.tenant_id == original.tenant_id,
                                        Generation.deleted_at.is_(None)))
    return found is not None


def hit_price(runtime: Runtime, tenant: Tenant, tier: str | None, media_type: str,
              original: Generation, policy: TenantCache) -> Price:
    """What a cached answer costs: nothing (`free`), the price of the original's provider cost
    for this caller (`full`), or a percentage of it rounded up to the millicredit."""
    if policy.charge == "free":
        return Price(cost_usd_micros=0, wholesale_mc=0, retail_mc=0)
    full = price(original.cost_usd_micros, media_type=media_type,
                 tenant_pricing=tenant.pricing, tier=tier,
                 platform_markup_bps=runtime.settings.platform_markup_bps)
    if isinstance(policy.charge, CachePercent):
        percent = policy.charge.percent
        return Price(cost_usd_micros=0, wholesale_mc=div_ceil(full.wholesale_mc * percent, 100),
                     retail_mc=div_ceil(full.retail_mc * percent, 100))
    return Price(cost_usd_micros=0, wholesale_mc=full.wholesale_mc, retail_mc=full.retail_mc)


def cached_copy(original: Generation, template: Generation, charge: Price) -> Generation:
    """A new, already succeeded generation for `template`'s caller, with `original`'s stored
    outputs (links are signed per read) and `charge` as its price; no provider is called."""
    now = utcnow()
    return Generation(
        id=new_id("gen"), tenant_id=template.tenant_id, customer_id=template.customer_id,
        api_key_id=template.api_key_id, type=template.type, operation=template.operation,
        prompt=template.prompt, params=template.params, provider=original.provider,
        candidates=[original.provider], attempts_log=[], status=SUCCEEDED, cached=True,
        cost_usd_micros=0, wholesale_mc=charge.wholesale_mc, retail_mc=charge.retail_mc,
        estimated_mc=charge.wholesale_mc, charged_mc=charge.wholesale_mc,
        outputs=list(original.outputs), metadata_=template.metadata_,
        webhook_url=template.webhook_url, idempotency_key=template.idempotency_key,
        request_hash=template.request_hash, fingerprint=template.fingerprint,
        brand_kit_id=template.brand_kit_id, brand_kit_version=template.brand_kit_version,
        created_at=now, updated_at=now, started_at=now, completed_at=now,
    )


async def current_leader(runtime: Runtime, lookup: Lookup) -> str | None:
    """Called by `submit` before persisting: the id of an identical generation in flight
    that this request should follow, or None."""
    if lookup.bypass:
        return None
    try:
        return await runtime.results.get(
            inflight_key(runtime.settings.queue_prefix, lookup.tenant_id, lookup.fingerprint))
    except Exception:
        log.warning("in-flight markers unavailable; running alone", exc_info=True)
        return None


async def hold_back(runtime: Runtime, lookup: Lookup, generation: Generation) -> bool:
    """Called by `submit` after the row committed; True when its job must not be queued now
    (a follower whose leader is still working: the leader queues it when it ends).

    A generation not yet following anyone tries to become the leader; if another identical
    request won meanwhile, it turns into that one's follower (unless `no-cache`).
    """
    if generation.coalesced_from is None:
        key = inflight_key(runtime.settings.queue_prefix, lookup.tenant_id,
                           lookup.fingerprint)
        # The marker outlives the leader's reservation only if its worker died.
        marker_ttl_s = runtime.settings.reservation_timeout_s + 60
        try:
            if await runtime.results.add(key, generation.id, marker_ttl_s):
                return False
            leader = None if lookup.bypass else await runtime.results.get(key)
        except Exception:
            log.warning("in-flight markers unavailable; running alone", exc_info=True)
            return False
        if leader is None or leader == generation.id:
            return False
        async with runtime.db.transaction() as session:
            await session.execute(
                update(Generation)
                .where(Generation.id == generation.id,
                       Generation.tenant_id == generation.tenant_id,
                       Generation.status == QUEUED)
                .values(coalesced_from=leader))
        generation.coalesced_from = leader
    return not await _leader_ended(runtime, generation.tenant_id, generation.coalesced_from)


async def _leader_ended(runtime: Runtime, tenant_id: str, leader_id: str) -> bool:
    async with runtime.db.session() as session:
        status = await session.scalar(
            select(Generation.status).where(Generation.id == leader_id,
                                            Generation.tenant_id == tenant_id))
    return status is None or status in FINAL_STATES


async def may_start(runtime: Runtime, generation_id: str) -> bool:
    """Called by the worker before claiming a job: False for a follower whose leader is
    still working (a redelivered or recovered job); the leader queues it again at its end."""
    async with runtime.db.session() as session:
        row = (await session.execute(
            select(Generation.tenant_id, Generation.coalesced_from)
            .where(Generation.id == generation_id))).first()
    if row is None or row.coalesced_from is None:
        return True
    return await _leader_ended(runtime, row.tenant_id, row.coalesced_from)


async def leader_outcome(runtime: Runtime, generation: Generation) -> LeaderOutcome | None:
    """Called by the worker for a claimed generation: how it ends from its leader, or None
    when it must run the provider itself (not a follower; leader canceled or gone)."""
    if generation.coalesced_from is None:
        return None
    async with runtime.db.session() as session:
        leader = await session.scalar(
            select(Generation).where(Generation.id == generation.coalesced_from,
                                     Generation.tenant_id == generation.tenant_id))
    if leader is None or leader.status not in (SUCCEEDED, FAILED):
        return None  # canceled, gone, or (after a recovery) not finished: run it here
    if leader.status == SUCCEEDED:
        return LeaderOutcome(succeeded=True, provider=leader.provider,
                             outputs=list(leader.outputs),
                             cost_usd_micros=leader.cost_usd_micros)
    error = leader.error
    return LeaderOutcome(succeeded=False, provider=leader.provider, outputs=[],
                         cost_usd_micros=0,
                         error_code=error.code if error else "provider_error",
                         error_message=error.message if error else "the provider failed")


async def remember(runtime: Runtime, tenant: Tenant, generation: Generation, *,
                   provider: str, outputs: list[StoredOutput],
                   cost_usd_micros: int) -> None:
    """Called by the worker right after it committed a generation as succeeded (with what it
    recorded: the provider, the stored outputs, the provider's cost): point the cache at a
    snapshot of it, before `on_finished` wakes waiting requests. Never raises."""
    if generation.fingerprint is None or generation.coalesced_from is not None:
        return
    policy = tenant.cache
    ttl_s = policy.ttl_s if policy.ttl_s is not None else runtime.settings.cache_ttl_s
    if not policy.enabled or ttl_s <= 0:
        return
    try:
        await runtime.results.set(
            cache_key(runtime.settings.queue_prefix, tenant.id, generation.fingerprint),
            _snapshot(generation, provider, outputs, cost_usd_micros), ttl_s)
    except Exception:
        log.warning("result cache unavailable; result not stored", exc_info=True)


class _Snapshot(msgspec.Struct, frozen=True):
    """What a hit copies from the generation it answers with, stored as the cache entry: a
    hit then needs no database read (a succeeded generation never changes)."""

    id: str
    provider: str
    cost_usd_micros: int
    outputs: list[StoredOutput]


def _snapshot(generation: Generation, provider: str, outputs: list[StoredOutput],
              cost_usd_micros: int) -> str:
    return msgspec.json.encode(_Snapshot(id=generation.id, provider=provider,
                                         cost_usd_micros=cost_usd_micros,
                                         outputs=outputs)).decode()


def _from_snapshot(value: str, tenant_id: str) -> Generation | None:
    """The original as the snapshot describes it (enough for `cached_copy` and `hit_price`),
    or None when `value` is a bare generation id."""
    if not value.startswith("{"):
        return None
    try:
        snap = msgspec.json.decode(value, type=_Snapshot)
    except msgspec.DecodeError:
        return None
    return Generation(id=snap.id, tenant_id=tenant_id, provider=snap.provider,
                      cost_usd_micros=snap.cost_usd_micros, outputs=snap.outputs,
                      status=SUCCEEDED)


async def on_finished(runtime: Runtime, generation: Generation, status: str) -> None:
    """Called by `lifecycle.end` whenever a generation reaches a final state (`status`;
    worker, cancel, sweeper), after its commit.

    For a leader: clear the in-flight marker, then queue its followers (the cache entry was
    stored by `remember`). Does nothing for other generations (what makes a leader, its
    fingerprint and being neither a follower nor a cached copy, is fixed at submit, so the
    row is not read again); never raises.
    """
    if (generation.fingerprint is None or generation.coalesced_from is not None
            or generation.cached or status not in FINAL_STATES):
        return
    try:
        await _on_finished(runtime, generation.tenant_id, generation.id,
                           generation.fingerprint)
    except Exception:
        log.exception("result cache bookkeeping failed", extra={"generation_id": generation.id})


async def _on_finished(runtime: Runtime, tenant_id: str, generation_id: str,
                       fingerprint: str) -> None:
    async with runtime.db.session() as session:
        followers = (await session.execute(
            select(Generation.id, Generation.type)
            .where(Generation.tenant_id == tenant_id,
                   Generation.coalesced_from == generation_id,
                   Generation.status == QUEUED))).all()
    prefix = runtime.settings.queue_prefix
    await runtime.results.delete_if(inflight_key(prefix, tenant_id, fingerprint),
                                    generation_id)
    for follower_id, media_type in followers:
        await jobs.enqueue_run(runtime, follower_id, media_type)
