"""`/v1/generations` and `/v1/providers` (API.md, "Generations")."""

from __future__ import annotations

import re
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, HeaderParameter

from gateway.core.deps import RuntimeDep, page_limit
from gateway.core.http import acting_customer, identify, require_scope
from gateway.core.runtime import Runtime
from gateway.core.tenant_views import tenant_row
from gateway.generations import service
from gateway.generations.models import FINAL_STATES
from gateway.generations.schemas import (
    Estimate,
    GenerationCreate,
    GenerationList,
    GenerationOut,
    ProviderInfo,
    ProviderList,
)
from gateway.providers.states import configured, public_metrics
from tenants.kernel.errors import InvalidRequest

_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d+)")

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", min_length=1, max_length=255, required=False),
]


async def _caller(request: Request[Any, Any, Any], runtime: Runtime,
                  scope: str) -> service.Caller:
    identity = await identify(request, runtime)
    require_scope(identity, scope)
    return service.Caller.of(identity, await acting_customer(request, runtime, identity))


def _wait_seconds(prefer: str | None) -> int:
    if not prefer:
        return 0
    found = _WAIT.search(prefer)
    return min(int(found.group(1)), service.MAX_WAIT_S) if found else 0


class GenerationController(Controller):
    path = "/v1/generations"
    tags = ["generations"]

    @post("/", status_code=202, summary="Submit a generation")
    async def create(self, request: Request[Any, Any, Any], runtime: RuntimeDep,
                     data: GenerationCreate, idempotency_key: IdempotencyKey = None,
                     prefer: Annotated[str | None, HeaderParameter(name="Prefer",
                                                             required=False)] = None,
                     cache_control: Annotated[str | None, HeaderParameter(
                         name="Cache-Control", required=False)] = None,
                     ) -> Response[GenerationOut]:
        """Reserve credits and queue the job; `Prefer: wait=N` waits up to N s for the result.

        Answers 202 with the queued generation, or 200 with the finished one. An identical
        earlier result of this tenant answers at once (`cached: true`, billed by the tenant's
        cache policy); `Cache-Control: no-cache` asks for a fresh run.
        """
        caller = await _caller(request, runtime, "generate")
        generation = await service.submit(runtime, caller, data,
                                          idempotency_key=idempotency_key,
                                          cache_control=cache_control)
        wait = _wait_seconds(prefer)
        if wait:
            generation = await service.wait_until_final(runtime, caller, generation, wait)
        # 200 only when the caller asked to wait and got the result; a replay is still 202.
        status = 200 if wait and generation.status in FINAL_STATES else 202
        return Response(await service.render(runtime, generation), status_code=status)

    @post("/estimate", status_code=200, summary="Price a generation without reserving")
    async def estimate(self, request: Request[Any, Any, Any], runtime: RuntimeDep,
                       data: GenerationCreate) -> Estimate:
        caller = await _caller(request, runtime, "generate")
        return await service.estimate(runtime, caller, data)

    @get("/", summary="List generations, newest first")
    async def list_(self, request: Request[Any, Any, Any], runtime: RuntimeDep,
                    type: FromQuery[str | None] = None, status: FromQuery[str | None] = None,
                    limit: FromQuery[int | None] = None,
                    cursor: FromQuery[str | None] = None) -> GenerationList:
        caller = await _caller(request, runtime, "read")
        if status is not None and status not in (*FINAL_STATES, "queued", "running"):
            raise InvalidRequest("unknown status", code="invalid_status", param="status")
        rows, next_cursor = await service.list_page(
            runtime, caller, media_type=type, status=status, limit=page_limit(limit),
            cursor=cursor)
        return GenerationList(data=[await service.render(runtime, g) for g in rows],
                              next_cursor=next_cursor)

    @get("/{generation_id:str}", summary="Read one generation")
    async def read(self, request: Request[Any, Any, Any], runtime: RuntimeDep,
                   generation_id: FromPath[str]) -> GenerationOut:
        caller = await _caller(request, runtime, "read")
        return await service.render(runtime, await service.get(runtime, caller, generation_id))

    @post("/{generation_id:str}/cancel", status_code=200, summary="Cancel a generation")
    async def cancel(self, request: Request[Any, Any, Any], runtime: RuntimeDep,
                     generation_id: FromPath[str]) -> GenerationOut:
        caller = await _caller(request, runtime, "generate")
        generation = await service.cancel(runtime, caller, generation_id)
        return await service.render(runtime, generation)


class ProviderController(Controller):
    path = "/v1/providers"
    tags = ["providers"]

    @get("/", summary="Providers this gateway can route to")
    async def list_(self, request: Request[Any, Any, Any], runtime: RuntimeDep,
                    type: FromQuery[str | None] = None) -> ProviderList:
        """Each provider's capabilities, prices and state.

        `status`: `available`, `unconfigured` (no API key: neither the platform's nor the
        calling tenant's own), `unhealthy` (its last health
        check failed), `circuit_open` (failing; skipped by routing until its cool-down ends)
        or `rate_limited` (it asked us to back off). `latency_ms` is the decayed average
        latency of its calls (null until observed), `error_rate` its recent failure rate.
        """
        identity = await identify(request, runtime)
        own = (await tenant_row(runtime, identity.tenant_id)).provider_credentials
        await runtime.routing.refresh(runtime)
        data = []
        for provider in runtime.plugins.all():
            if type is not None and type not in provider.media_types:
                continue
            latency_ms, error_rate = public_metrics(runtime, provider)
            data.append(ProviderInfo(
                name=provider.name, types=sorted(provider.media_types),
                operations=sorted(provider.operations),
                status=runtime.routing.status(
                    provider, is_configured=configured(runtime, provider, own=own)),
                local=provider.local, description=provider.description,
                pricing=provider.pricing(), latency_ms=latency_ms, error_rate=error_rate,
            ))
        return ProviderList(data=data)
