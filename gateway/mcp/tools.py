"""The `media_generation` tools, defined once: the MCP tool list and the OpenAI
function-calling schema are both rendered from `definitions`.

A generate tool's arguments are its prompt, an optional `provider`, and the parameters the
providers the tenant may route that media type to declare (`Provider.params`, for the type's
default operation; input files excepted), each as JSON schema. The plan's defaults are
stated on the schema and applied by `calls.generation_body`:

- video `duration_s` 5 (sent to the provider as 5 seconds);
- `quality` "standard", `voice` "default" and image `style` "realistic" mean "the provider's
  own default": the argument is not sent at all, so whichever provider routing picks uses its
  default quality, its default voice and its default (for OpenAI: natural-looking) style.
  Any other value is passed to the provider unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.core.runtime import Runtime
from gateway.providers.allowed import allowed
from plugins.provider import ParamSpec, Provider
from plugins.vocabulary import DEFAULT_OPERATIONS, MEDIA_TYPES, MediaType
from tenants.models import Tenant

#: The generate tools and the media type each makes.
GENERATE_TOOLS: Final[Mapping[str, MediaType]] = {
    "generate_image": "image",
    "generate_audio": "audio",
    "generate_video": "video",
    "generate_design": "design",
    "generate_3d": "model_3d",
}

#: The plan's defaults, by media type then parameter (applied only where a provider of the
#: type declares the parameter).
PLAN_DEFAULTS: Final[Mapping[str, Mapping[str, Any]]] = {
    "image": {"style": "realistic"},
    "audio": {"voice": "default"},
    "video": {"duration_s": 5, "quality": "standard"},
}

#: Default values that stand for "the provider's own default": not sent to the provider.
PROVIDER_DEFAULT_WORDS: Final[Mapping[str, str]] = {
    "style": "realistic", "voice": "default", "quality": "standard"}

#: Parameter kinds that are input files: not offered to agents (send a URL to the REST API).
_FILE_KINDS: Final = frozenset({"media", "media_list"})

_DESCRIPTIONS: Final[Mapping[str, str]] = {
    "image": "Generate an image from a text prompt.",
    "audio": "Turn text into speech.",
    "video": "Generate a video from a text prompt.",
    "design": "Fill a design template from a text prompt (a poster, a social card).",
    "model_3d": "Generate a 3D model (glTF) from a text prompt.",
}

_MEDIA_TYPE_ENUM: Final = list(MEDIA_TYPES)


@dataclass(frozen=True, slots=True)
class ToolDef:
    """One tool: its name, what it does, and its arguments as a JSON schema object."""

    name: str
    description: str
    parameters: dict[str, Any]
    #: The media type a generate tool makes (None: a read tool).
    media_type: MediaType | None = None
    #: A generate tool's provider parameters (the arguments sent in `params`).
    provider_params: frozenset[str] = field(default_factory=frozenset)


def _schema(name: str, spec: ParamSpec) -> dict[str, Any]:
    """The JSON schema of one declared parameter."""
    if spec.kind == "string":
        schema: dict[str, Any] = {"type": "string", "maxLength": spec.max_length}
    elif spec.kind in ("integer", "number", "boolean"):
        schema = {"type": spec.kind}
    elif spec.kind == "scalar":
        schema = {"type": ["string", "number", "boolean"]}
    elif spec.kind == "list":
        schema = {"type": "array", "maxItems": spec.max_length}
    else:
        schema = {"type": "object", "maxProperties": spec.max_length}
    schema["description"] = f"Provider parameter `{name}` (API: params.{name})."
    return schema


def _providers(runtime: Runtime, tenant: Tenant, media_type: str) -> list[Provider]:
    """The providers of `media_type` the tenant may route to (every capable one when it may
    route to none, so the schema still shows what the API takes)."""
    capable = [p for p in runtime.plugins.all() if media_type in p.media_types]
    usable = [p for p in capable if allowed(runtime, tenant, p)]
    return usable or capable


def declared_params(providers: list[Provider], operation: str) -> dict[str, ParamSpec]:
    """The parameters any of `providers` reads for `operation` (first declaration wins;
    input files left out)."""
    found: dict[str, ParamSpec] = {}
    for provider in providers:
        for name, spec in (provider.params or {}).items():
            if spec.kind in _FILE_KINDS or (spec.operations and operation not in spec.operations):
                continue
            found.setdefault(name, spec)
    return found


def _generate_tool(runtime: Runtime, tenant: Tenant, name: str,
                   media_type: MediaType) -> ToolDef:
    params = declared_params(_providers(runtime, tenant, media_type),
                             DEFAULT_OPERATIONS[media_type])
    text = "text" if media_type == "audio" else "prompt"
    properties: dict[str, Any] = {
        text: {"type": "string", "minLength": 1, "maxLength": 10_000,
               "description": "The text to speak." if media_type == "audio"
               else "What to make, in words."},
        "provider": {"type": "string", "maxLength": 64,
                     "description": "Pin a provider by name (default: routing picks)."},
        "brand_kit_id": {"type": "string", "minLength": 1, "maxLength": 32,
                         "description": "Apply this brand kit (its colours, fonts, logo, "
                                        "voice and words) at its current version."},
    }
    defaults = PLAN_DEFAULTS.get(media_type, {})
    for param, spec in sorted(params.items()):
        schema = _schema(param, spec)
        if param in defaults:
            schema["default"] = defaults[param]
            if param in PROVIDER_DEFAULT_WORDS:
                schema["description"] += (f" {defaults[param]!r} means the provider's own "
                                          "default.")
        properties[param] = schema
    return ToolDef(
        name=name,
        description=(f"{_DESCRIPTIONS[media_type]} Waits for the result, reporting progress, "
                     "and returns links to the outputs (signed URLs) and the cost in "
                     "millicredits."),
        parameters={"type": "object", "properties": properties, "required": [text],
                    "additionalProperties": False},
        media_type=media_type, provider_params=frozenset(params))


def _read_tools() -> list[ToolDef]:
    empty: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}
    estimate_props = {
        "type": {"type": "string", "enum": _MEDIA_TYPE_ENUM},
        "prompt": {"type": "string", "maxLength": 10_000,
                   "description": "The prompt (the text, for audio)."},
        "params": {"type": "object", "description": "Provider parameters, as the "
                   "generate tool's arguments name them."},
        "provider": {"type": "string", "maxLength": 64},
    }
    return [
        ToolDef("get_generation", "Read one generation (status, cost, output links) by id.",
                {"type": "object", "properties": {"id": {"type": "string", "minLength": 1,
                                                         "maxLength": 64}},
                 "required": ["id"], "additionalProperties": False}),
        ToolDef("list_generations", "List generations, newest first.",
                {"type": "object", "properties": {
                    "type": {"type": "string", "enum": _MEDIA_TYPE_ENUM},
                    "status": {"type": "string", "enum": ["queued", "running", "succeeded",
                                                          "failed", "canceled"]},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    "cursor": {"type": "string", "maxLength": 500,
                               "description": "A previous answer's next_cursor."}},
                 "additionalProperties": False}),
        ToolDef("estimate_cost", "What a generation would cost, in millicredits; reserves "
                "nothing.", {"type": "object", "properties": estimate_props,
                             "required": ["type", "prompt"], "additionalProperties": False}),
        ToolDef("get_balance", "The caller's credit balance, in millicredits.", empty),
        ToolDef("list_voices", "The voices a speech provider offers (premade and the "
                "caller's own clones).",
                {"type": "object", "properties": {"provider": {"type": "string", "minLength": 1,
                                                               "maxLength": 64}},
                 "required": ["provider"], "additionalProperties": False}),
    ]


def definitions(runtime: Runtime, tenant: Tenant) -> list[ToolDef]:
    """Every tool as `tenant` sees it; called for the MCP tool list, each tool call, and
    `GET /v1/tools/media_generation.json`."""
    return [_generate_tool(runtime, tenant, name, media_type)
            for name, media_type in GENERATE_TOOLS.items()] + _read_tools()


def openai_functions(tools: list[ToolDef]) -> list[dict[str, Any]]:
    """The tools as OpenAI function-calling tools (`{"type": "function", "function": ...}`)."""
    return [{"type": "function",
             "function": {"name": t.name, "description": t.description,
                          "parameters": t.parameters}} for t in tools]
