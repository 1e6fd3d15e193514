"""A fake of the Gemini API's Veo endpoints, answering as the real one does.

- `POST /v1beta/models/{model}:predictLongRunning` → `{"name": "models/<model>/operations/<id>"}`
- `GET /v1beta/models/{model}/operations/{id}` → `{"name", "done": false, "metadata"}` while
  running, then done with `response.generateVideoResponse` (samples, or RAI-filtered) or
  `error` (a google.rpc.Status), as the operation's scripted `progression` says.
- `GET /v1beta/models/{model}` → the model's metadata (what `health` reads).
- `GET /v1beta/files/{id}:download?alt=media` (key required) → 302 to the signed media URL,
  served at `/media/{id}.mp4` without a key (on `redirect_host`, so a test can tell whether
  the key followed the redirect).

Every call checks `x-goog-api-key`; a wrong key gets Google's real 400 `API_KEY_INVALID`
body. `state.next_errors` scripts the next answers of any API call (status, body, headers).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, get, post

#: An MP4's first bytes (an `ftyp` box), so the gateway's sniffer types it as video/mp4.
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


def google_error(code: int, status: str, message: str,
                 details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The body of a Google API error (google.rpc.Status as JSON)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


BAD_KEY = google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                       [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                         "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                         "metadata": {"service": "generativelanguage.googleapis.com"}}])


@dataclass
class Operation:
    name: str
    model: str
    body: dict[str, Any]
    #: What each poll answers, in order; the last entry repeats. "running", "done",
    #: "filtered" (RAI removed every video), or ("error", rpc_code, status, message).
    progression: list[Any]


@dataclass
class VeoState:
    api_key: str = "test-gemini-key"
    #: Progression given to each new operation.
    progression: list[Any] = field(default_factory=lambda: ["running", "done"])
    #: Answers (status, body, headers) for the next API calls, before anything else.
    next_errors: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    #: Where the download redirects to (None: the host the request came to).
    redirect_host: str | None = None
    video: bytes = MP4
    operations: dict[str, Operation] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def _operation_body(op: Operation, step: Any, base: str) -> dict[str, Any]:
    if step == "running":
        return {"name": op.name, "done": False, "metadata": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                     "PredictLongRunningMetadata"}}
    if step == "filtered":
        return {"name": op.name, "done": True, "response": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                     "PredictLongRunningResponse",
            "generateVideoResponse": {
                "raiMediaFilteredCount": 1,
                "raiMediaFilteredReasons": [
                    "Veo could not generate 1 videos based on the prompt provided. You will "
                    "not be charged for this request. Try rephrasing the prompt."]}}}
    if isinstance(step, tuple) and step[0] == "error":
        _, code, status, message = step
        return {"name": op.name, "done": True,
                "error": {"code": code, "message": message, "status": status}}
    count = int(op.body.get("parameters", {}).get("sampleCount", 1))
    file_id = op.name.rsplit("/", 1)[-1]
    return {"name": op.name, "done": True, "response": {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta."
                 "PredictLongRunningResponse",
        "generateVideoResponse": {"generatedSamples": [
            {"video": {"uri": f"{base}/v1beta/files/{file_id}-{i}:download"
                              "?alt=media"}} for i in range(count)]}}}


def app(state: VeoState) -> Litestar:
    """The fake Gemini API over `state`."""

    def refused(request: Request[Any, Any, Any]) -> Response[Any] | None:
        if request.headers.get("x-goog-api-key") != state.api_key:
            return Response(BAD_KEY, status_code=400)
        if state.next_errors:
            status, body, headers = state.next_errors.pop(0)
            return Response(body, status_code=status, headers=headers)
        return None

    @post("/v1beta/models/{target:str}", status_code=200)
    async def predict(request: Request[Any, Any, Any], target: str) -> Response[Any]:
        model, _, method = target.partition(":")
        if method != "predictLongRunning":
            return Response(google_error(404, "NOT_FOUND", "Method not found."),
                            status_code=404)
        if (answer := refused(request)) is not None:
            return answer
        name = f"models/{model}/operations/op{next(state.ids)}"
        state.operations[name] = Operation(name=name, model=model,
                                           body=await request.json(),
                                           progression=list(state.progression))
        return Response({"name": name})

    @get("/v1beta/models/{model:str}/operations/{op_id:str}")
    async def operation(request: Request[Any, Any, Any], model: str,
                        op_id: str) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        op = state.operations.get(f"models/{model}/operations/{op_id}")
        if op is None:
            return Response(google_error(404, "NOT_FOUND", "Operation not found."),
                            status_code=404)
        step = op.progression.pop(0) if len(op.progression) > 1 else op.progression[0]
        return Response(_operation_body(op, step, f"http://{request.url.netloc}"))

    @get("/v1beta/models/{model:str}")
    async def model_info(request: Request[Any, Any, Any], model: str) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        return Response({"name": f"models/{model}", "displayName": "Veo",
                         "supportedGenerationMethods": ["predictLongRunning"]})

    @get("/v1beta/files/{target:str}")
    async def download(request: Request[Any, Any, Any], target: str) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        file_id = target.removesuffix(":download")
        host = state.redirect_host or request.url.hostname
        return Response(b"", status_code=302, headers={
            "location": f"http://{host}:{request.url.port}/media/{file_id}.mp4?sig=signed"})

    @get("/media/{name:str}")
    async def media(name: str) -> Response[bytes]:
        return Response(state.video, media_type="video/mp4")

    return Litestar([predict, operation, model_info, download, media], debug=False)
