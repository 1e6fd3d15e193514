"""A fake of the part of Stability AI's REST API the `stability` provider calls.

It answers as the real API does (plugins/README.md, "Stability AI"):

- `POST /v2beta/stable-image/generate/{core|ultra|sd3}`: multipart/form-data only; the image
  bytes with `content-type: image/png|jpeg|webp`, `finish-reason` and `seed` headers when
  `Accept: image/*`, `{"image": <base64>, "finish_reason", "seed"}` for `application/json`.
- `POST /v2beta/3d/stable-fast-3d`: a multipart `image` file → a binary glTF
  (`model/gltf-binary`).
- `GET /v1/user/balance` → `{"credits": ...}`.
- Errors as `{"id", "name", "errors": [...]}`: 401 for a missing or wrong bearer key, 400 for
  a bad field, 403 `content_moderation` for a prompt containing `state.flagged_word`, 402 when
  `state.credits` cannot pay, and whatever a test queues in `state.script`.

Tests change the `FakeStability` state to script the next answers.
"""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any

from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import UploadFile
from PIL import Image

from plugins.builtin.local import model_3d as local_3d
from tests.fakes import Seen

API_KEY = "sk-test-stability"
ENGINES = {"core": 3.0, "ultra": 8.0}
SD3_MODELS = {"sd3.5-large": 6.5, "sd3.5-large-turbo": 4.0, "sd3.5-medium": 3.5}
ASPECT_RATIOS = {"16:9": (16, 9), "1:1": (1, 1), "21:9": (21, 9), "2:3": (2, 3),
                 "3:2": (3, 2), "4:5": (4, 5), "5:4": (5, 4), "9:16": (9, 16), "9:21": (9, 21)}
FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"),
           "webp": ("WEBP", "image/webp")}
FAST_3D_CREDITS = 10.0


@dataclass
class Scripted:
    """One answer a test queues: status, JSON body (or raw bytes) and headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeStability:
    api_key: str = API_KEY
    credits: float = 1000.0
    #: A prompt containing this word is refused as the real content filter does (403).
    flagged_word: str = "forbidden"
    #: Answer the next generation with `finish-reason: CONTENT_FILTERED` (a blurred image).
    filter_next: bool = False
    #: Answers to give, in order, before anything else (each consumed once).
    script: list[Scripted] = field(default_factory=list)
    #: Seconds to wait before answering a generation (to exercise client timeouts).
    delay_s: float = 0.0
    generated: int = 0


@dataclass(frozen=True)
class Part:
    """One part of a multipart/form-data body a client sent."""

    value: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.value.decode()


def multipart(seen: Seen) -> dict[str, Part]:
    """The parts of a multipart/form-data request the fake received, by field name."""
    content_type = seen.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary="), content_type
    message = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + seen.body)
    parts: dict[str, Part] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str)
        assert isinstance(payload, bytes)
        filename = part.get_filename()
        parts[name] = Part(value=payload, filename=filename,
                           content_type=part.get_content_type() if filename else None)
    return parts


def error(status: int, name: str, *errors: str,
          headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(content={"id": secrets.token_hex(16), "name": name, "errors": list(errors)},
                    status_code=status, headers=headers or {})


def _picture(ratio: tuple[int, int], image_format: str, seed: int) -> bytes:
    # Small but of the right aspect ratio; the real API answers about one megapixel.
    w, h = ratio
    scale = 64 // max(w, h) or 1
    image = Image.new("RGB", (w * scale * 4, h * scale * 4), (seed % 256, 90, 160))
    out = io.BytesIO()
    image.save(out, format=image_format)
    return out.getvalue()


def app(state: FakeStability) -> Litestar:
    """The fake API as an ASGI app over `state`."""

    def refused(request: Request[Any, Any, Any]) -> Response[Any] | None:
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {state.api_key}":
            return error(401, "unauthorized", "authorization: invalid or missing API key")
        if state.script:
            answer = state.script.pop(0)
            return Response(content=answer.body, status_code=answer.status,
                            headers=answer.headers,
                            media_type=answer.headers.get("content-type", "application/json"))
        return None

    async def form(request: Request[Any, Any, Any]) -> dict[str, Any] | Response[Any]:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return error(400, "bad_request",
                         "content-type: must be multipart/form-data")
        data = await request.form()
        return {key: data.get(key) for key in data}

    def charge(cost: float) -> Response[Any] | None:
        if state.credits < cost:
            return error(402, "payment_required",
                         "You lack sufficient credits to make this request. Please purchase "
                         "more credits at https://platform.stability.ai/account/credits")
        state.credits -= cost
        return None

    @post("/v2beta/stable-image/generate/{engine:str}", status_code=200)
    async def generate(request: Request[Any, Any, Any], engine: str) -> Response[Any]:
        early = refused(request)
        if early is not None:
            return early
        if state.delay_s:
            await asyncio.sleep(state.delay_s)
        fields = await form(request)
        if isinstance(fields, Response):
            return fields
        prompt = fields.get("prompt")
        if not prompt:
            return error(400, "bad_request", "prompt: cannot be empty")
        if engine == "sd3":
            model = fields.get("model", "sd3.5-large")
            if model not in SD3_MODELS:
                return error(400, "bad_request", f"model: must be one of {list(SD3_MODELS)}")
            cost = SD3_MODELS[model]
        elif engine in ENGINES:
            cost = ENGINES[engine]
        else:
            return Response(content={"detail": "Not Found"}, status_code=404)
        ratio = fields.get("aspect_ratio", "1:1")
        output_format = fields.get("output_format", "png")
        if ratio not in ASPECT_RATIOS:
            return error(400, "bad_request", "aspect_ratio: must be one of "
                         + ", ".join(ASPECT_RATIOS))
        if output_format not in FORMATS:
            return error(400, "bad_request", "output_format: must be one of png, jpeg, webp")
        if state.flagged_word in prompt.lower():
            return error(403, "content_moderation",
                         "Your request was flagged by our content moderation system, as a "
                         "result your request was denied and you were not charged.")
        seed = int(fields.get("seed") or 0) or secrets.randbelow(4_294_967_294) + 1
        filtered = state.filter_next
        state.filter_next = False
        if not filtered:
            unpaid = charge(cost)
            if unpaid is not None:
                return unpaid
        state.generated += 1
        pil_format, media_type = FORMATS[output_format]
        picture = _picture(ASPECT_RATIOS[ratio], pil_format, seed)
        reason = "CONTENT_FILTERED" if filtered else "SUCCESS"
        if request.headers.get("accept", "") == "application/json":
            return Response(content={"image": base64.b64encode(picture).decode(),
                                     "finish_reason": reason, "seed": seed},
                            headers={"content-type": f"application/json; type={media_type}"})
        return Response(content=picture, media_type=media_type,
                        headers={"finish-reason": reason, "seed": str(seed),
                                 "x-request-id": secrets.token_hex(16)})

    @post("/v2beta/3d/stable-fast-3d", status_code=200)
    async def fast_3d(request: Request[Any, Any, Any]) -> Response[Any]:
        early = refused(request)
        if early is not None:
            return early
        fields = await form(request)
        if isinstance(fields, Response):
            return fields
        upload = fields.get("image")
        if not isinstance(upload, UploadFile):
            return error(400, "bad_request", "image: is required")
        try:
            with Image.open(io.BytesIO(await upload.read())) as image:
                image.load()
        except OSError:
            return error(400, "bad_request", "image: is not a valid image")
        texture = fields.get("texture_resolution", "1024")
        if texture not in ("512", "1024", "2048"):
            return error(400, "bad_request", "texture_resolution: must be 512, 1024 or 2048")
        unpaid = charge(FAST_3D_CREDITS)
        if unpaid is not None:
            return unpaid
        state.generated += 1
        glb = local_3d.to_glb(local_3d.box((1.0, 1.0, 1.0)), color=(200, 120, 40),
                              name="stable-fast-3d")
        return Response(content=glb, media_type="model/gltf-binary")

    @get("/v1/user/balance")
    async def balance(request: Request[Any, Any, Any]) -> Response[Any]:
        auth = request.headers.get("authorization", "")
        if auth != f"Bearer {state.api_key}":
            return error(401, "unauthorized", "authorization: invalid or missing API key")
        return Response(content={"credits": state.credits})

    return Litestar([generate, fast_3d, balance], debug=False)
