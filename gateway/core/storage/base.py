"""The storage interface, its errors, key rules and signed media links."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final, Protocol

ACCEPTED_SCHEMES: Final = ("file://", "s3://")


DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"


DEFAULT_S3_REGION: Final = "us-east-1"


class StorageError(Exception):
    """Base class for every storage failure the gateway is expected to handle."""


class MediaNotFound(StorageError):
    """Raised by `Storage.get` when no media is stored under the key."""


class StorageUnavailable(StorageError):
    """Raised when the store cannot be reached or used (readiness probe, missing bucket...)."""


class Storage(Protocol):
    """What the gateway and workers need from a media store."""

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Called by a worker when a job's output is ready; replaces any media under `key`."""
        ...

    async def get(self, key: str) -> tuple[bytes, str]:
        """Called by `GET /media/{key}`; returns the bytes and the content type given to `put`.

        Raises `MediaNotFound` when nothing is stored under `key`.
        """
        ...

    async def signed_url(self, key: str, *, expires_in_s: int, base_url: str) -> str:
        """Called when a job result is shown to a client; returns a link valid `expires_in_s`."""
        ...

    def public_url(self, key: str, *, base_url: str) -> str | None:
        """Called when a result is shown to a tenant that allows public links and a CDN is
        set up; returns the permanent, unsigned link `{base_url}/{object key}` where the
        store can be a CDN's origin, else None (the caller signs a link instead)."""
        ...

    async def exists(self, key: str) -> bool:
        """Called before a cached result is reused; True when media is stored under `key`."""
        ...

    async def delete(self, key: str) -> None:
        """Called when media is no longer referenced (a deleted generation's outputs); removes
        it. Nothing stored under `key` is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove everything stored under the folder `prefix` (`a/b` covers `a/b/...`, not
        `a/bc`): a deleted generation's outputs and what was derived from them (thumbnails).
        Returns how many were removed; none is not an error."""
        ...

    async def check(self) -> None:
        """Called by the readiness probe; raises `StorageUnavailable` saying what is wrong."""
        ...

    async def close(self) -> None:
        """Called once at shutdown; releases connections. Safe to call more than once."""
        ...


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is a safe relative media key, else raise ValueError.

    Called by both backends on every operation. Refused: empty keys, absolute paths,
    backslashes, NUL and other control characters, and empty, '.' or '..' segments.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("media key must be a non-empty string")
    if key.startswith("/"):
        raise ValueError(f"media key must be relative, got {key!r}")
    if "\\" in key:
        # Refused everywhere, not only on Windows, so a key never means two different paths.
        raise ValueError(f"media key must not contain backslashes: {key!r}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise ValueError(f"media key must not contain NUL or control characters: {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(f"media key must not contain empty, '.' or '..' segments: {key!r}")
    return key


def _validate_content_type(content_type: str) -> str:
    if not content_type or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in content_type):
        raise ValueError(f"content type must be a non-empty single line: {content_type!r}")
    return content_type


def sign_media(secret_key: bytes, key: str, expires: int) -> str:
    """Return the signature for a `/media/{key}` link that expires at unix time `expires`.

    Called by `LocalStorage.signed_url`. The value is URL-safe base64 without padding of
    HMAC-SHA256(secret_key, f"{key}\\n{expires}").
    """
    message = f"{key}\n{int(expires)}".encode()
    digest = hmac.new(secret_key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_media_signature(
    secret_key: bytes, key: str, expires: str | int, signature: str, *, now: float
) -> bool:
    """Return True when `signature` is valid for `key` and `expires` is not before `now`.

    Called by `GET /media/{key}` with the raw `expires` and `signature` query values. Returns
    False (never raises) for expired links, malformed values and wrong signatures.
    """
    if isinstance(expires, bool):
        return False
    if isinstance(expires, str):
        # int() would also take ' 12', '+12', '1_2' and non-ASCII digits; a link is only ever
        # built with plain digits, so anything else was tampered with.
        if not (expires.isascii() and expires.isdigit()):
            return False
        expires_at = int(expires)
    elif isinstance(expires, int):
        expires_at = expires
    else:
        return False
    if expires_at < now:
        return False
    if not isinstance(signature, str) or not isinstance(key, str):
        return False
    expected = sign_media(secret_key, key, expires_at)
    # Bytes, because compare_digest refuses non-ASCII str and a forged value may contain any.
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))
