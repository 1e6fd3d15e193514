"""Web push: a customer's browsers are told when its generations end (contract C2).

A portal subscribes a browser with the Push API, using the VAPID public key from
`GET /v1/push/key`, and stores the subscription with `POST /v1/push_subscriptions`. When a
generation of the customer succeeds or fails, `lifecycle.end` runs `generation_ended` in the
background (after the commit, under `SEND_TIMEOUT_S`): each subscription gets
`{"title","body","url":"/gallery/<id>","id","status","type"}`, encrypted for that browser
(RFC 8291, `aes128gcm`) by pywebpush and signed with the VAPID key (RFC 8292), POSTed to its
push service (RFC 8030) through the egress guard: the endpoint is the client's URL. A push
service that answers 404 or 410 has forgotten the subscription: it is deleted. Nothing is
retried: a notification that arrives late is worse than none.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import Final
from urllib.parse import urlsplit

import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from pywebpush import WebPusher
from sqlalchemy import delete, select

from gateway.core.auth import Principal
from gateway.core.egress import EgressError, check_url
from gateway.core.runtime import Runtime
from gateway.core.settings import Settings
from gateway.generations.models import SUCCEEDED, Generation
from gateway.generations.push_models import PushSubscription
from tenants.kernel.db import new_id, utcnow
from tenants.kernel.errors import InvalidRequest, NotFound
from tenants.users.models import User

log = logging.getLogger(__name__)

#: The most one generation's notifications may take, all subscriptions together.
SEND_TIMEOUT_S: Final = 20.0
#: One push service's answer.
POST_TIMEOUT_S: Final = 10.0
#: How long a push service keeps a notification for an offline browser (RFC 8030 `TTL`).
TTL_S: Final = 24 * 3600
#: Subscriptions one customer may hold; the oldest goes when one more subscribes.
MAX_PER_CUSTOMER: Final = 20


class PushKey(msgspec.Struct):
    """`GET /v1/push/key`: the VAPID application server key for `PushManager.subscribe`."""

    public_key: str


class PushKeys(msgspec.Struct):
    p256dh: str = msgspec.field()
    auth: str = msgspec.field()


class PushSubscriptionCreate(msgspec.Struct):
    """A browser's `PushSubscription.toJSON()` (its `expirationTime` is ignored)."""

    endpoint: str
    keys: PushKeys


class PushSubscriptionOut(msgspec.Struct):
    endpoint: str
    created_at: str
    object: str = "push_subscription"


class PushSubscriptionDeleted(msgspec.Struct):
    endpoint: str
    deleted: bool = True
    object: str = "push_subscription"


class Notification(msgspec.Struct):
    """What the service worker receives: `title`, `body` and `url` to show as they are, and
    the generation's `id`, `status` and `type` for a portal that words it in its own
    language."""

    title: str
    body: str
    url: str
    id: str
    status: str
    type: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def vapid_pair() -> tuple[str, str]:
    """A fresh VAPID key pair, (public, private) in base64url (an uncompressed P-256 point,
    the raw private value): what `mediahub demo` uses when none is set."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)
    return _b64url(public), _b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def public_key(settings: Settings) -> PushKey:
    """The VAPID public key; 404 `push_disabled` when web push is not configured."""
    if not settings.vapid_public_key or not settings.vapid_private_key:
        raise NotFound("web push is not configured on this server", code="push_disabled")
    return PushKey(public_key=settings.vapid_public_key)


def _customer(principal: Principal, settings: Settings) -> tuple[str, str]:
    public_key(settings)
    if principal.tenant_id is None or principal.customer_id is None:
        raise InvalidRequest("push notifications are a customer's: act for a customer (a "
                             "portal session, a customer key or X-Customer-Id)",
                             code="customer_required")
    return principal.tenant_id, principal.customer_id


def _check_keys(keys: PushKeys) -> None:
    for name, value, size in (("p256dh", keys.p256dh, 65), ("auth", keys.auth, 16)):
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except ValueError:
            raw = b""
        if len(raw) != size:
            raise InvalidRequest(f"keys.{name} must be {size} bytes, base64url",
                                 code="invalid_push_keys", param=f"keys.{name}")


async def subscribe(runtime: Runtime, principal: Principal,
                    body: PushSubscriptionCreate) -> PushSubscriptionOut:
    """Store (or refresh) a browser's subscription for the caller's customer; called by
    `POST /v1/push_subscriptions`. The endpoint must be an http(s) URL egress may reach."""
    tenant_id, customer_id = _customer(principal, runtime.settings)
    if len(body.endpoint) > 2000 or urlsplit(body.endpoint).scheme not in ("https", "http"):
        raise InvalidRequest("endpoint must be an https URL of at most 2000 characters",
                             code="invalid_endpoint", param="endpoint")
    _check_keys(body.keys)
    await check_url(runtime.egress, body.endpoint, param="endpoint")
    async with runtime.db.transaction() as session:
        row = await session.scalar(select(PushSubscription).where(
            PushSubscription.tenant_id == tenant_id,
            PushSubscription.customer_id == customer_id,
            PushSubscription.endpoint == body.endpoint))
        if row is None:
            held = list((await session.scalars(select(PushSubscription).where(
                PushSubscription.tenant_id == tenant_id,
                PushSubscription.customer_id == customer_id)
                .order_by(PushSubscription.created_at))).all())
            for old in held[:max(0, len(held) - MAX_PER_CUSTOMER + 1)]:
                await session.delete(old)
            row = PushSubscription(id=new_id("push"), tenant_id=tenant_id,
                                   customer_id=customer_id, endpoint=body.endpoint,
                                   p256dh=body.keys.p256dh, auth=body.keys.auth,
                                   user_id=principal.user_id, created_at=utcnow())
            session.add(row)
        else:
            row.p256dh, row.auth, row.user_id = body.keys.p256dh, body.keys.auth, principal.user_id
        return PushSubscriptionOut(endpoint=row.endpoint, created_at=row.created_at.isoformat())


async def unsubscribe(runtime: Runtime, principal: Principal,
                      endpoint: str) -> PushSubscriptionDeleted:
    """Forget the caller's customer's subscription of `endpoint`; 404 `not_found` when it
    has none. Called by `DELETE /v1/push_subscriptions`."""
    tenant_id, customer_id = _customer(principal, runtime.settings)
    async with runtime.db.transaction() as session:
        result = await session.execute(delete(PushSubscription).where(
            PushSubscription.tenant_id == tenant_id,
            PushSubscription.customer_id == customer_id,
            PushSubscription.endpoint == endpoint))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound("no such push subscription", param="endpoint")
    return PushSubscriptionDeleted(endpoint=endpoint)


#: What a notification calls each media type, and its two titles, per language (the
#: language the subscribing user chose, `users.locale`; English without one).
_WORDS: dict[str, dict[str, str]] = {
    "en": {"image": "image", "audio": "audio", "video": "video", "design": "design",
           "model_3d": "3D model", "text": "text"},
    "ar": {"image": "الصورة", "audio": "المقطع الصوتي", "video": "الفيديو",
           "design": "التصميم", "model_3d": "النموذج ثلاثي الأبعاد",
           "text": "النص"},
}


def _title(media_type: str, succeeded: bool, locale: str | None) -> str:
    if locale == "ar":
        what = _WORDS["ar"].get(media_type, media_type)
        return f"اكتمل إنشاء {what}" if succeeded else f"تعذّر إنشاء {what}"
    what = _WORDS["en"].get(media_type, media_type)
    return f"Your {what} is ready" if succeeded else f"Your {what} could not be made"


def _notification(generation: Generation, status: str, locale: str | None = None
                  ) -> Notification:
    prompt = generation.prompt if len(generation.prompt) <= 80 else generation.prompt[:79] + "…"
    return Notification(title=_title(generation.type, status == SUCCEEDED, locale), body=prompt,
                        url=f"/gallery/{generation.id}", id=generation.id, status=status,
                        type=generation.type)


def _encrypted(settings: Settings, subscription: PushSubscription,
               payload: bytes) -> tuple[bytes, dict[str, str]]:
    """The encrypted body and the headers of one push request (CPU work: run in a thread)."""
    info = {"endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}}
    encoded = WebPusher(info).encode(payload, content_encoding="aes128gcm")
    private = settings.vapid_private_key
    assert private is not None
    vapid = (Vapid02.from_pem(private.encode()) if private.lstrip().startswith("-----")
             else Vapid02.from_string(private_key=private))
    parts = urlsplit(subscription.endpoint)
    signed = vapid.sign({"sub": settings.vapid_subject, "aud": f"{parts.scheme}://{parts.netloc}",
                         "exp": int(time.time()) + 12 * 3600})
    headers = {str(k): str(v) for k, v in signed.items()}
    headers.update({"Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                    "TTL": str(TTL_S), "Urgency": "normal"})
    return bytes(encoded["body"]), headers


async def _send(runtime: Runtime, subscription: PushSubscription, payload: bytes) -> bool:
    """Send one notification; False when the push service says the subscription is gone."""
    body, headers = await asyncio.to_thread(_encrypted, runtime.settings, subscription, payload)
    try:
        answer = await runtime.egress.post(subscription.endpoint, body, headers,
                                           timeout_s=POST_TIMEOUT_S)
    except EgressError as exc:
        log.info("a push was not delivered: %s", exc.code, extra={"tenant_id":
                                                                   subscription.tenant_id})
        return True
    if answer.status_code in (404, 410):
        return False
    if answer.status_code >= 300:
        log.info("a push service refused a push (%d)", answer.status_code,
                 extra={"tenant_id": subscription.tenant_id})
    return True


async def generation_ended(runtime: Runtime, generation: Generation, status: str) -> None:
    """Notify every subscription of the generation's customer that it ended (`status`:
    succeeded or failed); gone subscriptions are deleted. Run in the background by
    `lifecycle.end`; does nothing when web push is off."""
    settings = runtime.settings
    if not settings.vapid_private_key or generation.customer_id is None:
        return
    async with runtime.db.session() as session:
        rows = (await session.execute(
            select(PushSubscription, User.locale)
            .outerjoin(User, (User.tenant_id == PushSubscription.tenant_id)
                       & (User.id == PushSubscription.user_id))
            .where(PushSubscription.tenant_id == generation.tenant_id,
                   PushSubscription.customer_id == generation.customer_id))).all()
    subscriptions = [row[0] for row in rows]
    if not subscriptions:
        return
    payloads = {locale: msgspec.json.encode(_notification(generation, status, locale))
                for locale in {row[1] for row in rows}}
    kept = await asyncio.gather(*(_send(runtime, s, payloads[locale]) for s, locale in rows),
                                return_exceptions=True)
    gone = [s.id for s, ok in zip(subscriptions, kept, strict=True) if ok is False]
    for s, ok in zip(subscriptions, kept, strict=True):
        if isinstance(ok, BaseException):
            log.warning("a push failed", exc_info=ok, extra={"tenant_id": s.tenant_id})
    if gone:
        async with runtime.db.transaction() as session:
            await session.execute(delete(PushSubscription).where(
                PushSubscription.tenant_id == generation.tenant_id,
                PushSubscription.id.in_(gone)))
