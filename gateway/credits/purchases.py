"""Credit packages and purchases through Stripe Checkout (API.md, "Credits").

- `GET /v1/credits/packages`: the caller's tenant's packages on sale (any valid key).
- `POST /v1/credits/purchase {package_id}` (`billing` scope): a hosted Checkout Session for
  the caller's wallet (`caller_wallet`: the customer's in `mediahub` billing mode, else the
  tenant's). The purchase row is committed first, Stripe is called outside any transaction,
  and the session is stored in a second transaction; a Stripe failure marks the purchase
  `failed` and answers 502 (503 when Stripe rate limits, or when Stripe is not configured).
- `GET /v1/credits/purchases/{id}`: one of the caller's purchases, for the portal's return
  page.
- `POST /v1/webhooks/stripe`: Stripe's events, signature and timestamp checked before
  anything is read; then, in one transaction, the event id is recorded and the event applied
  (`billing.purchases`), so a redelivered or racing event is a 200 that changes nothing.

The money is collected in the platform's Stripe account (no Stripe Connect yet).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

import msgspec

from billing import purchases
from billing.models import CreditPackage, Purchase
from gateway.core.auth import Principal
from gateway.core.deps import page_limit
from gateway.core.runtime import Runtime
from gateway.credits import stripe as stripe_gateway
from gateway.credits.service import caller_wallet
from tenants import service as tenants
from tenants.kernel.errors import InvalidRequest

log = logging.getLogger(__name__)


class PackageCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    #: Millicredits granted when the package is paid.
    credits: Annotated[int, msgspec.Meta(gt=0, le=10**15)]
    #: The price in the currency's smallest unit (cents for usd); Stripe's ceiling is 8 digits.
    price_cents: Annotated[int, msgspec.Meta(gt=0, le=99_999_999)]
    currency: Annotated[str, msgspec.Meta(pattern="^[a-z]{3}$")] = "usd"


class PackageOut(msgspec.Struct):
    id: str
    name: str
    credits: int
    price_cents: int
    currency: str
    active: bool
    created_at: datetime
    unit: str = "millicredit"
    object: str = "credit_package"


class PackageList(msgspec.Struct):
    data: list[PackageOut]
    next_cursor: str | None
    object: str = "list"


class PurchaseCreate(msgspec.Struct, forbid_unknown_fields=True):
    package_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class PurchaseOut(msgspec.Struct):
    """A purchase; `checkout_url` is Stripe's hosted payment page for it."""

    purchase_id: str
    session_id: str | None
    checkout_url: str | None
    status: str
    package_id: str
    credits: int
    price_cents: int
    currency: str
    refunded_cents: int
    clawed_back: int
    owed: int
    created_at: datetime
    unit: str = "millicredit"
    object: str = "credit_purchase"


class WebhookReceived(msgspec.Struct):
    received: bool
    #: `processed`, `duplicate` (already handled) or `ignored` (not an event we act on).
    outcome: str
    event_id: str


def package_out(package: CreditPackage) -> PackageOut:
    return PackageOut(id=package.id, name=package.name, credits=package.credits_mc,
                      price_cents=package.price_cents, currency=package.currency,
                      active=package.active, created_at=package.created_at)


def purchase_out(purchase: Purchase) -> PurchaseOut:
    return PurchaseOut(purchase_id=purchase.id, session_id=purchase.session_id,
                       checkout_url=purchase.checkout_url, status=purchase.status,
                       package_id=purchase.package_id, credits=purchase.credits_mc,
                       price_cents=purchase.price_cents, currency=purchase.currency,
                       refunded_cents=purchase.refunded_cents,
                       clawed_back=purchase.clawed_back_mc, owed=purchase.owed_mc,
                       created_at=purchase.created_at)


async def list_packages(runtime: Runtime, tenant_id: str, *, active_only: bool,
                        limit: int | None, cursor: str | None) -> PackageList:
    async with runtime.db.session() as session:
        await tenants.get_tenant(session, tenant_id)
        rows, next_cursor = await purchases.list_packages(
            session, tenant_id=tenant_id, active_only=active_only, limit=page_limit(limit),
            cursor=cursor)
        return PackageList(data=[package_out(p) for p in rows], next_cursor=next_cursor)


def _return_urls(runtime: Runtime, purchase_id: str, origin: str | None) -> tuple[str, str]:
    """Where Stripe sends the buyer back: the portal's credits page (an app page on the
    tenant's domain when the purchase was made there), naming the purchase."""
    base = (origin or runtime.settings.public_base_url).rstrip("/")
    page = f"{base}/portal/credits?purchase={quote(purchase_id)}"
    # `{CHECKOUT_SESSION_ID}` is filled in by Stripe.
    return f"{page}&session_id={{CHECKOUT_SESSION_ID}}", f"{page}&canceled=1"


async def start_purchase(runtime: Runtime, principal: Principal,
                         body: PurchaseCreate, origin: str | None = None) -> PurchaseOut:
    """Record a purchase of a package for the caller's wallet and open its Stripe Checkout
    session; the credits arrive with Stripe's `checkout.session.completed` event. `origin`
    (from `gateway.core.origins.portal_origin`) is where Stripe sends the buyer back."""
    tenant_id = principal.tenant
    account = await caller_wallet(runtime, principal)
    stripe_gateway.require_configured(runtime.settings)
    # tx1: the purchase exists before Stripe hears of it, so a paid session always has a row.
    async with runtime.db.transaction() as session:
        package = await purchases.active_package(session, tenant_id=tenant_id,
                                                 package_id=body.package_id)
        purchase = await purchases.record_purchase(session, tenant_id=tenant_id,
                                                   account_id=account, package=package)
        product_name = package.name
    success_url, cancel_url = _return_urls(runtime, purchase.id, origin)
    try:
        checkout = await stripe_gateway.create_checkout_session(
            runtime.settings, purchase_id=purchase.id, tenant_id=tenant_id,
            product_name=product_name, price_cents=purchase.price_cents,
            currency=purchase.currency, success_url=success_url, cancel_url=cancel_url)
    except Exception:
        async with runtime.db.transaction() as session:
            await purchases.mark_failed(session, tenant_id=tenant_id, purchase_id=purchase.id)
        raise
    # tx2: remember the session.
    async with runtime.db.transaction() as session:
        stored = await purchases.attach_session(
            session, tenant_id=tenant_id, purchase_id=purchase.id, session_id=checkout.id,
            checkout_url=checkout.url)
        return purchase_out(stored)


async def apply_event(runtime: Runtime, event: dict[str, Any]) -> str:
    """Record a verified event and apply it, in one transaction; returns the outcome."""
    event_id, event_type = event["id"], event["type"]
    obj = event["data"]["object"]
    try:
        async with runtime.db.transaction() as session:
            if not await purchases.record_event(session, event_id=event_id,
                                                event_type=event_type):
                return "duplicate"
            if event_type in ("checkout.session.completed",
                              "checkout.session.async_payment_succeeded"):
                result = await purchases.complete_checkout(
                    session, msgspec.convert(obj, purchases.CheckoutSessionObject))
            elif event_type == "checkout.session.expired":
                result = await purchases.close_checkout(
                    session, msgspec.convert(obj, purchases.CheckoutSessionObject),
                    purchases.EXPIRED)
            elif event_type == "checkout.session.async_payment_failed":
                result = await purchases.close_checkout(
                    session, msgspec.convert(obj, purchases.CheckoutSessionObject),
                    purchases.FAILED)
            elif event_type == "charge.refunded":
                result = await purchases.apply_refund(
                    session, msgspec.convert(obj, purchases.ChargeObject))
            else:
                return "ignored"
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"the {event_type} event's object is not as Stripe sends it: {exc}",
                             code="invalid_event") from exc
    log.info("stripe event applied", extra={"event_id": event_id, "event_type": event_type,
                                            "outcome": result.outcome,
                                            "purchase_id": result.purchase_id})
    return result.outcome


async def read_purchase(runtime: Runtime, principal: Principal, purchase_id: str) -> PurchaseOut:
    """One of the caller's wallet's purchases (another's is `NotFound`)."""
    account = await caller_wallet(runtime, principal)
    async with runtime.db.session() as session:
        return purchase_out(await purchases.get_purchase(
            session, tenant_id=principal.tenant, account_id=account, purchase_id=purchase_id))
