"""Permanent CDN links (`MEDIAHUB_MEDIA_CDN_BASE_URL`) for the media of tenants that allow
them (`media.public_links`), against a real S3-compatible server (moto); everyone else keeps
presigned, expiring links."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aioboto3
import httpx
import msgspec
import pytest
from PIL import Image

from gateway.core.settings import Settings
from gateway.core.storage import LocalStorage, S3Storage
from tests.conftest import Gateway, Tenant, make_settings, running_gateway

CDN = "https://cdn.example.test/media"
PREFIX = "outputs/v1"
IMAGE = {"type": "image", "prompt": "a lighthouse in fog", "params": {"size": "128x128"}}
ADMIN_SCOPES = ["generate", "read", "billing", "tenant_admin"]


def s3_settings(pg_url: str, tmp_path: Path, moto_endpoint: str, bucket: str,
                **overrides: Any) -> Settings:
    return make_settings(pg_url, tmp_path, storage_url=f"s3://{bucket}/{PREFIX}",
                         s3_endpoint_url=moto_endpoint, **overrides)


@pytest.fixture
async def cdn_gateway(pg_url: str, tmp_path: Path, moto_endpoint: str,
                      bucket: str) -> AsyncIterator[Gateway]:
    settings = s3_settings(pg_url, tmp_path, moto_endpoint, bucket, media_cdn_base_url=CDN)
    async with running_gateway(settings) as gw:
        yield gw


async def public_links(gw: Gateway, tenant: Tenant, allowed: bool) -> None:
    r = await gw.client.patch("/v1/tenant", headers=tenant.auth,
                              json={"media": {"public_links": allowed}})
    assert r.status_code == 200, r.text
    assert r.json()["media"] == {"public_links": allowed}


async def object_bytes(endpoint: str, bucket: str, key: str) -> bytes:
    """The object as the bucket holds it, read with plain aioboto3 (not the code under test)."""
    session = aioboto3.Session()
    async with session.client("s3", endpoint_url=endpoint, region_name="us-east-1") as s3:
        got = await s3.get_object(Bucket=bucket, Key=key)
        async with got["Body"] as body:
            data: bytes = await body.read()
    return data


def assert_presigned(url: str, endpoint: str) -> None:
    assert url.startswith(endpoint)
    assert "X-Amz-Signature" in url


async def test_a_tenant_that_allows_public_links_gets_cdn_links_to_the_object_keys(
        cdn_gateway: Gateway, moto_endpoint: str, bucket: str) -> None:
    gw = cdn_gateway
    tenant = await gw.tenant(scopes=ADMIN_SCOPES)
    await public_links(gw, tenant, True)
    done = await gw.finish(tenant.auth, IMAGE)
    assert done["status"] == "succeeded", done
    [output] = done["outputs"]
    key = f"{PREFIX}/{tenant.id}/{done['id']}/0.png"
    assert output["url"] == f"{CDN}/{key}"
    assert output["thumbnail_url"] == f"{CDN}/{PREFIX}/{tenant.id}/{done['id']}/0.thumb.webp"
    # The CDN's origin is the bucket: the link's path is the object's key there.
    stored = await object_bytes(moto_endpoint, bucket, output["url"].removeprefix(f"{CDN}/"))
    assert Image.open(io.BytesIO(stored)).size == (128, 128)
    thumb = await object_bytes(moto_endpoint, bucket,
                               output["thumbnail_url"].removeprefix(f"{CDN}/"))
    assert Image.open(io.BytesIO(thumb)).format == "WEBP"

    # The same links in the list and through the OpenAI-compatible surface.
    listed = (await gw.client.get("/v1/generations", headers=tenant.auth)).json()["data"]
    assert listed[0]["outputs"][0]["url"] == output["url"]
    r = await gw.client.post("/v1/images/generations", headers=tenant.auth,
                             json={"model": "local/image", "prompt": "a gull", "size": "256x256"})
    assert r.status_code == 200, r.text
    [image] = r.json()["data"]
    assert image["url"].startswith(f"{CDN}/{PREFIX}/{tenant.id}/gen_")
    assert "X-Amz" not in image["url"]
    data = await object_bytes(moto_endpoint, bucket, image["url"].removeprefix(f"{CDN}/"))
    assert Image.open(io.BytesIO(data)).size == (256, 256)

    # Turned off again: signed links at once, for the media made while it was on too.
    await public_links(gw, tenant, False)
    again = (await gw.client.get(f"/v1/generations/{done['id']}", headers=tenant.auth)).json()
    assert_presigned(again["outputs"][0]["url"], moto_endpoint)


async def test_a_tenant_that_does_not_allow_them_keeps_presigned_links(
        cdn_gateway: Gateway, moto_endpoint: str) -> None:
    gw = cdn_gateway
    allowing = await gw.tenant(scopes=ADMIN_SCOPES)
    await public_links(gw, allowing, True)
    private = await gw.tenant(scopes=ADMIN_SCOPES)
    shown = (await gw.client.get("/v1/tenant", headers=private.auth)).json()
    assert shown["media"] == {"public_links": False}

    done = await gw.finish(private.auth, IMAGE)
    [output] = done["outputs"]
    assert_presigned(output["url"], moto_endpoint)
    assert_presigned(output["thumbnail_url"], moto_endpoint)
    assert CDN not in output["url"]
    async with httpx.AsyncClient() as plain:
        fetched = await plain.get(output["url"])
    assert fetched.status_code == 200
    assert Image.open(io.BytesIO(fetched.content)).size == (128, 128)


async def test_without_the_cdn_setting_a_tenant_allowing_public_links_gets_presigned_ones(
        pg_url: str, tmp_path: Path, moto_endpoint: str, bucket: str) -> None:
    settings = s3_settings(pg_url, tmp_path, moto_endpoint, bucket)
    assert settings.media_cdn_base_url is None
    async with running_gateway(settings) as gw:
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        await public_links(gw, tenant, True)
        done = await gw.finish(tenant.auth, IMAGE)
    assert_presigned(done["outputs"][0]["url"], moto_endpoint)
    assert_presigned(done["outputs"][0]["thumbnail_url"], moto_endpoint)


async def test_local_storage_never_gives_cdn_links(settings: Settings) -> None:
    # load_settings refuses this pairing; a Settings built directly still signs links,
    # since local files are not servable by a CDN.
    settings = msgspec.structs.replace(settings, media_cdn_base_url=CDN)
    async with running_gateway(settings) as gw:
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        await public_links(gw, tenant, True)
        done = await gw.finish(tenant.auth, IMAGE)
        url = done["outputs"][0]["url"]
        assert url.startswith("http://testserver/media/")
        assert (await gw.media(url)).status_code == 200


@pytest.mark.parametrize("body", [
    {"media": {"public_links": "yes"}},
    {"media": {"public_links": None}},
    {"media": {"public": True}},
    {"media": True},
])
async def test_a_bad_media_setting_is_refused_with_422(gateway: Gateway,
                                                       body: dict[str, Any]) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    shown = (await gateway.client.get("/v1/tenant", headers=tenant.auth)).json()
    assert shown["media"] == {"public_links": False}


async def test_the_operator_sets_it_too(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    r = await gateway.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin(),
                                   json={"media": {"public_links": True}})
    assert r.status_code == 200, r.text
    got = await gateway.client.get(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin())
    assert got.json()["media"] == {"public_links": True}


def test_s3_public_url_is_the_quoted_object_key_under_the_prefix() -> None:
    store = S3Storage("bucket", prefix="/media/out/")
    assert store.public_url("ten_1/gen_2/0 a?.png", base_url="https://cdn.example/") == \
        "https://cdn.example/media/out/ten_1/gen_2/0%20a%3F.png"
    assert S3Storage("bucket").public_url("t/g/0.png", base_url="https://c.example") == \
        "https://c.example/t/g/0.png"
    with pytest.raises(ValueError, match="segments"):
        store.public_url("t/../g", base_url="https://cdn.example")


def test_local_storage_has_no_public_url(tmp_path: Path) -> None:
    store = LocalStorage(str(tmp_path), secret_key=b"k" * 32)
    assert store.public_url("t/g/0.png", base_url="https://cdn.example") is None
