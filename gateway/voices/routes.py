"""`/v1/voices` (API.md, "Added for the second wave": voices). Thin: the service does it."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get
from litestar.params import FromPath, Parameter

from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep
from gateway.voices.service import VoiceDeleted, VoiceList, delete_voice, list_voices


class VoiceController(Controller):
    path = "/v1/voices"
    tags = ["voices"]

    @get("/", summary="A provider's premade voices and the caller's own clones",
         guards=[requires("read")])
    async def list_(self, principal: Principal, runtime: RuntimeDep,
                    provider: Annotated[str, Parameter(min_length=1, max_length=64)]
                    ) -> VoiceList:
        """The voices `provider` offers this caller: its premade voices, and the clones this
        tenant (or, for a customer, this customer) made with `voice_clone`; other tenants'
        clones never show. A free catalogue read: nothing is queued, reserved or charged.
        `422 unknown_provider` / `no_voices` for a provider without voices; `502` when the
        provider cannot be read."""
        return await list_voices(runtime, principal, provider)

    @delete("/{voice_id:str}", status_code=200, summary="Delete one of the caller's clones",
            guards=[requires("generate")])
    async def delete_(self, principal: Principal, runtime: RuntimeDep,
                      voice_id: FromPath[str]) -> VoiceDeleted:
        """Deletes the clone at the provider, then here. `404` for a voice that is not the
        caller's own clone (premade voices, and other tenants' or customers' clones)."""
        return await delete_voice(runtime, principal, voice_id)
