"""A fake ElevenLabs API: the five calls the plugin makes, answered with ElevenLabs' field names
and error bodies (`{"detail": {"status": ..., "message": ...}}`).

    state = ElevenLabsState()
    async with serve(app(state)) as server:
        state.fail_next(429, "too_many_concurrent_requests", "...", retry_after="3")

It also serves `state.files` (sample audio for `params.sample_urls`) under `/files/…`.
"""

from __future__ import annotations

import io
import secrets
import struct
import wave
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, delete, get, post

API_KEY = "xi-test-key"
#: A short MPEG-1 Layer III "file": an ID3v2 header and frame-sync bytes (what the plugin
#: stores as is; nothing decodes it).
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(413)


def wav_bytes(rate: int = 16000, frames: int = 1600) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(struct.pack(f"<{frames}h", *range(frames)))
    return out.getvalue()


@dataclass
class Clone:
    """One voice added through `POST /v1/voices/add`, as the fake parsed the form."""

    voice_id: str
    form: dict[str, str]
    files: list[tuple[str, str, bytes]]  # (filename, content type, bytes)


@dataclass
class ElevenLabsState:
    voices: list[dict[str, Any]] = field(default_factory=lambda: [
        {"voice_id": "JBFqnCBsd6RMkjVDRZzb", "name": "George", "category": "premade",
         "labels": {"accent": "british", "gender": "male", "age": "middle_aged"},
         "description": "Warm resonance", "preview_url": "https://example.test/george.mp3",
         "settings": None, "samples": None, "available_for_tiers": [],
         "fine_tuning": {"is_allowed_to_fine_tune": False, "state": {},
                         "verification_failures": [], "verification_attempts_count": 0,
                         "manual_verification_requested": False, "language": "en"},
         "verified_languages": []},
        {"voice_id": "21m00Tcm4TlvDq8ikWAM", "name": "Rachel", "category": "premade",
         "labels": {"accent": "american", "gender": "female"}, "description": None,
         "preview_url": None,
         "verified_languages": [{"language": "en", "model_id": "eleven_multilingual_v2",
                                 "accent": "american", "locale": "en-US",
                                 "preview_url": None}]},
    ])
    #: Errors to answer with, in order, before anything else: (status, body, headers).
    errors: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    clones: list[Clone] = field(default_factory=list)
    #: Voice ids removed through `DELETE /v1/voices/{voice_id}`, in order.
    deleted: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    character_count: int = 1200
    character_limit: int = 100_000
    #: Characters the fake reports as counted (x-character-count); None: the text's length.
    counted: int | None = None

    def fail_next(self, status: int, detail_status: str | None = None, message: str = "",
                  *, body: Any = None, retry_after: str | None = None) -> None:
        """Answer the next API call with an ElevenLabs error."""
        if body is None:
            body = {"detail": {"status": detail_status, "message": message}}
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        self.errors.append((status, body, headers))


def _refusal(request: Request[Any, Any, Any], state: ElevenLabsState) -> Response[Any] | None:
    if request.headers.get("xi-api-key") != API_KEY:
        return Response({"detail": {"status": "invalid_api_key",
                                    "message": "Invalid API key"}}, status_code=401)
    if state.errors:
        status, body, headers = state.errors.pop(0)
        return Response(body, status_code=status, headers=headers)
    return None


def _audio(output_format: str, characters: int) -> tuple[bytes, str]:
    codec, _, rest = output_format.partition("_")
    rate = int(rest.partition("_")[0])
    if codec == "mp3":
        return MP3, "audio/mpeg"
    if codec == "wav":
        return wav_bytes(rate), "audio/wav"
    if codec == "opus":
        return b"OggS" + bytes(60), "audio/ogg"
    # Headerless samples: 16-bit PCM, or 8-bit A-law / μ-law; 1 ms per character.
    width = 2 if codec == "pcm" else 1
    return bytes(range(256)) * (rate * characters * width // 1000 // 256 + 1), \
        "application/octet-stream"


def app(state: ElevenLabsState) -> Litestar:
    """The fake API over `state`."""

    @post("/v1/text-to-speech/{voice_id:str}", status_code=200)
    async def speak(request: Request[Any, Any, Any], voice_id: str) -> Response[Any]:
        refused = _refusal(request, state)
        if refused is not None:
            return refused
        if voice_id not in {v["voice_id"] for v in state.voices}:
            return Response({"detail": {"status": "voice_not_found", "message":
                                        "A voice with the voice_id was not found."}},
                            status_code=400)
        body = await request.json()
        if not isinstance(body.get("text"), str):
            return Response({"detail": [{"loc": ["body", "text"], "msg": "field required",
                                         "type": "value_error.missing"}]}, status_code=422)
        data, kind = _audio(request.query_params.get("output_format", "mp3_44100_128"),
                            len(body["text"]))
        counted = state.counted if state.counted is not None else len(body["text"])
        return Response(data, media_type=kind,
                        headers={"x-character-count": str(counted),
                                 "request-id": f"req{len(state.clones)}"})

    @get("/v1/voices")
    async def voices(request: Request[Any, Any, Any]) -> Response[Any]:
        return _refusal(request, state) or Response({"voices": state.voices})

    @post("/v1/voices/add", status_code=200)
    async def add(request: Request[Any, Any, Any]) -> Response[Any]:
        refused = _refusal(request, state)
        if refused is not None:
            return refused
        form = await request.form()
        uploads = form.getall("files") if "files" in form else []
        files = [(u.filename, u.content_type, await u.read()) for u in uploads
                 if not isinstance(u, str)]
        if not form.get("name") or not files:
            return Response({"detail": [{"loc": ["body", "files"], "msg": "field required",
                                         "type": "value_error.missing"}]}, status_code=422)
        # Unique like ElevenLabs' own ids (20 characters): the gateway records each clone by
        # it, and one PostgreSQL database serves many tests.
        clone = Clone(voice_id=secrets.token_hex(10),
                      form={k: v for k, v in form.items() if isinstance(v, str)}, files=files)
        state.clones.append(clone)
        # The account's voices list it from now on, as ElevenLabs does (one account: every
        # caller's clones side by side).
        state.voices.append({"voice_id": clone.voice_id, "name": form.get("name"),
                             "category": "cloned", "labels": {}, "description": None,
                             "preview_url": None})
        return Response({"voice_id": clone.voice_id, "requires_verification": False})

    @delete("/v1/voices/{voice_id:str}", status_code=200)
    async def remove(request: Request[Any, Any, Any], voice_id: str) -> Response[Any]:
        refused = _refusal(request, state)
        if refused is not None:
            return refused
        if voice_id not in {v["voice_id"] for v in state.voices}:
            return Response({"detail": {"status": "voice_not_found", "message":
                                        "A voice with the voice_id was not found."}},
                            status_code=400)
        state.voices = [v for v in state.voices if v["voice_id"] != voice_id]
        state.deleted.append(voice_id)
        return Response({"status": "ok"})

    @get("/v1/user/subscription")
    async def subscription(request: Request[Any, Any, Any]) -> Response[Any]:
        return _refusal(request, state) or Response({
            "tier": "creator", "character_count": state.character_count,
            "character_limit": state.character_limit, "can_extend_character_limit": False,
            "allowed_to_extend_character_limit": False, "voice_limit": 30,
            "professional_voice_limit": 1, "can_extend_voice_limit": False,
            "can_use_instant_voice_cloning": True,
            "can_use_professional_voice_cloning": True, "status": "active"})

    @get("/files/{name:str}")
    async def files(name: str) -> Response[bytes]:
        if name not in state.files:
            return Response(b"not found", status_code=404, media_type="text/plain")
        return Response(state.files[name], media_type="application/octet-stream")

    return Litestar([speak, voices, add, remove, subscription, files], debug=False)
