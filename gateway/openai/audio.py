"""Speech in the format a client asked for: our providers' audio converted with ffmpeg when
it is not already in that format (OpenAI's `pcm` is raw 24 kHz 16-bit little-endian mono)."""

from __future__ import annotations

import asyncio
from typing import Final

from plugins import programs
from tenants.kernel.errors import InvalidRequest

#: OpenAI's `response_format` → the content type it is served with.
CONTENT_TYPES: Final = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac",
                        "flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm"}
#: The ffmpeg output options of each format.
_FFMPEG: Final = {
    "mp3": ["-f", "mp3", "-c:a", "libmp3lame"],
    "opus": ["-f", "ogg", "-c:a", "libopus"],
    "aac": ["-f", "adts", "-c:a", "aac"],
    "flac": ["-f", "flac"],
    "wav": ["-f", "wav"],
    "pcm": ["-f", "s16le", "-acodec", "pcm_s16le", "-ar", "24000", "-ac", "1"],
}
#: Content types that already are a format (a provider's `audio/x-wav` is a WAV too).
_SAME: Final = {"audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/ogg": "opus",
                "audio/opus": "opus", "audio/aac": "aac", "audio/flac": "flac",
                "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav",
                "audio/pcm": "pcm"}
TIMEOUT_S: Final = 120


async def convert(data: bytes, content_type: str, response_format: str) -> bytes:
    """`data` (of `content_type`) as `response_format`; called by the speech service once
    the generation succeeded. Returns the bytes unchanged when they are already in that
    format; raises `InvalidRequest` (`unsupported_response_format`) when ffmpeg is not
    installed or cannot convert them."""
    if _SAME.get(content_type.split(";")[0].strip().lower()) == response_format:
        return data
    binary = programs.ffmpeg()
    if binary is None:
        raise InvalidRequest(f"this gateway cannot produce {response_format} from the "
                             f"provider's {content_type} (no ffmpeg installed); ask for "
                             f"{_SAME.get(content_type, 'another format')}",
                             code="unsupported_response_format", param="response_format")
    process = await asyncio.create_subprocess_exec(
        binary, "-hide_banner", "-loglevel", "error", "-i", "pipe:0", "-vn",
        *_FFMPEG[response_format], "pipe:1", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(TIMEOUT_S):
            out, err = await process.communicate(data)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise InvalidRequest(f"converting the audio to {response_format} took too long",
                             code="unsupported_response_format",
                             param="response_format") from None
    if process.returncode != 0 or not out:
        raise InvalidRequest(f"could not convert the audio to {response_format}: "
                             f"{err.decode(errors='replace').strip()[:200]}",
                             code="unsupported_response_format", param="response_format")
    return out
