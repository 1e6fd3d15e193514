"""Brand kit use cases behind `/v1/brand_kits` (docs/brand-kits.md): each opens one
transaction, calls the kit rules (`tenants.brand_kits.service`) and renders. Files are
`gateway/brand_kits/assets.py`."""

from __future__ import annotations

from gateway.brand_kits.assets import caller
from gateway.core.auth import Principal
from gateway.core.runtime import Runtime
from tenants.brand_kits import service as kits
from tenants.brand_kits.schemas import (
    BrandKitCreate,
    BrandKitDeleted,
    BrandKitList,
    BrandKitOut,
    BrandKitUpdate,
    VersionList,
    VersionOut,
)


async def create(runtime: Runtime, principal: Principal, data: BrandKitCreate) -> BrandKitOut:
    """`POST /v1/brand_kits`: the new kit at version 1."""
    async with runtime.db.transaction() as session:
        kit = await kits.create_kit(session, caller(principal), data)
        return kits.render(kit, [])


async def read(runtime: Runtime, principal: Principal, kit_id: str) -> BrandKitOut:
    """`GET /v1/brand_kits/{id}`: the kit at its current version."""
    async with runtime.db.session() as session:
        kit = await kits.get_kit(session, caller(principal), kit_id)
        return kits.render(kit, await kits.assets_of(session, kit.tenant_id, kit.id))


async def update(runtime: Runtime, principal: Principal, kit_id: str,
                 data: BrandKitUpdate) -> BrandKitOut:
    """`PATCH /v1/brand_kits/{id}`: the kit at its new version."""
    async with runtime.db.transaction() as session:
        kit = await kits.update_kit(session, caller(principal), kit_id, data)
        return kits.render(kit, await kits.assets_of(session, kit.tenant_id, kit.id))


async def delete(runtime: Runtime, principal: Principal, kit_id: str) -> BrandKitDeleted:
    """`DELETE /v1/brand_kits/{id}`: the kit, its versions and its files are gone."""
    async with runtime.db.transaction() as session:
        keys = await kits.delete_kit(session, caller(principal), kit_id)
    for key in keys:
        await runtime.storage.delete(key)
    return BrandKitDeleted(id=kit_id)


async def list_(runtime: Runtime, principal: Principal, *, owner_type: str | None,
                limit: int, after: str | None) -> BrandKitList:
    """`GET /v1/brand_kits`: the kits the caller may read, newest first."""
    async with runtime.db.session() as session:
        rows, cursor = await kits.list_kits(session, caller(principal), owner_type=owner_type,
                                            limit=limit, cursor=after)
        data = [kits.render(kit, await kits.assets_of(session, kit.tenant_id, kit.id))
                for kit in rows]
    return BrandKitList(data=data, next_cursor=cursor)


async def versions(runtime: Runtime, principal: Principal, kit_id: str, *, limit: int,
                   after: int | None) -> VersionList:
    """`GET /v1/brand_kits/{id}/versions`: its snapshots, newest first."""
    async with runtime.db.session() as session:
        kit = await kits.get_kit(session, caller(principal), kit_id)
        rows, cursor = await kits.list_versions(session, kit.tenant_id, kit.id, limit=limit,
                                                after=after)
    return VersionList(data=[kits.version_out(kit_id, row) for row in rows],
                       next_cursor=cursor)


async def version(runtime: Runtime, principal: Principal, kit_id: str,
                  number: int) -> VersionOut:
    """`GET /v1/brand_kits/{id}/versions/{n}`: the kit as it was at version n."""
    async with runtime.db.session() as session:
        kit = await kits.get_kit(session, caller(principal), kit_id)
        row = await kits.get_version(session, kit.tenant_id, kit.id, number)
    return kits.version_out(kit_id, row)
