"""Brand kits, the database side of `/v1/brand_kits` (the routes, file checks and storage
are `gateway/brand_kits/`).

Who may do what (docs/brand-kits.md):

- **tenant kits**: everyone of the tenant reads them (customers too, so their portal can
  apply them); staff with the `owner`, `admin` or `developer` role, and keys not bound to a
  customer that hold `generate` or `tenant_admin`, change them.
- **team kits**: the team's members read them; its owners and admins change them; a
  tenant-wide `tenant_admin` caller (no customer) reads and changes every team's.
- **customer kits**: that customer only.

A kit the caller may not read is a 404 `brand_kit_not_found`, whoever owns it; one it may
read but not change is a 403 `brand_kit_role`.

Every change (fields, a file added or removed) adds one to `version` and keeps a snapshot of
the kit as it then is (`brand_kit_versions`), in the change's transaction, audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenants import audit
from tenants.brand_kits.models import (
    CUSTOMER,
    FONT,
    TEAM,
    TENANT,
    BrandKit,
    BrandKitAsset,
    BrandKitVersion,
)
from tenants.brand_kits.schemas import (
    AssetOut,
    BrandKitCreate,
    BrandKitOut,
    BrandKitUpdate,
    KitContent,
    KitSnapshot,
    OwnerOut,
    VersionOut,
)
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import InvalidRequest, NotFound, PermissionDenied
from tenants.kernel.pagination import keyset, page
from tenants.teams.models import MANAGERS, Team, TeamMember

#: Staff roles that change the tenant's kits.
STAFF_WRITERS = frozenset({"owner", "admin", "developer"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls, as the kit rules need it (built from the gateway's `Principal`)."""

    tenant_id: str
    customer_id: str | None
    #: A signed-in user's role (`owner`, ..., `customer`); None for a key.
    role: str | None
    scopes: frozenset[str]
    actor: str

    @property
    def tenant_wide_admin(self) -> bool:
        return self.customer_id is None and "tenant_admin" in self.scopes

    @property
    def writes_tenant_kits(self) -> bool:
        if self.customer_id is not None:
            return False
        if self.role is not None:
            return self.role in STAFF_WRITERS
        return bool(self.scopes & {"generate", "tenant_admin"})


def not_found() -> NotFound:
    return NotFound("no such brand kit", code="brand_kit_not_found", param="brand_kit_id")


async def _team_role(session: AsyncSession, caller: Caller, team_id: str) -> str | None:
    if caller.customer_id is None:
        return None
    return await session.scalar(select(TeamMember.role).where(
        TeamMember.tenant_id == caller.tenant_id, TeamMember.team_id == team_id,
        TeamMember.customer_id == caller.customer_id, TeamMember.removed_at.is_(None)))


async def _may(session: AsyncSession, caller: Caller, kit: BrandKit) -> tuple[bool, bool]:
    """(may read, may change) `kit`, which is of the caller's tenant."""
    if kit.owner_type == TENANT:
        return True, caller.writes_tenant_kits
    if kit.owner_type == CUSTOMER:
        own = caller.customer_id is not None and kit.owner_id == caller.customer_id
        return own, own
    if caller.tenant_wide_admin:
        return True, True
    role = await _team_role(session, caller, kit.owner_id)
    return role is not None, role in MANAGERS


async def get_kit(session: AsyncSession, caller: Caller, kit_id: str, *,
                  write: bool = False, lock: bool = False) -> BrandKit:
    """The kit if the caller may read it (`write`: change it); `NotFound` when it may not
    read it, `PermissionDenied` (`brand_kit_role`) when it may read but not change it.
    `lock`: the row is locked for the transaction (PostgreSQL), so versions are taken one
    at a time."""
    query = select(BrandKit).where(BrandKit.id == kit_id,
                                   BrandKit.tenant_id == caller.tenant_id)
    if lock:
        query = query.with_for_update()
    kit = await session.scalar(query)
    if kit is None:
        raise not_found()
    readable, writable = await _may(session, caller, kit)
    if not readable:
        raise not_found()
    if write and not writable:
        raise PermissionDenied("you may use this brand kit but not change it",
                               code="brand_kit_role")
    return kit


async def assets_of(session: AsyncSession, tenant_id: str, kit_id: str) -> list[BrandKitAsset]:
    """The kit's files, oldest first (the first font and logo are the ones applied)."""
    return list(await session.scalars(
        select(BrandKitAsset).where(BrandKitAsset.tenant_id == tenant_id,
                                    BrandKitAsset.kit_id == kit_id)
        .order_by(BrandKitAsset.created_at, BrandKitAsset.id)))


def asset_out(asset: BrandKitAsset) -> AssetOut:
    return AssetOut(id=asset.id, kind="font" if asset.kind == FONT else "logo",
                    filename=asset.filename, content_type=asset.content_type,
                    bytes=asset.bytes, sha256=asset.sha256, width=asset.width,
                    height=asset.height, family=asset.family,
                    url=f"/v1/brand_kits/{asset.kit_id}/assets/{asset.id}",
                    created_at=asset.created_at)


def _snapshot(kit: BrandKit, assets: Sequence[BrandKitAsset]) -> KitSnapshot:
    outs = [asset_out(a) for a in assets]
    return KitSnapshot(version=kit.version, content=kit.content,
                       fonts=[a for a in outs if a.kind == FONT],
                       logos=[a for a in outs if a.kind != FONT])


def render(kit: BrandKit, assets: Sequence[BrandKitAsset]) -> BrandKitOut:
    snap = _snapshot(kit, assets)
    content = kit.content
    return BrandKitOut(id=kit.id, owner=OwnerOut(type=kit.owner_type, id=kit.owner_id),
                       version=kit.version, name=content.name, colors=content.colors,
                       fonts=snap.fonts, logos=snap.logos,
                       default_voice=content.default_voice, tone_words=content.tone_words,
                       style_words=content.style_words, do_words=content.do_words,
                       dont_words=content.dont_words, created_at=kit.created_at,
                       updated_at=kit.updated_at)


async def _keep_version(session: AsyncSession, caller: Caller, kit: BrandKit) -> KitSnapshot:
    snap = _snapshot(kit, await assets_of(session, kit.tenant_id, kit.id))
    session.add(BrandKitVersion(kit_id=kit.id, version=kit.version, tenant_id=kit.tenant_id,
                                snapshot=snap, created_by=caller.actor))
    await session.flush()
    return snap


async def _bump(session: AsyncSession, caller: Caller, kit: BrandKit) -> KitSnapshot:
    kit.version += 1
    kit.updated_at = utcnow()
    await session.flush()
    return await _keep_version(session, caller, kit)


async def _owner(session: AsyncSession, caller: Caller,
                 data: BrandKitCreate) -> tuple[str, str, bool]:
    """(owner type, owner id, may the caller create it)."""
    kind = data.owner.type if data.owner is not None else (
        CUSTOMER if caller.customer_id is not None else TENANT)
    if kind == TENANT:
        return TENANT, caller.tenant_id, caller.writes_tenant_kits
    if kind == CUSTOMER:
        if caller.customer_id is None:
            raise InvalidRequest("a customer's kit is made by that customer: use a customer "
                                 "key, X-Customer-Id or a customer's session",
                                 code="customer_required", param="owner.type")
        return CUSTOMER, caller.customer_id, True
    team_id = data.owner.id if data.owner is not None else None
    if team_id is None:
        raise InvalidRequest("owner.id must name the team", code="missing_field",
                             param="owner.id")
    if caller.tenant_wide_admin:
        exists = await session.scalar(select(Team.id).where(
            Team.id == team_id, Team.tenant_id == caller.tenant_id))
        if exists is None:
            raise NotFound("no such team", code="team_not_found", param="owner.id")
        return TEAM, team_id, True
    role = await _team_role(session, caller, team_id)
    if role is None:
        raise NotFound("no such team", code="team_not_found", param="owner.id")
    return TEAM, team_id, role in MANAGERS


async def create_kit(session: AsyncSession, caller: Caller, data: BrandKitCreate) -> BrandKit:
    """`POST /v1/brand_kits`: a kit at version 1 (snapshot kept), audited
    (`brand_kit.created`). Raises `PermissionDenied` (`brand_kit_role`) when the caller may
    not make kits for that owner, `NotFound` for a team it is not in."""
    owner_type, owner_id, allowed = await _owner(session, caller, data)
    if not allowed:
        raise PermissionDenied("you may not make brand kits for this owner",
                               code="brand_kit_role", param="owner")
    content = KitContent(name=data.name, colors=data.colors, default_voice=data.default_voice,
                         tone_words=data.tone_words, style_words=data.style_words,
                         do_words=data.do_words, dont_words=data.dont_words)
    now = utcnow()
    kit = BrandKit(id=new_id("bk"), tenant_id=caller.tenant_id, owner_type=owner_type,
                   owner_id=owner_id, version=1, content=content, created_by=caller.actor,
                   created_at=now, updated_at=now)
    session.add(kit)
    await session.flush()
    snap = await _keep_version(session, caller, kit)
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="brand_kit.created", target_type="brand_kit", target_id=kit.id,
                       after=snap)
    return kit


async def update_kit(session: AsyncSession, caller: Caller, kit_id: str,
                     data: BrandKitUpdate) -> BrandKit:
    """`PATCH /v1/brand_kits/{id}`: the given fields change and the version goes up by one
    (an empty change too: the caller asked for a new version). Audited."""
    kit = await get_kit(session, caller, kit_id, write=True, lock=True)
    before = kit.content
    changes = {name: value for name, value in msgspec.structs.asdict(data).items()
               if value is not msgspec.UNSET}
    kit.content = msgspec.structs.replace(kit.content, **changes)
    snap = await _bump(session, caller, kit)
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="brand_kit.updated", target_type="brand_kit", target_id=kit.id,
                       before=before, after=snap)
    return kit


async def delete_kit(session: AsyncSession, caller: Caller, kit_id: str) -> list[str]:
    """`DELETE /v1/brand_kits/{id}`: the kit, its versions and files go; returns the storage
    keys to delete once committed. Generations made with it keep its id and version."""
    kit = await get_kit(session, caller, kit_id, write=True, lock=True)
    assets = await assets_of(session, caller.tenant_id, kit.id)
    keys = [a.storage_key for a in assets]
    for table in (BrandKitAsset, BrandKitVersion):
        await session.execute(delete(table).where(table.tenant_id == caller.tenant_id,
                                                  table.kit_id == kit.id))
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="brand_kit.deleted", target_type="brand_kit", target_id=kit.id,
                       before=_snapshot(kit, assets))
    await session.delete(kit)
    await session.flush()
    return keys


async def list_kits(session: AsyncSession, caller: Caller, *, owner_type: str | None,
                    limit: int, cursor: str | None) -> tuple[list[BrandKit], str | None]:
    """The kits the caller may read, newest first, optionally of one owner type (422
    `invalid_owner_type` for a type that does not exist, so a typo is not an empty list)."""
    if owner_type is not None and owner_type not in (TENANT, TEAM, CUSTOMER):
        raise InvalidRequest("owner_type must be tenant, team or customer",
                             code="invalid_owner_type", param="owner_type")
    teams = select(TeamMember.team_id).where(
        TeamMember.tenant_id == caller.tenant_id,
        TeamMember.customer_id == caller.customer_id, TeamMember.removed_at.is_(None))
    visible = [BrandKit.owner_type == TENANT]
    if caller.customer_id is not None:
        visible.append((BrandKit.owner_type == CUSTOMER)
                       & (BrandKit.owner_id == caller.customer_id))
        visible.append((BrandKit.owner_type == TEAM) & BrandKit.owner_id.in_(teams))
    elif caller.tenant_wide_admin:
        visible.append(BrandKit.owner_type == TEAM)
    query = select(BrandKit).where(BrandKit.tenant_id == caller.tenant_id, or_(*visible))
    if owner_type is not None:
        query = query.where(BrandKit.owner_type == owner_type)
    rows = await session.scalars(keyset(query, BrandKit.created_at, BrandKit.id, cursor,
                                        limit))
    return page(list(rows), limit)


async def add_asset(session: AsyncSession, caller: Caller, kit_id: str,
                    asset: BrandKitAsset) -> BrandKit:
    """Record a checked, stored file on the kit (a new version), audited
    (`brand_kit.asset_added`). The caller must be allowed to change the kit (checked again
    here, in the transaction that writes)."""
    kit = await get_kit(session, caller, kit_id, write=True, lock=True)
    session.add(asset)
    await session.flush()
    snap = await _bump(session, caller, kit)
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="brand_kit.asset_added", target_type="brand_kit",
                       target_id=kit.id, after=snap)
    return kit


async def remove_asset(session: AsyncSession, caller: Caller, kit_id: str,
                       asset_id: str) -> str:
    """Take a file off the kit (a new version), audited; returns its storage key to delete
    once committed. `NotFound` (`brand_asset_not_found`) for a file the kit does not have."""
    kit = await get_kit(session, caller, kit_id, write=True, lock=True)
    asset = await get_asset(session, caller.tenant_id, kit.id, asset_id)
    key = asset.storage_key
    await session.delete(asset)
    await session.flush()
    snap = await _bump(session, caller, kit)
    await audit.record(session, tenant_id=caller.tenant_id, actor=caller.actor,
                       action="brand_kit.asset_removed", target_type="brand_kit",
                       target_id=kit.id, before=asset_out(asset), after=snap)
    return key


async def get_asset(session: AsyncSession, tenant_id: str, kit_id: str,
                    asset_id: str) -> BrandKitAsset:
    """One file of the kit (the kit's readability is the caller's to check first)."""
    asset = await session.scalar(select(BrandKitAsset).where(
        BrandKitAsset.id == asset_id, BrandKitAsset.kit_id == kit_id,
        BrandKitAsset.tenant_id == tenant_id))
    if asset is None:
        raise NotFound("no such file in this brand kit", code="brand_asset_not_found",
                       param="asset_id")
    return asset


def version_out(kit_id: str, row: BrandKitVersion) -> VersionOut:
    snap, content = row.snapshot, row.snapshot.content
    return VersionOut(kit_id=kit_id, version=row.version, name=content.name,
                      colors=content.colors, fonts=snap.fonts, logos=snap.logos,
                      default_voice=content.default_voice, tone_words=content.tone_words,
                      style_words=content.style_words, do_words=content.do_words,
                      dont_words=content.dont_words, created_by=row.created_by,
                      created_at=row.created_at)


async def get_version(session: AsyncSession, tenant_id: str, kit_id: str,
                      version: int) -> BrandKitVersion:
    """The kit's snapshot at `version` (readability checked by the caller); `NotFound`
    (`brand_kit_version_not_found`) for one it never had."""
    row = await session.scalar(select(BrandKitVersion).where(
        BrandKitVersion.tenant_id == tenant_id, BrandKitVersion.kit_id == kit_id,
        BrandKitVersion.version == version))
    if row is None:
        raise NotFound(f"brand kit has no version {version}",
                       code="brand_kit_version_not_found", param="version")
    return row


async def list_versions(session: AsyncSession, tenant_id: str, kit_id: str, *, limit: int,
                        after: int | None) -> tuple[list[BrandKitVersion], int | None]:
    """The kit's versions newest first, older than `after` when given; and the next page's
    `after` (None at the end)."""
    query = select(BrandKitVersion).where(BrandKitVersion.tenant_id == tenant_id,
                                          BrandKitVersion.kit_id == kit_id)
    if after is not None:
        query = query.where(BrandKitVersion.version < after)
    rows = list(await session.scalars(
        query.order_by(BrandKitVersion.version.desc()).limit(limit + 1)))
    kept = rows[:limit]
    return kept, kept[-1].version if len(rows) > limit and kept else None
