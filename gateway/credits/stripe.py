"""The Stripe calls and the webhook signature check, through the official `stripe` library.

Money from credit purchases is collected in the platform's own Stripe account
(`MEDIAHUB_STRIPE_API_KEY`); there is no Stripe Connect yet, so a tenant's customers pay the
platform and the operator settles with the tenant outside mediahub.

- `create_checkout_session` makes one hosted Checkout Session (`mode=payment`, one line item
  with inline `price_data`) and sends the purchase id as the `Idempotency-Key`, so a retried
  create (the library retries network errors, 409 and 5xx) never makes two sessions. It must
  be called outside any database transaction. Stripe's errors become `StripeFailed` (502) or
  `StripeUnavailable` (503, rate limited), never a raw library exception.
- `verify_event` checks `Stripe-Signature` (`t=…,v1=HMAC-SHA256(secret, "t.body")`) with the
  library, which refuses timestamps older than the tolerance; timestamps more than the
  tolerance in the future are refused here too. Any problem is a 400 `invalid_signature`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Final

import msgspec
import stripe

from gateway.core.settings import Settings
from tenants.kernel.errors import InvalidRequest, ProviderFailed, Unavailable

log = logging.getLogger(__name__)

#: Seconds a webhook's timestamp may be off, either way (Stripe's default tolerance).
TOLERANCE_S: Final = 300
#: Network retries of one Stripe call (same Idempotency-Key every time).
MAX_NETWORK_RETRIES: Final = 2
TIMEOUT_S: Final = 30.0


class StripeNotConfigured(Unavailable):
    default_code = "stripe_not_configured"


class StripeFailed(ProviderFailed):
    default_code = "stripe_error"


class StripeUnavailable(Unavailable):
    default_code = "stripe_rate_limited"


class SignatureInvalid(InvalidRequest):
    status = 400
    default_code = "invalid_signature"


class CheckoutSession(msgspec.Struct, frozen=True):
    id: str
    url: str


def require_configured(settings: Settings) -> None:
    """Raise `StripeNotConfigured` (503) unless a Stripe secret key is set."""
    if not settings.stripe_api_key:
        raise StripeNotConfigured(
            "credit purchases are not available: the operator has not configured Stripe "
            "(MEDIAHUB_STRIPE_API_KEY is not set)")


def _client(settings: Settings) -> tuple[stripe.StripeClient, stripe.HTTPXClient]:
    """A client for one call, with its own httpx pool (closed by the caller)."""
    require_configured(settings)
    assert settings.stripe_api_key is not None
    http = stripe.HTTPXClient(timeout=TIMEOUT_S)
    base_addresses: Any = {}
    if settings.stripe_base_url:
        base_addresses["api"] = settings.stripe_base_url.rstrip("/")
    client = stripe.StripeClient(settings.stripe_api_key, base_addresses=base_addresses,
                                 http_client=http, max_network_retries=MAX_NETWORK_RETRIES)
    return client, http


def _failure(exc: stripe.StripeError) -> Exception:
    """Stripe's error, as the client of our API should see it (details go to the log)."""
    extra = {"stripe_request_id": exc.request_id} if exc.request_id else {}
    log.warning("stripe call failed", extra={"stripe_error": type(exc).__name__,
                                             "http_status": exc.http_status,
                                             "stripe_request_id": exc.request_id})
    if isinstance(exc, stripe.RateLimitError):
        return StripeUnavailable("Stripe is rate limiting the platform; try again shortly",
                                 extra=extra)
    if isinstance(exc, stripe.APIConnectionError):
        return StripeFailed("Stripe could not be reached; try again", code="stripe_unreachable",
                            extra=extra)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return StripeFailed("Stripe refused the platform's API key; the operator must fix "
                            "MEDIAHUB_STRIPE_API_KEY", code="stripe_authentication_failed",
                            extra=extra)
    if isinstance(exc, stripe.InvalidRequestError | stripe.IdempotencyError):
        param = getattr(exc, "param", None)
        message = "Stripe refused the checkout"
        if param:
            message += f" (parameter {param})"
        if exc.user_message:
            message += f": {exc.user_message}"
        return StripeFailed(message, code="stripe_invalid_request", extra=extra)
    return StripeFailed("Stripe failed to create the checkout; try again", extra=extra)


async def create_checkout_session(settings: Settings, *, purchase_id: str, tenant_id: str,
                                  product_name: str, price_cents: int, currency: str,
                                  success_url: str, cancel_url: str) -> CheckoutSession:
    """Create the hosted Checkout Session for a purchase; its id is the idempotency key."""
    client, http = _client(settings)
    metadata = {"purchase_id": purchase_id, "tenant_id": tenant_id}
    try:
        created = await client.v1.checkout.sessions.create_async(
            params={
                "mode": "payment",
                "line_items": [{
                    "price_data": {"currency": currency, "unit_amount": price_cents,
                                   "product_data": {"name": product_name}},
                    "quantity": 1,
                }],
                "success_url": success_url,
                "cancel_url": cancel_url,
                "client_reference_id": purchase_id,
                "metadata": metadata,
                # Copied onto the charge, so a refund finds its purchase even if it arrives
                # before the completed checkout.
                "payment_intent_data": {"metadata": metadata},
            },
            options={"idempotency_key": purchase_id},
        )
    except stripe.StripeError as exc:
        raise _failure(exc) from exc
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
    if not created.url:
        raise StripeFailed("Stripe created a checkout session without a payment page URL")
    return CheckoutSession(id=created.id, url=created.url)


def _timestamp(header: str) -> int:
    """The `t=` of a header the library already accepted (it reads the first one too)."""
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            return int(value)
    raise ValueError("no timestamp")


def verify_event(settings: Settings, payload: bytes, header: str | None,
                 *, now: float | None = None) -> dict[str, Any]:
    """The event of a webhook delivery whose signature and timestamp are good.

    Raises `SignatureInvalid` (400) for a missing, malformed or wrong signature, a timestamp
    more than `TOLERANCE_S` away in either direction, or a body that is not an event;
    `StripeNotConfigured` (503) when no webhook secret is set, so Stripe keeps retrying.
    """
    secret = settings.stripe_webhook_secret
    if not secret:
        raise StripeNotConfigured("Stripe webhooks are not accepted: "
                                  "MEDIAHUB_STRIPE_WEBHOOK_SECRET is not set")
    if not header:
        raise SignatureInvalid("the Stripe-Signature header is missing", param="Stripe-Signature")
    try:
        text = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(text, header, secret, tolerance=TOLERANCE_S)
        timestamp = _timestamp(header)
    except (UnicodeDecodeError, ValueError, stripe.SignatureVerificationError) as exc:
        raise SignatureInvalid("the Stripe-Signature header does not verify",
                               param="Stripe-Signature") from exc
    if timestamp > (time.time() if now is None else now) + TOLERANCE_S:
        raise SignatureInvalid("the Stripe-Signature timestamp is in the future",
                               code="timestamp_in_future", param="Stripe-Signature")
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise SignatureInvalid("the webhook body is not JSON", code="invalid_event") from exc
    if (not isinstance(event, dict) or not isinstance(event.get("id"), str)
            or not 0 < len(event["id"]) <= 255
            or not isinstance(event.get("type"), str)
            or not isinstance(event.get("data"), dict)
            or not isinstance(event["data"].get("object"), dict)):
        raise SignatureInvalid("the webhook body is not a Stripe event", code="invalid_event")
    return event
