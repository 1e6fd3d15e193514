"""Media on local disk (`file://` storage URLs), served by the gateway's signed links."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final
from urllib.parse import quote

from gateway.core.storage.base import (
    MediaNotFound,
    StorageError,
    StorageUnavailable,
    _validate_content_type,
    sign_media,
    validate_key,
)

# Local files start with this line, then the content type line, then the media bytes. One file
# holds both so a single os.replace publishes type and bytes together, and no sidecar name can
# collide with another key.
_LOCAL_MAGIC: Final = b"mediahub-media-v1\n"


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

    async def delete(self, key: str) -> None:
        """Remove the file for `key` (nothing there is fine)."""
        path = self._path_for(key)
        await asyncio.to_thread(_unlink_quietly, path)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove the folder `prefix` and every file in it; returns how many media files."""
        path = self._path_for(prefix.rstrip("/"))
        return await asyncio.to_thread(_remove_tree, path)

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

    def public_url(self, key: str, *, base_url: str) -> str | None:
        """None, always: each file starts with a header (its content type) before the media,
        so a CDN in front of the directory would serve broken files; only `/media` serves."""
        validate_key(key)
        return None

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


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
        path.unlink()


def _remove_tree(path: Path) -> int:
    if path.is_file():
        _unlink_quietly(path)
        return 1
    if not path.is_dir():
        return 0
    removed = sum(1 for item in path.rglob("*")
                  if item.is_file() and not item.name.startswith("."))
    # Temp files of a write in flight go too: the media they were to become is deleted.
    shutil.rmtree(path, ignore_errors=True)
    return removed
