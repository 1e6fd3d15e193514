"""An example mediahub provider plugin: `example-echo` answers text-to-speech with a short WAV.

It does not speak. It plays one short tone per word of the text (pitch from the word's
letters) with the standard library only, so the whole plugin path (entry point, hook,
provider, gateway) can be exercised offline.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx

from plugins.errors import InvalidParams
from plugins.hookspecs import hookimpl
from plugins.provider import (
    Credentials,
    ParamSpec,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
)

SAMPLE_RATE = 8000
TONE_S = 0.05
MAX_WORDS = 40
USD_MICROS_PER_WORD = 50


def _words(request: ProviderRequest) -> list[str]:
    words = request.prompt.split()
    if not words:
        raise InvalidParams("text must contain at least one word", param="text")
    if len(words) > MAX_WORDS:
        raise InvalidParams(f"at most {MAX_WORDS} words", param="text")
    return words


def tones(words: list[str]) -> bytes:
    """WAV bytes (mono, 16-bit, 8 kHz): one tone per word."""
    frames = bytearray()
    per_tone = int(SAMPLE_RATE * TONE_S)
    for word in words:
        hz = 220 + sum(map(ord, word)) % 660
        for i in range(per_tone):
            sample = int(12_000 * math.sin(2 * math.pi * hz * i / SAMPLE_RATE))
            frames += struct.pack("<h", sample)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(bytes(frames))
    return out.getvalue()


class ExampleEcho(Provider):
    name = "example-echo"
    description = "Example plugin: one short tone per word of the text (not speech)."
    media_types = frozenset({"audio"})
    operations = frozenset({"text_to_speech"})
    local = True
    needs_api_key = False
    #: It reads no parameters: the gateway refuses any with 422 `unknown_param`.
    params: ClassVar[Mapping[str, ParamSpec]] = {}

    def validate(self, request: ProviderRequest) -> None:
        _words(request)

    def estimate_cost(self, request: ProviderRequest) -> int:
        return len(_words(request)) * USD_MICROS_PER_WORD

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        words = _words(request)
        return ProviderResult(
            outputs=[ProviderOutput(data=tones(words), content_type="audio/wav",
                                    duration_s=len(words) * TONE_S)],
            cost_usd_micros=self.estimate_cost(request),
        )

    def pricing(self) -> dict[str, Any]:
        return {"usd_micros_per_word": USD_MICROS_PER_WORD, "local": True}


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(ExampleEcho())
