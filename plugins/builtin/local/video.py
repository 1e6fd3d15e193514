"""A local video engine: ffmpeg encodes an H.264 MP4 on this machine, with no key and no
network.

It is not a video model. `text_to_video` is a title card (drawn with Pillow, so ffmpeg needs
no fonts) under a gentle zoom; `image_to_video` is a pan-and-zoom over the given image. ffmpeg
only ever reads a PNG that Pillow wrote, never the caller's bytes.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final

import httpx
import msgspec
from PIL import Image, ImageDraw, ImageOps

from plugins import media, programs
from plugins.builtin.local import _media
from plugins.errors import InvalidParams
from plugins.hookspecs import hookimpl
from plugins.media import MediaInput
from plugins.provider import (
    Credentials,
    Health,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
)
from plugins.vocabulary import ParamSpec, common, declare

BINARY = "ffmpeg"
PACKAGE = "ffmpeg"
FPS = 24
DURATION_S = (1, 20)
DEFAULT_DURATION_S = 5
DEFAULT_ASPECT_RATIO = "16:9"
DEFAULT_RESOLUTION = "720p"
#: (resolution, aspect ratio) → (width, height); every side even, as yuv420p needs.
SIZES: dict[tuple[str, str], tuple[int, int]] = {
    ("480p", "16:9"): (854, 480), ("480p", "9:16"): (480, 854), ("480p", "1:1"): (480, 480),
    ("720p", "16:9"): (1280, 720), ("720p", "9:16"): (720, 1280), ("720p", "1:1"): (720, 720),
}
RESOLUTIONS = ("480p", "720p")
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
#: The still is drawn this many times larger than the video, so the zoom stays smooth.
OVERSAMPLE = 2
TIMEOUT_S = 180
# The compute price of this local engine (not a vendor's bill): USD micros per started second
# of video, by resolution.
PRICES: Final[Mapping[str, int]] = {"usd_micros_per_second_480p": 2000,
                                     "usd_micros_per_second_720p": 4000}


class Options(msgspec.Struct, frozen=True, kw_only=True):
    operation: str
    frames: int
    width: int
    height: int
    resolution: str
    image: MediaInput | None
    seed: int

    @property
    def duration_s(self) -> float:
        return self.frames / FPS


def options(request: ProviderRequest) -> Options:
    """The request's checked options; raises `InvalidParams` naming the bad parameter."""
    params = request.params
    duration = _media.number_param(params, "duration_s", default=DEFAULT_DURATION_S,
                                   low=DURATION_S[0], high=DURATION_S[1])
    aspect = params.get("aspect_ratio", DEFAULT_ASPECT_RATIO)
    if aspect not in ASPECT_RATIOS:
        raise InvalidParams(f"aspect_ratio must be one of {', '.join(ASPECT_RATIOS)}",
                            param="params.aspect_ratio")
    resolution = params.get("resolution", DEFAULT_RESOLUTION)
    if resolution not in RESOLUTIONS:
        raise InvalidParams(f"resolution must be one of {', '.join(RESOLUTIONS)}",
                            param="params.resolution")
    image = request.inputs.get("image")
    if request.operation == "image_to_video":
        if image is None:
            raise InvalidParams("image_to_video needs params.image (a data: URL) or "
                                "params.image_url", param="params.image")
        media.image_size(image, "params.image")
    elif image is not None:
        raise InvalidParams("params.image is only used by image_to_video",
                            param="params.image")
    width, height = SIZES[resolution, aspect]
    return Options(operation=request.operation, frames=max(1, round(duration * FPS)),
                   width=width, height=height, resolution=resolution, image=image,
                   seed=_media.seed_of(params, request.prompt))


def title_card(prompt: str, width: int, height: int, seed: int) -> bytes:
    """The still of a text_to_video: the prompt, centred, on a seeded gradient (PNG)."""
    rng = random.Random(seed)
    top = tuple(rng.randrange(20, 120) for _ in range(3))
    bottom = tuple(rng.randrange(0, 60) for _ in range(3))
    ramp = Image.linear_gradient("L").resize((width, height))
    card = Image.merge("RGB", [
        ramp.point(lambda v, i=i: top[i] + (bottom[i] - top[i]) * v // 255) for i in range(3)])
    draw = ImageDraw.Draw(card)
    margin = width // 10
    fitted = _media.fit_text(prompt.strip() or " ", max_width=width - 2 * margin,
                             max_height=height * 6 // 10,
                             start_size=max(16, min(width, height) // 9),
                             min_size=max(12, height // 60), line_spacing=1.2)
    block = len(fitted.lines) * fitted.line_height
    y = (height - block) // 2
    accent = tuple(rng.randrange(150, 256) for _ in range(3))
    bar_w = width // 8
    draw.rectangle(((width - bar_w) // 2, y - fitted.line_height // 2 - max(2, height // 200),
                    (width + bar_w) // 2, y - fitted.line_height // 2),
                   fill=(accent[0], accent[1], accent[2]))
    _media.draw_text(draw, fitted, x=margin, y=y, width=width - 2 * margin,
                     fill=(255, 255, 255), align="center")
    return _media.to_png(card)


def pan_still(image: MediaInput, width: int, height: int) -> bytes:
    """The still of an image_to_video: the image cropped to cover the frame (PNG)."""
    picture = media.load_image(image, "params.image")
    return _media.to_png(ImageOps.fit(picture, (width, height)))


def zoompan_filter(opts: Options) -> str:
    """The ffmpeg filter: a gentle centred zoom (title card) or a left-to-right pan while
    zooming in (image)."""
    last = max(1, opts.frames - 1)
    if opts.operation == "image_to_video":
        zoom, x, y = f"1+0.2*on/{last}", f"(iw-iw/zoom)*on/{last}", "(ih-ih/zoom)/2"
    else:
        zoom, x, y = f"1+0.06*on/{last}", "iw/2-(iw/zoom/2)", "ih/2-(ih/zoom/2)"
    return (f"zoompan=z='{zoom}':x='{x}':y='{y}':d={opts.frames}"
            f":s={opts.width}x{opts.height}:fps={FPS},format=yuv420p")


def _write_still(opts: Options, prompt: str, path: Path) -> None:
    width, height = opts.width * OVERSAMPLE, opts.height * OVERSAMPLE
    if opts.image is not None:
        path.write_bytes(pan_still(opts.image, width, height))
    else:
        path.write_bytes(title_card(prompt, width, height, opts.seed))


class LocalVideo(Provider):
    name = "local-video"
    description = ("Local engine (ffmpeg): H.264 MP4 of a title card with a gentle zoom, or a "
                   "pan-and-zoom over an image, made offline; not a video model.")
    media_types = frozenset({"video"})
    operations = frozenset({"text_to_video", "image_to_video"})
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        **common("seed", "image"),
        "duration_s": declare("duration_s", minimum=DURATION_S[0], maximum=DURATION_S[1],
                              default=DEFAULT_DURATION_S, description="Seconds of video"),
        "aspect_ratio": declare("aspect_ratio", choices=ASPECT_RATIOS,
                                default=DEFAULT_ASPECT_RATIO, description="The frame's shape"),
        "resolution": declare("resolution", choices=RESOLUTIONS, default=DEFAULT_RESOLUTION,
                              description="The frame's height in pixels"),
    }
    local = True
    prices = PRICES
    needs_api_key = False


    def estimate_cost(self, request: ProviderRequest) -> int:
        opts = options(request)
        seconds = -(-opts.frames // FPS)
        return seconds * self.prices[f"usd_micros_per_second_{opts.resolution}"]

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        opts = options(request)
        binary = programs.ffmpeg()
        if binary is None:
            raise _media.engine_unavailable(BINARY, PACKAGE)
        with tempfile.TemporaryDirectory(prefix="mediahub-video-") as tmp:
            still, out = Path(tmp) / "still.png", Path(tmp) / "video.mp4"
            await asyncio.to_thread(_write_still, opts, request.prompt, still)
            await _media.run(
                [binary, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                 "-i", str(still), "-vf", zoompan_filter(opts), "-frames:v", str(opts.frames),
                 "-r", str(FPS), "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
                 "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-an", str(out)],
                timeout_s=TIMEOUT_S)
            data = await asyncio.to_thread(out.read_bytes)
        return ProviderResult(
            outputs=[ProviderOutput(data=data, content_type="video/mp4", width=opts.width,
                                    height=opts.height, duration_s=round(opts.duration_s, 3))],
            cost_usd_micros=self.estimate_cost(request),
        )

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        if programs.ffmpeg() is None:
            return _media.missing_health(BINARY, PACKAGE)
        return Health(ok=True)

    def pricing(self) -> dict[str, Any]:
        return {**self.prices, "local": True, "fps": FPS,
                "sizes": {f"{res} {aspect}": f"{w}x{h}"
                          for (res, aspect), (w, h) in SIZES.items()}}


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(LocalVideo())
