"""Credit packages and their purchases through Stripe Checkout: the bookkeeping side.

A tenant offers packages (`credits_mc` for `price_cents` in `currency`). A purchase is one
Checkout Session for one package, paid into the platform's own Stripe account (no Stripe
Connect yet: the operator collects the money and settles with tenants outside mediahub).

The money-moving steps are driven by Stripe's events, and each is exactly-once:

- `record_event` inserts the event id into `stripe_events` first (`ON CONFLICT DO NOTHING`);
  a redelivery, or a concurrent twin that waited on the primary key, finds it taken and
  changes nothing;
- `complete_checkout` locks the purchase row and grants its credits with the idempotency key
  `purchase:<id>`, so two *different* events about one payment grant once as well;
- `apply_refund` works on Stripe's cumulative `amount_refunded`: what is taken back is
  computed for the whole refunded amount and the earlier take-backs are subtracted, so events
  that repeat, race or arrive out of order never take more than `credits_mc` in total.

Stripe calls never happen here: the caller commits the purchase row, calls Stripe, and stores
the session in a second transaction (CONVENTIONS 6).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing import ledger
from billing.models import CreditPackage, Purchase, StripeEvent
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import Conflict, InsufficientCredits, NotFound
from tenants.kernel.pagination import keyset, page

log = logging.getLogger(__name__)

# Purchase statuses.
OPEN = "open"                      # row written; Checkout Session created (or being created)
FAILED = "failed"                  # Stripe refused to create the session, or payment failed
EXPIRED = "expired"                # the Checkout Session expired unpaid
PAID = "paid"                      # credits granted
PARTIALLY_REFUNDED = "partially_refunded"
REFUNDED = "refunded"
COMPLETED = (PAID, PARTIALLY_REFUNDED, REFUNDED)

#: How many times a refund's take-back is recomputed when spending races it.
_CLAWBACK_ATTEMPTS = 3


# --- packages -----------------------------------------------------------------------------

async def create_package(session: AsyncSession, *, tenant_id: str, name: str, credits_mc: int,
                         price_cents: int, currency: str) -> CreditPackage:
    """Add a package to a tenant's offer; called by the operator API."""
    package = CreditPackage(id=new_id("pkg"), tenant_id=tenant_id, name=name,
                            credits_mc=credits_mc, price_cents=price_cents,
                            currency=currency, active=True, created_at=utcnow())
    session.add(package)
    await session.flush()
    return package


async def list_packages(session: AsyncSession, *, tenant_id: str, active_only: bool,
                        limit: int, cursor: str | None
                        ) -> tuple[list[CreditPackage], str | None]:
    """A page of a tenant's packages, oldest first, and the next page's cursor (or None)."""
    query = select(CreditPackage).where(CreditPackage.tenant_id == tenant_id)
    if active_only:
        query = query.where(CreditPackage.active.is_(True))
    query = keyset(query, CreditPackage.created_at, CreditPackage.id, cursor, limit,
                   newest_first=False)
    return page(list(await session.scalars(query)), limit)


async def get_package(session: AsyncSession, *, tenant_id: str,
                      package_id: str) -> CreditPackage:
    """A tenant's package, on sale or retired; `NotFound` for another tenant's."""
    package = await session.scalar(
        select(CreditPackage).where(CreditPackage.id == package_id,
                                    CreditPackage.tenant_id == tenant_id))
    if package is None:
        raise NotFound("no such credit package", code="package_not_found")
    return package


async def active_package(session: AsyncSession, *, tenant_id: str,
                         package_id: str) -> CreditPackage:
    """A tenant's package that is on sale; `NotFound` for another tenant's or a retired one."""
    package = await session.scalar(
        select(CreditPackage).where(CreditPackage.id == package_id,
                                    CreditPackage.tenant_id == tenant_id,
                                    CreditPackage.active.is_(True)))
    if package is None:
        raise NotFound("no such credit package", code="package_not_found", param="package_id")
    return package


# --- purchases ----------------------------------------------------------------------------

async def record_purchase(session: AsyncSession, *, tenant_id: str, account_id: str,
                          package: CreditPackage) -> Purchase:
    """Write the purchase row (status `open`) before Stripe is called.

    The package's credits and price are copied, so changing the package later never changes
    what an open checkout pays or grants.
    """
    if package.tenant_id != tenant_id:
        raise NotFound("no such credit package", code="package_not_found", param="package_id")
    purchase = Purchase(id=new_id("pur"), tenant_id=tenant_id, account_id=account_id,
                        package_id=package.id, credits_mc=package.credits_mc,
                        price_cents=package.price_cents, currency=package.currency,
                        status=OPEN, session_id=None, payment_intent=None, checkout_url=None,
                        refunded_cents=0, clawed_back_mc=0, owed_mc=0, created_at=utcnow())
    session.add(purchase)
    await session.flush()
    return purchase


async def _purchase(session: AsyncSession, tenant_id: str, purchase_id: str,
                    *, lock: bool = False) -> Purchase:
    query = select(Purchase).where(Purchase.id == purchase_id, Purchase.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    found = await session.scalar(query)
    if found is None:
        raise NotFound("no such purchase", code="purchase_not_found")
    return found


async def attach_session(session: AsyncSession, *, tenant_id: str, purchase_id: str,
                         session_id: str, checkout_url: str) -> Purchase:
    """Store the Checkout Session Stripe created for a purchase (the second transaction)."""
    purchase = await _purchase(session, tenant_id, purchase_id, lock=True)
    if purchase.session_id is None:
        purchase.session_id = session_id
    purchase.checkout_url = checkout_url
    await session.flush()
    return purchase


async def mark_failed(session: AsyncSession, *, tenant_id: str, purchase_id: str) -> None:
    """Stripe could not create the session: the purchase is failed (unless already paid)."""
    purchase = await _purchase(session, tenant_id, purchase_id, lock=True)
    if purchase.status == OPEN:
        purchase.status = FAILED
    await session.flush()


async def get_purchase(session: AsyncSession, *, tenant_id: str, account_id: str,
                       purchase_id: str) -> Purchase:
    """A purchase as its buyer sees it: only the wallet that made it may read it."""
    purchase = await _purchase(session, tenant_id, purchase_id)
    if purchase.account_id != account_id:
        raise NotFound("no such purchase", code="purchase_not_found")
    return purchase


# --- Stripe events ------------------------------------------------------------------------

class CheckoutSessionObject(msgspec.Struct):
    """The fields of Stripe's `checkout.session` object that bookkeeping reads."""

    id: str
    payment_status: str | None = None
    payment_intent: str | None = None
    client_reference_id: str | None = None
    metadata: dict[str, str] | None = None
    amount_total: int | None = None
    currency: str | None = None


class ChargeObject(msgspec.Struct):
    """The fields of Stripe's `charge` object that bookkeeping reads."""

    id: str
    amount_refunded: int
    payment_intent: str | None = None
    currency: str | None = None
    metadata: dict[str, str] | None = None


class EventResult(msgspec.Struct):
    """What handling an event did: `processed`, `duplicate` or `ignored`, and its purchase."""

    outcome: str
    purchase_id: str | None = None


class PurchaseNotCompleted(Conflict):
    """A refund arrived for a purchase whose completion has not been seen yet.

    The transaction (event id included) rolls back and the webhook answers non-2xx, so Stripe
    delivers the refund again later, after the completion.
    """

    default_code = "purchase_not_completed"


def _insert_ignoring_conflicts(session: AsyncSession, table: Any) -> Any:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(table)


async def record_event(session: AsyncSession, *, event_id: str, event_type: str) -> bool:
    """Remember a Stripe event id; False when it was already handled (or is being handled).

    On PostgreSQL a concurrent twin waits on the primary key until the first commits, then
    conflicts; on SQLite writers are serialised. Either way exactly one sees True.
    """
    inserted = await session.scalar(
        _insert_ignoring_conflicts(session, StripeEvent)
        .values(id=event_id, type=event_type[:100], received_at=utcnow())
        .on_conflict_do_nothing()
        .returning(StripeEvent.id))
    return inserted is not None


async def _purchase_for_checkout(session: AsyncSession,
                                 checkout: CheckoutSessionObject) -> Purchase | None:
    metadata = checkout.metadata or {}
    for purchase_id in (metadata.get("purchase_id"), checkout.client_reference_id):
        if purchase_id:
            found = await session.scalar(
                select(Purchase).where(Purchase.id == purchase_id).with_for_update())
            if found is not None:
                return found
    return await session.scalar(
        select(Purchase).where(Purchase.session_id == checkout.id).with_for_update())


async def complete_checkout(session: AsyncSession,
                            checkout: CheckoutSessionObject) -> EventResult:
    """A paid Checkout Session: grant the purchase's credits to its wallet, exactly once.

    Called for `checkout.session.completed` and `checkout.session.async_payment_succeeded`.
    Sessions that are not ours, not paid yet (a delayed payment method), or that belong to a
    purchase already completed change nothing.
    """
    if checkout.payment_status not in ("paid", "no_payment_required"):
        return EventResult("ignored")
    purchase = await _purchase_for_checkout(session, checkout)
    if purchase is None:
        log.warning("stripe checkout for no known purchase", extra={"session_id": checkout.id})
        return EventResult("ignored")
    tenant_in_metadata = (checkout.metadata or {}).get("tenant_id")
    if tenant_in_metadata and tenant_in_metadata != purchase.tenant_id:
        log.error("stripe checkout names another tenant than its purchase",
                  extra={"session_id": checkout.id, "purchase_id": purchase.id})
        return EventResult("ignored", purchase.id)
    if purchase.session_id is not None and purchase.session_id != checkout.id:
        log.error("stripe checkout is not the session created for its purchase",
                  extra={"session_id": checkout.id, "purchase_id": purchase.id})
        return EventResult("ignored", purchase.id)
    if purchase.status in COMPLETED:
        return EventResult("duplicate", purchase.id)
    await ledger.grant(session, tenant_id=purchase.tenant_id, to_account=purchase.account_id,
                       amount_mc=purchase.credits_mc, kind="purchase",
                       idempotency_key=f"purchase:{purchase.id}",
                       reason=f"credit purchase {purchase.id}")
    purchase.session_id = checkout.id
    purchase.payment_intent = checkout.payment_intent
    purchase.status = PAID
    await session.flush()
    return EventResult("processed", purchase.id)


async def close_checkout(session: AsyncSession, checkout: CheckoutSessionObject,
                         status: str) -> EventResult:
    """An open purchase whose session expired or whose delayed payment failed."""
    purchase = await _purchase_for_checkout(session, checkout)
    if purchase is None or purchase.status != OPEN:
        return EventResult("ignored", purchase.id if purchase else None)
    purchase.status = status
    await session.flush()
    return EventResult("processed", purchase.id)


def refund_target_mc(credits_mc: int, price_cents: int, refunded_cents: int) -> int:
    """Credits to have taken back in total once `refunded_cents` of the price are refunded.

    Rounded down, so the total never exceeds `credits_mc` and a full refund takes exactly it.
    """
    refunded = max(0, min(refunded_cents, price_cents))
    return credits_mc * refunded // price_cents


async def apply_refund(session: AsyncSession, charge: ChargeObject) -> EventResult:
    """A refunded charge: take the refunded share of the credits back from the wallet.

    `amount_refunded` is cumulative, so only what is newly refunded since the purchase's
    `refunded_cents` counts. The wallet gives what it has available (reservations are left
    alone); the shortfall is recorded in `owed_mc` rather than overdrawing it.
    """
    purchase = None
    if charge.payment_intent:
        purchase = await session.scalar(
            select(Purchase).where(Purchase.payment_intent == charge.payment_intent)
            .with_for_update())
    purchase_id = (charge.metadata or {}).get("purchase_id")
    if purchase is None and purchase_id:
        # Set through `payment_intent_data.metadata`: finds a purchase whose completion
        # has not been seen yet (Stripe does not order its events).
        purchase = await session.scalar(
            select(Purchase).where(Purchase.id == purchase_id).with_for_update())
    if purchase is None:
        return EventResult("ignored")  # a charge that is not a credit purchase
    if purchase.status not in COMPLETED:
        raise PurchaseNotCompleted(
            "this refund is for a purchase whose payment has not been recorded yet; "
            "deliver it again later")
    refunded_cents = min(charge.amount_refunded, purchase.price_cents)
    if refunded_cents <= purchase.refunded_cents:
        return EventResult("duplicate", purchase.id)  # an older or repeated refund state
    due_mc = (refund_target_mc(purchase.credits_mc, purchase.price_cents, refunded_cents)
              - purchase.clawed_back_mc - purchase.owed_mc)
    taken_mc = 0
    if due_mc > 0:
        taken_mc = await _take_back(session, purchase, due_mc, refunded_cents)
    purchase.refunded_cents = refunded_cents
    purchase.clawed_back_mc += taken_mc
    purchase.owed_mc += max(0, due_mc - taken_mc)
    purchase.status = REFUNDED if refunded_cents >= purchase.price_cents else PARTIALLY_REFUNDED
    await session.flush()
    if due_mc > taken_mc:
        log.warning("refund took back less than refunded: recorded as owed",
                    extra={"purchase_id": purchase.id, "owed_mc": due_mc - taken_mc})
    return EventResult("processed", purchase.id)


async def _take_back(session: AsyncSession, purchase: Purchase, due_mc: int,
                     refunded_cents: int) -> int:
    """Claw back up to `due_mc`; retried in a savepoint when a spend races the balance read."""
    for attempt in range(_CLAWBACK_ATTEMPTS):
        try:
            async with session.begin_nested():
                transfer = await ledger.clawback(
                    session, tenant_id=purchase.tenant_id, from_account=purchase.account_id,
                    amount_mc=due_mc,
                    idempotency_key=f"refund:{purchase.id}:{refunded_cents}",
                    reason=f"refund of credit purchase {purchase.id}")
            return int(transfer.amount_mc)
        except InsufficientCredits:
            if attempt == _CLAWBACK_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")
