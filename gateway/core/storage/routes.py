"""Signed links to media kept in local storage (S3 links are presigned by the store)."""

from __future__ import annotations

import time

from litestar import Controller, Response, get
from litestar.params import FromPath, FromQuery

from gateway.core.deps import RuntimeDep
from gateway.core.storage import MediaNotFound, verify_media_signature
from tenants.kernel.errors import NotFound, PermissionDenied


class MediaController(Controller):
    path = "/media"
    tags = ["media"]
    include_in_schema = False

    @get("/{key:path}")
    async def fetch(self, runtime: RuntimeDep, key: FromPath[str], expires: FromQuery[str] = "",
                    signature: FromQuery[str] = "") -> Response[bytes]:
        """The media bytes when the link's signature is good and not expired; else 403."""
        key = key.lstrip("/")
        if not verify_media_signature(runtime.settings.secret_key, key, expires, signature,
                                      now=time.time()):
            raise PermissionDenied("this media link is invalid or has expired",
                                   code="media_link_invalid")
        try:
            data, content_type = await runtime.storage.get(key)
        except (MediaNotFound, ValueError) as exc:
            raise NotFound("no such media", code="media_not_found") from exc
        return Response(data, media_type=content_type,
                        headers={"Cache-Control": "private, max-age=300"})
