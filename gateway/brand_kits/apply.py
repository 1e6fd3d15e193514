"""Applying a brand kit to a generation (docs/brand-kits.md, "Applying"): the submit names a
kit (`brand_kit_id`); `resolve` reads it at its current version, if the caller may read it,
and `apply` turns it into changes of the request before it is planned, so providers never
learn of kits:

- **image**: the prompt gets the guidance `GUIDANCE` (`"{prompt}\\n\\nStyle: a, b. Tone: c,
  d."`, each part left out when its words are empty) and `dont_words` join
  `params.negative_prompt` (`", "`-separated, after what the request gave);
- **audio** (`text_to_speech`): `params.voice` is the kit's `default_voice` when the request
  names none;
- **design**: `params.brand` (`{"name", "colors", "font_family", "tone_words"}`) and the
  kit's first font and first logo as the inputs `brand_font` and `brand_logo`.

Names the kit added (and the request did not give) are *optional*: planning does not refuse
a provider that does not read them (it simply does without), where a name the caller gave
itself would be refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from gateway.brand_kits import assets
from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from plugins.media import MediaInput
from plugins.vocabulary import COMMON_PARAMS
from tenants.brand_kits import service as kits
from tenants.brand_kits.models import FONT, LOGO
from tenants.brand_kits.schemas import KitContent

#: How an image prompt carries the kit's style and tone words (docs/brand-kits.md).
GUIDANCE: Final = "{prompt}\n\n{guidance}"
STYLE: Final = "Style: {words}."
TONE: Final = "Tone: {words}."
#: The negative prompt's limit (the shared vocabulary's): dont words that would pass it are
#: left out rather than have every provider refuse the request.
MAX_NEGATIVE: Final = COMMON_PARAMS["negative_prompt"].max_length


@dataclass(frozen=True, slots=True)
class ResolvedKit:
    """A kit at the version a generation uses, with its applied files loaded (design)."""

    id: str
    version: int
    content: KitContent
    font: MediaInput | None = None
    font_family: str | None = None
    logo: MediaInput | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """The request after the kit: its prompt, plain params and added inputs, and the names
    the kit added that a provider may ignore."""

    prompt: str | None
    params: dict[str, Any]
    inputs: dict[str, MediaInput] = field(default_factory=dict)
    optional: frozenset[str] = frozenset()


async def resolve(runtime: Runtime, principal: Principal, kit_id: str,
                  media_type: str) -> ResolvedKit:
    """The kit at its current version, for a submit by `principal`; raises `NotFound`
    (`brand_kit_not_found`, `param: brand_kit_id`) when the caller may not read it. The
    font and logo bytes are loaded for design requests only (nothing else draws them)."""
    async with runtime.db.session() as session:
        kit = await kits.get_kit(session, assets.caller(principal), kit_id)
        files = await kits.assets_of(session, kit.tenant_id, kit.id) \
            if media_type == "design" else []
    font = next((a for a in files if a.kind == FONT), None)
    logo = next((a for a in files if a.kind == LOGO), None)
    return ResolvedKit(
        id=kit.id, version=kit.version, content=kit.content,
        font=await assets.load(runtime, font.storage_key, font.content_type) if font else None,
        font_family=font.family if font else None,
        logo=await assets.load(runtime, logo.storage_key, logo.content_type) if logo else None)


def guided_prompt(prompt: str, content: KitContent) -> str:
    """`prompt` with the kit's style and tone words (`GUIDANCE`); unchanged without any."""
    parts = [template.format(words=", ".join(words))
             for template, words in ((STYLE, content.style_words), (TONE, content.tone_words))
             if words]
    if not parts or not prompt.strip():
        return prompt
    return GUIDANCE.format(prompt=prompt, guidance=" ".join(parts))


def negative_prompt(given: object, dont_words: list[str]) -> str | None:
    """The request's negative prompt followed by the kit's dont words, `", "`-separated,
    within `MAX_NEGATIVE` characters (None: nothing to say)."""
    parts = [given] if isinstance(given, str) and given.strip() else []
    for word in dont_words:
        if len(", ".join([*parts, word])) > MAX_NEGATIVE:
            break
        parts.append(word)
    return ", ".join(parts) or None


def brand_param(kit: ResolvedKit) -> dict[str, Any]:
    """`params.brand` as design engines read it (plugins.vocabulary, `brand`)."""
    return {"name": kit.content.name,
            "colors": [{"name": c.name, "hex": c.hex} for c in kit.content.colors],
            "font_family": kit.font_family, "tone_words": list(kit.content.tone_words)}


def apply(kit: ResolvedKit, *, media_type: str, operation: str, prompt: str | None,
          params: dict[str, Any], inputs: dict[str, MediaInput]) -> Applied:
    """The request's prompt, params and inputs with the kit applied (module docstring);
    pure. What the request gave itself always wins over the kit."""
    params = dict(params)
    added: dict[str, MediaInput] = {}
    optional: set[str] = set()
    if media_type == "image":
        if prompt is not None:
            prompt = guided_prompt(prompt, kit.content)
        negative = negative_prompt(params.get("negative_prompt"), kit.content.dont_words)
        if negative is not None and negative != params.get("negative_prompt"):
            if "negative_prompt" not in params:
                optional.add("negative_prompt")
            params["negative_prompt"] = negative
    elif media_type == "audio" and operation == "text_to_speech":
        if params.get("voice") is None and kit.content.default_voice is not None:
            params["voice"] = kit.content.default_voice
            optional.add("voice")
    elif media_type == "design":
        if "brand" not in params:
            params["brand"] = brand_param(kit)
            optional.add("brand")
        for name, media in (("brand_font", kit.font), ("brand_logo", kit.logo)):
            if media is not None and name not in inputs:
                added[name] = media
                optional.add(name)
    return Applied(prompt=prompt, params=params, inputs=added, optional=frozenset(optional))
