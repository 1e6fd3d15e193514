"""`/v1/credits`: the caller's balance and history (API.md, "Credits")."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch, post
from litestar.params import FromPath, FromQuery

from gateway.core import origins
from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep, page_limit
from gateway.credits import packages, purchases, service, stripe
from gateway.credits.packages import PackageUpdate
from gateway.credits.purchases import (
    PackageCreate,
    PackageList,
    PackageOut,
    PurchaseCreate,
    PurchaseOut,
    WebhookReceived,
)
from gateway.credits.service import BalanceOut, TransactionList


class CreditsController(Controller):
    path = "/v1/credits"
    tags = ["credits"]
    guards = [requires("billing")]

    @get("/balance", summary="The calling wallet's balance")
    async def balance(self, principal: Principal, runtime: RuntimeDep) -> BalanceOut:
        """`available`, `pending` (reserved by running generations) and `posted` millicredits
        of the caller's wallet: its customer's in `mediahub` billing mode, else the
        tenant's."""
        return await service.balance(runtime, principal)

    @get("/transactions", summary="The calling wallet's history, newest first")
    async def transactions(self, principal: Principal, runtime: RuntimeDep,
                           limit: FromQuery[int | None] = None,
                           cursor: FromQuery[str | None] = None) -> TransactionList:
        """The caller's wallet's transfers (grants, reservations, charges, releases), newest
        first, cursor-paginated."""
        return await service.transactions(runtime, principal, limit=page_limit(limit),
                                          cursor=cursor)


class PurchaseController(Controller):
    path = "/v1/credits"
    tags = ["credits"]

    @get("/packages", summary="The credit packages on sale to the caller",
         guards=[requires()])
    async def packages(self, principal: Principal, runtime: RuntimeDep,
                       limit: FromQuery[int | None] = None,
                       cursor: FromQuery[str | None] = None) -> PackageList:
        """The tenant's active credit packages, as its customers may buy them."""
        return await purchases.list_packages(runtime, principal.tenant, active_only=True,
                                             limit=limit, cursor=cursor)

    @post("/packages", status_code=201, summary="Add a credit package to the tenant's offer",
          guards=[requires("tenant_admin", tenant_wide=True)])
    async def create_package(self, principal: Principal, runtime: RuntimeDep,
                             data: PackageCreate) -> PackageOut:
        """`tenant_admin` (or an owner/admin session): on sale at once."""
        return await packages.create_package(runtime, principal.tenant, data,
                                             actor=principal.actor)

    @post("/purchase", status_code=201, summary="Buy a credit package with Stripe Checkout",
          guards=[requires("billing")])
    async def purchase(self, request: Request[Any, Any, Any], principal: Principal,
                       runtime: RuntimeDep, data: PurchaseCreate) -> PurchaseOut:
        """Answers the Checkout page to send the buyer to; the credits arrive with Stripe's
        `checkout.session.completed` event. Bought from the tenant's portal domain, Stripe
        returns the buyer to that portal's `/portal/credits?purchase=<id>` page."""
        origin = await origins.portal_origin(runtime, principal.tenant, request.url.scheme,
                                               request.headers.get("host", ""))
        return await purchases.start_purchase(runtime, principal, data, origin)

    @get("/purchases/{purchase_id:str}", summary="One of the caller's purchases",
         guards=[requires("billing")])
    async def read_purchase(self, principal: Principal, runtime: RuntimeDep,
                            purchase_id: FromPath[str]) -> PurchaseOut:
        """A purchase started by the caller: its package, amount and status; another's is
        404."""
        return await purchases.read_purchase(runtime, principal, purchase_id)


class StripeWebhookController(Controller):
    path = "/v1/webhooks"
    tags = ["webhooks"]

    @post("/stripe", status_code=200, summary="Stripe events (signed)")
    async def stripe(self, request: Request[Any, Any, Any],
                     runtime: RuntimeDep) -> WebhookReceived:
        """Verifies `Stripe-Signature` over the raw body (400 on any problem), then applies
        the event once; repeats answer 200 with `outcome: duplicate`."""
        payload = await request.body()
        event = stripe.verify_event(runtime.settings, payload,
                                            request.headers.get("stripe-signature"))
        outcome = await purchases.apply_event(runtime, event)
        return WebhookReceived(received=True, outcome=outcome, event_id=event["id"])


class PackageController(Controller):
    """The tenant's own offer: `tenant_admin` (or an owner/admin session). Creating one is
    `POST /v1/credits/packages` (`PurchaseController`: one path, one controller)."""

    path = "/v1/credits/packages"
    tags = ["credits"]
    guards = [requires("tenant_admin", tenant_wide=True)]

    @patch("/{package_id:str}", summary="Change a credit package")
    async def update(self, principal: Principal, runtime: RuntimeDep,
                     package_id: FromPath[str], data: PackageUpdate) -> PackageOut:
        """Name, credits or price, for purchases started from now on (a checkout already
        open keeps what it was started with). 409 `package_retired` for a retired one."""
        return await packages.update_package(runtime, principal.tenant, package_id, data,
                                             actor=principal.actor)

    @post("/{package_id:str}/retire", status_code=200, summary="Retire a credit package")
    async def retire(self, principal: Principal, runtime: RuntimeDep,
                     package_id: FromPath[str]) -> PackageOut:
        """No longer listed nor sold (a purchase of it is a 404); kept for the purchases
        that name it. Retiring twice changes nothing."""
        return await packages.retire_package(runtime, principal.tenant, package_id,
                                             actor=principal.actor)
