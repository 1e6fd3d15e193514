"""Tenants' own provider credentials ("bring your own key"), sealed at rest.

Each secret is encrypted with AES-256-GCM under a key derived from `MEDIAHUB_SECRET_KEY`
(HKDF-SHA256), with the tenant id and provider name as associated data: a sealed value copied
into another tenant's row, or under another provider, does not open. Only the last four
characters of a key are kept in clear, to tell keys apart in listings.
"""

from __future__ import annotations

import base64
import os
from datetime import datetime
from typing import Annotated, Any

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from plugins.provider import Credentials
from tenants.kernel.db import utcnow
from tenants.models import Tenant

_VERSION = "v1"
_INFO = b"mediahub provider credentials v1"

Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class ProviderKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    """What a tenant (or the operator for it) sets for one provider."""

    api_key: Secret
    #: For providers that sign with a key pair (Kling's secret key).
    api_secret: Secret | None = None
    #: The tenant's own endpoint (a self-hosted engine, a regional API); checked by the
    #: caller against the egress policy.
    base_url: Annotated[str, msgspec.Meta(min_length=1, max_length=2048)] | None = None


class ProviderKeyOut(msgspec.Struct):
    provider: str
    last4: str
    has_secret: bool
    base_url: str | None
    updated_at: datetime
    object: str = "provider_key"


class UnsealError(Exception):
    """A sealed value did not open: another secret key, tenant or provider, or tampering."""


def _aead(secret_key: bytes) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key)
    return AESGCM(key)


def _context(tenant_id: str, provider: str) -> bytes:
    return f"{tenant_id}\x00{provider}".encode()


def seal(secret_key: bytes, tenant_id: str, provider: str, plaintext: str) -> str:
    """Encrypt `plaintext` for this tenant and provider; returns `v1:<base64 nonce+ct>`."""
    nonce = os.urandom(12)
    sealed = _aead(secret_key).encrypt(nonce, plaintext.encode(), _context(tenant_id, provider))
    return f"{_VERSION}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def unseal(secret_key: bytes, tenant_id: str, provider: str, value: str) -> str:
    """Open a value `seal` made for the same tenant and provider; raises `UnsealError`."""
    version, _, payload = value.partition(":")
    if version != _VERSION:
        raise UnsealError(f"unknown sealing version {version!r}")
    try:
        raw = base64.urlsafe_b64decode(payload.encode())
        plain = _aead(secret_key).decrypt(raw[:12], raw[12:], _context(tenant_id, provider))
    except (InvalidTag, ValueError) as exc:
        raise UnsealError("the sealed credential does not open") from exc
    return plain.decode()


def set_key(tenant: Tenant, provider: str, body: ProviderKeyIn, secret_key: bytes) -> None:
    """Store (replace) the tenant's credentials for `provider` on its row (the caller
    commits)."""
    entry: dict[str, Any] = {
        "api_key": seal(secret_key, tenant.id, provider, body.api_key),
        "last4": body.api_key[-4:] if len(body.api_key) >= 8 else "",
        "updated_at": utcnow().isoformat(),
    }
    if body.api_secret is not None:
        entry["api_secret"] = seal(secret_key, tenant.id, provider, body.api_secret)
    if body.base_url is not None:
        entry["base_url"] = body.base_url
    # A new dict, so the JSON column is seen as changed.
    tenant.provider_credentials = {**(tenant.provider_credentials or {}), provider: entry}


def delete_key(tenant: Tenant, provider: str) -> bool:
    """Forget the tenant's credentials for `provider`; False when there were none."""
    current = dict(tenant.provider_credentials or {})
    if current.pop(provider, None) is None:
        return False
    tenant.provider_credentials = current
    return True


def listing(tenant: Tenant) -> list[ProviderKeyOut]:
    """The tenant's keys without their secrets, by provider name."""
    return [ProviderKeyOut(provider=name, last4=entry.get("last4", ""),
                           has_secret="api_secret" in entry, base_url=entry.get("base_url"),
                           updated_at=datetime.fromisoformat(entry["updated_at"]))
            for name, entry in sorted((tenant.provider_credentials or {}).items())]


def own_credentials(tenant: Tenant, provider: str, secret_key: bytes) -> Credentials | None:
    """The tenant's own credentials for `provider`, opened; None when it has none.

    Called by the pipeline for every call to a provider on the tenant's behalf. Raises
    `UnsealError` when they do not open (the platform secret changed).
    """
    entry = (tenant.provider_credentials or {}).get(provider)
    if entry is None:
        return None
    secret = entry.get("api_secret")
    return Credentials(
        api_key=unseal(secret_key, tenant.id, provider, entry["api_key"]),
        api_secret=unseal(secret_key, tenant.id, provider, secret) if secret else None,
        base_url=entry.get("base_url"))
