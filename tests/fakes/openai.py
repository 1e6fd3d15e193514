"""A fake of OpenAI's image, speech and chat API, answering as the real one does.

Endpoints: `POST /v1/images/generations` (JSON), `POST /v1/images/edits` and
`POST /v1/images/variations` (multipart), `POST /v1/audio/speech` (audio bytes),
`POST /v1/chat/completions` (a `chat.completion` object with `choices[].message` and
`usage.prompt_tokens`/`completion_tokens`), `GET /v1/models`, and `GET /files/{name}`
serving the images it answered with as URLs (for a DALL·E call that did not ask for
`b64_json`).

Bodies use the real field names (`data[].b64_json`, `revised_prompt`, gpt-image-1's `usage`,
`quality`, `size`, `output_format`) and errors the real `{"error": {"message", "type",
"param", "code"}}` shape. The test scripts it through `FakeOpenAI`: the key it accepts, the
errors to answer with next, and it reads back the multipart forms it received.
"""

from __future__ import annotations

import asyncio
import base64
import io
import wave
from dataclasses import dataclass, field
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post
from PIL import Image

API_KEY = "sk-test-openai"

#: The real error bodies (message texts as OpenAI words them).
INVALID_API_KEY = {"error": {
    "message": "Incorrect API key provided: sk-wrong. You can find your API key at "
               "https://platform.openai.com/account/api-keys.",
    "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
INSUFFICIENT_QUOTA = {"error": {
    "message": "You exceeded your current quota, please check your plan and billing details. "
               "For more information on this error, read the docs: "
               "https://platform.openai.com/docs/guides/error-codes/api-errors.",
    "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}}
RATE_LIMITED = {"error": {
    "message": "Rate limit reached for dall-e-3 in organization org-fake on images per minute "
               "(IPM): Limit 5, Used 5, Requested 1. Please try again in 12s.",
    "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
CONTENT_POLICY = {"error": {
    "code": "content_policy_violation",
    "message": "Your request was rejected as a result of our safety system. Your prompt may "
               "contain text that is not allowed by our safety system.",
    "param": None, "type": "invalid_request_error"}}
MODERATION_BLOCKED = {"error": {
    "message": "Your request was rejected by the safety system. If you believe this is an "
               "error, contact us at help.openai.com and include the request ID req_fake.",
    "type": "image_generation_user_error", "param": None, "code": "moderation_blocked"}}
INVALID_SIZE = {"error": {
    "message": "Invalid value: '999x999'. Supported values are: '1024x1024', '1024x1792', "
               "and '1792x1024'.",
    "type": "invalid_request_error", "param": "size", "code": "invalid_value"}}
CONTEXT_LENGTH = {"error": {
    "message": "This model's maximum context length is 128000 tokens. However, your messages "
               "resulted in 130000 tokens. Please reduce the length of the messages.",
    "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}
SERVER_ERROR = {"error": {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error", "param": None, "code": None}}

#: Output tokens of one gpt-image-1 image by quality and size (OpenAI's table).
OUTPUT_TOKENS = {
    ("low", "1024x1024"): 272, ("low", "1024x1536"): 408, ("low", "1536x1024"): 400,
    ("medium", "1024x1024"): 1056, ("medium", "1024x1536"): 1584,
    ("medium", "1536x1024"): 1568,
    ("high", "1024x1024"): 4160, ("high", "1024x1536"): 6240, ("high", "1536x1024"): 6208,
}


@dataclass
class Scripted:
    """One error answer: status, JSON body, extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Part:
    """One multipart part the fake received."""

    value: str | None = None
    filename: str | None = None
    content_type: str | None = None
    data: bytes = b""


@dataclass
class FakeOpenAI:
    """What the test scripts and reads back."""

    api_key: str = API_KEY
    #: Errors to answer with, in order, before answering normally again.
    errors: list[Scripted] = field(default_factory=list)
    #: The multipart forms of edits and variations, in order.
    forms: list[dict[str, Part]] = field(default_factory=list)
    #: Images served at /files/{name}.
    files: dict[str, bytes] = field(default_factory=dict)
    #: What `auto` quality / size resolve to in gpt-image-1 answers.
    auto_quality: str = "medium"
    auto_size: str = "1024x1536"
    #: Answer DALL·E calls with URLs even when `b64_json` was asked for (as a proxy in front
    #: of the API might), to exercise the download path.
    answer_with_urls: bool = False
    #: Input tokens gpt-image-1 reports (text; image tokens for edits only).
    text_tokens: int = 12
    image_tokens: int = 194
    #: Chat completions: the reply's text, the usage it reports, and the bodies received.
    chat_reply: str = "A lighthouse on a cliff at dusk\nA fox in fresh snow"
    prompt_tokens: int = 57
    completion_tokens: int = 23
    chats: list[dict[str, Any]] = field(default_factory=list)
    #: When set, a chat answer waits until the test sets it (a provider that is slow to
    #: answer, for timeouts).
    chat_hold: asyncio.Event | None = None
    #: Answer chats with a refusal instead of content.
    chat_refusal: str | None = None


def image_bytes(output_format: str = "png", size: tuple[int, int] = (16, 16),
                colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    """A real small image in `output_format` (png, jpeg or webp)."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=output_format.upper())
    return out.getvalue()


def wav_bytes(seconds: float = 0.1) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(24_000)
        wav.writeframes(b"\x00\x00" * int(24_000 * seconds))
    return out.getvalue()


#: Stand-ins for the encoded formats: the bytes each format starts with.
SPEECH_BYTES = {
    "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" * 64,
    "opus": b"OggS\x00\x02" + b"\x00" * 120,
    "aac": b"\xff\xf1\x50\x80" + b"\x00" * 120,
    "flac": b"fLaC\x00\x00\x00\x22" + b"\x00" * 120,
    "pcm": b"\x00\x00" * 2400,
}
SPEECH_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac",
                "flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm"}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[bytes]:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json",
                    headers=headers or {})


def _refusal(request: Request[Any, Any, Any], state: FakeOpenAI) -> Response[bytes] | None:
    if request.headers.get("authorization") != f"Bearer {state.api_key}":
        return _json(401, INVALID_API_KEY)
    if state.errors:
        scripted = state.errors.pop(0)
        return _json(scripted.status, scripted.body, scripted.headers)
    return None


def _images_answer(request: Request[Any, Any, Any], state: FakeOpenAI,
                   fields: dict[str, str], base: str) -> Response[bytes]:
    model = fields.get("model", "dall-e-2")
    n = int(fields.get("n", "1"))
    body: dict[str, Any] = {"created": 1_750_000_000, "data": []}
    if model == "gpt-image-1":
        quality = fields.get("quality", "auto")
        quality = state.auto_quality if quality == "auto" else quality
        size = fields.get("size", "auto")
        size = state.auto_size if size == "auto" else size
        output_format = fields.get("output_format", "png")
        # Input image tokens only come with input images (edits).
        image_tokens = state.image_tokens if request.url.path.endswith("/edits") else 0
        body["data"] = [{"b64_json": base64.b64encode(image_bytes(output_format)).decode()}
                        for _ in range(n)]
        body.update({"background": "opaque" if fields.get("background") != "transparent"
                     else "transparent", "output_format": output_format, "quality": quality,
                     "size": size,
                     "usage": {"input_tokens": state.text_tokens + image_tokens,
                               "input_tokens_details": {"text_tokens": state.text_tokens,
                                                        "image_tokens": image_tokens},
                               "output_tokens": n * OUTPUT_TOKENS[(quality, size)],
                               "total_tokens": 0}})
        return _json(200, body)
    for index in range(n):
        png = image_bytes("png", colour=(10 * index, 80, 160))
        item: dict[str, Any] = {}
        if fields.get("response_format") == "b64_json" and not state.answer_with_urls:
            item["b64_json"] = base64.b64encode(png).decode()
        else:
            name = f"img-{len(state.files)}.png"
            state.files[name] = png
            item["url"] = f"{base}/files/{name}"
        if model == "dall-e-3":
            item["revised_prompt"] = f"A detailed rendering of: {fields.get('prompt', '')}"
        body["data"].append(item)
    return _json(200, body)


def app(state: FakeOpenAI) -> Litestar:
    """The fake API over `state`."""

    def base_of(request: Request[Any, Any, Any]) -> str:
        return str(request.base_url).rstrip("/")

    @post("/v1/images/generations")
    async def generations(request: Request[Any, Any, Any]) -> Response[bytes]:
        refused = _refusal(request, state)
        if refused is not None:
            return refused
        body = msgspec.json.decode(await request.body())
        fields = {k: str(v) for k, v in body.items()}
        return _images_answer(request, state, fields, base_of(request))

    async def multipart(request: Request[Any, Any, Any]) -> Response[bytes]:
        refused = _refusal(request, state)
        if refused is not None:
            return refused
        form = await request.form()
        parts: dict[str, Part] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                parts[key] = Part(value=value)
            else:
                parts[key] = Part(filename=value.filename, content_type=value.content_type,
                                  data=await value.read())
        state.forms.append(parts)
        fields = {k: p.value for k, p in parts.items() if p.value is not None}
        return _images_answer(request, state, fields, base_of(request))

    @post("/v1/images/edits")
    async def edits(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await multipart(request)

    @post("/v1/images/variations")
    async def variations(request: Request[Any, Any, Any]) -> Response[bytes]:
        return await multipart(request)

    @post("/v1/audio/speech")
    async def speech(request: Request[Any, Any, Any]) -> Response[bytes]:
        refused = _refusal(request, state)
        if refused is not None:
            return refused
        body = msgspec.json.decode(await request.body())
        fmt = body.get("response_format", "mp3")
        data = wav_bytes() if fmt == "wav" else SPEECH_BYTES[fmt]
        return Response(data, status_code=200, media_type=SPEECH_TYPES[fmt])

    @post("/v1/chat/completions")
    async def chat(request: Request[Any, Any, Any]) -> Response[bytes]:
        refused = _refusal(request, state)
        if refused is not None:
            return refused
        body = msgspec.json.decode(await request.body())
        state.chats.append(body)
        if state.chat_hold is not None:
            await state.chat_hold.wait()
        message: dict[str, Any] = {"role": "assistant", "content": state.chat_reply,
                                   "refusal": None, "annotations": []}
        if state.chat_refusal is not None:
            message.update(content=None, refusal=state.chat_refusal)
        return _json(200, {
            "id": f"chatcmpl-fake{len(state.chats)}", "object": "chat.completion",
            "created": 1_750_000_000, "model": f"{body['model']}-2024-07-18",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": state.prompt_tokens,
                      "completion_tokens": state.completion_tokens,
                      "total_tokens": state.prompt_tokens + state.completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0,
                                                    "rejected_prediction_tokens": 0}},
            "service_tier": "default", "system_fingerprint": "fp_fake"})

    @get("/v1/models")
    async def models(request: Request[Any, Any, Any]) -> Response[bytes]:
        refused = _refusal(request, state)
        if refused is not None:
            return refused
        return _json(200, {"object": "list", "data": [
            {"id": "dall-e-3", "object": "model", "created": 1698785189, "owned_by": "system"},
            {"id": "tts-1", "object": "model", "created": 1681940951,
             "owned_by": "openai-internal"}]})

    @get("/files/{name:str}")
    async def files(name: str) -> Response[bytes]:
        if name not in state.files:
            return _json(404, {"error": "not found"})
        return Response(state.files[name], status_code=200, media_type="image/png")

    return Litestar([generations, edits, variations, speech, chat, models, files], debug=False)
