"""A submit's brand kit (docs/brand-kits.md): `brand_kit_id` resolved for the caller at the
kit's current version and applied to the request before it is planned
(`gateway.brand_kits.apply`), and what the generation records of it."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from gateway.brand_kits import apply
from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from gateway.generations.inputs import Inputs
from gateway.generations.schemas import GenerationCreate
from plugins.vocabulary import DEFAULT_OPERATIONS


@dataclass(frozen=True, slots=True)
class Branded:
    """The request with its kit applied (unchanged without one)."""

    body: GenerationCreate
    inputs: Inputs
    #: Names the kit added that a provider may not read (`planning.plan(optional=)`).
    optional: frozenset[str] = frozenset()
    kit_id: str | None = None
    kit_version: int | None = None

    @property
    def stamp(self) -> str | None:
        """`<kit id>:<version>` for the cache fingerprint (None: no kit)."""
        return None if self.kit_id is None else f"{self.kit_id}:{self.kit_version}"


async def with_kit(runtime: Runtime, principal: Principal, body: GenerationCreate,
                   inputs: Inputs) -> Branded:
    """Called by `submit` and `estimate` after the inputs are prepared, before planning:
    the body and inputs with `body.brand_kit_id`'s kit applied at its current version.
    Raises `NotFound` (`brand_kit_not_found`) for a kit the caller may not read."""
    if body.brand_kit_id is None:
        return Branded(body=body, inputs=inputs)
    kit = await apply.resolve(runtime, principal, body.brand_kit_id, body.type)
    use_text = body.prompt is None
    applied = apply.apply(kit, media_type=body.type,
                          operation=body.operation or DEFAULT_OPERATIONS[body.type],
                          prompt=body.text if use_text else body.prompt, params=body.params,
                          inputs=inputs.media)
    changed = msgspec.structs.replace(body, params=applied.params)
    if applied.prompt is not None:
        changed = msgspec.structs.replace(
            changed, **{"text" if use_text else "prompt": applied.prompt})
    return Branded(body=changed,
                   inputs=Inputs(media={**inputs.media, **applied.inputs},
                                 samples=inputs.samples),
                   optional=applied.optional, kit_id=kit.id, kit_version=kit.version)
