"""Tests for gateway.core.storage: local files on tmp_path, S3 against a real moto HTTP server."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aioboto3
import httpx
import pytest

from gateway.core.storage import (
    LocalStorage,
    MediaNotFound,
    S3Storage,
    StorageError,
    StorageUnavailable,
    sign_media,
    storage_from_url,
    verify_media_signature,
)

SECRET = b"test-secret-key-0123456789"
NOW = 1_700_000_000.0
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4

BAD_KEYS = [
    "",
    "../escape.png",
    "a/../../escape.png",
    "a/..",
    "/etc/passwd",
    "a\\b.png",
    "..\\escape.png",
    "a\x00b.png",
    "a//b.png",
    "./a.png",
    "a/",
    "line\nbreak",
]


class Clock:
    """Injectable `now` so expiry is tested without sleeping."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# --------------------------------------------------------------------------------------------
# Local storage


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def local(tmp_path: Path, clock: Clock) -> LocalStorage:
    return LocalStorage(tmp_path / "media", secret_key=SECRET, now=clock)


def _query(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    q = parse_qs(parts.query, strict_parsing=True)
    return parts.path, q["expires"][0], q["signature"][0]


async def test_local_round_trip_preserves_bytes_and_type(local: LocalStorage) -> None:
    await local.put("tenant-1/job-1/out.png", PNG, "image/png")
    await local.put("tenant-1/job-1/voice.bin", b"RIFF....", "audio/wav")

    assert await local.get("tenant-1/job-1/out.png") == (PNG, "image/png")
    # Type comes from what put was given, not from the extension.
    assert await local.get("tenant-1/job-1/voice.bin") == (b"RIFF....", "audio/wav")


async def test_local_put_replaces_and_leaves_no_temp_files(local: LocalStorage) -> None:
    await local.put("a/b.txt", b"first", "text/plain")
    await local.put("a/b.txt", b"second", "text/markdown; charset=utf-8")

    assert await local.get("a/b.txt") == (b"second", "text/markdown; charset=utf-8")
    assert sorted(p.name for p in (local.root / "a").iterdir()) == ["b.txt"]


async def test_local_empty_body_round_trips(local: LocalStorage) -> None:
    await local.put("empty", b"", "application/octet-stream")
    assert await local.get("empty") == (b"", "application/octet-stream")


async def test_local_concurrent_puts_all_land(local: LocalStorage) -> None:
    keys = [f"batch/{i}.bin" for i in range(20)]
    await asyncio.gather(*(local.put(k, k.encode(), "application/x-test") for k in keys))
    got = await asyncio.gather(*(local.get(k) for k in keys))
    assert got == [(k.encode(), "application/x-test") for k in keys]


async def test_local_get_missing_raises_media_not_found(local: LocalStorage) -> None:
    with pytest.raises(MediaNotFound):
        await local.get("nope.png")
    await local.put("dir/file.png", PNG, "image/png")
    with pytest.raises(MediaNotFound):
        await local.get("dir")  # a directory is not media
    with pytest.raises(MediaNotFound):
        await local.get("dir/file.png/child")  # a file is not a directory


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_local_refuses_unsafe_keys(local: LocalStorage, tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="media key"):
        await local.put(key, b"x", "text/plain")
    with pytest.raises(ValueError, match="media key"):
        await local.get(key)
    with pytest.raises(ValueError, match="media key"):
        await local.signed_url(key, expires_in_s=60, base_url="http://gw")
    assert not (tmp_path / "escape.png").exists()


async def test_local_refuses_symlink_out_of_root(local: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    local.root.mkdir(parents=True)
    (local.root / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ValueError, match="escapes"):
        await local.put("link/x.png", b"x", "image/png")
    assert list(outside.iterdir()) == []


async def test_local_refuses_multiline_content_type(local: LocalStorage) -> None:
    with pytest.raises(ValueError, match="content type"):
        await local.put("a.txt", b"x", "text/plain\nX-Evil: 1")


async def test_local_key_that_is_a_prefix_of_another_is_a_storage_error(
    local: LocalStorage,
) -> None:
    await local.put("a", b"x", "text/plain")
    with pytest.raises(StorageError):
        await local.put("a/b", b"y", "text/plain")
    await local.put("c/d", b"x", "text/plain")
    with pytest.raises(StorageError):
        await local.put("c", b"y", "text/plain")


async def test_local_signed_url_shape_and_verifies(local: LocalStorage) -> None:
    url = await local.signed_url("t1/out.png", expires_in_s=600, base_url="https://cdn.example/")
    expires = int(NOW) + 600
    sig = sign_media(SECRET, "t1/out.png", expires)
    assert url == f"https://cdn.example/media/t1/out.png?expires={expires}&signature={sig}"
    assert not set(sig) & set("=+/")

    path, exp_raw, sig_raw = _query(url)
    assert path == "/media/t1/out.png"
    assert verify_media_signature(SECRET, "t1/out.png", exp_raw, sig_raw, now=NOW)
    assert verify_media_signature(SECRET, "t1/out.png", int(exp_raw), sig_raw, now=NOW + 600)


async def test_local_signed_url_quotes_odd_keys(local: LocalStorage) -> None:
    url = await local.signed_url("t1/my file?.png", expires_in_s=60, base_url="http://gw")
    assert url.startswith("http://gw/media/t1/my%20file%3F.png?expires=")
    _, exp_raw, sig_raw = _query(url)
    assert verify_media_signature(SECRET, "t1/my file?.png", exp_raw, sig_raw, now=NOW)


async def test_local_tampered_signature_fails(local: LocalStorage) -> None:
    url = await local.signed_url("t1/out.png", expires_in_s=600, base_url="http://gw")
    _, exp_raw, sig_raw = _query(url)
    flipped = ("A" if sig_raw[0] != "A" else "B") + sig_raw[1:]

    assert not verify_media_signature(SECRET, "t1/out.png", exp_raw, flipped, now=NOW)
    # The same signature does not carry over to another key, expiry or secret.
    assert not verify_media_signature(SECRET, "t2/out.png", exp_raw, sig_raw, now=NOW)
    later = str(int(exp_raw) + 3600)
    assert not verify_media_signature(SECRET, "t1/out.png", later, sig_raw, now=NOW)
    assert not verify_media_signature(b"other-secret", "t1/out.png", exp_raw, sig_raw, now=NOW)


async def test_local_expired_signature_fails(local: LocalStorage, clock: Clock) -> None:
    url = await local.signed_url("t1/out.png", expires_in_s=60, base_url="http://gw")
    _, exp_raw, sig_raw = _query(url)

    assert verify_media_signature(SECRET, "t1/out.png", exp_raw, sig_raw, now=clock() + 60)
    assert not verify_media_signature(SECRET, "t1/out.png", exp_raw, sig_raw, now=clock() + 61)

    # A link made later by the same storage expires later: `now` is read per call.
    clock.t += 3600
    url2 = await local.signed_url("t1/out.png", expires_in_s=60, base_url="http://gw")
    _, exp2, sig2 = _query(url2)
    assert int(exp2) == int(exp_raw) + 3600
    assert verify_media_signature(SECRET, "t1/out.png", exp2, sig2, now=clock())


@pytest.mark.parametrize(
    ("expires", "signature"),
    [
        ("", "x"),
        ("abc", "x"),
        (" 1700000600", None),
        ("+1700000600", None),
        ("1_700_000_600", None),
        ("١٧٠٠٠٠٠٦٠٠", None),  # Arabic-Indic digits: int() accepts them, we must not
        ("1700000600", ""),
        ("1700000600", "not base64 ✓"),
        ("1700000600", "\x00"),
    ],
)
def test_verify_rejects_malformed(expires: str, signature: str | None) -> None:
    real = sign_media(SECRET, "k", 1_700_000_600)
    assert verify_media_signature(SECRET, "k", "1700000600", real, now=NOW)
    assert not verify_media_signature(
        SECRET, "k", expires, real if signature is None else signature, now=NOW
    )


async def test_local_signed_url_rejects_non_positive_ttl(local: LocalStorage) -> None:
    with pytest.raises(ValueError, match="expires_in_s"):
        await local.signed_url("a.png", expires_in_s=0, base_url="http://gw")


async def test_local_check_creates_root_and_reports_unusable(tmp_path: Path) -> None:
    ok = LocalStorage(tmp_path / "new" / "media", secret_key=SECRET)
    await ok.check()
    assert (tmp_path / "new" / "media").is_dir()
    assert list((tmp_path / "new" / "media").iterdir()) == []

    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"a file where the directory should be")
    bad = LocalStorage(blocker / "media", secret_key=SECRET)
    with pytest.raises(StorageUnavailable, match="local media directory"):
        await bad.check()
    await bad.close()


def test_local_requires_secret_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="secret_key"):
        LocalStorage(tmp_path, secret_key=b"")


# --------------------------------------------------------------------------------------------
# storage_from_url


def test_from_url_file_absolute(tmp_path: Path) -> None:
    storage = storage_from_url(f"file://{tmp_path}/media", secret_key=SECRET)
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "media"


def test_from_url_file_relative_is_resolved_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = storage_from_url("file://./media", secret_key=SECRET)
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "media"


async def test_from_url_file_uses_injected_clock(tmp_path: Path) -> None:
    storage = storage_from_url(f"file://{tmp_path}", secret_key=SECRET, now=lambda: 100.0)
    url = await storage.signed_url("a.png", expires_in_s=5, base_url="http://gw")
    assert "?expires=105&" in url


def test_from_url_s3() -> None:
    storage = storage_from_url(
        "s3://my-bucket/some/prefix/", secret_key=SECRET, s3_endpoint_url="http://minio:9000"
    )
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix, storage.endpoint_url) == (
        "my-bucket", "some/prefix", "http://minio:9000",
    )
    bare = storage_from_url("s3://my-bucket", secret_key=SECRET)
    assert isinstance(bare, S3Storage)
    assert (bare.bucket, bare.prefix, bare.endpoint_url) == ("my-bucket", "", None)


@pytest.mark.parametrize(
    "url", ["gs://bucket", "http://example.com/media", "/var/media", "media", ""]
)
def test_from_url_unknown_scheme_names_accepted(url: str) -> None:
    with pytest.raises(ValueError, match=r"file://.*s3://"):
        storage_from_url(url, secret_key=SECRET)


@pytest.mark.parametrize("url", ["file://", "file://media", "s3://", "s3:///prefix"])
def test_from_url_malformed(url: str) -> None:
    with pytest.raises(ValueError, match="storage URL"):
        storage_from_url(url, secret_key=SECRET)


# --------------------------------------------------------------------------------------------
# S3 against a real moto server over HTTP


@pytest.fixture
async def s3(moto_endpoint: str, bucket: str) -> AsyncIterator[S3Storage]:
    storage = S3Storage(bucket, "tenant-media", moto_endpoint)
    yield storage
    await storage.close()


async def test_s3_round_trip(s3: S3Storage) -> None:
    await s3.put("t1/job/out.png", PNG, "image/png")
    await s3.put("t1/job/voice.bin", b"RIFF....", "audio/wav")

    assert await s3.get("t1/job/out.png") == (PNG, "image/png")
    assert await s3.get("t1/job/voice.bin") == (b"RIFF....", "audio/wav")


async def test_s3_objects_live_under_prefix(
    s3: S3Storage, bucket: str, moto_endpoint: str
) -> None:
    await s3.put("t1/out.png", PNG, "image/png")
    session = aioboto3.Session()
    async with session.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1") as raw:
        listing = await raw.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listing["Contents"]] == ["tenant-media/t1/out.png"]


async def test_s3_reuses_one_client(s3: S3Storage) -> None:
    await s3.put("a", b"1", "text/plain")
    first = s3._client
    await s3.get("a")
    await s3.check()
    assert s3._client is first
    await s3.close()
    assert s3._client is None
    # After close a new client is opened on demand.
    assert await s3.get("a") == (b"1", "text/plain")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-west-2"}, "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "us-west-2"}, "us-west-2"),
        ({}, "us-east-1"),
    ],
)
async def test_s3_region_from_environment(
    moto_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str], expected: str,
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    storage = S3Storage(bucket, "", moto_endpoint)
    try:
        await storage.check()
        assert storage._client.meta.region_name == expected
    finally:
        await storage.close()


async def test_s3_get_missing_raises_media_not_found(s3: S3Storage) -> None:
    with pytest.raises(MediaNotFound):
        await s3.get("t1/never-written.png")


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_s3_refuses_unsafe_keys(s3: S3Storage, key: str) -> None:
    with pytest.raises(ValueError, match="media key"):
        await s3.put(key, b"x", "text/plain")
    with pytest.raises(ValueError, match="media key"):
        await s3.get(key)
    with pytest.raises(ValueError, match="media key"):
        await s3.signed_url(key, expires_in_s=60, base_url="http://gw")


async def test_s3_check_ok(s3: S3Storage) -> None:
    await s3.check()


async def test_s3_check_missing_bucket_is_unavailable(moto_endpoint: str) -> None:
    storage = S3Storage(f"missing-{uuid.uuid4().hex[:12]}", "", moto_endpoint)
    try:
        with pytest.raises(StorageUnavailable, match="bucket does not exist"):
            await storage.check()
        with pytest.raises(StorageUnavailable, match="bucket does not exist"):
            await storage.get("a.png")
    finally:
        await storage.close()


async def test_s3_check_unreachable_endpoint_is_unavailable(moto_endpoint: str) -> None:
    # Bind then release a port so nothing is listening on it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    storage = S3Storage("any-bucket", "", f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(StorageUnavailable, match="cannot reach"):
            await storage.check()
    finally:
        await storage.close()


async def test_s3_presigned_url_serves_exact_bytes(s3: S3Storage) -> None:
    await s3.put("t1/out.png", PNG, "image/png")
    url = await s3.signed_url("t1/out.png", expires_in_s=300, base_url="http://ignored")

    assert url.startswith(f"{s3.endpoint_url}/{s3.bucket}/tenant-media/t1/out.png?")
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Expires=300" in url
    async with httpx.AsyncClient() as http:
        response = await http.get(url)
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    # No "tampered signature is refused" check here: moto does not verify presigned
    # signatures for existing keys (a URL with a corrupted X-Amz-Signature still gets a 200),
    # so such an assertion could only pass by faking it.


async def test_s3_signed_url_rejects_non_positive_ttl(s3: S3Storage) -> None:
    with pytest.raises(ValueError, match="expires_in_s"):
        await s3.signed_url("a.png", expires_in_s=-1, base_url="http://gw")



async def test_local_delete_prefix_removes_the_folder_only(local: LocalStorage) -> None:
    for key in ("t/gen_a/0.png", "t/gen_a/thumbs/0.webp", "t/gen_ab/0.png"):
        await local.put(key, b"x", "image/png")
    assert await local.delete_prefix("t/gen_a") == 2
    assert not await local.exists("t/gen_a/0.png")
    assert not await local.exists("t/gen_a/thumbs/0.webp")
    assert await local.exists("t/gen_ab/0.png")  # a folder name, not a string prefix
    assert await local.delete_prefix("t/gen_a") == 0
    await local.delete("t/gen_ab/0.png")
    await local.delete("t/gen_ab/0.png")  # nothing there: fine
    assert not await local.exists("t/gen_ab/0.png")


async def test_s3_delete_prefix_removes_the_folder_only(s3: S3Storage) -> None:
    for key in ("t/gen_a/0.png", "t/gen_a/thumbs/0.webp", "t/gen_ab/0.png"):
        await s3.put(key, b"x", "image/png")
    assert await s3.delete_prefix("t/gen_a") == 2
    assert not await s3.exists("t/gen_a/0.png")
    assert not await s3.exists("t/gen_a/thumbs/0.webp")
    assert await s3.exists("t/gen_ab/0.png")
    await s3.delete("t/gen_ab/0.png")
    assert not await s3.exists("t/gen_ab/0.png")
