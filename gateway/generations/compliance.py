"""`GET /v1/generations/{id}/brand_compliance` (issue #15, docs/brand-compliance.md): one
output of a generation judged against a brand kit the caller may read. Loads the output (a
video's frame through `video_frame`) and the kit at the version asked for, and hands both to
the pure analysis in `brand_compliance`, off the event loop."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Final

import msgspec

from gateway.brand_kits import assets as kit_files
from gateway.core.auth import Principal
from gateway.core.storage.base import MediaNotFound
from gateway.generations import service
from gateway.generations.brand_compliance import (
    MAX_TOLERANCE,
    ComplianceReport,
    PaletteColour,
    assess,
    video_frame,
)
from gateway.generations.models import SUCCEEDED, Generation, StoredOutput
from gateway.generations.services import Services
from tenants.brand_kits import service as kits
from tenants.kernel.errors import Conflict, InvalidRequest, NotFound

#: The largest stored output read for a check: an image past it is not a generation's (the
#: engines make at most 2048 px a side) and would only cost memory; a video is read whole
#: to a temporary file for ffmpeg, so it has its own bound.
MAX_IMAGE_BYTES: Final = 40 * 1024 * 1024
MAX_VIDEO_BYTES: Final = 256 * 1024 * 1024
DEFAULT_TOLERANCE: Final = 10.0
ASSESSABLE: Final = frozenset({"image", "video", "design"})


class BrandComplianceOut(ComplianceReport, kw_only=True):
    """The report, and what it judged: which output, against which kit at which version."""

    generation_id: str
    brand_kit_id: str
    brand_kit_version: int
    output_index: int


def _output(generation: Generation, index: int) -> StoredOutput:
    if generation.type not in ASSESSABLE:
        raise Conflict(f"a {generation.type} generation has no picture to check",
                       code="not_assessable", param="id")
    if generation.status != SUCCEEDED:
        raise Conflict(f"the generation is {generation.status}; only a succeeded one has an "
                       "output to check", code="not_assessable", param="id")
    outputs = generation.outputs or []
    if not 0 <= index < len(outputs):
        raise InvalidRequest(f"the generation has {len(outputs)} output(s)",
                             code="invalid_output_index", param="output_index")
    output = outputs[index]
    kind = output.content_type.split("/", 1)[0]
    if kind not in ("image", "video"):
        # A design engine may answer a PDF: there is no picture in it to measure.
        raise Conflict(f"output {index} is {output.content_type}, not a picture",
                       code="not_assessable", param="output_index")
    limit = MAX_VIDEO_BYTES if kind == "video" else MAX_IMAGE_BYTES
    if output.bytes > limit:
        raise InvalidRequest(f"output {index} is larger than the {limit} bytes checked",
                             code="output_too_large", param="output_index")
    return output


def _frame(data: bytes, suffix: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="mh-brand-") as tmp:
        path = Path(tmp) / f"clip{suffix}"
        path.write_bytes(data)
        return video_frame(path)


async def check(services: Services, principal: Principal, generation_id: str, *,
                kit_id: str | None, version: int | None, tolerance: float | None,
                output_index: int = 0) -> BrandComplianceOut:
    """Called by the brand-compliance route: the report of output `output_index` of the
    caller's generation against kit `kit_id` (default: the one the generation used) at
    `version` (default: the version the generation used when it is that kit, else the
    current one). 404 for a generation or kit the caller may not read, 409 `not_assessable`
    for a generation without a finished picture, 422 for bad parameters or an unreadable
    output."""
    tolerance = DEFAULT_TOLERANCE if tolerance is None else tolerance
    if not 0 <= tolerance <= MAX_TOLERANCE:
        raise InvalidRequest(f"tolerance must be between 0 and {MAX_TOLERANCE:g}",
                             code="invalid_tolerance", param="tolerance")
    if version is not None and version < 1:
        raise InvalidRequest("version is a number from 1", code="invalid_version",
                             param="version")
    generation = await service.get(services, principal, generation_id)
    kit_id = kit_id or generation.brand_kit_id
    if not kit_id:
        raise InvalidRequest("the generation used no brand kit: name one",
                             code="brand_kit_required", param="brand_kit_id")
    output = _output(generation, output_index)
    runtime = services.runtime
    async with runtime.db.session() as session:
        try:
            kit = await kits.get_kit(session, kit_files.caller(principal), kit_id)
        except NotFound as exc:
            raise NotFound("no such brand kit", code="brand_kit_not_found",
                           param="brand_kit_id") from exc
        if version is None and kit.id == generation.brand_kit_id:
            version = generation.brand_kit_version
        snapshot = (await kits.get_version(session, kit.tenant_id, kit.id, version)).snapshot \
            if version is not None and version != kit.version else None
        current = await kits.assets_of(session, kit.tenant_id, kit.id)
        colours = snapshot.content.colors if snapshot is not None else kit.content.colors
        logo_ids = ([logo.id for logo in snapshot.logos] if snapshot is not None
                    else [asset.id for asset in current if asset.kind == "logo"])
        keys = {asset.id: asset.storage_key for asset in current}
        logo_key = keys.get(logo_ids[0]) if logo_ids else None
        version = version or kit.version
    logo: bytes | None = None
    if logo_key is not None:
        try:
            logo, _ = await runtime.storage.get(logo_key)
        except MediaNotFound:
            logo = None  # removed since that version: the colours are still worth judging
    try:
        data, _ = await runtime.storage.get(output.key)
    except MediaNotFound as exc:
        raise Conflict("the output's media is gone", code="not_assessable",
                       param="output_index") from exc
    if output.content_type.startswith("video/"):
        suffix = Path(output.key).suffix or ".mp4"
        data = await asyncio.to_thread(_frame, data, suffix)
    palette = [PaletteColour(name=colour.name, hex=colour.hex) for colour in colours]
    report = await asyncio.to_thread(assess, data, palette=palette, logo=logo,
                                     tolerance=tolerance)
    return BrandComplianceOut(**msgspec.structs.asdict(report), generation_id=generation.id,
                              brand_kit_id=kit.id, brand_kit_version=version,
                              output_index=output_index)
