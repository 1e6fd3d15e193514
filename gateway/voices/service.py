"""Voices: a provider's catalogue as one caller may see it, and deleting a caller's clone.

A clone is made in the platform's account at the provider (or the tenant's own), where every
tenant's clones sit side by side; `gateway.providers.models.VoiceClone` records who owns
each (written when the `voice_clone` generation succeeds). A caller sees the provider's
premade voices and its own clones: a tenant-wide key the tenant's, a customer's key (or
`X-Customer-Id`) that customer's only. Listing is a free catalogue read, not a generation.
"""

from __future__ import annotations

import msgspec
from sqlalchemy import ColumnElement, delete, select

from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from gateway.providers.credentials import resolve
from gateway.providers.models import VoiceClone
from plugins.errors import ProviderError
from plugins.provider import Provider
from tenants.kernel.errors import InvalidRequest, NotFound, ProviderFailed

#: The provider category every caller may see; any other (`cloned`, `generated`,
#: `professional`, ...) only when the caller owns the voice.
PREMADE = "premade"


class VoiceOut(msgspec.Struct, kw_only=True):
    id: str
    name: str
    provider: str
    #: `premade` (the provider's, everyone's) or the provider's word for a clone.
    category: str
    #: True for the caller's own clone (it may delete it).
    owned: bool
    labels: dict[str, str]
    description: str | None
    preview_url: str | None
    object: str = "voice"


class VoiceList(msgspec.Struct, kw_only=True):
    data: list[VoiceOut]
    object: str = "list"


class VoiceDeleted(msgspec.Struct, kw_only=True):
    id: str
    provider: str
    deleted: bool = True
    object: str = "voice"


def _provider(runtime: Runtime, name: str) -> Provider:
    provider = runtime.plugins.get(name)
    if provider is None:
        raise InvalidRequest(f"no provider named {name!r}", code="unknown_provider",
                             param="provider")
    return provider


def _owned_by(principal: Principal) -> list[ColumnElement[bool]]:
    """The clause that keeps a caller to its own clones (tenant, then customer)."""
    where: list[ColumnElement[bool]] = [VoiceClone.tenant_id == principal.tenant]
    if principal.customer_id is not None:
        where.append(VoiceClone.customer_id == principal.customer_id)
    return where


class VoiceFilter(msgspec.Struct, frozen=True, kw_only=True):
    """`GET /v1/voices` filters: each given one must equal the voice's label of that name
    (case-insensitive; `language` also matches a regional tag's language, "en" matching
    "en-us"); a voice without the label is left out."""

    language: str | None = None
    gender: str | None = None
    accent: str | None = None

    def matches(self, labels: dict[str, str]) -> bool:
        for key, wanted in (("language", self.language), ("gender", self.gender),
                            ("accent", self.accent)):
            if wanted is None:
                continue
            have = labels.get(key, "").lower()
            wanted = wanted.strip().lower()
            if have != wanted and not (key == "language" and have.split("-")[0] == wanted):
                return False
        return True


async def list_voices(runtime: Runtime, principal: Principal, provider_name: str,
                      where: VoiceFilter | None = None) -> VoiceList:
    """Called for `GET /v1/voices?provider=`: the provider's premade voices and the caller's
    own clones, read from the provider with the tenant's credentials (its own key, else the
    platform's), kept to those `where` matches. Reserves and charges nothing. Raises
    `InvalidRequest` for an unknown provider or one without a voice catalogue,
    `ProviderFailed` when the provider's answer cannot be had."""
    provider = _provider(runtime, provider_name)
    tenant = await runtime.tenant_views.tenant(principal.tenant)
    try:
        voices = await provider.list_voices(resolve(runtime, tenant, provider.name),
                                            runtime.http)
    except ProviderError as exc:
        raise ProviderFailed(f"{provider_name} did not list its voices: {exc.message}",
                             code=exc.code) from exc
    if voices is None:
        raise InvalidRequest(f"{provider_name} has no voice catalogue", code="no_voices",
                             param="provider")
    async with runtime.db.session() as session:
        owned = set((await session.scalars(
            select(VoiceClone.voice_id).where(VoiceClone.provider == provider.name,
                                              *_owned_by(principal)))).all())
    return VoiceList(data=[
        VoiceOut(id=v.id, name=v.name, provider=provider.name, category=v.category,
                 owned=v.id in owned, labels=v.labels, description=v.description,
                 preview_url=v.preview_url)
        for v in voices if (v.category == PREMADE or v.id in owned)
        and (where is None or where.matches(v.labels))])


async def delete_voice(runtime: Runtime, principal: Principal, voice_id: str) -> VoiceDeleted:
    """Called for `DELETE /v1/voices/{voice_id}`: delete the caller's own clone at the
    provider, then forget it. Returns what was deleted; raises `NotFound` for a voice the
    caller does not own (another tenant's or customer's looks the same as none), and
    `ProviderFailed` when the provider refused (the record stays, so it can be retried)."""
    async with runtime.db.session() as session:
        clone = (await session.scalars(select(VoiceClone).where(
            VoiceClone.voice_id == voice_id, *_owned_by(principal)))).first()
    if clone is None:
        raise NotFound("no such voice", code="voice_not_found", param="voice_id")
    provider = _provider(runtime, clone.provider)
    tenant = await runtime.tenant_views.tenant(principal.tenant)
    try:
        await provider.delete_voice(voice_id, resolve(runtime, tenant, provider.name),
                                    runtime.http)
    except ProviderError as exc:
        raise ProviderFailed(f"{provider.name} did not delete the voice: {exc.message}",
                             code=exc.code) from exc
    async with runtime.db.transaction() as session:
        await session.execute(delete(VoiceClone).where(
            VoiceClone.id == clone.id, VoiceClone.tenant_id == principal.tenant))
    return VoiceDeleted(id=voice_id, provider=provider.name)
