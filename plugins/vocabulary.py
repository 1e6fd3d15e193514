"""The words the gateway and the providers share: media types, operations and parameters.

This is their one definition. The API's request schema, the job queues (one per media type),
the tenants' per-type prices and limits, and the provider contract check all take them from
here; the tuples are derived from the `Literal` types, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

import msgspec

#: What a generation makes (`GenerationCreate.type`, `Provider.media_types`).
#: `text` is written text (issue 15: a chat model's prompt suggestions), billed like any other.
MediaType = Literal["image", "audio", "video", "design", "model_3d", "text"]

#: What a generation does (`GenerationCreate.operation`, `Provider.operations`).
Operation = Literal[
    "text_to_image", "image_edit", "image_variation", "text_to_speech", "voice_clone",
    "text_to_video", "image_to_video", "design_autofill", "text_to_3d", "image_to_3d",
    "complete",
]
# Not words (issue 12): `video_extend`, which no built-in provider offers (an operation
# nobody serves only answered 503 after validation and reservation checks), and
# `list_voices`, a free catalogue read (`GET /v1/voices`), not a queued, billed generation.
# Requests naming either are a 422.

MEDIA_TYPES: Final[tuple[MediaType, ...]] = get_args(MediaType)
OPERATIONS: Final[tuple[Operation, ...]] = get_args(Operation)

#: The operation of a request that names none, per media type.
DEFAULT_OPERATIONS: Final[Mapping[MediaType, Operation]] = MappingProxyType({
    "image": "text_to_image",
    "audio": "text_to_speech",
    "video": "text_to_video",
    "design": "design_autofill",
    "model_3d": "text_to_3d",
    "text": "complete",
})


#: What a parameter holds, checked by the gateway before any provider sees it: `scalar` is a
#: string, number or boolean (a provider that takes `"10"` or `10`), `media` an input file
#: (`params.image` as a `data:` URL or `params.image_url`), `media_list` the voice clone
#: samples (`params.samples` or `params.sample_urls`).
ParamKind = Literal["string", "integer", "number", "boolean", "scalar", "list", "object",
                    "media", "media_list"]


class ParamSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One parameter a provider reads from `ProviderRequest.params` (`Provider.params`).

    The gateway refuses a request whose params a provider did not declare (422
    `unknown_param`) and one whose value is of another `kind` or longer than `max_length`
    (characters of a string, items of a list, keys of an object) before pricing it, so an
    unread parameter is never billed and an oversized one never stored.
    """

    kind: ParamKind
    #: Longest string, most list items or most object keys accepted (ignored for numbers,
    #: booleans and media, whose sizes the provider and the input fetcher check).
    max_length: int = 256
    #: The operations that read it; empty: every operation the provider serves.
    operations: frozenset[str] = frozenset()
    #: The only values accepted (a studio draws a select from them); None: any of the kind.
    choices: tuple[str | int | float, ...] | None = None
    #: The smallest and largest number accepted (inclusive; numbers only).
    minimum: float | None = None
    maximum: float | None = None
    #: What the provider assumes when the request leaves it out (None: nothing to show).
    default: Any = None
    #: One line for people choosing a value (the portal's studio shows it as help text).
    description: str | None = None


class ParamLimits(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A model's narrower bounds on one parameter (`ModelSpec.limits`): a video model that
    only takes 5 or 10 seconds, an image model with its own sizes. Checked like the
    parameter's own `choices`/`minimum`/`maximum`, when the request names that model."""

    choices: tuple[str | int | float, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


def limit_problem(value: Any, *, choices: tuple[str | int | float, ...] | None,
                  minimum: float | None, maximum: float | None) -> str | None:
    """Why `value` is outside the declared `choices` or range (None when it is inside, or
    is not a value those bounds speak about: null, or a non-number against a range); called
    by the gateway's parameter check and the plugin contract check."""
    if value is None:
        return None
    if choices is not None and not any(
            value == choice and isinstance(value, bool) == isinstance(choice, bool)
            for choice in choices):
        shown = ", ".join(str(choice) for choice in choices)
        return f"must be one of {shown}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if minimum is not None and value < minimum:
            return f"must be at least {minimum:g}"
        if maximum is not None and value > maximum:
            return f"must be at most {maximum:g}"
    return None


#: The names that mean the same thing for every provider. A provider that reads one of these
#: ideas declares it under this name (with this kind), mapping it to its API's own word
#: itself (Runway's and Kling's `duration` is `duration_s` here), so one request works with
#: whichever provider routing picks.
COMMON_PARAMS: Final[Mapping[str, ParamSpec]] = MappingProxyType({
    "duration_s": ParamSpec(kind="number"),
    "aspect_ratio": ParamSpec(kind="string", max_length=16),
    "resolution": ParamSpec(kind="string", max_length=16),
    "seed": ParamSpec(kind="integer"),
    "negative_prompt": ParamSpec(kind="string", max_length=2500),
    "voice": ParamSpec(kind="string", max_length=128),
    # Scalars: an image's "1024x1024" or a 3D model's size in metres; OpenAI's "hd" or
    # Canva's JPEG quality 1-100; OpenAI's "vivid" or ElevenLabs' style exaggeration 0-1.
    "size": ParamSpec(kind="scalar", max_length=32),
    "quality": ParamSpec(kind="scalar", max_length=32),
    "style": ParamSpec(kind="scalar", max_length=64),
    "n": ParamSpec(kind="integer"),
    "model": ParamSpec(kind="string", max_length=64),
    "speed": ParamSpec(kind="number"),
    "output_format": ParamSpec(kind="string", max_length=32),
    "image": ParamSpec(kind="media"),
    "mask": ParamSpec(kind="media"),
    "image_tail": ParamSpec(kind="media"),
    "samples": ParamSpec(kind="media_list", max_length=25),
    # A brand kit as design engines receive it (docs/brand-kits.md): `{"name", "colors":
    # [{"name", "hex"}], "font_family", "tone_words"}`, with its files as `brand_font` and
    # `brand_logo`. The gateway adds them from `brand_kit_id`; an engine that does not
    # declare them is not refused for them (it simply draws without the kit).
    "brand": ParamSpec(kind="object", max_length=8),
    "brand_font": ParamSpec(kind="media"),
    "brand_logo": ParamSpec(kind="media"),
})

#: The most bytes a request's plain `params` (input files aside) may take as JSON: values
#: are bounded one by one too, but a provider's object parameter (Canva's `data`) nests.
MAX_PARAMS_BYTES: Final = 32 * 1024


def common(*names: str, operations: frozenset[str] = frozenset()) -> dict[str, ParamSpec]:
    """The shared specs of `names` (for a provider's `params`), optionally limited to
    `operations`; called at class definition. Raises `KeyError` for a name that is not
    common."""
    return {name: msgspec.structs.replace(COMMON_PARAMS[name], operations=operations)
            for name in names}


def declare(name: str, **bounds: Any) -> ParamSpec:
    """The shared spec `name` with a provider's own `choices`, `minimum`, `maximum`,
    `default`, `description` (or `operations`); called at class definition, so a provider
    keeps the shared kind while saying which values it takes. Raises `KeyError` for a name
    that is not common."""
    return msgspec.structs.replace(COMMON_PARAMS[name], **bounds)


#: The operations of each media type (an operation of another type is refused at the edge).
TYPE_OPERATIONS: Final[Mapping[MediaType, frozenset[Operation]]] = MappingProxyType({
    "image": frozenset({"text_to_image", "image_edit", "image_variation"}),
    "audio": frozenset({"text_to_speech", "voice_clone"}),
    "video": frozenset({"text_to_video", "image_to_video"}),
    "design": frozenset({"design_autofill"}),
    "model_3d": frozenset({"text_to_3d", "image_to_3d"}),
    "text": frozenset({"complete"}),
})
