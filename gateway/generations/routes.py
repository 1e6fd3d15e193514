"""`/v1/generations` and `/v1/providers` (API.md, "Generations"). Thin: each route parses,
calls one service function and renders; the guard has authenticated and rate-limited the
caller before the body is read."""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, HeaderParameter, Parameter
from litestar.response import Stream

from gateway.core.auth import Principal, requires, with_team
from gateway.core.deps import RuntimeDep, page_limit
from gateway.generations import compliance, gallery, search, service, submit
from gateway.generations.compliance import BrandComplianceOut
from gateway.generations.headers import DOCUMENTED, generation_headers
from gateway.generations.models import FINAL_STATES, Generation
from gateway.generations.schemas import (
    BulkRequest,
    BulkResults,
    Estimate,
    GenerationCreate,
    GenerationDeleted,
    GenerationList,
    GenerationOut,
    Share,
    ShareCreate,
    SharedGeneration,
)
from gateway.generations.services import Services, ServicesDep
from gateway.generations.views import Audience, audience, render
from gateway.providers.states import ProviderList, catalogue
from plugins.vocabulary import MEDIA_TYPES
from tenants.kernel.errors import InvalidRequest

#: The largest amount of millicredits a filter takes (a BIGINT column compares with it).
MAX_MC = 2**62

_WAIT = re.compile(r"(?:^|[,;\s])wait=(\d+)")

#: Routes that render take the request for its `Host` (not a documented header parameter:
#: media links go to the tenant's own domain when the request came through it).
AnyRequest = Request[Any, Any, Any]

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", min_length=1, max_length=255, required=False),
]


async def _audience(services: Services, principal: Principal,
                    request: AnyRequest) -> Audience:
    return await audience(services.runtime, principal, request.headers.get("host"))


async def _hung_up(request: AnyRequest) -> None:
    """Returns once the client disconnects: the body has been read, so the next ASGI message
    on the request's channel is `http.disconnect` (servers send nothing else)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _respond(services: Services, principal: Principal, request: AnyRequest,
                   generation: Generation, status: int, *,
                   waited_s: float = 0.0) -> Response[GenerationOut]:
    """A generation response: the view for the caller and its credit and timing headers."""
    to = await _audience(services, principal, request)
    shown = await render(services.runtime, generation, to)
    headers = await generation_headers(services.runtime, generation, shown, to, request.scope,
                                       waited_s=waited_s)
    return Response(shown, status_code=status, headers=headers)


def _wait_seconds(prefer: str | None) -> int:
    if not prefer:
        return 0
    found = _WAIT.search(prefer)
    return min(int(found.group(1)), service.MAX_WAIT_S) if found else 0


def _check_type(media_type: str | None) -> None:
    """Refuse a `type` filter that names no media type (it would match nothing)."""
    if media_type is not None and media_type not in MEDIA_TYPES:
        raise InvalidRequest(f"unknown type; one of {', '.join(MEDIA_TYPES)}",
                             code="invalid_type", param="type")


class GenerationController(Controller):
    path = "/v1/generations"
    tags = ["generations"]

    @post("/", status_code=202, summary="Submit a generation", guards=[requires("generate")],
          response_headers=DOCUMENTED)
    async def create(self, request: AnyRequest, principal: Principal, services: ServicesDep,
                     data: GenerationCreate, idempotency_key: IdempotencyKey = None,
                     prefer: Annotated[str | None, HeaderParameter(name="Prefer",
                                                             required=False)] = None,
                     cache_control: Annotated[str | None, HeaderParameter(
                         name="Cache-Control", required=False)] = None) -> Response[GenerationOut]:
        """Reserve credits and queue the job; `Prefer: wait=N` waits up to N s for the result.

        Answers 202 with the queued generation, or 200 with the finished one. The wait holds
        no database connection and ends when the generation does, at the deadline, or when
        the client disconnects. An identical earlier result of this tenant answers at once
        (`cached: true`, billed by the tenant's cache policy); `Cache-Control: no-cache` asks
        for a fresh run. Pinning a `provider` that neither the platform nor the tenant holds a
        key for is a 422 `provider_unconfigured` (`param: "provider"`), nothing reserved.

        `params` are checked against what the providers able to serve the request declare,
        before anything is reserved: a parameter none of them reads is `422 unknown_param`
        (`param: "params.<name>"`), a value of the wrong kind or length `422
        invalid_parameter`, params over 32 KB of JSON `422 params_too_large`, and a
        `params.voice` naming another caller's voice clone `422 voice_not_found`.

        Input URLs (`params.image_url`, `mask_url`, `sample_urls`) are fetched at once, only
        those the operation uses (another is `422 unused_input`), all within
        `MEDIAHUB_INPUT_FETCH_DEADLINE_S` (past it, `422 input_fetch_timeout`); nothing is
        reserved before they are in.

        `X-Team-Id: team_…` (or `team_id` in the body) spends from that team's wallet, for a
        member that may spend (docs/teams.md): 404 `team_not_found` for a team the caller is
        not in, 403 `team_viewer` for a viewer, 402 `allocation_exceeded` past the member's
        allocation.
        """
        data.check_operation()
        generation = await submit.submit(services, principal, data,
                                         idempotency_key=idempotency_key,
                                         cache_control=cache_control)
        wait = _wait_seconds(prefer)
        waited_s = 0.0
        if wait:
            began = time.perf_counter()
            generation = await service.wait_until_final(
                services, principal, generation, wait,
                disconnected=lambda: _hung_up(request))
            waited_s = time.perf_counter() - began
        # 200 only when the caller asked to wait and got the result; a replay is still 202.
        status = 200 if wait and generation.status in FINAL_STATES else 202
        return await _respond(services, principal, request, generation, status,
                              waited_s=waited_s)

    @post("/estimate", status_code=200, summary="Price a generation without reserving",
          guards=[requires("generate")])
    async def estimate(self, principal: Principal, services: ServicesDep,
                       data: GenerationCreate) -> Estimate:
        """What the generation would cost the caller, reserving nothing.

        A tenant key sees the breakdown: the provider's `cost_usd_micros`, the `wholesale`
        and the `retail` price. A customer (a customer key, or `X-Customer-Id`) sees its retail
        price only, and the provider by a neutral name unless the tenant shows provider names.
        """
        data.check_operation()
        return await service.estimate(services, principal, data)

    @get("/", summary="List generations, newest first", guards=[requires("read")])
    async def list_(self, request: AnyRequest, principal: Principal, services: ServicesDep,
                    type: FromQuery[str | None] = None, status: FromQuery[str | None] = None,
                    limit: FromQuery[int | None] = None,
                    cursor: FromQuery[str | None] = None,
                    team_id: FromQuery[str | None] = None,
                    created_after: FromQuery[datetime | None] = None,
                    created_before: FromQuery[datetime | None] = None,
                    min_cost: Annotated[int | None, Parameter(ge=0, le=MAX_MC)] = None,
                    max_cost: Annotated[int | None, Parameter(ge=0, le=MAX_MC)] = None,
                    favourite: FromQuery[bool | None] = None,
                    q: Annotated[str | None, Parameter(min_length=1, max_length=200)] = None,
                    ) -> GenerationList:
        """`type` and `status` filter (422 for a value that does not exist, so a typo is
        not an empty list); `cursor` is a previous page's `next_cursor`. `team_id` (or
        `X-Team-Id`) lists a team's generations, for its members (viewers too).

        The gallery's filters, ANDed with those and with each other: `created_after`
        (inclusive) and `created_before` (exclusive), ISO 8601 times (UTC without an
        offset); `min_cost` / `max_cost` in millicredits, on the cost shown (`charged`,
        else `estimated`); `favourite=true|false`; `q`, full-text search over prompts: every
        word must appear, the last one as a prefix (`"red sun"` finds "a red sunset"), any
        language (words are matched as written, no stemming). Deleted generations are never
        listed. Pagination is unchanged: pass `next_cursor` with the same filters.
        """
        _check_type(type)
        principal = await with_team(services.runtime, principal, team_id)
        if status is not None and status not in (*FINAL_STATES, "queued", "running"):
            raise InvalidRequest("unknown status", code="invalid_status", param="status")
        filters = search.Filters(created_after=created_after, created_before=created_before,
                                 min_cost=min_cost, max_cost=max_cost, favourite=favourite, q=q)
        rows, next_cursor = await service.list_page(
            services, principal, media_type=type, status=status, limit=page_limit(limit),
            cursor=cursor, filters=filters)
        to = await _audience(services, principal, request)
        return GenerationList(data=[await render(services.runtime, g, to) for g in rows],
                              next_cursor=next_cursor)

    @post("/bulk", status_code=200, summary="Delete or (un)favourite many generations",
          guards=[requires("generate")])
    async def bulk(self, principal: Principal, services: ServicesDep,
                   data: BulkRequest) -> BulkResults:
        """Apply `action` (`delete`, `favourite` or `unfavourite`) to 1 to 100 `ids`, each
        as its own call would: a result per id, in order, `ok: false` with the `error` that
        call would have answered (`generation_not_found` for another caller's or an unknown
        id, `generation_active` for a delete of a queued or running one). One failing does
        not stop the others."""
        return await gallery.bulk(services, principal, data)

    @get("/archive", summary="Download generations as a zip", guards=[requires("read")],
         media_type="application/zip",
         responses={200: ResponseSpec(data_container=bytes, media_type="application/zip",
                                      description="The zip, streamed.")})
    async def archive(self, principal: Principal, services: ServicesDep,
                      ids: Annotated[str, Parameter(min_length=1, max_length=100 * 33)],
                      team_id: FromQuery[str | None] = None) -> Stream:
        """A zip of the outputs of 1 to 100 generations (`ids`, comma separated) the caller
        may read, streamed as it is built: each output as `<generation id>-<n>.<ext>` (n
        from 1) and `generations.json` listing each generation's `id`, `type`, `prompt`,
        `params`, `created_at` and its files' names. Every id is checked first: one the
        caller cannot read is 404 `generation_not_found` before anything is sent. `team_id`
        (or `X-Team-Id`) reads a team's generations, for its members: a download link cannot
        send a header, so the portal puts the team in the query."""
        principal = await with_team(services.runtime, principal, team_id)
        wanted = [part.strip() for part in ids.split(",") if part.strip()]
        if not 1 <= len(wanted) <= gallery.MAX_ARCHIVE_IDS:
            raise InvalidRequest(f"ids takes 1 to {gallery.MAX_ARCHIVE_IDS} generation ids",
                                 code="invalid_ids", param="ids")
        generations = await gallery.archive_generations(services, principal, wanted)
        return Stream(gallery.archive(services.runtime, generations),
                      media_type="application/zip",
                      headers={"Content-Disposition": 'attachment; filename="generations.zip"'})

    @get("/{generation_id:str}", summary="Read one generation", guards=[requires("read")],
         response_headers=DOCUMENTED)
    async def read(self, request: AnyRequest, principal: Principal, services: ServicesDep,
                   generation_id: FromPath[str]) -> Response[GenerationOut]:
        """One generation of the caller (a customer sees its own only), output URLs signed
        afresh: on the tenant's own domain when the request came through it.

        A customer sees its retail price and, unless the tenant shows provider names,
        neutral provider names (`engine_…`).
        """
        return await _respond(services, principal, request,
                              await service.get(services, principal, generation_id), 200)

    @get("/{generation_id:str}/brand_compliance", summary="Check a generation against a brand kit",
         guards=[requires("read")])
    async def brand_compliance(self, principal: Principal, services: ServicesDep,
                               generation_id: FromPath[str],
                               brand_kit_id: FromQuery[str | None] = None,
                               version: FromQuery[int | None] = None,
                               tolerance: FromQuery[float | None] = None,
                               output_index: FromQuery[int] = 0) -> BrandComplianceOut:
        """How well one output of a succeeded image, video (a frame at 0.5 s) or design
        generation keeps to a brand kit: its dominant colours against the kit's palette
        (ΔE2000 within `tolerance`, default 10), whether the kit's first logo is on it, a
        verdict (`pass`/`warn`/`fail`) and the reasons (docs/brand-compliance.md).

        `brand_kit_id` defaults to the kit the generation used, `version` to the version it
        used (else the kit's current one). 404 for a generation or kit the caller may not
        read, 409 `not_assessable` for one not succeeded or without a picture, 422 for a
        tolerance outside 0..100, a missing kit or an unreadable output."""
        return await compliance.check(services, principal, generation_id, kit_id=brand_kit_id,
                                      version=version, tolerance=tolerance,
                                      output_index=output_index)

    @post("/{generation_id:str}/cancel", status_code=200, summary="Cancel a generation",
          guards=[requires("generate")], response_headers=DOCUMENTED)
    async def cancel(self, request: AnyRequest, principal: Principal, services: ServicesDep,
                     generation_id: FromPath[str]) -> Response[GenerationOut]:
        """Cancel a queued or running generation of the caller: its reservation is voided
        (nothing charged) and it answers the canceled generation; 409 `already_final` for
        one that has ended."""
        generation = await service.cancel(services, principal, generation_id)
        return await _respond(services, principal, request, generation, 200)

    @delete("/{generation_id:str}", status_code=200, summary="Delete a generation",
            guards=[requires("generate")])
    async def delete_(self, principal: Principal, services: ServicesDep,
                      generation_id: FromPath[str]) -> GenerationDeleted:
        """Delete one of the caller's finished generations: from then on reading it is 404
        and no list (nor `/v1/videos`) shows it, and its stored media is removed by a
        background job. Its charges stand. 409 `generation_active` while it is queued or
        running (cancel it first); 404 for another caller's, or one already deleted. A
        request repeating its `Idempotency-Key` is 409 `generation_deleted`."""
        await gallery.delete(services, principal, generation_id)
        return GenerationDeleted(id=generation_id)

    @put("/{generation_id:str}/favourite", status_code=200, summary="Mark a favourite",
         guards=[requires("generate")])
    async def favourite(self, request: AnyRequest, principal: Principal,
                        services: ServicesDep,
                        generation_id: FromPath[str]) -> Response[GenerationOut]:
        """Mark one of the caller's generations as a favourite (`favourite: true`; doing it
        twice is the same); answers the generation. Lists filter on it with
        `favourite=true`."""
        generation = await gallery.set_favourite(services, principal, generation_id, True)
        return await _respond(services, principal, request, generation, 200)

    @delete("/{generation_id:str}/favourite", status_code=200, summary="Unmark a favourite",
            guards=[requires("generate")])
    async def unfavourite(self, request: AnyRequest, principal: Principal,
                          services: ServicesDep,
                          generation_id: FromPath[str]) -> Response[GenerationOut]:
        """Remove the favourite mark of one of the caller's generations (idempotent);
        answers the generation."""
        generation = await gallery.set_favourite(services, principal, generation_id, False)
        return await _respond(services, principal, request, generation, 200)

    @post("/{generation_id:str}/share", status_code=200, summary="Make a share link",
          guards=[requires("read")])
    async def share(self, request: AnyRequest, principal: Principal, services: ServicesDep,
                    generation_id: FromPath[str], data: ShareCreate | None = None) -> Share:
        """A link anyone can open, without signing in, to see this generation's prompt and
        outputs until `expires_at`: `url` is the portal page `/shared/<token>` on the host
        the request came through (the tenant's domain), `token` what `GET
        /v1/shared/{token}` takes. `expires_in_s`: 60 s to 30 days, 7 days by default. The
        token is signed, not stored: it cannot be revoked, but deleting the generation ends
        it."""
        to = await _audience(services, principal, request)
        return await gallery.share(services, principal, generation_id,
                                   expires_in_s=(data or ShareCreate()).expires_in_s,
                                   origin=to.base_url)


class SharedController(Controller):
    path = "/v1/shared"
    tags = ["generations"]

    @get("/{token:str}", summary="Open a share link")
    async def read(self, request: AnyRequest, runtime: RuntimeDep,
                   token: FromPath[str]) -> SharedGeneration:
        """Public (no key, no session): the shared generation's `type`, `prompt` and
        `outputs` (links signed afresh) of a token from `POST /v1/generations/{id}/share`.
        404 `share_not_found` for a token that is malformed, forged, expired, of a deleted
        generation, or of another tenant than the one whose domain the request came through;
        429 past 120 views a minute from one client address."""
        return await gallery.shared(runtime, token, host=request.headers.get("host"),
                                    ip=request.client.host if request.client else "")


class ProviderController(Controller):
    path = "/v1/providers"
    tags = ["providers"]

    @get("/", summary="Providers this gateway can route to", guards=[requires()])
    async def list_(self, principal: Principal, runtime: RuntimeDep, services: ServicesDep,
                    type: FromQuery[str | None] = None) -> ProviderList:
        """Each provider's capabilities, prices and state.

        `status`: `available`, `unconfigured` (no API key: neither the platform's nor the
        calling tenant's own), `unhealthy` (its last health
        check failed), `circuit_open` (failing; skipped by routing until its cool-down ends)
        or `rate_limited` (it asked us to back off). `latency_ms` is the decayed average
        latency of its calls (null until observed), `error_rate` its recent failure rate.

        A customer (a customer key, or `X-Customer-Id`) gets no `pricing` (empty: the
        provider's USD prices are the reseller's business) and, unless the tenant's branding
        sets `show_provider_names`, neutral names and no descriptions.
        """
        _check_type(type)
        tenant = await runtime.tenant_views.tenant(principal.tenant)
        return await catalogue(runtime, services.providers, tenant, type,
                               customer=principal.customer_id is not None)
