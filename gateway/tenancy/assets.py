"""Brand images: the tenant's logo, favicon and icon, uploaded as the raw body of
`PUT /v1/tenant/branding/{name}` and served publicly by `GET /v1/tenants/{id}/branding/{name}`
(the sign-in page shows the logo before anyone signs in).

An upload is believed only after Pillow decoded it as the format its `Content-Type` claims,
within `MAX_ASSET_BYTES` and `MAX_ASSET_SIDE_PX`. SVG is refused: it can carry script, and
sanitising it well is a project of its own. Stored in `runtime.storage` under
`tenants/<id>/branding/<name>`; the tenant's `branding.<name>` holds the reference.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import warnings
from typing import Final

import msgspec
from PIL import Image

from gateway.core.runtime import Runtime
from gateway.core.storage import MediaNotFound
from tenants import audit
from tenants import service as tenants
from tenants.branding import ASSET_NAMES, BrandAsset, Branding
from tenants.kernel.db import utcnow
from tenants.kernel.errors import InvalidRequest, NotFound, PayloadTooLarge

#: The largest brand image accepted, bytes (1 MiB).
MAX_ASSET_BYTES: Final = 1024 * 1024
#: The largest width or height accepted, pixels.
MAX_ASSET_SIDE_PX: Final = 4096
#: Accepted `Content-Type`s and the Pillow format each must decode as.
FORMATS: Final = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP",
                  "image/x-icon": "ICO", "image/vnd.microsoft.icon": "ICO"}


class AssetDeleted(msgspec.Struct):
    name: str
    deleted: bool = True
    object: str = "brand_asset"


def _asset_name(name: str) -> str:
    if name not in ASSET_NAMES:
        raise NotFound(f"no brand image named {name!r}; use logo, favicon or icon",
                       code="asset_not_found", param="name")
    return name


def storage_key(tenant_id: str, name: str) -> str:
    return f"tenants/{tenant_id}/branding/{name}"


def check_size(declared: str | None) -> None:
    """Refuse a declared `Content-Length` over the limit before the body is read (413)."""
    if declared is not None and declared.isdigit() and int(declared) > MAX_ASSET_BYTES:
        raise PayloadTooLarge(f"a brand image may be at most {MAX_ASSET_BYTES} bytes",
                              code="asset_too_large")


def _decode(data: bytes, fmt: str) -> tuple[int, int]:
    """Width and height of `data` if it really is a `fmt` image; raises `InvalidRequest`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as image:
                size = image.size
                image.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise InvalidRequest(f"the body is not a valid {fmt} image",
                             code="invalid_image", param="body") from exc
    return size


def _content_type(claimed: str) -> str:
    content_type = claimed.split(";", 1)[0].strip().lower()
    if content_type not in FORMATS:
        raise InvalidRequest("send the image as the body with Content-Type image/png, "
                             "image/jpeg, image/webp or image/x-icon (SVG is not accepted)",
                             code="unsupported_asset_type", param="Content-Type")
    return content_type


async def put_asset(runtime: Runtime, tenant_id: str, actor: str, name: str,
                    claimed_type: str, data: bytes) -> Branding:
    """`PUT /v1/tenant/branding/{name}`: check, store and reference one brand image, audited
    (`branding.asset_set`). Returns the tenant's branding. 413 over the size limit, 422 for
    a body that is not the image its `Content-Type` claims or is too large in pixels."""
    _asset_name(name)
    content_type = _content_type(claimed_type)
    if len(data) > MAX_ASSET_BYTES:
        raise PayloadTooLarge(f"a brand image may be at most {MAX_ASSET_BYTES} bytes",
                              code="asset_too_large")
    width, height = await asyncio.to_thread(_decode, data, FORMATS[content_type])
    if max(width, height) > MAX_ASSET_SIDE_PX:
        raise InvalidRequest(f"a brand image may be at most {MAX_ASSET_SIDE_PX} pixels wide "
                             "and high", code="image_too_large", param="body")
    digest = hashlib.sha256(data).hexdigest()
    await runtime.storage.put(storage_key(tenant_id, name), data, content_type)
    asset = BrandAsset(url=f"/v1/tenants/{tenant_id}/branding/{name}?v={digest[:12]}",
                       content_type=content_type, bytes=len(data), width=width,
                       height=height, sha256=digest, updated_at=utcnow())
    async with runtime.db.transaction() as session:
        tenant = await tenants.get_tenant(session, tenant_id)
        before = getattr(tenant.branding, name)
        tenant.branding = msgspec.structs.replace(tenant.branding, **{name: asset})
        await audit.record(session, tenant_id=tenant_id, actor=actor,
                           action="branding.asset_set", target_type="brand_asset",
                           target_id=name, before=before, after=asset)
        branding = tenant.branding
    runtime.tenant_views.forget(tenant_id)
    return branding


async def delete_asset(runtime: Runtime, tenant_id: str, actor: str, name: str) -> AssetDeleted:
    """`DELETE /v1/tenant/branding/{name}`: the image stops being referenced and served at
    once (the stored bytes stay until the next upload of that name replaces them); 404 when
    there is none. Audited (`branding.asset_deleted`)."""
    _asset_name(name)
    async with runtime.db.transaction() as session:
        tenant = await tenants.get_tenant(session, tenant_id)
        before = getattr(tenant.branding, name)
        if before is None:
            raise NotFound(f"the tenant has no {name}", code="asset_not_found", param="name")
        tenant.branding = msgspec.structs.replace(tenant.branding, **{name: None})
        await audit.record(session, tenant_id=tenant_id, actor=actor,
                           action="branding.asset_deleted", target_type="brand_asset",
                           target_id=name, before=before)
    runtime.tenant_views.forget(tenant_id)
    return AssetDeleted(name=name)


async def read_asset(runtime: Runtime, tenant_id: str, name: str) -> tuple[bytes, str]:
    """`GET /v1/tenants/{id}/branding/{name}` (public): the image's bytes and type; 404 for
    an unknown tenant or name, or an image the tenant does not have (any more)."""
    _asset_name(name)
    tenant = await runtime.tenant_views.tenant(tenant_id)
    asset: BrandAsset | None = getattr(tenant.branding, name)
    if asset is None:
        raise NotFound(f"the tenant has no {name}", code="asset_not_found")
    try:
        data, _ = await runtime.storage.get(storage_key(tenant_id, name))
    except (MediaNotFound, ValueError) as exc:
        raise NotFound(f"the tenant has no {name}", code="asset_not_found") from exc
    return data, asset.content_type
