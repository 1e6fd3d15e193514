"""Media storage: where generated images, audio and video bytes live.

Two backends share one small interface (`Storage`) and are chosen at start from
`MEDIAHUB_STORAGE_URL` by `storage_from_url`:

- `file:///abs/dir` or `file://./relative/dir` -> `LocalStorage`, files on local disk. Links
  handed to clients point at the gateway's own `GET /media/{key}` route and carry an HMAC
  signature made by `sign_media`; that route checks it with `verify_media_signature` before
  calling `Storage.get`.
- `s3://bucket` or `s3://bucket/prefix` -> `S3Storage`, any S3-compatible object store.
  Links are S3 presigned URLs, so clients download straight from the store.

Keys are relative, '/'-separated paths such as `tenant-1/job-42/image-0.png`. Both backends
accept and refuse the same keys, so a key that works in development works in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from gateway.core.storage.base import (
    ACCEPTED_SCHEMES,
    MediaNotFound,
    Storage,
    StorageError,
    StorageUnavailable,
    sign_media,
    validate_key,
    verify_media_signature,
)
from gateway.core.storage.local import LocalStorage
from gateway.core.storage.s3 import S3Storage

__all__ = [
    "LocalStorage",
    "MediaNotFound",
    "S3Storage",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "sign_media",
    "storage_from_url",
    "validate_key",
    "verify_media_signature",
]


def storage_from_url(
    url: str, *, secret_key: bytes, s3_endpoint_url: str | None = None,
    now: Callable[[], float] = time.time,
) -> Storage:
    """Build the backend named by `url`; called once at start from MEDIAHUB_STORAGE_URL.

    `file:///abs/dir` and `file://./relative/dir` give `LocalStorage` (relative paths are
    taken from the current directory now). `s3://bucket[/prefix]` gives `S3Storage`. Nothing
    is touched or contacted here; call `check()` for that. Raises ValueError for any other
    URL, naming the accepted schemes.
    """
    lowered = url.lower()
    if lowered.startswith("file://"):
        path = unquote(url[len("file://"):])
        if path.startswith("localhost/"):
            path = path[len("localhost"):]
        if not (path.startswith(("/", "./", "../")) or path in (".", "..")):
            raise ValueError(
                f"storage URL {url!r}: use file:///absolute/dir or file://./relative/dir"
            )
        return LocalStorage(path, secret_key=secret_key, now=now)
    if lowered.startswith("s3://"):
        parts = urlsplit(url)
        if not parts.netloc:
            raise ValueError(f"storage URL {url!r}: use s3://bucket or s3://bucket/prefix")
        if parts.query or parts.fragment:
            raise ValueError(f"storage URL {url!r}: query strings and fragments are not used")
        return S3Storage(parts.netloc, unquote(parts.path), s3_endpoint_url)
    raise ValueError(
        f"unsupported storage URL {url!r}: accepted schemes are "
        + " and ".join(f"{s}..." for s in ACCEPTED_SCHEMES)
    )
