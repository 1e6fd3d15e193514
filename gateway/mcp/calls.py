"""What each `media_generation` tool does, over the same use cases as the REST API: a
generate tool is `submit.submit` (same ledger, limits, cache, queue) followed by the
`Prefer: wait` machinery (`service.wait_until_final`); reads go through the generations,
credits and voices services with the caller's visibility. Errors are the domain errors the
REST API raises; `server.py` turns them into MCP tool errors."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
import msgspec

from gateway.core.auth import Principal
from gateway.core.deps import page_limit
from gateway.credits import service as credits
from gateway.generations import service as generations
from gateway.generations import submit
from gateway.generations.models import FINAL_STATES, Generation
from gateway.generations.schemas import GenerationCreate, GenerationOut
from gateway.generations.services import Services
from gateway.generations.views import Audience, render
from gateway.mcp.tools import GENERATE_TOOLS, PLAN_DEFAULTS, PROVIDER_DEFAULT_WORDS, ToolDef
from gateway.voices.service import list_voices
from plugins.vocabulary import MEDIA_TYPES
from tenants.kernel.errors import Conflict, InvalidRequest, NotFound, PermissionDenied

#: How long a generate tool waits for its generation before answering with its id and
#: status (the generation goes on; `get_generation` shows it when done).
MCP_WAIT_S: Final = 120.0
#: How often a waiting generate tool re-reads its generation to report a status change
#: (queued → running) between the end notifications the wait sleeps on.
PROGRESS_EVERY_S: Final = 1.0

#: Progress steps: queued, running, done.
_STEPS: Final = {"queued": 0.0, "running": 1.0}
_TOTAL: Final = 2.0

Report = Callable[[float, float | None, str | None], Awaitable[None]]


@dataclass
class Answer:
    """A tool's result: a text summary, the generation(s) it shows (their outputs become
    resource links), and the structured data."""

    text: str
    data: Any
    shown: list[GenerationOut] = field(default_factory=list)


def need(principal: Principal, scope: str) -> None:
    """Refuse a key without `scope` (403 `missing_scope`, as the REST guards do)."""
    if scope not in principal.scopes:
        raise PermissionDenied(f"this key lacks the {scope!r} scope", param=scope)


def _summary(view: GenerationOut) -> str:
    cost = view.cost.charged if view.cost.charged is not None else view.cost.estimated
    text = (f"generation {view.id}: {view.status}; cost {cost} millicredits"
            f" ({'charged' if view.cost.charged is not None else 'estimated'})")
    if view.error is not None:
        text += f"; error {view.error.code}: {view.error.message}"
    if view.outputs:
        text += f"; {len(view.outputs)} output(s), linked below"
    return text


def _string(arguments: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = arguments.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name} must be a non-empty string", code="invalid_argument",
                             param=name)
    return value


def generation_body(tool: ToolDef, arguments: dict[str, Any]) -> GenerationCreate:
    """The REST body a generate tool's arguments stand for, the plan's defaults applied
    (module docstring of `tools`). Raises `InvalidRequest` for an unknown argument."""
    assert tool.media_type is not None
    text_arg = "text" if tool.media_type == "audio" else "prompt"
    known = {text_arg, "provider", "brand_kit_id"} | tool.provider_params
    for name in arguments:
        if name not in known:
            raise InvalidRequest(f"{tool.name} takes no argument {name!r}",
                                 code="unknown_param", param=name)
    params = {k: v for k, v in arguments.items() if k in tool.provider_params}
    for name, value in PLAN_DEFAULTS.get(tool.media_type, {}).items():
        if name in tool.provider_params:
            params.setdefault(name, value)
    for name, word in PROVIDER_DEFAULT_WORDS.items():
        if params.get(name) == word:
            del params[name]
    text = _string(arguments, text_arg, required=True)
    body = {"type": tool.media_type, text_arg: text, "params": params,
            "provider": _string(arguments, "provider"),
            "brand_kit_id": _string(arguments, "brand_kit_id")}
    try:
        return msgspec.convert({k: v for k, v in body.items() if v is not None},
                               GenerationCreate)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(str(exc), code="invalid_argument") from exc


async def _wait(services: Services, principal: Principal, generation: Generation,
                report: Report) -> Generation:
    """Wait up to `MCP_WAIT_S` for the generation to end, reporting each status change;
    the wait sleeps on the end notification and re-reads the row every
    `PROGRESS_EVERY_S` (a start is not notified)."""
    deadline = time.monotonic() + MCP_WAIT_S
    last = ""
    while True:
        if generation.status != last:
            last = generation.status
            await report(_STEPS.get(last, _TOTAL), _TOTAL, f"{generation.id} {last}")
        left = deadline - time.monotonic()
        if generation.status in FINAL_STATES or left <= 0:
            return generation
        generation = await generations.wait_until_final(
            services, principal, generation, min(PROGRESS_EVERY_S, left))


async def generate(services: Services, principal: Principal, to: Audience, tool: ToolDef,
                   arguments: dict[str, Any], report: Report) -> Answer:
    """A generate tool: submit, wait (reporting progress), answer the generation with its
    outputs. When the caller cancels the call, the generation is canceled (its
    reservation voided) before the cancellation goes on."""
    need(principal, "generate")
    body = generation_body(tool, arguments)
    generation = await submit.submit(services, principal, body, idempotency_key=None,
                                     cache_control=None)
    try:
        generation = await _wait(services, principal, generation, report)
    except (asyncio.CancelledError, anyio.get_cancelled_exc_class()):
        with anyio.CancelScope(shield=True):
            # A generation that ended meanwhile (409) has nothing left to void.
            with contextlib.suppress(Conflict):
                await generations.cancel(services, principal, generation.id)
        raise
    view = await render(services.runtime, generation, to)
    text = _summary(view)
    if generation.status not in FINAL_STATES:
        text += (f". Still {generation.status} after {int(MCP_WAIT_S)} s: call get_generation "
                 f"with id {generation.id} later.")
    return Answer(text=text, data=msgspec.to_builtins(view), shown=[view])


async def get_generation(services: Services, principal: Principal, to: Audience,
                         arguments: dict[str, Any]) -> Answer:
    need(principal, "read")
    generation_id = _string(arguments, "id", required=True)
    assert generation_id is not None
    view = await render(services.runtime,
                        await generations.get(services, principal, generation_id), to)
    return Answer(text=_summary(view), data=msgspec.to_builtins(view), shown=[view])


async def list_generations(services: Services, principal: Principal, to: Audience,
                           arguments: dict[str, Any]) -> Answer:
    need(principal, "read")
    limit = arguments.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise InvalidRequest("limit must be an integer", code="invalid_limit", param="limit")
    media_type, status = _string(arguments, "type"), _string(arguments, "status")
    if media_type is not None and media_type not in MEDIA_TYPES:
        raise InvalidRequest(f"unknown type; one of {', '.join(MEDIA_TYPES)}",
                             code="invalid_type", param="type")
    if status is not None and status not in (*FINAL_STATES, "queued", "running"):
        raise InvalidRequest("unknown status", code="invalid_status", param="status")
    rows, next_cursor = await generations.list_page(
        services, principal, media_type=media_type, status=status, limit=page_limit(limit),
        cursor=_string(arguments, "cursor"))
    views = [await render(services.runtime, g, to) for g in rows]
    lines = [_summary(v) for v in views] or ["no generations"]
    if next_cursor:
        lines.append(f"more: pass cursor {next_cursor!r}")
    return Answer(text="\n".join(lines),
                  data={"data": msgspec.to_builtins(views), "next_cursor": next_cursor})


async def estimate_cost(services: Services, principal: Principal,
                        tools: dict[str, ToolDef], arguments: dict[str, Any]) -> Answer:
    need(principal, "generate")
    media_type = _string(arguments, "type", required=True)
    tool = next((tools[n] for n, t in GENERATE_TOOLS.items() if t == media_type), None)
    if tool is None:
        raise InvalidRequest("type must be one of image, audio, video, design, model_3d",
                             code="invalid_type", param="type")
    params = arguments.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidRequest("params must be an object", code="invalid_argument",
                             param="params")
    text_arg = "text" if media_type == "audio" else "prompt"
    extra = {k: v for k, v in arguments.items() if k not in ("type", "params", "prompt")}
    body = generation_body(tool, {**params, **extra, text_arg: arguments.get("prompt")})
    estimate = await generations.estimate(services, principal, body)
    return Answer(text=f"{estimate.amount} millicredits (provider {estimate.provider})",
                  data=msgspec.to_builtins(estimate))


async def get_balance(services: Services, principal: Principal) -> Answer:
    need(principal, "read")
    held = await credits.balance(services.runtime, principal)
    return Answer(text=f"{held.available} millicredits available ({held.pending} pending)",
                  data=msgspec.to_builtins(held))


async def voices(services: Services, principal: Principal, arguments: dict[str, Any]) -> Answer:
    need(principal, "read")
    provider = _string(arguments, "provider", required=True)
    assert provider is not None
    found = await list_voices(services.runtime, principal, provider)
    data = msgspec.to_builtins(found)
    names = [f"{v['id']} ({v['name']})" for v in data.get("data", [])]
    return Answer(text=", ".join(names) or "no voices", data=data)


async def call(services: Services, principal: Principal, to: Audience,
               tools: list[ToolDef], name: str, arguments: dict[str, Any],
               report: Report) -> Answer:
    """Run the tool `name`; called by the MCP server for each `tools/call`. Raises the
    domain errors of the use case it runs (`NotFound` for an unknown tool)."""
    by_name = {t.name: t for t in tools}
    tool = by_name.get(name)
    if tool is None:
        raise NotFound(f"no tool {name!r}", code="unknown_tool", param="name")
    if tool.media_type is not None:
        return await generate(services, principal, to, tool, arguments, report)
    if name == "get_generation":
        return await get_generation(services, principal, to, arguments)
    if name == "list_generations":
        return await list_generations(services, principal, to, arguments)
    if name == "estimate_cost":
        return await estimate_cost(services, principal, by_name, arguments)
    if name == "get_balance":
        return await get_balance(services, principal)
    return await voices(services, principal, arguments)
