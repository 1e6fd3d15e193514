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

import asyncio
import base64
import contextlib
import hashlib
import hmac
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import quote, unquote, urlsplit

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

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

ACCEPTED_SCHEMES: Final = ("file://", "s3://")
DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"
DEFAULT_S3_REGION: Final = "us-east-1"

# Local files start with this line, then the content type line, then the media bytes. One file
# holds both so a single os.replace publishes type and bytes together, and no sidecar name can
# collide with another key.
_LOCAL_MAGIC: Final = b"mediahub-media-v1\n"


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

    async def exists(self, key: str) -> bool:
        """Called before a cached result is reused; True when media is stored under `key`."""
        ...

    async def check(self) -> None:
        """Called by the readiness probe; raises `StorageUnavailable` saying what is wrong."""
        ...

    async def close(self) -> None:
        """Called once at shutdown; releases connections. Safe to call more than once."""
        ...


# --------------------------------------------------------------------------------------------
# Keys


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


# --------------------------------------------------------------------------------------------
# Signed links for the gateway's own /media route


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


# --------------------------------------------------------------------------------------------
# Local disk


class LocalStorage:
    """Media stored as files under `root`; links point at the gateway's `/media` route.

    Each file holds a small header with the content type followed by the media bytes. Writes
    go to a temporary file in the same directory and are published with `os.replace`, so a
    reader sees either the old file or the new one, never half of one. Blocking file I/O
    runs in a worker thread so it does not stall the event loop.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, secret_key: bytes,
        now: Callable[[], float] = time.time,
    ) -> None:
        if not secret_key:
            # An empty HMAC key makes every link forgeable.
            raise ValueError("LocalStorage needs a non-empty secret_key to sign media links")
        # Absolute now, so a later chdir cannot move the store.
        self.root = Path(os.path.abspath(os.fspath(root)))
        self._secret_key = secret_key
        self._now = now

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path_for(self, key: str) -> Path:
        validate_key(key)
        path = self.root.joinpath(*key.split("/"))
        # The key itself is clean, but a symlink inside root could still lead outside it.
        resolved_root = self.root.resolve()
        if not path.resolve().is_relative_to(resolved_root):
            raise ValueError(f"media key escapes the storage root: {key!r}")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key`, replacing what was there. Returns once it is on disk."""
        validate_key(key)
        _validate_content_type(content_type)
        await asyncio.to_thread(self._put_sync, key, bytes(data), content_type)

    def _put_sync(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path_for(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StorageError(
                f"cannot store {key!r}: a parent of it is already stored as media"
            ) from exc
        # The leading dot keeps temp files out of the way; same directory so that os.replace
        # stays on one filesystem and is atomic.
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_LOCAL_MAGIC)
                f.write(content_type.encode("utf-8") + b"\n")
                f.write(data)
                f.flush()
                # Without fsync a crash right after the replace can leave an empty file.
                os.fsync(f.fileno())
            os.replace(tmp_name, path)
        except IsADirectoryError as exc:
            raise StorageError(
                f"cannot store {key!r}: other media is stored under it as a prefix"
            ) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)

    async def get(self, key: str) -> tuple[bytes, str]:
        """Return the bytes and content type stored under `key`; raise MediaNotFound if none."""
        validate_key(key)
        return await asyncio.to_thread(self._get_sync, key)

    async def exists(self, key: str) -> bool:
        validate_key(key)
        # One stat(): microseconds, cheaper than a hop to the thread pool (every cache hit
        # checks its outputs).
        return self._path_for(key).is_file()

    def _get_sync(self, key: str) -> tuple[bytes, str]:
        path = self._path_for(key)
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise MediaNotFound(key) from exc
        if not raw.startswith(_LOCAL_MAGIC):
            raise StorageError(f"{path} was not written by mediahub storage")
        header_end = raw.find(b"\n", len(_LOCAL_MAGIC))
        if header_end < 0:
            raise StorageError(f"{path} is truncated or corrupt")
        content_type = raw[len(_LOCAL_MAGIC):header_end].decode("utf-8")
        return raw[header_end + 1:], content_type

    async def signed_url(self, key: str, *, expires_in_s: int, base_url: str) -> str:
        """Return `{base_url}/media/{key}?expires=...&signature=...`, valid `expires_in_s`.

        Does not check that the media exists; the `/media` route answers 404 if it does not.
        """
        validate_key(key)
        if expires_in_s <= 0:
            raise ValueError(f"expires_in_s must be positive, got {expires_in_s}")
        expires = int(self._now()) + int(expires_in_s)
        signature = sign_media(self._secret_key, key, expires)
        # Quoted so keys with spaces or '?' survive; the route sees the decoded key again.
        path = quote(key, safe="/")
        return f"{base_url.rstrip('/')}/media/{path}?expires={expires}&signature={signature}"

    async def check(self) -> None:
        """Create the root if needed and prove it is writable; raise StorageUnavailable if not."""
        await asyncio.to_thread(self._check_sync)

    def _check_sync(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".probe.", suffix=".tmp", dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StorageUnavailable(
                f"local media directory {str(self.root)!r} is not usable: {exc}"
            ) from exc

    async def close(self) -> None:
        """Nothing to release for local files; present to satisfy `Storage`."""


# --------------------------------------------------------------------------------------------
# S3 and S3-compatible stores


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class S3Storage:
    """Media stored as objects in an S3 bucket, under an optional key prefix.

    Credentials and region come from the usual AWS environment variables and config files
    (AWS_REGION, then AWS_DEFAULT_REGION / config, else us-east-1). One client is opened on
    first use and kept until `close()`, so connections are pooled across calls.
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        if not bucket:
            raise ValueError("S3Storage needs a bucket name")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self._client: Any = None
        self._stack: AsyncExitStack | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        where = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3Storage({self.bucket!r}, prefix={self.prefix!r}{where})"

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _describe(self) -> str:
        return f"s3://{self.bucket}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    async def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        # The lock stops two first calls racing and leaking a second client.
        async with self._lock:
            if self._client is None:
                session = aioboto3.Session()
                # botocore reads AWS_DEFAULT_REGION and config files but not AWS_REGION,
                # which newer SDKs and most container platforms set.
                region = (
                    os.environ.get("AWS_REGION") or session.region_name or DEFAULT_S3_REGION
                )
                config = Config(
                    # Presigned links must use SigV4: every region and most S3 clones
                    # refuse the older scheme.
                    signature_version="s3v4",
                    # Custom endpoints (MinIO, moto, LAN hosts) rarely have wildcard DNS,
                    # so virtual-host addressing would produce unresolvable names.
                    s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                    connect_timeout=5,
                    read_timeout=60,
                    retries={"max_attempts": 3, "mode": "standard"},
                )
                stack = AsyncExitStack()
                try:
                    self._client = await stack.enter_async_context(
                        session.client(
                            "s3", region_name=region, endpoint_url=self.endpoint_url,
                            config=config,
                        )
                    )
                except BaseException:
                    await stack.aclose()
                    raise
                self._stack = stack
        return self._client

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Upload `data` as the object for `key` with `content_type`; returns when stored."""
        object_key = self._object_key(key)
        _validate_content_type(content_type)
        client = await self._get_client()
        try:
            await client.put_object(
                Bucket=self.bucket, Key=object_key, Body=data, ContentType=content_type
            )
        except ClientError as exc:
            raise self._translate(exc, key) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot reach {self._describe()}: {exc}") from exc

    async def exists(self, key: str) -> bool:
        """A HEAD of the object: True when it is there."""
        client = await self._get_client()
        try:
            await client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ClientError as exc:
            if isinstance(self._translate(exc, key), MediaNotFound):
                return False
            raise self._translate(exc, key) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot reach {self._describe()}: {exc}") from exc
        return True

    async def get(self, key: str) -> tuple[bytes, str]:
        """Download the object for `key`; return its bytes and content type.

        Raises MediaNotFound when there is no such object.
        """
        object_key = self._object_key(key)
        client = await self._get_client()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=object_key)
            async with response["Body"] as body:
                data: bytes = await body.read()
        except ClientError as exc:
            raise self._translate(exc, key) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot reach {self._describe()}: {exc}") from exc
        return data, str(response.get("ContentType") or DEFAULT_CONTENT_TYPE)

    async def signed_url(self, key: str, *, expires_in_s: int, base_url: str) -> str:
        """Return a presigned GET URL for `key`, valid `expires_in_s` seconds.

        `base_url` is ignored: clients download straight from the store, so `endpoint_url`
        must be reachable by them. Signing is local; no request is made and existence is
        not checked.
        """
        object_key = self._object_key(key)
        if expires_in_s <= 0:
            raise ValueError(f"expires_in_s must be positive, got {expires_in_s}")
        client = await self._get_client()
        url: str = await client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": object_key},
            ExpiresIn=int(expires_in_s),
        )
        return url

    async def check(self) -> None:
        """Check the bucket exists and is accessible; raise StorageUnavailable saying why not."""
        client = await self._get_client()
        try:
            await client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = _error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                reason = "bucket does not exist"
            elif code in ("403", "AccessDenied", "Forbidden"):
                reason = "access denied (check the AWS credentials and bucket policy)"
            else:
                reason = str(exc)
            raise StorageUnavailable(f"{self._describe()} is not usable: {reason}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot reach {self._describe()}: {exc}") from exc

    async def close(self) -> None:
        """Close the pooled client, if one was opened. A later call opens a new one."""
        async with self._lock:
            stack, self._stack, self._client = self._stack, None, None
            if stack is not None:
                await stack.aclose()

    def _translate(self, exc: ClientError, key: str) -> StorageError:
        code = _error_code(exc)
        if code in ("NoSuchKey", "404", "NotFound"):
            return MediaNotFound(key)
        if code == "NoSuchBucket":
            return StorageUnavailable(f"{self._describe()} is not usable: bucket does not exist")
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return StorageUnavailable(f"{self._describe()} refused access: {exc}")
        return StorageError(f"{self._describe()} failed for {key!r}: {exc}")


# --------------------------------------------------------------------------------------------
# Choosing a backend


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
