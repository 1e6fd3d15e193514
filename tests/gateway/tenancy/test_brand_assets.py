"""Brand images: uploaded by the tenant as a raw body, believed only once Pillow decoded them
as what they claim, and served publicly with their type and `nosniff`."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from gateway.tenancy.assets import MAX_ASSET_BYTES
from tests.conftest import Gateway

ADMIN_SCOPES = ["generate", "read", "billing", "tenant_admin"]


def image(fmt: str, size: tuple[int, int] = (64, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(("name", "fmt", "content_type"), [
    ("logo", "PNG", "image/png"),
    ("favicon", "ICO", "image/x-icon"),
    ("icon", "WEBP", "image/webp"),
    ("logo", "JPEG", "image/jpeg"),
])
async def test_an_image_round_trips_through_the_public_route(
        gateway: Gateway, name: str, fmt: str, content_type: str) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    data = image(fmt)
    r = await gateway.client.put(f"/v1/tenant/branding/{name}", headers={
        **tenant.auth, "Content-Type": content_type}, content=data)
    assert r.status_code == 200, r.text
    asset = r.json()[name]
    assert asset["content_type"] == content_type
    assert asset["bytes"] == len(data)
    assert asset["url"].startswith(f"/v1/tenants/{tenant.id}/branding/{name}?v=")
    if fmt != "ICO":
        assert (asset["width"], asset["height"]) == (64, 32)
    # Public: no credential.
    served = await gateway.client.get(asset["url"])
    assert served.status_code == 200, served.text
    assert served.content == data
    assert served.headers["content-type"] == content_type
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "max-age" in served.headers["cache-control"]
    # The tenant's branding carries it, and so does the operator's view.
    own = (await gateway.client.get("/v1/tenant", headers=tenant.auth)).json()
    assert own["branding"][name] == asset


async def test_a_patch_of_branding_keeps_the_images(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    r = await gateway.client.put("/v1/tenant/branding/logo", headers={
        **tenant.auth, "Content-Type": "image/png"}, content=image("PNG"))
    assert r.status_code == 200, r.text
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                   json={"branding": {"display_name": "New"}})
    assert r.status_code == 200, r.text
    assert r.json()["branding"]["display_name"] == "New"
    assert r.json()["branding"]["logo"]["content_type"] == "image/png"


async def test_delete_stops_serving(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    r = await gateway.client.put("/v1/tenant/branding/logo", headers={
        **tenant.auth, "Content-Type": "image/png"}, content=image("PNG"))
    url = r.json()["logo"]["url"]
    r = await gateway.client.delete("/v1/tenant/branding/logo", headers=tenant.auth)
    assert r.status_code == 200, r.text
    assert (await gateway.client.get(url)).status_code == 404
    again = await gateway.client.delete("/v1/tenant/branding/logo", headers=tenant.auth)
    assert again.status_code == 404
    assert (await gateway.client.get("/v1/tenant", headers=tenant.auth)).json()[
        "branding"].get("logo") is None


@pytest.mark.parametrize(("content_type", "body", "status", "code"), [
    ("image/png", b"this is not a png at all", 422, "invalid_image"),
    ("image/png", image("JPEG"), 422, "invalid_image"),
    ("image/jpeg", image("PNG"), 422, "invalid_image"),
    ("image/png", image("PNG")[:40], 422, "invalid_image"),
    ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script>"
                      b"</svg>", 422, "unsupported_asset_type"),
    ("text/html", b"<script>alert(1)</script>", 422, "unsupported_asset_type"),
    ("image/png", image("PNG", (4097, 1)), 422, "image_too_large"),
    ("image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_ASSET_BYTES, 413, "asset_too_large"),
])
async def test_a_bad_upload_is_refused(gateway: Gateway, content_type: str, body: bytes,
                                       status: int, code: str) -> None:
    tenant = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    r = await gateway.client.put("/v1/tenant/branding/logo", headers={
        **tenant.auth, "Content-Type": content_type}, content=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert (await gateway.client.get("/v1/tenant", headers=tenant.auth)).json()[
        "branding"].get("logo") is None
    assert (await gateway.client.get(f"/v1/tenants/{tenant.id}/branding/logo")
            ).status_code == 404


async def test_unknown_names_and_other_tenants_are_404(gateway: Gateway) -> None:
    a = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    b = await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0)
    r = await gateway.client.put("/v1/tenant/branding/banner", headers={
        **a.auth, "Content-Type": "image/png"}, content=image("PNG"))
    assert r.status_code == 404, r.text
    await gateway.client.put("/v1/tenant/branding/logo", headers={
        **a.auth, "Content-Type": "image/png"}, content=image("PNG"))
    # B has no logo, though A's is stored; an unknown tenant neither.
    assert (await gateway.client.get(f"/v1/tenants/{b.id}/branding/logo")).status_code == 404
    assert (await gateway.client.get("/v1/tenants/ten_nope/branding/logo")).status_code == 404
    # Uploads need tenant_admin.
    plain = await gateway.tenant(credits_mc=0)
    r = await gateway.client.put("/v1/tenant/branding/logo", headers={
        **plain.auth, "Content-Type": "image/png"}, content=image("PNG"))
    assert r.status_code == 403, r.text
