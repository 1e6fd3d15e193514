"""The OpenAI-compatible API (`/v1/images/*`, `/v1/audio/speech`, `/v1/videos`,
`/v1/models`): OpenAI's shapes and error bodies over ordinary generations. Thin: each route
translates, calls one service function, renders."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, HeaderParameter
from litestar.response import Stream

from gateway.core.auth import Principal, requires
from gateway.core.deps import page_limit
from gateway.generations.services import Services, ServicesDep
from gateway.generations.views import Audience, audience
from gateway.openai import forms, service, translate
from gateway.openai.errors import add_request_id, handle_openai_exception
from gateway.openai.schemas import (
    ImageGenerationRequest,
    ImageOptions,
    ImagesResponse,
    ModelList,
    SpeechRequest,
    Video,
    VideoCreateRequest,
    VideoDeleted,
    VideoList,
)
from tenants.models import Tenant

AnyRequest = Request[Any, Any, Any]
#: At most 250 characters: a call making n images keys the others `<key>:<index>`.
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", min_length=1, max_length=250, required=False),
]
#: Audio is sent in pieces of this size.
CHUNK_BYTES = 64 * 1024


async def _tenant(services: Services, principal: Principal) -> Tenant:
    return await services.runtime.tenant_views.tenant(principal.tenant)


async def _audience(services: Services, principal: Principal, request: AnyRequest) -> Audience:
    return await audience(services.runtime, principal, request.headers.get("host"))


class OpenAIController(Controller):
    """Shared by the OpenAI-compatible controllers: OpenAI's error shape, `x-request-id`."""

    exception_handlers = {Exception: handle_openai_exception}
    # Litestar unbinds it (a function set on a class would be a method).
    after_request = add_request_id  # type: ignore[assignment]
    tags = ["openai"]


class ImagesController(OpenAIController):
    path = "/v1/images"

    @post("/generations", status_code=200, summary="Create images (OpenAI-compatible)",
          guards=[requires("generate")])
    async def generations(self, request: AnyRequest, principal: Principal,
                          services: ServicesDep, data: ImageGenerationRequest,
                          idempotency_key: IdempotencyKey = None) -> ImagesResponse:
        """OpenAI's `images.generate`: `n` image generations (each billed and listed like a
        native one), waited for; `response_format` `url` (a signed link, the default) or
        `b64_json`. `model` is a `provider/model` id of `GET /v1/models` or a bare OpenAI
        name. Errors in OpenAI's shape (docs/openai.md)."""
        tenant = await _tenant(services, principal)
        bodies = translate.image_bodies(services.runtime, tenant, data, data.prompt)
        return await service.images(services, principal, bodies,
                                    idempotency_key=idempotency_key,
                                    response_format=data.response_format,
                                    to=await _audience(services, principal, request))

    @post("/edits", status_code=200, summary="Edit an image (OpenAI-compatible)",
          guards=[requires("generate")])
    async def edits(self, request: AnyRequest, principal: Principal, services: ServicesDep,
                    data: Annotated[forms.ImageEditForm,
                                    Body(media_type=RequestEncodingType.MULTI_PART)],
                    idempotency_key: IdempotencyKey = None) -> ImagesResponse:
        """OpenAI's `images.edit` (multipart): `image`, `prompt`, optional `mask` (its
        transparent pixels mark what to redraw); an `image_edit` generation per image."""
        options = forms.fields(data, ImageGenerationRequest)
        inputs = {"image": await forms.file_url(data.image, "image")}
        mask = await forms.file_url(data.mask, "mask")
        if mask is not None:
            inputs["mask"] = mask
        bodies = translate.image_bodies(services.runtime, await _tenant(services, principal),
                                        options, options.prompt, operation="image_edit",
                                        inputs={k: v for k, v in inputs.items() if v})
        return await service.images(services, principal, bodies,
                                    idempotency_key=idempotency_key,
                                    response_format=options.response_format,
                                    to=await _audience(services, principal, request))

    @post("/variations", status_code=200, summary="Vary an image (OpenAI-compatible)",
          guards=[requires("generate")])
    async def variations(self, request: AnyRequest, principal: Principal,
                         services: ServicesDep,
                         data: Annotated[forms.ImageVariationForm,
                                         Body(media_type=RequestEncodingType.MULTI_PART)],
                         idempotency_key: IdempotencyKey = None) -> ImagesResponse:
        """OpenAI's `images.create_variation` (multipart `image`): an `image_variation`
        generation per image asked for."""
        options = forms.fields(data, ImageOptions)
        image = await forms.file_url(data.image, "image")
        bodies = translate.image_bodies(services.runtime, await _tenant(services, principal),
                                        options, "", operation="image_variation",
                                        inputs={"image": image} if image else {})
        return await service.images(services, principal, bodies,
                                    idempotency_key=idempotency_key,
                                    response_format=options.response_format,
                                    to=await _audience(services, principal, request))


class SpeechController(OpenAIController):
    path = "/v1/audio"

    @post("/speech", status_code=200, summary="Speak text (OpenAI-compatible)",
          guards=[requires("generate")],
          response_description="The audio, in `response_format`")
    async def speech(self, principal: Principal, services: ServicesDep, data: SpeechRequest,
                     idempotency_key: IdempotencyKey = None) -> Stream:
        """OpenAI's `audio.speech.create`: a speech generation, waited for, its audio
        streamed in `response_format` (converted with ffmpeg when the provider made another
        format). OpenAI's preset voices go to OpenAI's models; for another provider they
        mean its default voice, and any other `voice` is that provider's own voice id."""
        body = translate.speech_body(services.runtime, await _tenant(services, principal), data)
        audio, content_type = await service.speech(
            services, principal, body, response_format=data.response_format,
            idempotency_key=idempotency_key)
        chunks = [audio[i:i + CHUNK_BYTES] for i in range(0, len(audio), CHUNK_BYTES)]
        return Stream(chunks, media_type=content_type,
                      headers={"Content-Length": str(len(audio))})


class ModelsController(OpenAIController):
    path = "/v1/models"

    @get("/", summary="Models the caller may use (OpenAI-compatible)", guards=[requires()])
    async def list_(self, principal: Principal, services: ServicesDep) -> ModelList:
        """Every `provider/model` the caller's tenant may use, then OpenAI's bare names
        (`dall-e-3`, `tts-1`, `sora-2`, ...) it can be served: by OpenAI when the tenant
        may use it (`owned_by: openai`), else by its routing (`owned_by: mediahub`)."""
        return await service.models(services, principal)


class VideosController(OpenAIController):
    path = "/v1/videos"

    @post("/", status_code=200, summary="Create a video (OpenAI-compatible)",
          guards=[requires("generate")])
    async def create(self, principal: Principal, services: ServicesDep,
                     data: Annotated[forms.VideoForm,
                                     Body(media_type=RequestEncodingType.MULTI_PART)],
                     idempotency_key: IdempotencyKey = None) -> Video:
        """OpenAI's `videos.create` (multipart `prompt`, `model`, `seconds`, `size`,
        `input_reference`): a video generation with any provider, answered queued; its id is
        the generation's (`gen_…`). `seconds` is `duration_s`, `size` an aspect ratio and
        resolution, `input_reference` makes it an image-to-video."""
        fields = forms.fields(data, VideoCreateRequest)
        body = translate.video_body(
            services.runtime, await _tenant(services, principal), prompt=fields.prompt,
            model=fields.model, seconds=fields.seconds, size=fields.size,
            input_reference=await forms.file_url(data.input_reference, "input_reference"))
        return await service.create_video(services, principal, body,
                                          idempotency_key=idempotency_key)

    @get("/", summary="List videos (OpenAI-compatible)", guards=[requires("read")])
    async def list_(self, principal: Principal, services: ServicesDep,
                    after: FromQuery[str | None] = None, limit: FromQuery[int | None] = None,
                    order: FromQuery[Literal["asc", "desc"]] = "desc") -> VideoList:
        """The caller's video generations, newest first (`order=asc`: oldest first);
        `after` is the last id of the previous page."""
        return await service.list_videos(services, principal, after=after,
                                         limit=page_limit(limit), order=order)

    @get("/{video_id:str}", summary="Read a video (OpenAI-compatible)",
         guards=[requires("read")])
    async def retrieve(self, principal: Principal, services: ServicesDep,
                       video_id: FromPath[str]) -> Video:
        """One video of the caller (`status`: queued, in_progress, completed, failed)."""
        return await service.get_video(services, principal, video_id)

    @get("/{video_id:str}/content", summary="Download a video (OpenAI-compatible)",
         guards=[requires("read")], response_description="The video's bytes")
    async def content(self, principal: Principal, services: ServicesDep,
                      video_id: FromPath[str],
                      variant: FromQuery[str] = "video") -> Response[bytes]:
        """The completed video's bytes (`variant=video` only)."""
        data, content_type = await service.video_content(services, principal, video_id,
                                                         variant)
        return Response(data, media_type=content_type)

    @delete("/{video_id:str}", status_code=200, summary="Delete a video (OpenAI-compatible)",
            guards=[requires("generate")])
    async def delete_(self, principal: Principal, services: ServicesDep,
                      video_id: FromPath[str]) -> VideoDeleted:
        """Cancel a queued or running video (its reservation voided); a finished one is 409
        `video_finished` (generations are the billing record)."""
        return await service.delete_video(services, principal, video_id)
