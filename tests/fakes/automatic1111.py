"""A fake AUTOMATIC1111 / Forge webui API (`--api`), as `modules/api/api.py` answers.

- `POST /sdapi/v1/txt2img`, `/sdapi/v1/img2img`: JSON in; `{"images": [<base64 PNG>...],
  "parameters": <the request>, "info": "<JSON string with seed, all_seeds, width, ...>"}`.
  `override_settings.sd_model_checkpoint` switches the loaded checkpoint (put back after the
  job when `override_settings_restore_afterwards`).
- `GET /sdapi/v1/sd-models`, `/sdapi/v1/samplers`, `/sdapi/v1/schedulers` (missing when
  `state.has_schedulers` is False, as before webui 1.9), `/sdapi/v1/options`.
- Errors as the webui gives them: FastAPI's 422 `{"detail": [{"loc", "msg", "type"}]}` for a
  field of the wrong type; the webui's `{"error", "detail", "body", "errors"}` for the rest
  (401 with `--api-auth`, 404 "Sampler not found", 404 "Init image not found", 500 for
  an unknown checkpoint or a bad image); `{"detail": "Not Found"}` for an unknown route.

Tests change the `FakeWebui` state to script the next answers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import random
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, get, post
from PIL import Image

CHECKPOINTS = [
    {"title": "v1-5-pruned-emaonly.safetensors [6ce0161689]", "model_name": "v1-5-pruned-emaonly",
     "hash": "6ce0161689",
     "sha256": "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
     "filename": "/models/Stable-diffusion/v1-5-pruned-emaonly.safetensors", "config": None},
    {"title": "sd_xl_base_1.0.safetensors [31e35c80fc]", "model_name": "sd_xl_base_1.0",
     "hash": "31e35c80fc",
     "sha256": "31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b",
     "filename": "/models/Stable-diffusion/sd_xl_base_1.0.safetensors", "config": None},
]
SAMPLERS = [
    {"name": "DPM++ 2M", "aliases": ["k_dpmpp_2m"], "options": {}},
    {"name": "Euler a", "aliases": ["k_euler_a", "k_euler_ancestral"],
     "options": {"uses_ensd": "True"}},
    {"name": "Euler", "aliases": ["k_euler"], "options": {}},
]
SCHEDULERS = [
    {"name": "automatic", "label": "Automatic", "aliases": None, "default_rho": -1,
     "need_inner_model": False},
    {"name": "karras", "label": "Karras", "aliases": None, "default_rho": 7.0,
     "need_inner_model": False},
]
INTEGER_FIELDS = ("steps", "width", "height", "batch_size", "n_iter", "seed")


@dataclass
class Scripted:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeWebui:
    #: `--api-auth user:password` when set.
    auth: tuple[str, str] | None = None
    checkpoints: list[dict[str, Any]] = field(default_factory=lambda: list(CHECKPOINTS))
    loaded: str = CHECKPOINTS[0]["title"]
    has_schedulers: bool = True
    #: Answers to give, in order, to the next txt2img/img2img calls.
    script: list[Scripted] = field(default_factory=list)
    delay_s: float = 0.0
    #: What each finished job ran on, for the tests.
    jobs: list[dict[str, Any]] = field(default_factory=list)


def webui_error(status: int, detail: str, exception: str = "HTTPException",
                headers: dict[str, str] | None = None) -> Response[Any]:
    """The body `api_middleware.handle_exception` builds."""
    errors = f"{status}: {detail}" if exception == "HTTPException" else detail
    return Response(content={"error": exception, "detail": detail if exception ==
                             "HTTPException" else "", "body": "", "errors": errors},
                    status_code=status, headers=headers or {})


def _png(width: int, height: int, seed: int) -> str:
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode()


def _decode_image(encoded: str) -> Image.Image | None:
    if encoded.startswith("data:image/"):
        encoded = encoded.split(";")[1].split(",")[1]
    try:
        image = Image.open(io.BytesIO(base64.b64decode(encoded)))
        image.load()
    except (binascii.Error, OSError, ValueError):
        return None
    return image


def app(state: FakeWebui) -> Litestar:
    """The fake webui API as an ASGI app over `state`."""

    def refused(request: Request[Any, Any, Any]) -> Response[Any] | None:
        if state.auth is None:
            return None
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return webui_error(401, "Not authenticated", headers={"WWW-Authenticate": "Basic"})
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        if (user, password) != state.auth:
            return webui_error(401, "Incorrect username or password",
                               headers={"WWW-Authenticate": "Basic"})
        return None

    def unprocessable(body: Any) -> Response[Any] | None:
        if not isinstance(body, dict):
            return Response(content={"detail": [{"type": "model_attributes_type",
                                                 "loc": ["body"], "msg": "Input should be a "
                                                 "valid dictionary or object", "input": body}]},
                            status_code=422)
        problems = [{"type": "int_parsing", "loc": ["body", key],
                     "msg": "Input should be a valid integer, unable to parse string as an "
                            "integer", "input": body[key]}
                    for key in INTEGER_FIELDS
                    if key in body and (isinstance(body[key], bool)
                                        or not isinstance(body[key], int))]
        if problems:
            return Response(content={"detail": problems}, status_code=422)
        return None

    async def process(request: Request[Any, Any, Any], mode: str) -> Response[Any]:
        early = refused(request)
        if early is not None:
            return early
        body = await request.json()
        invalid = unprocessable(body)
        if invalid is not None:
            return invalid
        if state.delay_s:
            await asyncio.sleep(state.delay_s)
        if state.script:
            answer = state.script.pop(0)
            return Response(content=answer.body, status_code=answer.status,
                            headers=answer.headers,
                            media_type=answer.headers.get("content-type", "application/json"))
        sampler = body.get("sampler_name") or body.get("sampler_index") or "Euler"
        if sampler not in {s["name"] for s in SAMPLERS}:
            return webui_error(404, "Sampler not found")
        if mode == "img2img":
            init = body.get("init_images")
            if init is None:
                return webui_error(404, "Init image not found")
            images = [_decode_image(x) for x in init]
            if any(image is None for image in images):
                return webui_error(500, "Invalid encoded image")
            if body.get("mask") and _decode_image(body["mask"]) is None:
                return webui_error(500, "Invalid encoded image")
        checkpoint = (body.get("override_settings") or {}).get("sd_model_checkpoint")
        before = state.loaded
        if checkpoint is not None:
            if checkpoint not in {c["title"] for c in state.checkpoints}:
                return webui_error(500, f"model {checkpoint!r} not found", "RuntimeError")
            state.loaded = checkpoint
        width, height = body.get("width", 512), body.get("height", 512)
        seed = body.get("seed", -1)
        seed = random.randrange(2**32) if seed == -1 else seed
        batch = body.get("batch_size", 1)
        seeds = [seed + i for i in range(batch)]
        state.jobs.append({"mode": mode, "checkpoint": state.loaded, "sampler": sampler,
                           "scheduler": body.get("scheduler", "automatic")})
        info = {"prompt": body.get("prompt", ""), "all_prompts": [body.get("prompt", "")] * batch,
                "negative_prompt": body.get("negative_prompt", ""), "seed": seed,
                "all_seeds": seeds, "subseed": -1, "width": width, "height": height,
                "sampler_name": sampler, "cfg_scale": body.get("cfg_scale", 7.0),
                "steps": body.get("steps", 50), "batch_size": batch,
                "sd_model_name": next(c["model_name"] for c in state.checkpoints
                                      if c["title"] == state.loaded),
                "denoising_strength": body.get("denoising_strength")}
        if body.get("override_settings_restore_afterwards", True):
            state.loaded = before
        return Response(content={"images": [_png(width, height, s) for s in seeds],
                                 "parameters": body, "info": json.dumps(info)})

    @post("/sdapi/v1/txt2img", status_code=200)
    async def txt2img(request: Request[Any, Any, Any]) -> Response[Any]:
        return await process(request, "txt2img")

    @post("/sdapi/v1/img2img", status_code=200)
    async def img2img(request: Request[Any, Any, Any]) -> Response[Any]:
        return await process(request, "img2img")

    @get("/sdapi/v1/sd-models")
    async def sd_models(request: Request[Any, Any, Any]) -> Response[Any]:
        return refused(request) or Response(content=state.checkpoints)

    @get("/sdapi/v1/samplers")
    async def samplers(request: Request[Any, Any, Any]) -> Response[Any]:
        return refused(request) or Response(content=SAMPLERS)

    @get("/sdapi/v1/schedulers")
    async def schedulers(request: Request[Any, Any, Any]) -> Response[Any]:
        if not state.has_schedulers:
            return Response(content={"detail": "Not Found"}, status_code=404)
        return refused(request) or Response(content=SCHEDULERS)

    @get("/sdapi/v1/options")
    async def options(request: Request[Any, Any, Any]) -> Response[Any]:
        return refused(request) or Response(content={"sd_model_checkpoint": state.loaded,
                                                     "samples_format": "png"})

    return Litestar([txt2img, img2img, sd_models, samplers, schedulers, options], debug=False)
