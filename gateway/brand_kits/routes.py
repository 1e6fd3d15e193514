"""`/v1/brand_kits` (docs/brand-kits.md): brand kits, their versions and files. Thin: each
route parses, calls one use case (`service`, `assets`) and renders. The kit's owner and the
caller's role decide who changes a kit (tenants/brand_kits/service.py); reads need `read`."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, Parameter

from gateway.brand_kits import assets, service
from gateway.core.auth import Principal, requires
from gateway.core.deps import RuntimeDep, page_limit
from gateway.core.errors import ErrorBody
from tenants.brand_kits.models import FONT, LOGO
from tenants.brand_kits.schemas import (
    AssetDeleted,
    BrandKitCreate,
    BrandKitDeleted,
    BrandKitList,
    BrandKitOut,
    BrandKitUpdate,
    VersionList,
    VersionOut,
)

#: A kit's files are the caller's, never a page: no sniffing, no script, no caching by others.
_FILE_HEADERS = {"X-Content-Type-Options": "nosniff",
                 "Content-Security-Policy": "default-src 'none'; sandbox",
                 "Cache-Control": "private, max-age=300"}
#: The upload routes' own refusals, in the one error shape.
_UPLOAD_ERRORS = {
    413: ResponseSpec(data_container=ErrorBody, generate_examples=False,
                      description="The file is over the size limit"),
    415: ResponseSpec(data_container=ErrorBody, generate_examples=False,
                      description="The Content-Type is not one this route takes"),
}


class BrandKitController(Controller):
    path = "/v1/brand_kits"
    tags = ["brand kits"]

    @post("/", status_code=201, summary="Create a brand kit", guards=[requires()])
    async def create(self, principal: Principal, runtime: RuntimeDep,
                     data: BrandKitCreate) -> BrandKitOut:
        """A kit owned by the tenant, a team or the calling customer (`owner`; default: the
        calling customer's own, else the tenant's), at version 1. Tenant kits: staff
        owner/admin/developer or a key without a customer holding `generate` or
        `tenant_admin`; team kits: the team's owners and admins; 403 `brand_kit_role`
        otherwise, 404 `team_not_found` for a team the caller is not in."""
        return await service.create(runtime, principal, data)

    @get("/", summary="List brand kits", guards=[requires("read")])
    async def list_(self, principal: Principal, runtime: RuntimeDep,
                    owner_type: FromQuery[str | None] = None,
                    limit: FromQuery[int | None] = None,
                    after: FromQuery[str | None] = None) -> BrandKitList:
        """The kits the caller may read (the tenant's, its teams', its own), newest first;
        `owner_type` (`tenant`, `team`, `customer`; 422 `invalid_owner_type` otherwise)
        narrows them; `after` is a previous page's `next_cursor` (422 `invalid_cursor` for
        another value)."""
        return await service.list_(runtime, principal, owner_type=owner_type,
                                   limit=page_limit(limit), after=after)

    @get("/{kit_id:str}", summary="One brand kit", guards=[requires("read")])
    async def read(self, principal: Principal, runtime: RuntimeDep,
                   kit_id: FromPath[str]) -> BrandKitOut:
        """The kit at its current version; a kit the caller may not read is 404
        `brand_kit_not_found`."""
        return await service.read(runtime, principal, kit_id)

    @patch("/{kit_id:str}", summary="Change a brand kit (a new version)", guards=[requires()])
    async def update(self, principal: Principal, runtime: RuntimeDep, kit_id: FromPath[str],
                     data: BrandKitUpdate) -> BrandKitOut:
        """The given fields change; `version` goes up by one and the new version is kept
        (`/versions`). 403 `brand_kit_role` for a caller who may use but not change it."""
        return await service.update(runtime, principal, kit_id, data)

    @delete("/{kit_id:str}", status_code=200, summary="Delete a brand kit",
            guards=[requires()])
    async def delete_(self, principal: Principal, runtime: RuntimeDep,
                      kit_id: FromPath[str]) -> BrandKitDeleted:
        """The kit, its versions and files go; generations made with it keep naming its id
        and version."""
        return await service.delete(runtime, principal, kit_id)

    @get("/{kit_id:str}/versions", summary="A brand kit's versions",
         guards=[requires("read")])
    async def versions(self, principal: Principal, runtime: RuntimeDep,
                       kit_id: FromPath[str], limit: FromQuery[int | None] = None,
                       after: Annotated[int | None, Parameter(ge=1)] = None) -> VersionList:
        """Every version's snapshot, newest first; `after` (a previous page's
        `next_cursor`, a version number) gives the older ones."""
        return await service.versions(runtime, principal, kit_id, limit=page_limit(limit),
                                      after=after)

    @get("/{kit_id:str}/versions/{version:int}", summary="A brand kit at one version",
         guards=[requires("read")])
    async def version(self, principal: Principal, runtime: RuntimeDep,
                      kit_id: FromPath[str], version: FromPath[int]) -> VersionOut:
        """The kit's fields and the files it had at `version`; 404
        `brand_kit_version_not_found` for a version it never had."""
        return await service.version(runtime, principal, kit_id, version)

    @post("/{kit_id:str}/fonts", status_code=201, summary="Upload a font to a brand kit",
          guards=[requires()], responses=_UPLOAD_ERRORS)
    async def upload_font(self, principal: Principal, runtime: RuntimeDep,
                          request: Request[Any, Any, Any], kit_id: FromPath[str],
                          filename: FromQuery[str | None] = None) -> BrandKitOut:
        """The raw TTF, OTF or WOFF2 file is the body (`Content-Type` font/ttf, font/otf,
        font/woff2 or application/octet-stream, else 415 `unsupported_font_type`), named by
        `?filename=`. At most 5 MiB (413 `font_too_large`); bytes that are no such font are
        422 `invalid_font`. Its family name is read from it. Answers the kit at its new
        version."""
        assets.check_size(FONT, request.headers.get("content-length"))
        body = await request.body()
        return await assets.upload(runtime, principal, kit_id, FONT,
                                   request.headers.get("content-type", ""), body, filename)

    @post("/{kit_id:str}/logos", status_code=201, summary="Upload a logo to a brand kit",
          guards=[requires()], responses=_UPLOAD_ERRORS)
    async def upload_logo(self, principal: Principal, runtime: RuntimeDep,
                          request: Request[Any, Any, Any], kit_id: FromPath[str],
                          filename: FromQuery[str | None] = None) -> BrandKitOut:
        """The raw PNG, JPEG or WebP image is the body, its type the `Content-Type` (SVG and
        others: 415 `unsupported_logo_type`), named by `?filename=`. At most 2 MiB (413
        `logo_too_large`) and 4096 px a side (422 `image_too_large`); a body that is not the
        image it claims is 422 `invalid_image`. Answers the kit at its new version."""
        assets.check_size(LOGO, request.headers.get("content-length"))
        body = await request.body()
        return await assets.upload(runtime, principal, kit_id, LOGO,
                                   request.headers.get("content-type", ""), body, filename)

    @get("/{kit_id:str}/assets/{asset_id:str}", summary="A brand kit's font or logo file",
         guards=[requires("read")])
    async def read_asset(self, principal: Principal, runtime: RuntimeDep,
                         kit_id: FromPath[str], asset_id: FromPath[str]) -> Response[bytes]:
        """The file's bytes as uploaded, for whoever may read the kit (404 otherwise),
        served with `nosniff` and a deny-all Content-Security-Policy."""
        data, content_type, name = await assets.read(runtime, principal, kit_id, asset_id)
        disposition = f"inline; filename=\"{name}\""
        return Response(data, media_type=content_type,
                        headers={**_FILE_HEADERS, "Content-Disposition": disposition})

    @delete("/{kit_id:str}/assets/{asset_id:str}", status_code=200,
            summary="Remove a font or logo from a brand kit", guards=[requires()])
    async def delete_asset(self, principal: Principal, runtime: RuntimeDep,
                           kit_id: FromPath[str], asset_id: FromPath[str]) -> AssetDeleted:
        """The file leaves the kit (a new version) and storage; older versions still list
        it. 404 `brand_asset_not_found` for a file the kit does not have."""
        await assets.remove(runtime, principal, kit_id, asset_id)
        return AssetDeleted(id=asset_id)
