"""Examples in the published OpenAPI document: every operation's request body and success
response carries one (issue #16; tests/gateway/test_openapi_docs.py checks each against its
schema).

Written examples (`WRITTEN`) for the operations a developer meets first; every other body gets
one built from its JSON schema (`from_schema`): deterministic, valid for the schema, with
plausible values by field name (`*_mc` amounts, ids with their prefix, URLs, e-mail
addresses). They are added once to the schema the JSON and Swagger renderers serve.
"""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin

AnyRequest = Request[Any, Any, Any]

NOW = "2026-12-05T09:30:00Z"
_GENERATION: dict[str, Any] = {
    "id": "gen_8f14e45fceea167a5a36", "object": "generation", "type": "image",
    "operation": "text_to_image", "status": "succeeded", "provider": "openai",
    "cached": False, "cost": {"estimated": 1300, "charged": 520, "unit": "millicredit"},
    "outputs": [{"url": "https://media.example.com/media/out.png?exp=1765000000&sig=abc",
                 "content_type": "image/png", "bytes": 48213, "width": 1024,
                 "height": 1024}],
    "error": None, "metadata": {"order": "1042"}, "created_at": NOW,
    "started_at": "2026-12-05T09:30:01Z", "completed_at": "2026-12-05T09:30:07Z",
    "attempts": [{"provider": "openai", "outcome": "succeeded", "error_code": None,
                  "latency_ms": 5830}],
    "prompt": "a lighthouse at dusk, oil painting", "params": {"size": "1024x1024"},
    "favourite": False, "team_id": None,
}
_CREATE = {"type": "image", "prompt": "a lighthouse at dusk, oil painting",
           "params": {"size": "1024x1024"}, "metadata": {"order": "1042"}}

#: (method, path) → {"request": example, "response": example}: written by hand.
WRITTEN: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/generations"): {"request": _CREATE,
                                  "response": {**_GENERATION, "status": "queued",
                                               "cost": {"estimated": 1300, "charged": None,
                                                        "unit": "millicredit"},
                                               "outputs": [], "started_at": None,
                                               "completed_at": None, "attempts": []}},
    ("post", "/v1/generations/estimate"): {"request": _CREATE},
    ("get", "/v1/generations/{generation_id}"): {"response": _GENERATION},
    ("post", "/v1/generations/{generation_id}/cancel"): {"response": {
        **_GENERATION, "status": "canceled", "outputs": [],
        "cost": {"estimated": 1300, "charged": None, "unit": "millicredit"},
        "attempts": []}},
    ("get", "/v1/generations"): {"response": {"data": [_GENERATION], "next_cursor": None}},
    ("post", "/v1/generations/bulk"): {
        "request": {"action": "favourite", "ids": ["gen_8f14e45fceea167a5a36", "gen_missing"]},
        "response": {"object": "list", "results": [
            {"id": "gen_8f14e45fceea167a5a36", "ok": True, "error": None},
            {"id": "gen_missing", "ok": False,
             "error": {"code": "generation_not_found", "message": "no such generation"}}]}},
    ("post", "/v1/generations/{generation_id}/share"): {
        "request": {"expires_in_s": 604_800},
        "response": {"url": "https://studio.example.com/shared/Z2VuXzhm.c2lnbmF0dXJl",
                     "token": "Z2VuXzhm.c2lnbmF0dXJl", "expires_at": "2026-12-12T09:30:00Z",
                     "object": "share"}},
    ("get", "/v1/credits/balance"): {"response": {
        "available": 948_700, "pending": 1300, "posted": 950_000, "unit": "millicredit",
        "object": "balance"}},
    ("get", "/v1/usage"): {"response": {
        "object": "list", "group_by": ["day", "type"], "scope": "tenant",
        "from": "2026-12-01T00:00:00Z", "to": "2027-01-01T00:00:00Z",
        "data": [{"day": "2026-12-01", "type": "image", "count": 42, "succeeded": 40,
                  "failed": 2, "charged_mc": 20_800, "unit": "millicredit"},
                 {"day": "2026-12-01", "type": "audio", "count": 3, "succeeded": 3,
                  "failed": 0, "charged_mc": 2_400, "unit": "millicredit"}]}},
    ("get", "/health/live"): {"response": {"status": "ok"}},
    ("get", "/v1/providers"): {"response": {"object": "list", "data": [{
        "name": "openai", "types": ["image"],
        "operations": ["image_edit", "image_variation", "text_to_image"],
        "status": "available", "local": False, "description": "OpenAI Images",
        "pricing": {"dall-e-3/standard/1024x1024": 40_000},
        "params": [{"name": "quality", "kind": "scalar", "operations": ["text_to_image"],
                    "choices": ["auto", "high", "medium", "low", "hd", "standard"],
                    "minimum": None, "maximum": None, "default": None,
                    "description": "Rendering quality (the model decides which apply)"},
                   {"name": "n", "kind": "integer", "operations": ["image_edit",
                                                                   "image_variation",
                                                                   "text_to_image"],
                    "choices": None, "minimum": 1, "maximum": 10, "default": 1,
                    "description": "How many images"}],
        "models": [{"name": "dall-e-3", "operations": ["text_to_image"],
                    "limits": {"n": {"minimum": 1, "maximum": 1},
                               "quality": {"choices": ["standard", "hd"]}}}],
        "latency_ms": 5830, "error_rate": 0.0}]}},
    ("get", "/v1/design/templates"): {"response": {"object": "list", "data": [{
        "id": "poster", "name": "Poster (1080\u00d71350)", "provider": "local-design",
        "fields": [{"name": "headline", "kind": "text", "label": "Headline"},
                   {"name": "image", "kind": "image", "label": "Picture"}],
        "formats": ["png", "pdf"], "brand": False, "object": "design_template"}]}},
    ("get", "/v1/generations/{generation_id}/brand_compliance"): {"response": {
        "verdict": "warn",
        "dominant_colours": [
            {"hex": "#1B2A4A", "share": 0.569, "nearest": "navy", "nearest_hex": "#1B2A4A",
             "delta_e": 0.0},
            {"hex": "#9DB5A0", "share": 0.383, "nearest": "orange", "nearest_hex": "#F97316",
             "delta_e": 39.42},
            {"hex": "#F97316", "share": 0.048, "nearest": "orange", "nearest_hex": "#F97316",
             "delta_e": 0.0}],
        "within_tolerance_share": 0.617, "tolerance": 10.0,
        "contrast": [{"box": [80, 660, 860, 120], "text": "Summer sale",
                      "foreground": "#1B2A4A", "background": "#9DB5A0", "ratio": 6.47,
                      "passes_aa": True}],
        "logo": {"expected": True, "found": True, "score": 0.916, "box": [616, 205, 240, 120]},
        "reasons": [{"code": "off_palette", "message": (
            "#9DB5A0 covers 38% of the image and is \u0394E 39.4 from the nearest brand "
            "colour, orange (#F97316); the tolerance is 10.")}],
        "generation_id": "gen_8f14e45fceea167a5a36", "brand_kit_id": "bk_3c59dc048e88",
        "brand_kit_version": 3, "output_index": 0}},
}

#: Values tried, in order, for a string with a `pattern`: the first that matches is used.
_PATTERNED = ("#336699", "acme", "ada@example.com", "https://example.com/hooks/mediahub",
              "media.example.com", "Acme Studio", "usd")
_PREFIXES = {"generation": "gen", "tenant": "ten", "customer": "cus", "key": "key",
             "team": "team", "endpoint": "we", "user": "usr", "session": "ses",
             "package": "pkg", "purchase": "pur", "voice": "voice", "invitation": "inv",
             "video": "video", "delivery": "del"}


def from_schema(node: Any, components: dict[str, Any], name: str = "", *,
                depth: int = 0) -> Any:
    """An example value valid for the JSON schema `node` (its `$ref`s resolved in
    `components`); `name` is the property it is for, which picks a plausible value."""
    if not isinstance(node, dict) or depth > 12:
        return None
    if "$ref" in node:
        target = components.get(node["$ref"].rsplit("/", 1)[-1], {})
        return from_schema(target, components, name, depth=depth + 1)
    for key in ("const", "example"):
        if key in node:
            return node[key]
    if node.get("examples"):
        return node["examples"][0]
    if node.get("enum"):
        return node["enum"][0]
    for key in ("oneOf", "anyOf"):
        if key in node:
            options = [o for o in node[key] if not (isinstance(o, dict)
                                                    and o.get("type") == "null")]
            # Constraints beside the `oneOf` (a pattern, a length) hold for the option too.
            siblings = {k: v for k, v in node.items() if k not in ("oneOf", "anyOf")}
            return from_schema({**siblings, **(options or node[key])[0]}, components, name,
                               depth=depth + 1)
    if node.get("allOf"):
        return from_schema(node["allOf"][0], components, name, depth=depth + 1)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if "default" in node and node["default"] is not None and kind != "object":
        return node["default"]
    if kind == "object" or "properties" in node:
        return _object(node, components, depth)
    if kind == "array":
        item = from_schema(node.get("items", {}), components, name, depth=depth + 1)
        if node.get("maxItems") == 0:
            return []
        return [item] * max(1, node.get("minItems", 1))
    if kind == "integer":
        return _number(node, 1300 if name.endswith("_mc") or name == "amount" else 1)
    if kind == "number":
        return float(_number(node, 1))
    if kind == "boolean":
        return False
    if kind == "string":
        return _string(node, name)
    return None


def _object(node: dict[str, Any], components: dict[str, Any], depth: int) -> dict[str, Any]:
    properties: dict[str, Any] = node.get("properties", {})
    value = {key: from_schema(schema, components, key, depth=depth + 1)
             for key, schema in properties.items()}
    extra = node.get("additionalProperties")
    if not properties and isinstance(extra, dict) and extra:
        value["example"] = from_schema(extra, components, "example", depth=depth + 1)
    return value


def _number(node: dict[str, Any], preferred: int) -> int:
    low = node.get("minimum", node.get("exclusiveMinimum", preferred - 1) + 1)
    high = node.get("maximum", node.get("exclusiveMaximum", preferred + 1) - 1)
    return int(min(max(preferred, low), high))


def _string(node: dict[str, Any], name: str) -> str:
    formats = {"date-time": NOW, "date": "2026-12-05", "email": "ada@example.com",
               "uri": "https://example.com/hooks/mediahub", "uuid":
               "3f2b8c1e-4d5a-4e6f-8a9b-0c1d2e3f4a5b", "binary": "<file bytes>"}
    if node.get("format") in formats:
        return formats[node["format"]]
    if "pattern" in node:
        pattern = re.compile(node["pattern"])
        return next((c for c in _PATTERNED if pattern.search(c)), "example")
    text = _by_name(name)
    low, high = node.get("minLength", 0), node.get("maxLength", 10_000)
    if len(text) < low:
        text = text + "x" * (low - len(text))
    return text[:high]


def _by_name(name: str) -> str:
    if name == "id" or name.endswith("_id"):
        stem = name.removesuffix("_id") or "object"
        return f"{_PREFIXES.get(stem, stem[:4])}_8f14e45fceea167a5a36"
    if "url" in name:
        return "https://example.com/hooks/mediahub"
    if "email" in name:
        return "ada@example.com"
    if name in ("prompt", "text", "input"):
        return "a lighthouse at dusk, oil painting"
    if name.endswith("_at"):
        return NOW
    return {"name": "Acme Studio", "slug": "acme", "currency": "usd", "provider": "openai",
            "type": "image", "status": "succeeded", "key": "mh_ab12cd34_secret"}.get(
                name, name or "example")


def add_examples(schema: dict[str, Any]) -> dict[str, Any]:
    """Give every request body and success response of `schema` (an OpenAPI document as a
    dict) an example where it has none: the written one, else one built from its schema.
    Idempotent; returns `schema`, changed in place."""
    components = schema.get("components", {}).get("schemas", {})
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            written = WRITTEN.get((method, path), {})
            body = operation.get("requestBody", {})
            for media in body.get("content", {}).values():
                if "example" not in media and "examples" not in media:
                    media["example"] = written.get("request") or from_schema(
                        media.get("schema", {}), components, "body")
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                for media in response.get("content", {}).values():
                    if "example" not in media and "examples" not in media:
                        media["example"] = written.get("response") or from_schema(
                            media.get("schema", {}), components, "body")
    return schema


class ExampleJson(JsonRenderPlugin):
    """`/schema/openapi.json`, with the examples."""

    def render(self, request: AnyRequest, openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, add_examples(openapi_schema))


class ExampleSwagger(SwaggerRenderPlugin):
    """The browsable `/schema`, with the examples."""

    def render(self, request: AnyRequest, openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, add_examples(openapi_schema))
