"""Previews made beside a generation's outputs when the worker stores them (contract C2):
images a WebP thumbnail (long side at most `THUMBNAIL_PX`), video a JPEG poster frame (at
`POSTER_AT_S`, or the first frame of a shorter clip, scaled alike), audio `PEAK_COUNT` peak
amplitudes 0..1 for a waveform.

`derive` is called by the worker for each output before the generation ends; it never raises:
a preview that cannot be made (a corrupt file, no ffmpeg) is logged and left out, and the
generation succeeds without it. The work (Pillow, ffmpeg) runs in a thread, off the event loop.
Thumbnails are stored under the output's own key prefix (`<tenant>/<generation>/<n>.thumb.webp`),
so whatever removes a generation's media by prefix removes them too.
"""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
import tempfile
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PIL import Image

from gateway.core.runtime import Runtime
from plugins import programs

log = logging.getLogger(__name__)

THUMBNAIL_PX: Final = 512
POSTER_AT_S: Final = 0.5
PEAK_COUNT: Final = 256
#: Sample rate audio is decoded at for its peaks: plenty for 256 buckets, and cheap.
PEAK_RATE_HZ: Final = 8000
#: Longest one ffmpeg run may take.
FFMPEG_TIMEOUT_S: Final = 60
#: Largest image decoded for a thumbnail, pixels (Pillow's bomb guard is larger).
MAX_PIXELS: Final = 64_000_000


@dataclass(frozen=True, slots=True)
class Derived:
    """What was made for one output: a stored preview's key (None: none) and/or peaks."""

    thumbnail_key: str | None = None
    peaks: list[float] | None = None


def _thumbnail(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as opened:
        if opened.width * opened.height > MAX_PIXELS:
            raise ValueError("image too large for a thumbnail")
        image: Image.Image = opened
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        out = io.BytesIO()
        # method=1, not Pillow's default 4: a third of the encoder's time for files about a
        # fifth larger (a 256 px image: 4.5 ms against 14 ms), and every image pays it on
        # the worker before its generation ends.
        image.save(out, format="WEBP", quality=80, method=1)
        return out.getvalue()


def _ffmpeg() -> str:
    binary = programs.ffmpeg()
    if binary is None:
        raise FileNotFoundError("ffmpeg is not installed")
    return binary


def grab_frame(source: Path, target: Path, *, at_s: float | None = POSTER_AT_S,
               scale: str | None = None) -> bool:
    """Write one frame of the video at `source` to `target` (the format follows its
    extension), at `at_s` seconds or, when the clip has no frame there (or `at_s` is None),
    its first frame; `scale` is an ffmpeg scale filter. Called for posters and by brand
    compliance for a frame to assess; returns False when the video has no frame at all."""
    binary = _ffmpeg()
    # A clip shorter than `at_s` has no frame there, so then its first frame.
    seeks = ([["-ss", str(at_s)]] if at_s is not None else []) + [[]]
    for seek in seeks:
        # Fixed arguments, and an absolute path so no file name can read as an option.
        subprocess.run([binary, "-nostdin", "-v", "error", "-y", *seek,  # noqa: S603
                        "-i", str(source.absolute()), "-frames:v", "1",
                        *(["-vf", scale] if scale else []),
                        *(["-q:v", "4"] if target.suffix in (".jpg", ".jpeg") else []),
                        str(target)],
                       check=True, capture_output=True, timeout=FFMPEG_TIMEOUT_S)
        if target.exists() and target.stat().st_size:
            return True
    return False


def _poster(data: bytes) -> bytes:
    scale = (f"scale='min({THUMBNAIL_PX},iw)':'min({THUMBNAIL_PX},ih)'"
             ":force_original_aspect_ratio=decrease")
    with tempfile.TemporaryDirectory(prefix="mh-poster-") as tmp:
        source = Path(tmp) / "in"
        source.write_bytes(data)
        target = Path(tmp) / "poster.jpg"
        # At half a second: past a fade-in.
        if grab_frame(source, target, at_s=POSTER_AT_S, scale=scale):
            return target.read_bytes()
    raise ValueError("the video has no frame")


def peaks_of(samples: array[float], count: int = PEAK_COUNT) -> list[float]:
    """`count` peaks of mono samples: the largest magnitude in each of `count` equal
    buckets, divided by the loudest (all 0 for silence), rounded to 4 places."""
    if not samples:
        return [0.0] * count
    size = len(samples)
    raw: list[float] = []
    for bucket in range(count):
        start, end = bucket * size // count, max((bucket + 1) * size // count,
                                                 bucket * size // count + 1)
        chunk = samples[start:min(end, size)]
        raw.append(max((abs(x) for x in chunk), default=0.0))
    loudest = max(raw)
    if loudest <= 0:
        return [0.0] * count
    return [round(min(value / loudest, 1.0), 4) for value in raw]


def _peaks(data: bytes) -> list[float]:
    decoded = subprocess.run(  # noqa: S603  (fixed arguments; the audio goes in on stdin)
        [_ffmpeg(), "-nostdin", "-v", "error", "-i", "pipe:0", "-ac", "1",
         "-ar", str(PEAK_RATE_HZ), "-f", "f32le", "pipe:1"],
        input=data, check=True, capture_output=True, timeout=FFMPEG_TIMEOUT_S).stdout
    samples = array("f")
    samples.frombytes(decoded[:len(decoded) - len(decoded) % 4])
    return peaks_of(samples)


async def derive(runtime: Runtime, key: str, content_type: str, data: bytes) -> Derived:
    """The previews of the output stored at `key`, the thumbnail stored beside it. Called by
    the worker as it stores each output; never raises (a failure leaves it without)."""
    try:
        if content_type.startswith("image/") and content_type != "image/svg+xml":
            thumb_key, thumb = f"{key.rsplit('.', 1)[0]}.thumb.webp", "image/webp"
            preview = await asyncio.to_thread(_thumbnail, data)
        elif content_type.startswith("video/"):
            thumb_key, thumb = f"{key.rsplit('.', 1)[0]}.poster.jpg", "image/jpeg"
            preview = await asyncio.to_thread(_poster, data)
        elif content_type.startswith("audio/"):
            return Derived(peaks=await asyncio.to_thread(_peaks, data))
        else:
            return Derived()
        await runtime.storage.put(thumb_key, preview, thumb)
        return Derived(thumbnail_key=thumb_key)
    except Exception:
        log.warning("could not make a preview of an output", exc_info=True,
                    extra={"key": key, "content_type": content_type})
        return Derived()
