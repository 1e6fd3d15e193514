"""A fake of Runway's developer API (api.dev.runwayml.com, version 2024-11-06).

Answers as the real API does for the calls `plugins.builtin.runway` makes: `POST /v1/image_to_video`
and `/v1/text_to_video` → `{"id"}`, `GET /v1/tasks/{id}` walking each task through the states
the test scripts (PENDING, THROTTLED, RUNNING, then SUCCEEDED with presigned-style output URLs
served by the fake itself, FAILED with a failureCode, or CANCELLED), `DELETE /v1/tasks/{id}`
→ 204, `GET /v1/organization`. Error bodies are Runway's: 400 `{"error": "Validation of body
failed", "issues": [...], "docUrl"}` or `{"error": "You do not have enough credits to run
this task."}`, 401 `{"error": ...}`, 429 with `Retry-After`, 5xx.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, delete, get, post

API_KEY = "key_" + "0123456789abcdef" * 8
VERSION = "2024-11-06"
#: The bytes a succeeded task's output URL serves: the head of an MP4 ('ftyp' box).
VIDEO = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
DOC_URL = "https://docs.dev.runwayml.com/api"


@dataclass
class Task:
    id: str
    #: The statuses the next polls answer, in order; the last one stays.
    states: list[str]
    failure_code: str | None = None
    failure: str | None = None
    polls: int = 0
    deleted: bool = False


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class State:
    """What the test scripts: the next errors, how new tasks progress, the balance."""

    api_key: str = API_KEY
    #: Answered (in order) to the next calls, whatever they are, before anything else.
    errors: list[Reply] = field(default_factory=list)
    #: Each new task walks through these statuses, one per poll.
    progression: list[str] = field(default_factory=lambda: ["PENDING", "RUNNING",
                                                            "SUCCEEDED"])
    failure_code: str | None = None
    failure: str | None = None
    credit_balance: int = 5000
    tasks: dict[str, Task] = field(default_factory=dict)
    video: bytes = VIDEO


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response({"error": message}, status_code=status, headers=headers or {})


def app(state: State) -> Litestar:
    """The fake as an ASGI app over `state`."""

    def refused(request: Request[Any, Any, Any]) -> Response[Any] | None:
        if state.errors:
            reply = state.errors.pop(0)
            return Response(reply.body, status_code=reply.status, headers=reply.headers)
        if request.headers.get("authorization") != f"Bearer {state.api_key}":
            return _error(401, "Invalid API key. Get one at https://dev.runwayml.com")
        if request.headers.get("x-runway-version") != VERSION:
            return Response({"error": "Invalid API Version", "docUrl": DOC_URL},
                            status_code=400)
        return None

    def start(body: dict[str, Any], endpoint: str) -> Response[Any]:
        issues = []
        if not isinstance(body.get("model"), str):
            issues.append({"code": "invalid_union_discriminator", "path": ["model"],
                           "message": "Invalid discriminator value"})
        if endpoint == "image_to_video" and not body.get("promptImage"):
            issues.append({"code": "invalid_type", "path": ["promptImage"],
                           "message": "Required"})
        if endpoint == "text_to_video" and not body.get("promptText"):
            issues.append({"code": "invalid_type", "path": ["promptText"],
                           "message": "Required"})
        if issues:
            return Response({"error": "Validation of body failed", "issues": issues,
                             "docUrl": DOC_URL}, status_code=400)
        task = Task(id=str(uuid.uuid4()), states=list(state.progression),
                    failure_code=state.failure_code, failure=state.failure)
        state.tasks[task.id] = task
        return Response({"id": task.id}, status_code=200)

    @post("/v1/image_to_video")
    async def image_to_video(request: Request[Any, Any, Any]) -> Response[Any]:
        return refused(request) or start(await request.json(), "image_to_video")

    @post("/v1/text_to_video")
    async def text_to_video(request: Request[Any, Any, Any]) -> Response[Any]:
        return refused(request) or start(await request.json(), "text_to_video")

    @get("/v1/tasks/{task_id:str}")
    async def get_task(request: Request[Any, Any, Any], task_id: str) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        task = state.tasks.get(task_id)
        if task is None or task.deleted:
            return _error(404, "Task not found")
        status = task.states[min(task.polls, len(task.states) - 1)]
        task.polls += 1
        body: dict[str, Any] = {"id": task.id, "status": status,
                                "createdAt": "2026-11-29T12:00:00.000Z"}
        if status == "RUNNING":
            body["progress"] = 0.5
        elif status == "SUCCEEDED":
            base = str(request.base_url).rstrip("/")
            body["output"] = [f"{base}/outputs/{task.id}.mp4?_jwt=signed"]
        elif status == "FAILED":
            body["failure"] = task.failure or "An unexpected error occurred."
            body["failureCode"] = task.failure_code or "INTERNAL"
        return Response(body, status_code=200)

    @delete("/v1/tasks/{task_id:str}", status_code=200)
    async def delete_task(request: Request[Any, Any, Any], task_id: str) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        task = state.tasks.get(task_id)
        if task is None or task.deleted:
            return _error(404, "Task not found")
        if task.states[min(task.polls, len(task.states) - 1)] in ("PENDING", "THROTTLED",
                                                                   "RUNNING"):
            task.states = ["CANCELLED"]
            task.polls = 0
        else:
            task.deleted = True
        return Response(None, status_code=204)

    @get("/v1/organization")
    async def organization(request: Request[Any, Any, Any]) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        return Response({"creditBalance": state.credit_balance,
                         "tier": {"maxMonthlyCreditSpend": 10000,
                                  "models": {"gen4_turbo": {"maxConcurrentGenerations": 2,
                                                            "maxDailyGenerations": 200}}},
                         "usage": {"models": {"gen4_turbo": {"dailyGenerations": 1}}}},
                        status_code=200)

    @get("/outputs/{name:str}")
    async def output(name: str) -> Response[bytes]:
        # Presigned: no Authorization needed (and none must be sent).
        return Response(state.video, media_type="video/mp4")

    return Litestar(route_handlers=[image_to_video, text_to_video, get_task, delete_task,
                                    organization, output], debug=False)
