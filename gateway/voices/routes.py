"""`/v1/voices` (API.md, "Added for the second wave": voices). Thin: the service does it."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get
from litestar.params import FromPath, Parameter

from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep
from gateway.voices.service import (
    VoiceDeleted,
    VoiceFilter,
    VoiceList,
    delete_voice,
    list_voices,
)
from gateway.voices.templates import TemplateList, list_templates


class VoiceController(Controller):
    path = "/v1/voices"
    tags = ["voices"]

    @get("/", summary="A provider's premade voices and the caller's own clones",
         guards=[requires("read")])
    async def list_(self, principal: Principal, runtime: RuntimeDep,
                    provider: Annotated[str, Parameter(min_length=1, max_length=64)],
                    language: Annotated[str | None, Parameter(
                        min_length=1, max_length=32,
                        description="Only voices speaking this language (ISO 639-1 such as "
                                    "en or ar; en also matches en-us)")] = None,
                    gender: Annotated[str | None, Parameter(
                        min_length=1, max_length=32,
                        description="Only voices with this gender label (male, female, "
                                    "neutral)")] = None,
                    accent: Annotated[str | None, Parameter(
                        min_length=1, max_length=64,
                        description="Only voices with this accent label (american, "
                                    "british, ...)")] = None,
                    ) -> VoiceList:
        """The voices `provider` offers this caller: its premade voices, and the clones this
        tenant (or, for a customer, this customer) made with `voice_clone`; other tenants'
        clones never show. `labels` carries `language`, `gender` and `accent` where the
        provider knows them, and `language`/`gender`/`accent` keep the voices whose label
        matches (case-insensitive). A free catalogue read: nothing is queued, reserved or
        charged.
        `422 unknown_provider` / `no_voices` for a provider without voices; `502` when the
        provider cannot be read."""
        return await list_voices(runtime, principal, provider,
                                 VoiceFilter(language=language, gender=gender, accent=accent))

    @delete("/{voice_id:str}", status_code=200, summary="Delete one of the caller's clones",
            guards=[requires("generate")])
    async def delete_(self, principal: Principal, runtime: RuntimeDep,
                      voice_id: FromPath[str]) -> VoiceDeleted:
        """Deletes the clone at the provider, then here. `404` for a voice that is not the
        caller's own clone (premade voices, and other tenants' or customers' clones)."""
        return await delete_voice(runtime, principal, voice_id)


class DesignTemplateController(Controller):
    path = "/v1/design/templates"
    tags = ["design"]

    @get("/", summary="The design templates design_autofill can fill",
         guards=[requires("read")])
    async def list_(self, principal: Principal, runtime: RuntimeDep,
                    provider: Annotated[str | None, Parameter(
                        min_length=1, max_length=64,
                        description="Only this provider's templates (as GET /v1/providers "
                                    "names it)")] = None,
                    ) -> TemplateList:
        """Each template's `id` (what `design_autofill` takes: `params.template` for the
        local engine, `params.brand_template_id` for Canva), its `fields` (the keys of
        `params.data`, with kind `text`, `image` or `chart`), the `formats` it exports to,
        and `brand` (the account's own brand template rather than a built-in one). Without
        `provider`: every design provider configured for this tenant (one that cannot be
        read is left out). A free catalogue read: nothing is queued, reserved or charged.
        `422 unknown_provider` / `no_templates` for a provider without templates; `502` when
        the named provider cannot be read."""
        return await list_templates(runtime, principal, provider)
