"""Small helpers shared by the local engines: running an external binary (found by
`plugins.programs`) off the event loop, turning a missing one into a clear error, checking
colour and number params, and fitting text into a box with Pillow's bundled font. (Input
images: `plugins.media`.)

Nothing here reads settings or touches the gateway; the engines call these functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import io
import re
from collections.abc import Callable
from typing import Any

import msgspec
from PIL import Image, ImageDraw, ImageFont

from plugins.errors import InvalidParams, ProviderError
from plugins.provider import Health

_STDERR_TAIL = 500


def missing_detail(binary: str, package: str) -> str:
    return f"{binary} not found: apt-get install {package}"


def missing_health(binary: str, package: str) -> Health:
    """What `health()` answers when the engine's binary is not installed."""
    return Health(ok=False, detail=missing_detail(binary, package))


def engine_unavailable(binary: str, package: str) -> ProviderError:
    """The error `generate` raises when the engine's binary is not installed."""
    return ProviderError(missing_detail(binary, package), code="engine_unavailable",
                         retryable=True)


async def run(argv: list[str], *, timeout_s: float, stdin: bytes | None = None) -> bytes:
    """Run `argv` (no shell) and return its stdout; the event loop is never blocked.

    A run past `timeout_s` is killed and raises `ProviderError(code="engine_timeout")`; a
    non-zero exit raises `ProviderError(code="engine_failed")` with the end of its stderr.
    Both are retryable: another provider may well succeed where this machine did not.
    """
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except FileNotFoundError as exc:  # removed between `which` and now
        raise ProviderError(f"{argv[0]} not found", code="engine_unavailable",
                            retryable=True) from exc
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout=timeout_s)
    except TimeoutError as exc:
        await _kill(process)
        raise ProviderError(f"{_program(argv)} did not finish within {timeout_s:g} s",
                            code="engine_timeout", retryable=True) from exc
    except asyncio.CancelledError:
        await _kill(process)
        raise
    if process.returncode != 0:
        tail = stderr.decode(errors="replace").strip()[-_STDERR_TAIL:]
        raise ProviderError(f"{_program(argv)} exited with {process.returncode}: {tail}",
                            code="engine_failed", retryable=True)
    return stdout


async def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()


def _program(argv: list[str]) -> str:
    return argv[0].rsplit("/", 1)[-1]


def to_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def parse_hex_color(value: Any, param: str) -> tuple[int, int, int]:
    """`#rgb` or `#rrggbb` → (r, g, b); raises `InvalidParams` naming `param` otherwise."""
    if isinstance(value, str) and re.fullmatch(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})", value):
        digits = value[1:]
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)
    raise InvalidParams(f"{param} must be a colour like '#1a2b3c'", param=param)


def number_param(params: dict[str, Any], key: str, *, default: float, low: float,
                 high: float, integer: bool = False) -> float:
    """`params[key]` as a number within [low, high] (`default` when absent)."""
    value = params.get(key, default)
    param = f"params.{key}"
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            integer and not isinstance(value, int)):
        raise InvalidParams(f"{key} must be {kind} between {low:g} and {high:g}", param=param)
    if not low <= value <= high:
        raise InvalidParams(f"{key} must be {kind} between {low:g} and {high:g}", param=param)
    return value


def seed_of(params: dict[str, Any], prompt: str) -> int:
    """`params.seed` when it is an integer, else a number derived from the prompt."""
    seed = params.get("seed")
    if seed is None:
        return int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidParams("seed must be an integer", param="params.seed")
    return seed


@functools.cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at `size` pixels (no system fonts needed)."""
    return ImageFont.load_default(size=size)


def wrap_text(text: str, face: ImageFont.FreeTypeFont | ImageFont.ImageFont,
              max_width: int) -> list[str]:
    """Greedy word wrap to `max_width` pixels; over-long words are broken by character."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}" if line else word
            if face.getlength(candidate) <= max_width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = ""
            for char in word:
                if line and face.getlength(line + char) > max_width:
                    lines.append(line)
                    line = ""
                line += char
        lines.append(line)
    return lines


class FittedText(msgspec.Struct, frozen=True):
    lines: list[str]
    size: int
    line_height: int


Face = Callable[[int], ImageFont.FreeTypeFont | ImageFont.ImageFont]


def fit_text(text: str, *, max_width: int, max_height: int, start_size: int,
             min_size: int = 12, line_spacing: float = 1.25, face_at: Face = font) -> FittedText:
    """The largest font size (from `start_size` down) at which `text` fits the box; at
    `min_size` the lines that do not fit are dropped and the last one ends with an ellipsis.
    `face_at` gives the font at a size (default: Pillow's bundled one)."""
    size = start_size
    while True:
        face = face_at(size)
        lines = wrap_text(text, face, max_width)
        line_height = max(1, int(size * line_spacing))
        if len(lines) * line_height <= max_height or size <= min_size:
            break
        size = max(min_size, int(size * 0.9))
    keep = max(1, max_height // line_height)
    if len(lines) > keep:
        lines = lines[:keep]
        last = lines[-1]
        while last and face.getlength(last + "…") > max_width:
            last = last[:-1]
        lines[-1] = last.rstrip() + "…"
    return FittedText(lines=lines, size=size, line_height=line_height)


def draw_text(draw: ImageDraw.ImageDraw, fitted: FittedText, *, x: int, y: int, width: int,
              fill: tuple[int, int, int], align: str = "left", face_at: Face = font) -> int:
    """Draw fitted lines from (x, y) in a column `width` wide (in `face_at`'s font, the one
    `fit_text` fitted with); returns the y below them."""
    face = face_at(fitted.size)
    for line in fitted.lines:
        offset = 0
        if align == "center":
            offset = int((width - face.getlength(line)) // 2)
        draw.text((x + offset, y), line, font=face, fill=fill)
        y += fitted.line_height
    return y
