"""The worker side of a generation: run the provider, store the outputs, settle the credits.

`run_generation` is what a queued job calls. It may run twice for one generation (a redelivered
job) or after a cancel: the conditional status updates make every repeat a no-op.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
from datetime import datetime

from sqlalchemy import select, update

from billing import ledger
from billing.pricing import price
from gateway.generations.models import QUEUED, RUNNING, SUCCEEDED, Generation
from gateway.generations.service import finish_failed
from gateway.runtime import Runtime
from plugins.base import ProviderError, ProviderRequest, ProviderResult
from tenants.db import utcnow
from tenants.models import Customer, Tenant

log = logging.getLogger(__name__)

PROVIDER_TIMEOUT_S = 300

_EXTENSIONS = {"image/png": ".png", "audio/wav": ".wav", "video/mp4": ".mp4",
               "model/gltf-binary": ".glb", "application/pdf": ".pdf"}


def _extension(content_type: str) -> str:
    return _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"


async def _claim(runtime: Runtime, generation_id: str) -> Generation | None:
    """queued → running, once; None when the generation is not (or no longer) queued."""
    now = utcnow()
    async with runtime.db.transaction() as session:
        result = await session.execute(
            update(Generation)
            .where(Generation.id == generation_id, Generation.status == QUEUED)
            .values(status=RUNNING, started_at=now, updated_at=now,
                    attempts=Generation.attempts + 1)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            return None
        return await session.get(Generation, generation_id)


async def _store(runtime: Runtime, generation: Generation,
                 result: ProviderResult) -> list[dict[str, object]]:
    stored: list[dict[str, object]] = []
    for index, output in enumerate(result.outputs):
        key = f"{generation.tenant_id}/{generation.id}/{index}{_extension(output.content_type)}"
        await runtime.storage.put(key, output.data, output.content_type)
        item: dict[str, object] = {"key": key, "content_type": output.content_type,
                                   "bytes": len(output.data)}
        for name in ("width", "height", "duration_s"):
            value = getattr(output, name)
            if value is not None:
                item[name] = value
        stored.append(item)
    return stored


async def _succeed(runtime: Runtime, generation: Generation, result: ProviderResult,
                   outputs: list[dict[str, object]]) -> None:
    async with runtime.db.session() as session:
        tenant = await session.get(Tenant, generation.tenant_id)
        customer = (await session.get(Customer, generation.customer_id)
                    if generation.customer_id else None)
    assert tenant is not None
    actual = price(result.cost_usd_micros, media_type=generation.type,
                   tenant_pricing=tenant.pricing, tier=customer.tier if customer else None,
                   platform_markup_bps=runtime.settings.platform_markup_bps)
    # Never charge above a reservation, whatever the provider reports.
    wholesale = min(actual.wholesale_mc, generation.wholesale_mc)
    retail = min(actual.retail_mc, generation.retail_mc)
    charged = retail if generation.customer_reservation_id else wholesale
    now = utcnow()
    async with runtime.db.transaction() as session:
        moved = await session.execute(
            update(Generation)
            .where(Generation.id == generation.id, Generation.status == RUNNING)
            .values(status=SUCCEEDED, outputs=outputs, charged_mc=charged,
                    cost_usd_micros=actual.cost_usd_micros, wholesale_mc=wholesale,
                    retail_mc=retail, completed_at=now, updated_at=now)
        )
        if moved.rowcount == 0:  # type: ignore[attr-defined]
            # Canceled while the provider worked: the cancel already voided the reservations.
            return
        assert generation.reservation_id is not None
        await ledger.post(session, tenant_id=generation.tenant_id,
                          pending_id=generation.reservation_id, amount_mc=wholesale)
        if generation.customer_reservation_id is not None:
            await ledger.post(session, tenant_id=generation.tenant_id,
                              pending_id=generation.customer_reservation_id, amount_mc=retail)


async def run_generation(runtime: Runtime, generation_id: str) -> None:
    """Advance one generation from queued to a final state; called by queue workers."""
    generation = await _claim(runtime, generation_id)
    if generation is None:
        return
    provider = runtime.plugins.get(generation.provider)
    if provider is None:
        await finish_failed(runtime, generation.tenant_id, generation.id,
                            code="provider_unavailable",
                            message=f"provider {generation.provider!r} is not installed")
        return
    request = ProviderRequest(type=generation.type, operation=generation.operation,
                              prompt=generation.prompt, params=generation.params)
    try:
        result = await asyncio.wait_for(
            provider.generate(request, runtime.credentials(provider.name), runtime.http),
            timeout=PROVIDER_TIMEOUT_S,
        )
        outputs = await _store(runtime, generation, result)
        await _succeed(runtime, generation, result, outputs)
    except ProviderError as exc:
        await finish_failed(runtime, generation.tenant_id, generation.id, code=exc.code,
                            message=exc.message)
    except TimeoutError:
        await finish_failed(runtime, generation.tenant_id, generation.id, code="timeout",
                            message="the provider did not answer in time")
    except Exception:
        log.exception("generation crashed", extra={"generation_id": generation.id})
        await finish_failed(runtime, generation.tenant_id, generation.id,
                            code="internal_error", message="the generation failed unexpectedly")
    runtime.completions.done(generation.id)


async def sweep_expired_reservations(runtime: Runtime, *, now: datetime | None = None) -> int:
    """Void reservations past their timeout and fail their generations; returns how many.

    Called on a schedule by workers and the embedded server (`now` is for tests). Works in
    batches until none is left, so a backlog never waits for the next round.
    """
    count = 0
    while True:
        async with runtime.db.session() as session:
            expired = await ledger.expired_reservations(session, now=now)
        if not expired:
            return count
        for pending in expired:
            count += 1
            if pending.generation_id is not None and await finish_failed(
                runtime, pending.tenant_id, pending.generation_id, code="reservation_expired",
                message="the generation did not finish before its reservation expired",
            ):
                continue
            # No generation to fail (or it already ended): release the credits alone.
            async with runtime.db.transaction() as session:
                with contextlib.suppress(ledger.AlreadyResolved):
                    await ledger.void(session, tenant_id=pending.tenant_id,
                                      pending_id=pending.id)


async def recover_embedded(runtime: Runtime) -> int:
    """Requeue what a stopped embedded process left behind; returns how many.

    Called at start in embedded mode only, where this process is the sole worker: anything
    `running` was interrupted mid-job, and an in-process queue kept nothing across the stop.
    """
    now = utcnow()
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Generation).where(Generation.status == RUNNING)
            .values(status=QUEUED, updated_at=now)
        )
        queued = (await session.execute(
            select(Generation.id, Generation.type).where(Generation.status == QUEUED)
        )).all()
    assert runtime.queue is not None
    for generation_id, media_type in queued:
        await runtime.queue.enqueue(generation_id, media_type)
    return len(queued)
