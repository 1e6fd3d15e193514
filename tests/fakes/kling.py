"""A fake of Kling AI's video API (api-singapore.klingai.com).

Checks every bearer token with an independent JWT implementation (joserfc): HS256 signature
with the secret key, `iss` = the access key, `exp`/`nbf` against the fake's clock, answering
Kling's 401 codes (1002 invalid, 1003 not yet valid, 1004 expired) otherwise. Serves
`POST /v1/videos/text2video` / `image2video`, `GET /v1/videos/<endpoint>/{task_id}` walking
tasks through `submitted`, `processing`, then `succeed` (with a video URL on the fake) or
`failed`, the task list (`GET /v1/videos/text2video?pageNum&pageSize`) and the video files.
Errors use Kling's envelope `{code, message, request_id}` with the HTTP status Kling pairs
with each code.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidTokenError, JoseError
from joserfc.jwk import OctKey
from litestar import Litestar, Request, Response, get, post

ACCESS_KEY = "ak-test-0123456789"
SECRET_KEY = "sk-test-abcdefghijklmnopqrstuvwxyz012345"
VIDEO = b"\x00\x00\x00\x1cftypisom\x00\x00\x02\x00isomiso2mp41" + b"\x00" * 64


@dataclass
class Task:
    id: str
    endpoint: str
    states: list[str]
    failure: str
    body: dict[str, Any]
    polls: int = 0


@dataclass
class Reply:
    status: int
    code: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class State:
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    clock: Any = time.time
    errors: list[Reply] = field(default_factory=list)
    progression: list[str] = field(default_factory=lambda: ["submitted", "processing",
                                                            "succeed"])
    failure: str = "Internal error"
    tasks: dict[str, Task] = field(default_factory=dict)
    #: The claims of every token accepted, for the tests.
    claims: list[dict[str, Any]] = field(default_factory=list)


def envelope(code: int, message: str, data: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
    if data is not None:
        body["data"] = data
    return body


def app(state: State) -> Litestar:
    """The fake as an ASGI app over `state`."""

    def refused(request: Request[Any, Any, Any]) -> Response[Any] | None:
        if state.errors:
            reply = state.errors.pop(0)
            return Response(envelope(reply.code, reply.message), status_code=reply.status,
                            headers=reply.headers)
        header = request.headers.get("authorization", "")
        if not header:
            return Response(envelope(1001, "Authorization is empty"), status_code=401)
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token:
            return Response(envelope(1002, "Authorization is invalid"), status_code=401)
        try:
            decoded = jwt.decode(token, OctKey.import_key(state.secret_key),
                                 algorithms=["HS256"])
        except JoseError:
            return Response(envelope(1002, "Authorization is invalid"), status_code=401)
        if decoded.claims.get("iss") != state.access_key:
            return Response(envelope(1002, "Authorization is invalid"), status_code=401)
        registry = jwt.JWTClaimsRegistry(now=int(state.clock()), leeway=0,
                                         exp={"essential": True}, nbf={"essential": True})
        try:
            registry.validate(decoded.claims)
        except ExpiredTokenError:
            return Response(envelope(1004, "Token expired"), status_code=401)
        except InvalidTokenError:  # nbf in the future
            return Response(envelope(1003, "Token is not yet valid"), status_code=401)
        except JoseError:
            return Response(envelope(1002, "Authorization is invalid"), status_code=401)
        state.claims.append({"header": dict(decoded.header), **decoded.claims})
        return None

    def create(body: dict[str, Any], endpoint: str) -> Response[Any]:
        if endpoint == "text2video" and not body.get("prompt"):
            return Response(envelope(1201, "prompt is required"), status_code=400)
        if endpoint == "image2video" and not body.get("image"):
            return Response(envelope(1201, "image is required"), status_code=400)
        if str(body.get("image", "")).startswith("data:"):
            return Response(envelope(1201, "image: invalid base64"), status_code=400)
        task = Task(id=str(800_000_000_000_000_000 + len(state.tasks)), endpoint=endpoint,
                    states=list(state.progression), failure=state.failure, body=body)
        state.tasks[task.id] = task
        now = int(state.clock() * 1000)
        info = {"external_task_id": body["external_task_id"]} \
            if "external_task_id" in body else {}
        return Response(envelope(0, "SUCCEED", {"task_id": task.id,
                                                "task_status": "submitted",
                                                "task_info": info, "created_at": now,
                                                "updated_at": now}), status_code=200)

    @post("/v1/videos/text2video")
    async def text2video(request: Request[Any, Any, Any]) -> Response[Any]:
        return refused(request) or create(await request.json(), "text2video")

    @post("/v1/videos/image2video")
    async def image2video(request: Request[Any, Any, Any]) -> Response[Any]:
        return refused(request) or create(await request.json(), "image2video")

    @get("/v1/videos/{endpoint:str}/{task_id:str}")
    async def query(request: Request[Any, Any, Any], endpoint: str,
                    task_id: str) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        task = state.tasks.get(task_id)
        if task is None or task.endpoint != endpoint:
            return Response(envelope(1203, "task not found"), status_code=404)
        status = task.states[min(task.polls, len(task.states) - 1)]
        task.polls += 1
        data: dict[str, Any] = {"task_id": task.id, "task_status": status,
                                "task_status_msg": "", "created_at": 1, "updated_at": 2}
        if status == "failed":
            data["task_status_msg"] = task.failure
        elif status == "succeed":
            base = str(request.base_url).rstrip("/")
            data["final_unit_deduction"] = "1"
            data["task_result"] = {"videos": [{
                "id": f"video-{task.id}", "url": f"{base}/kcdn/{task.id}.mp4",
                "duration": str(task.body.get("duration", "5"))}]}
        return Response(envelope(0, "SUCCEED", data), status_code=200)

    @get("/v1/videos/text2video")
    async def task_list(request: Request[Any, Any, Any]) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        return Response(envelope(0, "SUCCEED", []), status_code=200)

    @get("/kcdn/{name:str}")
    async def video(name: str) -> Response[bytes]:
        return Response(VIDEO, media_type="video/mp4")

    return Litestar(route_handlers=[text2video, image2video, query, task_list, video],
                    debug=False)
