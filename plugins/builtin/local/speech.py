"""A local speech engine: espeak-ng reads the text aloud into a WAV file, with no key and no
network.

It is a formant synthesiser, not a neural voice: robotic but intelligible, and always
available offline. espeak-ng is the system's program, else the library the espeakng-loader
package ships (`plugins.programs.espeak_ng`). Voices are what `espeak-ng --voices` lists.
"""

from __future__ import annotations

import asyncio
import functools
import io
import re
import subprocess
import tempfile
import wave
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final

import httpx
import msgspec

from plugins import programs
from plugins import provider as contract
from plugins.builtin.local import _media
from plugins.errors import InvalidParams
from plugins.hookspecs import hookimpl
from plugins.provider import (
    Credentials,
    Health,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
)
from plugins.vocabulary import ParamSpec, declare

BINARY = "espeak-ng"
PACKAGE = "espeak-ng"
DEFAULT_VOICE = "en"
SPEED_WPM = (80, 450)
DEFAULT_SPEED_WPM = 175
PITCH = (0, 99)
DEFAULT_PITCH = 50
TIMEOUT_S = 120
# The compute price of this local engine (not a vendor's bill), so speech is not free in the
# ledger: USD micros per started 1000 characters of text.
PRICES: Final[Mapping[str, int]] = {"usd_micros_per_1k_characters": 1000}

_OTHER_LANGUAGE = re.compile(r"\(([^\s()]+)\s+(\d+)\)")


class Voice(msgspec.Struct, frozen=True, kw_only=True):
    """One voice `params.voice` accepts. `alias_of` names the voice a bare language code
    (such as "en") resolves to, following espeak-ng's own priorities."""

    id: str
    name: str
    gender: str
    languages: tuple[str, ...] = ()
    alias_of: str | None = None


def voice_labels(voice: Voice) -> dict[str, str]:
    """A voice's labels for `GET /v1/voices`: `language` is the primary subtag of its id
    (espeak-ng ids are language tags: "en-gb-x-rp" speaks "en"), `accent` the rest of the
    tag ("gb-x-rp"; none for a bare language), `gender` espeak-ng's M/F as words, and
    `languages` the other languages it speaks."""
    language, _, accent = voice.id.lower().partition("-")
    return {"language": language, **({"accent": accent} if accent else {}),
            "gender": voice.gender, "languages": ",".join(voice.languages),
            **({"alias_of": voice.alias_of} if voice.alias_of else {})}


def parse_voices(listing: str) -> list[Voice]:
    """Parse what `espeak-ng --voices` prints; returns voices and language aliases, by id."""
    voices: dict[str, Voice] = {}
    aliases: dict[str, tuple[int, str]] = {}  # language → (priority, voice id)
    for line in listing.splitlines()[1:]:
        parts = line.split(None, 5)
        if len(parts) < 5 or not parts[0].isdigit():
            continue
        _pty, language, age_gender, name, _file = parts[:5]
        others = _OTHER_LANGUAGE.findall(parts[5]) if len(parts) > 5 else []
        key = language.lower()
        if key in voices:
            continue
        gender = age_gender.rpartition("/")[2]
        voices[key] = Voice(id=language, name=name.replace("_", " "),
                            gender={"M": "male", "F": "female"}.get(gender, "unknown"),
                            languages=tuple(lang for lang, _ in others))
        for other, priority in others:
            best = aliases.get(other.lower())
            if best is None or int(priority) < best[0]:
                aliases[other.lower()] = (int(priority), language)
    for alias, (_, target) in aliases.items():
        if alias not in voices:
            voice = voices[target.lower()]
            voices[alias] = Voice(id=alias, name=voice.name, gender=voice.gender,
                                  languages=voice.languages, alias_of=voice.id)
    return sorted(voices.values(), key=lambda v: v.id.lower())


@functools.cache
def _voices_of(command: tuple[str, ...]) -> tuple[Voice, ...]:
    try:
        listing = subprocess.run([*command, "--voices"], capture_output=True,  # noqa: S603
                                 text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()  # a broken install lists nothing; generate then reports the failure
    return tuple(parse_voices(listing))


def voices() -> list[Voice]:
    """The voices espeak-ng offers on this machine (none when it is not installed).

    Runs `espeak-ng --voices` once per process (it takes a few milliseconds) and caches it.
    """
    command = programs.espeak_ng()
    return list(_voices_of(tuple(command))) if command else []


def wav_duration_s(data: bytes) -> tuple[float, int, int]:
    """(duration in seconds, channels, sample rate) read back from a WAV file's header."""
    with wave.open(io.BytesIO(data)) as wav:
        return wav.getnframes() / wav.getframerate(), wav.getnchannels(), wav.getframerate()


class Options(msgspec.Struct, frozen=True):
    voice: str
    speed_wpm: int
    pitch: int


class LocalSpeech(Provider):
    name = "local-speech"
    description = ("Local engine (espeak-ng): formant text-to-speech to WAV on this machine, "
                   "offline; a robotic voice, not a neural model.")
    media_types = frozenset({"audio"})
    operations = frozenset({"text_to_speech"})
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        "voice": declare("voice", default=DEFAULT_VOICE,
                         description="An espeak-ng voice id (a language tag such as en-us); "
                                     "see GET /v1/voices"),
        "speed": declare("speed", minimum=SPEED_WPM[0], maximum=SPEED_WPM[1],
                         default=DEFAULT_SPEED_WPM, description="Words per minute"),
        "pitch": ParamSpec(kind="integer", minimum=PITCH[0], maximum=PITCH[1],
                           default=DEFAULT_PITCH, description="Voice pitch, 0 (low) to 99"),
    }
    local = True
    prices = PRICES
    needs_api_key = False

    def voices(self) -> list[Voice]:
        return voices()

    async def list_voices(self, credentials: Credentials,
                          client: httpx.AsyncClient) -> list[contract.Voice]:
        """Called for `GET /v1/voices?provider=local-speech`: espeak-ng's voices, all
        premade (this engine makes no clones); empty when espeak-ng is not installed."""
        return [contract.Voice(id=v.id, name=v.name, labels=voice_labels(v)) for v in voices()]

    def _options(self, request: ProviderRequest) -> Options:
        params = request.params
        voice = params.get("voice", DEFAULT_VOICE)
        if not isinstance(voice, str) or not voice:
            raise InvalidParams("voice must be a voice id such as 'en'", param="params.voice")
        known = {v.id.lower(): v.id for v in voices()}
        # With espeak-ng missing there is no list to check against; generate will fail with
        # engine_unavailable instead.
        if known:
            if voice.lower() not in known:
                raise InvalidParams(f"unknown voice {voice!r}; see the provider's voices",
                                    param="params.voice")
            voice = known[voice.lower()]
        elif not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", voice):
            raise InvalidParams(f"unknown voice {voice!r}", param="params.voice")
        speed = _media.number_param(params, "speed", default=DEFAULT_SPEED_WPM,
                                    low=SPEED_WPM[0], high=SPEED_WPM[1], integer=True)
        pitch = _media.number_param(params, "pitch", default=DEFAULT_PITCH, low=PITCH[0],
                                    high=PITCH[1], integer=True)
        return Options(voice=voice, speed_wpm=int(speed), pitch=int(pitch))


    def estimate_cost(self, request: ProviderRequest) -> int:
        self._options(request)
        thousands = max(1, -(-len(request.prompt) // 1000))
        return thousands * self.prices["usd_micros_per_1k_characters"]

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        options = self._options(request)
        command = programs.espeak_ng()
        if command is None:
            raise _media.engine_unavailable(BINARY, PACKAGE)
        with tempfile.TemporaryDirectory(prefix="mediahub-speech-") as tmp:
            out = Path(tmp) / "speech.wav"
            # The text goes in on stdin, so nothing in it can be read as an option.
            await _media.run([*command, "-v", options.voice, "-s", str(options.speed_wpm),
                              "-p", str(options.pitch), "-w", str(out), "--stdin"],
                             timeout_s=TIMEOUT_S, stdin=request.prompt.encode())
            data = await asyncio.to_thread(out.read_bytes)
        duration_s, _, _ = wav_duration_s(data)
        return ProviderResult(
            outputs=[ProviderOutput(data=data, content_type="audio/wav",
                                    duration_s=round(duration_s, 3))],
            cost_usd_micros=self.estimate_cost(request),
        )

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        if programs.espeak_ng() is None:
            return _media.missing_health(BINARY, PACKAGE)
        return Health(ok=True, detail=f"{len(voices())} voices")

    def pricing(self) -> dict[str, Any]:
        return {**self.prices, "local": True, "voices": [v.id for v in voices()]}


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(LocalSpeech())
