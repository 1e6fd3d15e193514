"""Standard Webhooks signing (https://www.standardwebhooks.com/).

Secrets look like `whsec_<base64 of 32 bytes>`; the key is the base64-decoded part. The
signature of a message is `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`; the
`webhook-signature` header holds one or more of them separated by spaces (several during a
secret rotation), and a receiver accepts the message when any one matches.

Secrets are derived, not stored: `HMAC-SHA256(MEDIAHUB_SECRET_KEY, label)`, with a random
salt per endpoint (stored) or the tenant id for per-request `webhook_url`s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "whsec_"


def _derive(secret_key: bytes, label: str) -> str:
    key = hmac.new(secret_key, label.encode(), hashlib.sha256).digest()
    return PREFIX + base64.b64encode(key).decode()


def endpoint_secret(secret_key: bytes, salt: str) -> str:
    """The `whsec_` secret of an endpoint whose stored salt is `salt`."""
    return _derive(secret_key, f"mediahub:webhook-endpoint:{salt}")


def url_secret(secret_key: bytes, tenant_id: str) -> str:
    """The tenant's `whsec_` secret that signs deliveries to per-request `webhook_url`s."""
    return _derive(secret_key, f"mediahub:webhook-url:{tenant_id}")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of a message."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one signature per secret, space-separated."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)
