"""Web push (contract C2) against a fake push service over real HTTP that accepts RFC 8030
requests the way browsers' push services do: it checks the VAPID `Authorization` (RFC 8292:
an ES256 JWT for its origin, signed by the server's key) and the `aes128gcm` encoding, and the
test decrypts the notification with the subscription's own private key (RFC 8291, http_ece).
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy import select, update

from gateway.core.settings import SettingsError, load_settings
from gateway.generations.push import vapid_pair
from gateway.generations.push_models import PushSubscription
from tenants.users import service as users
from tests.conftest import Gateway, make_settings, running_gateway
from tests.gateway.generations.test_isolation import customer_key
from tests.gateway.people.support import http_server

IMAGE = {"type": "image", "provider": "local-image", "prompt": "a lighthouse at dusk",
         "params": {"size": "256x128"}}
SUBJECT = "mailto:ops@example.com"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """A browser's push subscription: its ECDH key pair and auth secret (RFC 8291)."""

    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def subscription(self) -> dict[str, Any]:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint,
                "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth,
                                 version="aes128gcm")
        decoded: dict[str, Any] = json.loads(plain)
        return decoded


class PushService:
    """An RFC 8030 push service: POST /push/<name> with a VAPID-signed, aes128gcm-encoded
    body answers 201; `gone` names answer 410 (an expired subscription)."""

    def __init__(self, vapid_public: str) -> None:
        self.vapid_public = vapid_public
        self.origin = ""
        self.received: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.refused: list[str] = []
        self.gone: set[str] = set()

    def _vapid_ok(self, authorization: str) -> bool:
        scheme, _, params = authorization.partition(" ")
        fields = dict(p.strip().split("=", 1) for p in params.split(","))
        if scheme.lower() != "vapid" or fields.get("k") != self.vapid_public:
            return False
        head, claims, signature = fields["t"].split(".")
        raw = unb64url(signature)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(),
                                                              unb64url(fields["k"]))
        try:
            public.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                               int.from_bytes(raw[32:], "big")),
                          f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        except Exception:
            return False
        payload = json.loads(unb64url(claims))
        return (json.loads(unb64url(head))["alg"] == "ES256"
                and payload["aud"] == self.origin and payload["sub"] == SUBJECT
                and time.time() < payload["exp"] <= time.time() + 24 * 3600)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        name = scope["path"].rsplit("/", 1)[-1]
        if (scope["method"] != "POST" or not scope["path"].startswith("/push/")
                or headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers
                or not self._vapid_ok(headers.get("authorization", ""))):
            self.refused.append(name)
            status = 400 if scope["method"] == "POST" else 405
        elif name in self.gone:
            status = 410
        else:
            await self.received.put((name, body))
            status = 201
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


@contextlib.asynccontextmanager
async def push_service(vapid_public: str) -> AsyncIterator[PushService]:
    service = PushService(vapid_public)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    async with http_server(service, sock) as base:  # type: ignore[arg-type]
        service.origin = base
        yield service


async def settled(gw: Gateway) -> None:
    """Wait for the background pushes this process started (they run after the job)."""
    async with asyncio.timeout(30):
        while gw.services.background:
            await asyncio.gather(*gw.services.background, return_exceptions=True)


async def test_a_finished_generation_is_pushed_to_its_customers_browsers(
        database_url: str, tmp_path: Path) -> None:
    public, private = vapid_pair()
    settings = make_settings(database_url, tmp_path, vapid_public_key=public,
                             vapid_private_key=private, vapid_subject=SUBJECT,
                             # The fake push service listens on loopback, which egress
                             # refuses unless allowed (as webhook tests do).
                             egress_allow_networks=("127.0.0.0/8",))
    async with running_gateway(settings) as gw, push_service(public) as service:
        tenant = await gw.tenant()
        alice = await customer_key(gw, tenant.id, "alice")
        bob = await customer_key(gw, tenant.id, "bob")
        key = await gw.client.get("/v1/push/key", headers=alice)
        assert key.status_code == 200, key.text
        assert key.json() == {"public_key": public}

        phone, old_laptop = (Browser(f"{service.origin}/push/phone"),
                             Browser(f"{service.origin}/push/laptop"))
        bobs = Browser(f"{service.origin}/push/bobs")
        service.gone.add("laptop")
        for who, browser in ((alice, phone), (alice, old_laptop), (bob, bobs)):
            r = await gw.client.post("/v1/push_subscriptions", headers=who,
                                     json=browser.subscription())
            assert r.status_code == 201, r.text
            assert r.json()["endpoint"] == browser.endpoint
        # Subscribing again refreshes the same row.
        again = await gw.client.post("/v1/push_subscriptions", headers=alice,
                                     json=phone.subscription())
        assert again.status_code == 201

        done = await gw.finish(alice, IMAGE)
        assert done["status"] == "succeeded"
        async with asyncio.timeout(30):
            name, body = await service.received.get()
        assert name == "phone"
        notification = phone.decrypt(body)
        assert notification["url"] == f"/gallery/{done['id']}"
        assert notification["title"] == "Your image is ready"
        assert notification["body"] == IMAGE["prompt"]
        assert (notification["id"], notification["status"], notification["type"]) == (
            done["id"], "succeeded", "image")
        await settled(gw)
        # Bob's browser heard nothing of Alice's generation; nothing was refused.
        assert service.received.empty()
        assert service.refused == []
        # The push service said the laptop's subscription is gone: it was deleted.
        async with gw.runtime.db.session() as session:
            endpoints = set((await session.scalars(select(PushSubscription.endpoint).where(
                PushSubscription.tenant_id == tenant.id))).all())
        assert endpoints == {phone.endpoint, bobs.endpoint}

        # A browser subscribed by a user who chose Arabic is told in Arabic.
        async with gw.runtime.db.transaction() as session:
            customer_id = await session.scalar(select(PushSubscription.customer_id).where(
                PushSubscription.endpoint == phone.endpoint))
            assert customer_id is not None
            user = await users.create_user(session, tenant.id, email="alice@example.com",
                                           role="customer", customer_id=customer_id)
            user.locale = "ar"
            await session.execute(update(PushSubscription).where(
                PushSubscription.endpoint == phone.endpoint).values(user_id=user.id))
        arabic = await gw.finish(alice, IMAGE)
        async with asyncio.timeout(30):
            name, body = await service.received.get()
        assert name == "phone"
        notification = phone.decrypt(body)
        assert notification["title"] == "اكتمل إنشاء الصورة"
        assert notification["url"] == f"/gallery/{arabic['id']}"
        await settled(gw)

        # Unsubscribe: once; then it is unknown. Bob cannot remove Alice's.
        theirs = await gw.client.delete("/v1/push_subscriptions", headers=bob,
                                        params={"endpoint": phone.endpoint})
        assert theirs.status_code == 404
        gone = await gw.client.delete("/v1/push_subscriptions", headers=alice,
                                      params={"endpoint": phone.endpoint})
        assert gone.status_code == 200, gone.text
        assert gone.json()["deleted"] is True
        twice = await gw.client.delete("/v1/push_subscriptions", headers=alice,
                                       params={"endpoint": phone.endpoint})
        assert twice.status_code == 404


async def test_subscriptions_are_checked(database_url: str, tmp_path: Path) -> None:
    public, private = vapid_pair()
    # No loopback allowance: a loopback endpoint is refused, as any private address.
    settings = make_settings(database_url, tmp_path, vapid_public_key=public,
                             vapid_private_key=private)
    async with running_gateway(settings) as gw:
        tenant = await gw.tenant()
        alice = await customer_key(gw, tenant.id, "alice")
        browser = Browser("http://127.0.0.1:9/push/x")
        private_endpoint = await gw.client.post("/v1/push_subscriptions", headers=alice,
                                                json=browser.subscription())
        assert private_endpoint.status_code == 422, private_endpoint.text
        assert private_endpoint.json()["error"]["param"] == "endpoint"
        bad_keys = await gw.client.post("/v1/push_subscriptions", headers=alice, json={
            "endpoint": "https://push.example.com/x", "keys": {"p256dh": "AAAA", "auth": "x"}})
        assert bad_keys.status_code == 422
        assert bad_keys.json()["error"]["code"] == "invalid_push_keys"
        # A tenant-wide key acts for no customer: whose browser would it be?
        no_customer = await gw.client.post("/v1/push_subscriptions", headers=tenant.auth,
                                           json=browser.subscription())
        assert no_customer.status_code == 422
        assert no_customer.json()["error"]["code"] == "customer_required"


async def test_without_vapid_keys_push_is_disabled(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    alice = await customer_key(gateway, tenant.id, "alice")
    r = await gateway.client.get("/v1/push/key", headers=alice)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "push_disabled"
    s = await gateway.client.post("/v1/push_subscriptions", headers=alice,
                                  json=Browser("https://push.example.com/x").subscription())
    assert s.status_code == 404
    assert s.json()["error"]["code"] == "push_disabled"
    # And nothing is sent when a generation ends.
    done = await gateway.finish(alice, IMAGE)
    assert done["status"] == "succeeded"


def test_vapid_settings_come_in_pairs_and_the_private_key_is_never_shown(
        tmp_path: Path) -> None:
    public, private = vapid_pair()
    base = {"MEDIAHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"}
    with pytest.raises(SettingsError, match="set both or neither"):
        load_settings({**base, "MEDIAHUB_VAPID_PUBLIC_KEY": public})
    with pytest.raises(SettingsError, match="MEDIAHUB_VAPID_SUBJECT"):
        load_settings({**base, "MEDIAHUB_VAPID_SUBJECT": "ops@example.com"})
    settings = load_settings({**base, "MEDIAHUB_VAPID_PUBLIC_KEY": public,
                              "MEDIAHUB_VAPID_PRIVATE_KEY": private})
    assert settings.vapid_private_key == private
    assert private not in repr(settings)
    assert settings.secret_key.decode() not in repr(settings)
    assert public in repr(settings)
