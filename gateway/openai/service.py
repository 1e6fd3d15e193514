"""The OpenAI-compatible surface's use cases: each call is one or more ordinary generations
(submitted by `generations.submit`, so billed, limited, cached and listed like any other),
waited for when OpenAI's API is synchronous (images, speech)."""

from __future__ import annotations

import base64
import time
from typing import Final

from gateway.core.auth import Principal
from gateway.generations import service as generations
from gateway.generations import submit
from gateway.generations.models import FINAL_STATES, SUCCEEDED, Generation
from gateway.generations.schemas import GenerationCreate
from gateway.generations.services import Services
from gateway.generations.views import Audience, render
from gateway.openai import audio, catalogue, translate
from gateway.openai.schemas import (
    Image,
    ImagesResponse,
    Model,
    ModelList,
    Video,
    VideoDeleted,
    VideoList,
)
from tenants.kernel.errors import Conflict, InvalidRequest, NotFound, ProviderFailed, Unavailable
from tenants.kernel.pagination import encode_cursor
from tenants.schemas import shows_provider_names

#: How long a synchronous call (images, speech) waits for its generations before answering
#: 503 `generation_pending` (the generations go on; the native API shows them).
SYNC_WAIT_S: Final = 300


async def models(services: Services, principal: Principal) -> ModelList:
    """`GET /v1/models`: the tenant's `provider/model` ids and the bare OpenAI names it can be
    served. A white-label tenant's customer (provider names hidden) sees the bare names
    only."""
    runtime = services.runtime
    tenant = await runtime.tenant_views.tenant(principal.tenant)
    bare = [Model(id=name, owned_by=owner.partition("/")[0])
            for name, owner in catalogue.bare_names(runtime, tenant).items()]
    if principal.customer_id is not None and not shows_provider_names(tenant.branding):
        return ModelList(data=[Model(id=m.id, owned_by=catalogue.ROUTED_OWNER) for m in bare])
    named = [Model(id=e.id, owned_by=e.provider) for e in catalogue.entries(runtime, tenant)]
    return ModelList(data=named + bare)


def _key(idempotency_key: str | None, index: int) -> str | None:
    """The Idempotency-Key of the `index`-th generation of one call: the client's for the
    first, `<key>:<index>` for the others (so a replay finds every one)."""
    if idempotency_key is None or index == 0:
        return idempotency_key
    return f"{idempotency_key}:{index}"


async def _submit_all(services: Services, principal: Principal, bodies: list[GenerationCreate],
                      idempotency_key: str | None) -> list[Generation]:
    for body in bodies:
        body.check_operation()
    # The images after the first are fresh runs (`no-cache`): `n` asks for n different
    # images, not one image answered n times by the result cache or coalescing.
    return [await submit.submit(services, principal, body,
                                idempotency_key=_key(idempotency_key, index),
                                cache_control="no-cache" if index else None)
            for index, body in enumerate(bodies)]


async def _finished(services: Services, principal: Principal,
                    generation: Generation) -> Generation:
    """`generation` once it succeeded; raises `ProviderFailed` (its error) when it failed,
    `Unavailable` when it did not end within `SYNC_WAIT_S`."""
    deadline = time.monotonic() + SYNC_WAIT_S
    while generation.status not in FINAL_STATES and time.monotonic() < deadline:
        generation = await generations.wait_until_final(
            services, principal, generation, deadline - time.monotonic())
    if generation.status == SUCCEEDED:
        return generation
    if generation.status not in FINAL_STATES:
        raise Unavailable(f"generation {generation.id} is still running; GET "
                          f"/v1/generations/{generation.id} shows it when done",
                          code="generation_pending")
    error = generation.error
    raise ProviderFailed(error.message if error else f"the generation was {generation.status}",
                         code=error.code if error else generation.status)


async def images(services: Services, principal: Principal, bodies: list[GenerationCreate], *,
                 idempotency_key: str | None, response_format: str | None,
                 to: Audience) -> ImagesResponse:
    """`POST /v1/images/generations|edits|variations`: submit one generation per image, wait
    for all, answer their images as signed URLs (`url`, the default) or base64 of the
    stored bytes (`b64_json`)."""
    submitted = await _submit_all(services, principal, bodies, idempotency_key)
    data: list[Image] = []
    for generation in submitted:
        done = await _finished(services, principal, generation)
        if response_format == "b64_json":
            for item in done.outputs:
                raw, _ = await services.runtime.storage.get(item.key)
                data.append(Image(b64_json=base64.b64encode(raw).decode()))
        else:
            view = await render(services.runtime, done, to)
            data.extend(Image(url=out.url) for out in view.outputs)
    created = min((g.created_at for g in submitted), default=None)
    return ImagesResponse(created=int(created.timestamp()) if created else int(time.time()),
                          data=data)


async def speech(services: Services, principal: Principal, body: GenerationCreate, *,
                 response_format: str, idempotency_key: str | None) -> tuple[bytes, str]:
    """`POST /v1/audio/speech`: run the speech generation, wait for it, and return its audio
    in `response_format` with the content type to serve it with."""
    (generation,) = await _submit_all(services, principal, [body], idempotency_key)
    done = await _finished(services, principal, generation)
    if not done.outputs:
        raise ProviderFailed("the provider returned no audio", code="no_output")
    raw, content_type = await services.runtime.storage.get(done.outputs[0].key)
    converted = await audio.convert(raw, done.outputs[0].content_type or content_type,
                                    response_format)
    return converted, audio.CONTENT_TYPES[response_format]


async def create_video(services: Services, principal: Principal, body: GenerationCreate, *,
                       idempotency_key: str | None) -> Video:
    """`POST /v1/videos`: submit the video generation; answers at once (queued)."""
    (generation,) = await _submit_all(services, principal, [body], idempotency_key)
    return translate.video(services.runtime, generation)


async def _video(services: Services, principal: Principal, video_id: str) -> Generation:
    """A video generation of the caller; any other id (another tenant's, an image's) is
    `NotFound`."""
    try:
        generation = await generations.get(services, principal, video_id)
    except NotFound:
        generation = None
    if generation is None or generation.type != "video":
        raise NotFound(f"no video {video_id!r}", code="video_not_found", param="video_id")
    return generation


async def get_video(services: Services, principal: Principal, video_id: str) -> Video:
    """`GET /v1/videos/{id}`."""
    return translate.video(services.runtime, await _video(services, principal, video_id))


async def video_content(services: Services, principal: Principal, video_id: str,
                        variant: str) -> tuple[bytes, str]:
    """`GET /v1/videos/{id}/content`: the video's bytes and content type. Only the `video`
    variant exists here (`thumbnail`, `spritesheet`: 400); a video not completed is 404
    `video_not_ready`, as OpenAI answers."""
    if variant != "video":
        raise InvalidRequest(f"variant {variant!r} is not available here; only 'video'",
                             code="unsupported_variant", param="variant")
    generation = await _video(services, principal, video_id)
    if generation.status != SUCCEEDED or not generation.outputs:
        raise NotFound(f"video {video_id} is {translate.video(services.runtime, generation).status}"
                       "; its content is there once it is completed",
                       code="video_not_ready", param="video_id")
    raw, content_type = await services.runtime.storage.get(generation.outputs[0].key)
    return raw, generation.outputs[0].content_type or content_type


async def list_videos(services: Services, principal: Principal, *, after: str | None,
                      limit: int, order: str) -> VideoList:
    """`GET /v1/videos`: the caller's video generations, newest first (`order=desc`, the
    default) or oldest first, after the video `after`."""
    cursor = None
    if after is not None:
        last = await _video(services, principal, after)
        cursor = encode_cursor(last.created_at, last.id)
    rows, next_cursor = await generations.list_page(
        services, principal, media_type="video", status=None, limit=limit, cursor=cursor,
        newest_first=order == "desc")
    data = [translate.video(services.runtime, g) for g in rows]
    return VideoList(data=data, first_id=data[0].id if data else None,
                     last_id=data[-1].id if data else None, has_more=next_cursor is not None)


async def delete_video(services: Services, principal: Principal, video_id: str) -> VideoDeleted:
    """`DELETE /v1/videos/{id}`: a video still queued or running is canceled (its
    reservation voided); a finished one is refused with 409 `video_finished`: generations
    are the tenant's billing record and are never deleted."""
    generation = await _video(services, principal, video_id)
    if generation.status in FINAL_STATES:
        raise Conflict(f"video {video_id} is finished; finished generations are kept "
                       "(they are the billing record)", code="video_finished",
                       param="video_id")
    try:
        await generations.cancel(services, principal, video_id)
    except Conflict as exc:
        raise Conflict(f"video {video_id} finished meanwhile", code="video_finished",
                       param="video_id") from exc
    return VideoDeleted(id=video_id, deleted=True)
