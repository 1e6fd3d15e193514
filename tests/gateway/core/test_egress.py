"""The egress guard against a real local server: non-public addresses refused (redirects
included), size and time capped, media typed by its bytes."""

from __future__ import annotations

import ipaddress

import pytest

from gateway.core.egress import (
    Egress,
    EgressPolicy,
    FetchTimeout,
    FetchTooLarge,
    UnsupportedMedia,
    UrlNotAllowed,
    is_public,
    sniff,
)
from gateway.core.settings import SettingsError, load_settings
from tests.receiver import File, receiver

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
LOOPBACK = EgressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.0/8"),), timeout_s=5)

NON_PUBLIC = [
    "http://127.0.0.1/", "http://127.1.2.3:8080/x", "http://[::1]/", "http://localhost/",
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0.0.0.0/", "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/", "http://224.0.0.1/",
    "http://240.0.0.1/", "http://[fe80::1]/", "http://[fc00::1]/", "http://[ff02::1]/",
    "http://[::]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:169.254.169.254]/",
    "http://[2002:7f00:1::]/",  # 6to4 carrying 127.0.0.1
    "http://[64:ff9b::a00:1]/",  # NAT64 carrying 10.0.0.1
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo client 127.0.0.1
]


@pytest.mark.parametrize("url", NON_PUBLIC)
async def test_non_public_addresses_are_refused(url: str) -> None:
    egress = Egress(EgressPolicy())
    try:
        with pytest.raises(UrlNotAllowed):
            await egress.resolve(url)
    finally:
        await egress.close()


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111",
                                     "::ffff:8.8.8.8"])
def test_public_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd",
                                 "http://user:pw@example.com/", "http:///nohost"])
async def test_only_plain_http_urls(url: str) -> None:
    egress = Egress(EgressPolicy())
    try:
        with pytest.raises(UrlNotAllowed):
            await egress.resolve(url)
    finally:
        await egress.close()


async def test_loopback_server_is_not_contacted_unless_allowed() -> None:
    async with receiver() as rec:
        rec.files["/a.png"] = File(PNG, "image/png")
        refused = Egress(EgressPolicy(timeout_s=5))
        allowed = Egress(LOOPBACK)
        try:
            with pytest.raises(UrlNotAllowed):
                await refused.fetch(f"{rec.url}/a.png")
            with pytest.raises(UrlNotAllowed):
                await refused.fetch(f"http://localhost:{rec.port}/a.png")
            assert rec.requests == []
            fetched = await allowed.fetch_media(f"{rec.url}/a.png")
            assert fetched.data == PNG
            assert fetched.sniffed == "image/png"
            assert rec.requests[0].headers["host"] == f"127.0.0.1:{rec.port}"
        finally:
            await refused.close()
            await allowed.close()


async def test_every_redirect_is_checked_again() -> None:
    async with receiver() as rec:
        rec.files["/a.png"] = File(PNG, "image/png")
        rec.redirects["/ok"] = "/a.png"
        rec.redirects["/metadata"] = "http://169.254.169.254/latest/meta-data/"
        rec.redirects["/other-loopback"] = f"http://127.0.0.2:{rec.port}/a.png"
        only_one = Egress(EgressPolicy(allow_networks=(ipaddress.ip_network("127.0.0.1/32"),),
                                       timeout_s=5))
        try:
            assert (await only_one.fetch(f"{rec.url}/ok")).data == PNG
            with pytest.raises(UrlNotAllowed):
                await only_one.fetch(f"{rec.url}/metadata")
            with pytest.raises(UrlNotAllowed):
                await only_one.fetch(f"{rec.url}/other-loopback")
            # The refused targets were never contacted: only the redirecting hops were.
            assert [r.path for r in rec.requests] == ["/ok", "/a.png", "/metadata",
                                                       "/other-loopback"]
        finally:
            await only_one.close()


@pytest.mark.parametrize("declare_length", [True, False])
async def test_size_is_capped(declare_length: bool) -> None:
    async with receiver() as rec:
        rec.files["/big"] = File(PNG + b"\x00" * 300_000, "image/png",
                                 declare_length=declare_length)
        egress = Egress(LOOPBACK)
        try:
            with pytest.raises(FetchTooLarge):
                await egress.fetch(f"{rec.url}/big", max_bytes=100_000)
            assert len((await egress.fetch(f"{rec.url}/big", max_bytes=400_000)).data) \
                == len(PNG) + 300_000
        finally:
            await egress.close()


async def test_a_stalled_server_times_out() -> None:
    async with receiver() as rec:
        egress = Egress(EgressPolicy(allow_networks=LOOPBACK.allow_networks, timeout_s=0.5))
        try:
            with pytest.raises(FetchTimeout):
                await egress.fetch(f"{rec.url}/stall")
            assert rec.stalled.is_set()
        finally:
            await egress.close()


async def test_media_is_typed_by_its_bytes_not_its_header() -> None:
    async with receiver() as rec:
        rec.files["/png-as-html"] = File(PNG, "text/html")
        rec.files["/html-as-png"] = File(b"<html><script>x</script></html>", "image/png")
        egress = Egress(LOOPBACK)
        try:
            fetched = await egress.fetch_media(f"{rec.url}/png-as-html")
            assert fetched.sniffed == "image/png"
            with pytest.raises(UnsupportedMedia):
                await egress.fetch_media(f"{rec.url}/html-as-png")
            with pytest.raises(UnsupportedMedia):
                await egress.fetch_media(f"{rec.url}/png-as-html", kinds=("video/",))
        finally:
            await egress.close()


@pytest.mark.parametrize(("head", "kind"), [
    (b"\xff\xd8\xff\xe0", "image/jpeg"), (b"GIF89a", "image/gif"),
    (b"RIFF\0\0\0\0WEBPVP8 ", "image/webp"), (b"RIFF\0\0\0\0WAVEfmt ", "audio/wav"),
    (b"\0\0\0\x18ftypisom", "video/mp4"), (b"glTF\x02\0\0\0", "model/gltf-binary"),
    (b"%PDF-1.7", "application/pdf"), (b"ID3\x04", "audio/mpeg"), (b"<svg", None)])
def test_sniff(head: bytes, kind: str | None) -> None:
    assert sniff(head + b"\0" * 16) == kind


def test_settings_allow_loopback_and_networks() -> None:
    settings = load_settings({"MEDIAHUB_DATABASE_URL": "sqlite+aiosqlite:///:memory:",
                              "MEDIAHUB_SECRET_KEY": "x" * 40,
                              "MEDIAHUB_EGRESS_ALLOW_LOOPBACK": "true",
                              "MEDIAHUB_EGRESS_ALLOW_NETWORKS": "10.1.0.0/16"})
    policy = EgressPolicy.from_settings(settings)
    assert policy.allows(ipaddress.ip_address("127.0.0.1"))
    assert policy.allows(ipaddress.ip_address("::1"))
    assert policy.allows(ipaddress.ip_address("10.1.2.3"))
    assert not policy.allows(ipaddress.ip_address("10.2.0.1"))
    assert not EgressPolicy.from_settings(load_settings({
        "MEDIAHUB_DATABASE_URL": "sqlite+aiosqlite:///:memory:",
        "MEDIAHUB_SECRET_KEY": "x" * 40})).allows(ipaddress.ip_address("127.0.0.1"))
    with pytest.raises(SettingsError) as bad:
        load_settings({"MEDIAHUB_DATABASE_URL": "sqlite+aiosqlite:///:memory:",
                       "MEDIAHUB_SECRET_KEY": "x" * 40,
                       "MEDIAHUB_EGRESS_ALLOW_NETWORKS": "not-a-net",
                       "MEDIAHUB_EGRESS_ALLOW_LOOPBACK": "maybe"})
    assert len(bad.value.problems) == 2
