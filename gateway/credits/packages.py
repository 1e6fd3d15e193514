"""Credit packages as their tenant's owners manage them (issue #13): create, change, retire.

A purchase copies its package's credits and price when it starts (`billing.purchases.
record_purchase`), so changing a package never changes a checkout already open. A retired
package stays (purchases name it) but is no longer listed to buyers nor sold (404
`package_not_found` on purchase); retiring twice changes nothing; a retired package cannot be
changed (409 `package_retired`). Each change is audited in its transaction.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from billing import purchases
from billing.models import CreditPackage
from gateway.core.runtime import Runtime
from gateway.credits.purchases import PackageCreate, PackageOut, package_out
from tenants import audit
from tenants import service as tenants
from tenants.kernel.errors import Conflict


class PackageUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | msgspec.UnsetType = (
        msgspec.UNSET)
    #: Millicredits granted when the package is paid.
    credits: Annotated[int, msgspec.Meta(gt=0, le=10**15)] | msgspec.UnsetType = msgspec.UNSET
    #: The price in the currency's smallest unit.
    price_cents: Annotated[int, msgspec.Meta(gt=0, le=99_999_999)] | msgspec.UnsetType = (
        msgspec.UNSET)


async def create_package(runtime: Runtime, tenant_id: str, body: PackageCreate, *,
                         actor: str) -> PackageOut:
    """Add a package to a tenant's offer (the operator's or the tenant's own route);
    audited `package.created`."""
    async with runtime.db.transaction() as session:
        await tenants.get_tenant(session, tenant_id)
        package = await purchases.create_package(
            session, tenant_id=tenant_id, name=body.name, credits_mc=body.credits,
            price_cents=body.price_cents, currency=body.currency)
        out = package_out(package)
        await audit.record(session, tenant_id=tenant_id, actor=actor, action="package.created",
                           target_type="credit_package", target_id=package.id, after=out)
        return out


async def update_package(runtime: Runtime, tenant_id: str, package_id: str,
                         body: PackageUpdate, *, actor: str) -> PackageOut:
    """Change a package's name, credits or price for purchases started from now on;
    audited `package.updated`."""
    async with runtime.db.transaction() as session:
        package = await purchases.get_package(session, tenant_id=tenant_id,
                                              package_id=package_id)
        if not package.active:
            raise Conflict("a retired package cannot be changed; create a new one",
                           code="package_retired")
        before = package_out(package)
        _apply(package, body)
        await session.flush()
        out = package_out(package)
        await audit.record(session, tenant_id=tenant_id, actor=actor, action="package.updated",
                           target_type="credit_package", target_id=package.id,
                           before=before, after=out)
        return out


def _apply(package: CreditPackage, body: PackageUpdate) -> None:
    if body.name is not msgspec.UNSET:
        package.name = body.name
    if body.credits is not msgspec.UNSET:
        package.credits_mc = body.credits
    if body.price_cents is not msgspec.UNSET:
        package.price_cents = body.price_cents


async def retire_package(runtime: Runtime, tenant_id: str, package_id: str, *,
                         actor: str) -> PackageOut:
    """Take a package off sale for good (kept for the purchases that name it); audited
    `package.retired` the first time."""
    async with runtime.db.transaction() as session:
        package = await purchases.get_package(session, tenant_id=tenant_id,
                                              package_id=package_id)
        if package.active:
            before = package_out(package)
            package.active = False
            await session.flush()
            await audit.record(session, tenant_id=tenant_id, actor=actor,
                               action="package.retired", target_type="credit_package",
                               target_id=package.id, before=before, after=package_out(package))
        return package_out(package)
