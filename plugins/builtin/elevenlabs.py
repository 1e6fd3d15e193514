"""ElevenLabs: text to speech, the account's voices and instant voice clones, over the
ElevenLabs HTTP API (v1) with the `xi-api-key` header.

- `text_to_speech`: `POST /v1/text-to-speech/{voice_id}?output_format=…` with a JSON body
  (`text`, `model_id`, `language_code`, `voice_settings`, `seed`); the answer is the audio.
- `list_voices()` (not a generation: the gateway's free `GET /v1/voices`): `GET /v1/voices`,
  the account's voices (id, name, category, labels, description, preview URL).
- `delete_voice()`: `DELETE /v1/voices/{voice_id}` (a voice already gone is not an error).
- `voice_clone`: `POST /v1/voices/add` (multipart: `name`, one `files` part per sample,
  `description`, `labels` as a JSON string, `remove_background_noise`); the output is an
  `application/json` document with the new `voice_id` (also `ProviderResult.voice_id`, so
  the gateway records which tenant owns the clone). The samples arrive decoded in
  `ProviderRequest.samples` (from the client's `params.sample_urls` or `params.samples`).

Calls are synchronous (the API answers with the result). ElevenLabs takes no idempotency key,
so a call cut off by a crash is not repeated by the gateway. plugins/README.md says what was
verified and from where.
"""

from __future__ import annotations

import re
import struct
import wave
from collections.abc import Callable, Mapping, Sequence
from io import BytesIO
from typing import Any, ClassVar, Final, TypeVar

import httpx
import msgspec

from plugins.errors import (
    CONTENT_POLICY,
    INVALID_INPUT,
    InvalidParams,
    ProviderError,
    error_for_status,
    error_from_exception,
)
from plugins.hookspecs import hookimpl
from plugins.media import MediaInput
from plugins.provider import (
    Credentials,
    Health,
    ModelSpec,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
    Voice,
)
from plugins.vocabulary import ParamSpec, declare

BASE_URL: Final = "https://api.elevenlabs.io"
#: The API's own defaults (model, output format), and the voice of its quickstart ("George").
DEFAULT_MODEL: Final = "eleven_multilingual_v2"
DEFAULT_VOICE: Final = "JBFqnCBsd6RMkjVDRZzb"
DEFAULT_OUTPUT_FORMAT: Final = "mp3_44100_128"
#: Text-to-speech models, each priced per character in `ElevenLabs.prices`.
MODELS: Final = ("eleven_v3", "eleven_multilingual_v2", "eleven_flash_v2_5",
                 "eleven_turbo_v2_5", "eleven_flash_v2", "eleven_turbo_v2")
#: `language_code` "is not supported for multilingual_v2 models" (the API's field docs).
NO_LANGUAGE_CODE: Final = frozenset({"eleven_multilingual_v2"})
#: `output_format` values of the official SDK (codec_samplerate[_bitrate]).
OUTPUT_FORMATS: Final = frozenset({
    "mp3_22050_32", "mp3_24000_48", "mp3_44100_32", "mp3_44100_64", "mp3_44100_96",
    "mp3_44100_128", "mp3_44100_192",
    "opus_48000_32", "opus_48000_64", "opus_48000_96", "opus_48000_128", "opus_48000_192",
    "pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_32000", "pcm_44100", "pcm_48000",
    "wav_8000", "wav_16000", "wav_22050", "wav_24000", "wav_32000", "wav_44100", "wav_48000",
    "ulaw_8000", "alaw_8000",
})
#: Voice ids are 20 letters and digits in every example; accept a little more, but not a
#: language code or another provider's voice name (so such a request routes elsewhere).
VOICE_ID = re.compile(r"[A-Za-z0-9]{16,40}")
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")
UNIT_SETTINGS: Final = ("stability", "similarity_boost", "style")  # each 0..1
SPEED: Final = (0.7, 1.2)
MAX_SEED: Final = 4_294_967_295
MAX_SAMPLES: Final = 25
MAX_NAME: Final = 100
_SAMPLE_EXTENSIONS: Final = {"audio/mpeg": "mp3", "audio/wav": "wav", "audio/ogg": "ogg",
                             "audio/flac": "flac", "audio/mp4": "m4a"}
# Speech of 10,000 characters takes a while to render; listing and cloning are quick.
TTS_TIMEOUT: Final = httpx.Timeout(180.0, connect=10.0)
CALL_TIMEOUT: Final = httpx.Timeout(60.0, connect=10.0)
# Headerless formats wrapped into WAV: (WAVE format tag, bits per sample).
_WAV_PCM, _WAV_ALAW, _WAV_MULAW = 1, 6, 7
#: `detail.status` values that are a content-policy refusal.
_POLICY_STATUSES: Final = frozenset({"bad_prompt"})


_TTS: Final = frozenset({"text_to_speech"})
_CLONE: Final = frozenset({"voice_clone"})

class TtsOptions(msgspec.Struct, frozen=True, kw_only=True):
    voice: str
    model: str
    output_format: str
    language_code: str | None = None
    voice_settings: dict[str, float | bool] = msgspec.field(default_factory=dict)
    seed: int | None = None


class Sample(msgspec.Struct, frozen=True):
    filename: str
    content_type: str
    data: bytes


class CloneOptions(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    samples: list[Sample]
    description: str | None = None
    labels: dict[str, str] | None = None
    remove_background_noise: bool | None = None


# Bodies ElevenLabs answers with (only the fields used; others are ignored).
class VerifiedLanguageBody(msgspec.Struct, kw_only=True):
    """One of a voice's `verified_languages` (`{"language": "en", "model_id": ...,
    "accent": "american", "locale": "en-US", "preview_url": ...}`)."""

    language: str
    accent: str | None = None
    locale: str | None = None


class FineTuningBody(msgspec.Struct, kw_only=True):
    language: str | None = None


class VoiceBody(msgspec.Struct, kw_only=True):
    voice_id: str
    name: str | None = None
    category: str | None = None
    labels: dict[str, Any] | None = None
    description: str | None = None
    preview_url: str | None = None
    verified_languages: list[VerifiedLanguageBody] | None = None
    fine_tuning: FineTuningBody | None = None


def voice_labels(body: VoiceBody) -> dict[str, str]:
    """A voice's labels with the gateway's keys filled in where ElevenLabs knows them:
    `language` (its labels, else its fine-tuning language, else its first verified
    language), `gender` and `accent` (its labels, else the first verified language's
    accent); values lower-cased so `GET /v1/voices?gender=female` matches "Female"."""
    labels = {str(k).lower(): str(x) for k, x in (body.labels or {}).items()}
    verified = body.verified_languages or []
    language = (labels.get("language")
                or (body.fine_tuning.language if body.fine_tuning is not None else None)
                or (verified[0].language if verified else None))
    accent = labels.get("accent") or next((v.accent for v in verified if v.accent), None)
    for key, value in (("language", language), ("accent", accent),
                       ("gender", labels.get("gender"))):
        if value:
            labels[key] = value.strip().lower()
    return labels


class VoicesBody(msgspec.Struct, kw_only=True):
    voices: list[VoiceBody]


class AddedVoiceBody(msgspec.Struct, kw_only=True):
    voice_id: str
    requires_verification: bool = False


class SubscriptionBody(msgspec.Struct, kw_only=True):
    tier: str
    character_count: int
    character_limit: int
    can_extend_character_limit: bool = False


_Body = TypeVar("_Body", VoicesBody, AddedVoiceBody, SubscriptionBody)


def _string_param(params: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = params.get(key, default)
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidParams(f"{key} must be a non-empty string", param=f"params.{key}")
    return value


def _bool_param(params: Mapping[str, Any], key: str) -> bool | None:
    value = params.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidParams(f"{key} must be true or false", param=f"params.{key}")
    return value


def _number_param(params: Mapping[str, Any], key: str, low: float,
                  high: float) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidParams(f"{key} must be a number between {low:g} and {high:g}",
                            param=f"params.{key}")
    return float(value)


def tts_options(params: Mapping[str, Any]) -> TtsOptions:
    """The text-to-speech parameters of a request, checked; raises `InvalidParams`."""
    voice = _string_param(params, "voice", DEFAULT_VOICE)
    assert voice is not None
    if not VOICE_ID.fullmatch(voice):
        raise InvalidParams("voice must be an ElevenLabs voice id (see GET /v1/voices)",
                            param="params.voice")
    model = _string_param(params, "model", DEFAULT_MODEL)
    if model not in MODELS:
        raise InvalidParams(f"model must be one of {', '.join(MODELS)}", param="params.model")
    output_format = _string_param(params, "output_format", DEFAULT_OUTPUT_FORMAT)
    assert output_format is not None
    if output_format not in OUTPUT_FORMATS:
        raise InvalidParams(f"output_format must be one of {', '.join(sorted(OUTPUT_FORMATS))}",
                            param="params.output_format")
    language = _string_param(params, "language_code", None)
    if language is not None:
        if not LANGUAGE_CODE.fullmatch(language):
            raise InvalidParams("language_code must be an ISO 639-1 code such as 'de'",
                                param="params.language_code")
        if model in NO_LANGUAGE_CODE:
            raise InvalidParams(f"{model} does not take a language_code; use "
                                f"eleven_flash_v2_5, eleven_turbo_v2_5 or eleven_v3",
                                param="params.language_code")
    settings: dict[str, float | bool] = {}
    for key in UNIT_SETTINGS:
        number = _number_param(params, key, 0.0, 1.0)
        if number is not None:
            settings[key] = number
    speed = _number_param(params, "speed", *SPEED)
    if speed is not None:
        settings["speed"] = speed
    boost = _bool_param(params, "use_speaker_boost")
    if boost is not None:
        settings["use_speaker_boost"] = boost
    seed = params.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)
                             or not 0 <= seed <= MAX_SEED):
        raise InvalidParams(f"seed must be an integer between 0 and {MAX_SEED}",
                            param="params.seed")
    return TtsOptions(voice=voice, model=model, output_format=output_format,
                      language_code=language, voice_settings=settings, seed=seed)


def _sample(value: MediaInput, index: int) -> Sample:
    param = f"params.samples[{index}]"
    kind = value.content_type
    if not kind.startswith("audio/"):
        raise InvalidParams(f"{param} must be audio, not {kind} (a data:audio/...;base64, URL, "
                            f"or give params.sample_urls)", param=param)
    if not value.data:
        raise InvalidParams(f"{param} is empty", param=param)
    return Sample(filename=f"sample{index + 1}.{_SAMPLE_EXTENSIONS.get(kind, 'bin')}",
                  content_type=kind, data=value.data)


def clone_options(prompt: str, params: Mapping[str, Any],
                  samples: Sequence[MediaInput]) -> CloneOptions:
    """The voice-clone parameters of a request, checked; the voice's name is `params.name`
    or else the request's text, `samples` the request's audio samples. Raises
    `InvalidParams`."""
    name = _string_param(params, "name", prompt.strip())
    assert name is not None
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidParams(f"name must be 1 to {MAX_NAME} characters", param="params.name")
    if not 1 <= len(samples) <= MAX_SAMPLES:
        raise InvalidParams(f"voice_clone needs 1 to {MAX_SAMPLES} audio samples "
                            f"(params.sample_urls)", param="params.samples")
    labels = params.get("labels")
    if labels is not None and (not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items())):
        raise InvalidParams("labels must be an object of strings, e.g. "
                            '{"accent": "british", "gender": "female"}', param="params.labels")
    return CloneOptions(name=name, samples=[_sample(s, i) for i, s in enumerate(samples)],
                        description=_string_param(params, "description", None),
                        labels=labels,
                        remove_background_noise=_bool_param(params, "remove_background_noise"))


def wav(data: bytes, *, rate: int, bits: int, tag: int) -> bytes:
    """`data` (mono samples) behind a canonical 44-byte WAVE header."""
    block = bits // 8
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16,
                         tag, 1, rate, rate * block, block, bits, b"data", len(data))
    return header + data


def audio_output(data: bytes, output_format: str) -> ProviderOutput:
    """The audio ElevenLabs returned in `output_format`, as stored: MP3 and Opus as they are,
    headerless PCM / A-law / μ-law put into a WAV file (so players know the sample rate)."""
    codec, _, rest = output_format.partition("_")
    rate = int(rest.partition("_")[0])
    if codec == "mp3":
        return ProviderOutput(data=data, content_type="audio/mpeg")
    if codec == "opus":
        kind = "audio/ogg" if data.startswith(b"OggS") else "audio/opus"
        return ProviderOutput(data=data, content_type=kind)
    if codec == "wav":
        duration: float | None = None
        try:
            with wave.open(BytesIO(data)) as reader:
                duration = reader.getnframes() / reader.getframerate()
        except (wave.Error, EOFError, ZeroDivisionError):
            pass  # the bytes are stored as they came; only the duration is unknown
        return ProviderOutput(data=data, content_type="audio/wav",
                              duration_s=None if duration is None else round(duration, 3))
    bits, tag = {"pcm": (16, _WAV_PCM), "alaw": (8, _WAV_ALAW), "ulaw": (8, _WAV_MULAW)}[codec]
    frames = len(data) // (bits // 8)
    return ProviderOutput(data=wav(data, rate=rate, bits=bits, tag=tag),
                          content_type="audio/wav", duration_s=round(frames / rate, 3))


def _detail(response: httpx.Response) -> tuple[str | None, str | None]:
    """(`detail.status`, `detail.message`) of an ElevenLabs error body, as far as it has them.

    The API answers `{"detail": {"status": ..., "message": ...}}`; request validation
    errors are FastAPI's `{"detail": [{"loc": ..., "msg": ..., "type": ...}]}`.
    """
    try:
        body = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        return None, None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        status = detail.get("status") or detail.get("code")
        message = detail.get("message")
        return (status if isinstance(status, str) else None,
                message if isinstance(message, str) else None)
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        where = ".".join(str(part) for part in detail[0].get("loc", []))
        return "validation_error", f"{where}: {detail[0].get('msg')}"
    if isinstance(detail, str):
        return None, detail
    return None, None


def error_from(response: httpx.Response) -> ProviderError:
    """Classify an ElevenLabs error answer by its status and `detail.status`.

    `quota_exceeded` (sent with 401) and 402 mean the account is out of credits: retryable
    (`quota_exhausted`), so another provider serves the request; a Terms-of-Service refusal
    is `content_policy`; 429 (`too_many_concurrent_requests`, `system_busy`) is
    `rate_limited` with its Retry-After; the rest by HTTP status (401/403 `auth`, other
    4xx `invalid_input`, 5xx `server_error`).
    """
    status, message = _detail(response)
    text = "ElevenLabs answered HTTP {}{}{}".format(
        response.status_code, f" {status}" if status else "", f": {message}" if message else "")
    if status == "quota_exceeded" or response.status_code == 402:
        return ProviderError.quota_exhausted(text)
    code = None
    if status in _POLICY_STATUSES or (message is not None and "terms of service" in
                                      message.lower()):
        code = CONTENT_POLICY
    return error_for_status(response.status_code, text, code=code,
                            retry_after=response.headers.get("retry-after"))


class ElevenLabs(Provider):
    name = "elevenlabs"
    description = ("ElevenLabs: neural text-to-speech (Multilingual v2, v3, Flash and Turbo "
                   "models), the account's voices, instant voice clones from samples.")
    media_types = frozenset({"audio"})
    operations = frozenset({"text_to_speech", "voice_clone"})
    models: ClassVar[Mapping[str, ModelSpec]] = {
        model: ModelSpec(operations=frozenset({"text_to_speech"}), params={"model": model})
        for model in MODELS}
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        "voice": declare("voice", operations=_TTS, default=DEFAULT_VOICE,
                         description="An ElevenLabs voice id (GET /v1/voices)"),
        "model": declare("model", operations=_TTS, choices=MODELS, default=DEFAULT_MODEL,
                         description="eleven_v3: most expressive; flash and turbo: fastest "
                                     "and cheapest"),
        "output_format": declare("output_format", operations=_TTS,
                                 choices=tuple(sorted(OUTPUT_FORMATS)),
                                 default=DEFAULT_OUTPUT_FORMAT,
                                 description="codec_samplerate_bitrate"),
        "speed": declare("speed", operations=_TTS, minimum=SPEED[0], maximum=SPEED[1],
                         default=1.0, description="Speaking speed, 0.7 to 1.2 times normal"),
        "seed": declare("seed", operations=_TTS, minimum=0, maximum=MAX_SEED,
                        description="Makes a result more repeatable"),
        "style": declare("style", operations=_TTS, minimum=0.0, maximum=1.0, default=0.0,
                         description="Style exaggeration, 0 to 1 (slower when above 0)"),
        "language_code": ParamSpec(kind="string", max_length=16, operations=_TTS,
                                   description="ISO 639-1 language to enforce (not with "
                                               "eleven_multilingual_v2)"),
        "stability": ParamSpec(kind="number", operations=_TTS, minimum=0.0, maximum=1.0,
                               default=0.5,
                               description="Lower: more emotional range; higher: steadier"),
        "similarity_boost": ParamSpec(kind="number", operations=_TTS, minimum=0.0,
                                      maximum=1.0, default=0.75,
                                      description="How closely to keep to the voice"),
        "use_speaker_boost": ParamSpec(kind="boolean", operations=_TTS, default=True,
                                       description="Closer to the original speaker"),
        "name": ParamSpec(kind="string", max_length=MAX_NAME, operations=_CLONE),
        "description": ParamSpec(kind="string", max_length=1000, operations=_CLONE),
        "labels": ParamSpec(kind="object", max_length=16, operations=_CLONE),
        "remove_background_noise": ParamSpec(kind="boolean", operations=_CLONE),
        "samples": ParamSpec(kind="media_list", max_length=MAX_SAMPLES, operations=_CLONE),
    }
    # Concurrent requests per plan: 2 (Free) to 15 (Scale, Business); Creator has 5.
    capacity = 5
    param_defaults = {"voice": DEFAULT_VOICE, "model": DEFAULT_MODEL,
                      "output_format": DEFAULT_OUTPUT_FORMAT}
    #: USD micros per character of text for each model; per call for the other operations.
    prices: Mapping[str, int] = {
        "eleven_v3": 100,
        "eleven_multilingual_v2": 100,
        "eleven_flash_v2_5": 50,
        "eleven_turbo_v2_5": 50,
        "eleven_flash_v2": 50,
        "eleven_turbo_v2": 50,
        "voice_clone": 0,
    }

    def estimate_cost(self, request: ProviderRequest) -> int:
        """Called before anything is reserved: the price of the request in USD micros
        (characters times the model's price for speech); raises `InvalidParams`."""
        if request.operation == "text_to_speech":
            options = tts_options(request.params)
            return len(request.prompt) * self.prices[options.model]
        if request.operation == "voice_clone":
            clone_options(request.prompt, request.params, request.samples)
            return self.prices["voice_clone"]
        raise InvalidParams(f"elevenlabs cannot do {request.operation}", param="operation")

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        """Called by the worker: one API call; returns the audio (speech) or a JSON document
        (voices, the new voice) and the cost. Raises `ProviderError` as `error_from` says."""
        if request.operation == "text_to_speech":
            return await self._speak(request, credentials, client)
        if request.operation == "voice_clone":
            return await self._clone(request, credentials, client)
        raise ProviderError.invalid_input(f"elevenlabs cannot do {request.operation}")

    async def _speak(self, request: ProviderRequest, credentials: Credentials,
                     client: httpx.AsyncClient) -> ProviderResult:
        options = tts_options(request.params)
        body: dict[str, Any] = {"text": request.prompt, "model_id": options.model}
        if options.language_code is not None:
            body["language_code"] = options.language_code
        if options.voice_settings:
            # Only what the request sets: the rest stays as stored for the voice.
            body["voice_settings"] = options.voice_settings
        if options.seed is not None:
            body["seed"] = options.seed
        response = await self._call(client, credentials, "POST",
                                    f"/v1/text-to-speech/{options.voice}", limits=TTS_TIMEOUT,
                                    params={"output_format": options.output_format},
                                    json=body)
        if not response.content:
            raise ProviderError.server_error("ElevenLabs answered with no audio")
        # The characters ElevenLabs counted (x-character-count), never above our estimate.
        characters = len(request.prompt)
        counted = response.headers.get("x-character-count", "")
        if counted.isdigit():
            characters = min(characters, int(counted))
        return ProviderResult(outputs=[audio_output(response.content, options.output_format)],
                              cost_usd_micros=characters * self.prices[options.model])

    async def list_voices(self, credentials: Credentials,
                          client: httpx.AsyncClient) -> list[Voice]:
        """Called for `GET /v1/voices`: the account's voices (`GET /v1/voices`, not metered).
        Raises `ProviderError` as `error_from` says."""
        response = await self._call(client, credentials, "GET", "/v1/voices",
                                    limits=CALL_TIMEOUT)
        listed = _decode(response, VoicesBody)
        return [Voice(id=v.voice_id, name=v.name or v.voice_id,
                      category=v.category or "premade",
                      labels=voice_labels(v),
                      description=v.description, preview_url=v.preview_url)
                for v in listed.voices]

    async def delete_voice(self, voice_id: str, credentials: Credentials,
                           client: httpx.AsyncClient) -> None:
        """Called for `DELETE /v1/voices/{id}` of the voice's owner: `DELETE
        /v1/voices/{voice_id}`. A voice ElevenLabs no longer has counts as deleted."""
        try:
            await self._call(client, credentials, "DELETE", f"/v1/voices/{voice_id}",
                             limits=CALL_TIMEOUT)
        except ProviderError as exc:
            # ElevenLabs names a missing voice in `detail.status` (`voice_not_found`, or
            # `voice_does_not_exist`), which `error_from` puts in the message.
            gone = ("HTTP 404", "not_found", "does_not_exist")
            if exc.code == INVALID_INPUT and any(word in exc.message for word in gone):
                return
            raise

    async def _clone(self, request: ProviderRequest, credentials: Credentials,
                     client: httpx.AsyncClient) -> ProviderResult:
        options = clone_options(request.prompt, request.params, request.samples)
        form: dict[str, str] = {"name": options.name}
        if options.description is not None:
            form["description"] = options.description
        if options.labels is not None:
            form["labels"] = msgspec.json.encode(options.labels).decode()
        if options.remove_background_noise is not None:
            form["remove_background_noise"] = str(options.remove_background_noise).lower()
        files = [("files", (s.filename, s.data, s.content_type)) for s in options.samples]
        response = await self._call(client, credentials, "POST", "/v1/voices/add",
                                    limits=TTS_TIMEOUT, data=form, files=files)
        added = _decode(response, AddedVoiceBody)
        document = {"voice_id": added.voice_id, "name": options.name,
                    "requires_verification": added.requires_verification}
        return ProviderResult(
            outputs=[ProviderOutput(data=msgspec.json.encode(document),
                                    content_type="application/json")],
            cost_usd_micros=self.prices["voice_clone"], voice_id=added.voice_id)

    async def _call(self, client: httpx.AsyncClient, credentials: Credentials, method: str,
                    path: str, *, limits: httpx.Timeout, **kwargs: Any) -> httpx.Response:
        """One authenticated request; returns a 2xx answer, raises a classified
        `ProviderError` for anything else (error answers, timeouts, transport failures)."""
        if not credentials.api_key:
            raise ProviderError.auth("no ElevenLabs API key is configured")
        url = (credentials.base_url or BASE_URL).rstrip("/") + path
        try:
            response = await client.request(method, url, timeout=limits,
                                            headers={"xi-api-key": credentials.api_key},
                                            **kwargs)
        except httpx.HTTPError as exc:
            raise error_from_exception(exc) from exc
        if response.status_code >= 400:
            raise error_from(response)
        return response

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        """Called by health checks: `GET /v1/user/subscription` (authenticated, free);
        unhealthy when the key is refused or the character quota is used up."""
        try:
            response = await self._call(client, credentials, "GET", "/v1/user/subscription",
                                        limits=CALL_TIMEOUT)
            plan = _decode(response, SubscriptionBody)
        except ProviderError as exc:
            return Health(ok=False, detail=exc.message)
        detail = f"{plan.tier}: {plan.character_count}/{plan.character_limit} characters used"
        if plan.character_count >= plan.character_limit and not plan.can_extend_character_limit:
            return Health(ok=False, detail=f"character quota used up ({detail})")
        return Health(ok=True, detail=detail)

    def pricing(self) -> dict[str, Any]:
        """The price table (USD micros) and its units, for `GET /v1/providers`."""
        units = dict.fromkeys(MODELS, "per character")
        units.update(voice_clone="per voice")
        return {"usd_micros": dict(self.prices), "units": units,
                "default_model": DEFAULT_MODEL, "output_formats": sorted(OUTPUT_FORMATS)}


def _decode(response: httpx.Response, kind: type[_Body]) -> _Body:
    try:
        return msgspec.json.decode(response.content, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProviderError.server_error(f"ElevenLabs answered with an unexpected body "
                                         f"({exc})") from exc


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(ElevenLabs())
