"""A fake of the Canva Connect API's autofill and export endpoints, answering as the real one
does (field names and error bodies from Canva's OpenAPI spec).

- `POST /v1/autofills`, `GET /v1/autofills/{jobId}` → `{"job": {"id", "status", "result"?,
  "error"?}}`, the job moving along `state.autofill_steps`.
- `POST /v1/exports`, `GET /v1/exports/{exportId}` → `{"job": {"id", "status", "urls"?,
  "error"?}}`, along `state.export_steps`; the URLs (one a page) point at `/exports/...` on
  this fake, served without a token as Canva's presigned URLs are.
- `GET /v1/users/me` → `{"team_user": {"user_id", "team_id"}}`.
- `GET /v1/brand-templates` (`query`, `continuation`, `dataset=any|non_empty`) →
  `{"items": [{"id", "title", "view_url", "create_url", "thumbnail", "created_at",
  "updated_at"}], "continuation"?}`, `state.page_size` a page; `GET
  /v1/brand-templates/{id}/dataset` → `{"dataset": {field: {"type": "text" | "image" |
  "chart"}}}` (no `dataset` key for a template without fields).
- `POST /v1/asset-uploads` (an `application/octet-stream` body, `Asset-Upload-Metadata:
  {"name_base64"}`), `GET /v1/asset-uploads/{jobId}` → `{"job": {"id", "status", "asset"?:
  {"id", "name", "tags", "created_at", "updated_at", "thumbnail"}, "error"?}}`, along
  `state.upload_steps`; the uploaded bytes and names are kept in `state.uploads`.

Each step is `"in_progress"`, `"success"` or `("failed", code, message)`; the last one
repeats. Every API call checks the bearer token (401 `invalid_access_token` otherwise), and
`state.next_errors` scripts the next API answers (status, `{"code", "message"}`, headers).
"""

from __future__ import annotations

import base64
import io
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, Request, Response, get, post
from PIL import Image

from tests.fakes.veo import MP4

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def image_bytes(fmt: str, color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (48, 32), color).save(out, format=fmt)
    return out.getvalue()


def canva_error(code: str, message: str) -> dict[str, str]:
    """The body of a Connect API error."""
    return {"code": code, "message": message}


@dataclass
class Job:
    id: str
    body: dict[str, Any]
    steps: list[Any]


@dataclass
class CanvaState:
    token: str = "test-canva-token"
    autofill_steps: list[Any] = field(default_factory=lambda: ["in_progress", "success"])
    export_steps: list[Any] = field(default_factory=lambda: ["in_progress", "success"])
    pages: int = 1
    #: Brand templates: id → (title, dataset fields as {name: type}).
    brand_templates: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    page_size: int = 2
    next_errors: list[tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    autofills: dict[str, Job] = field(default_factory=dict)
    exports: dict[str, Job] = field(default_factory=dict)
    upload_steps: list[Any] = field(default_factory=lambda: ["in_progress", "success"])
    #: Asset upload jobs; each job's body is `{"name", "data", "content_type"}`.
    uploads: dict[str, Job] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def _step(job: Job) -> Any:
    return job.steps.pop(0) if len(job.steps) > 1 else job.steps[0]


def _failed(job_id: str, step: tuple[str, str, str]) -> dict[str, Any]:
    return {"job": {"id": job_id, "status": "failed",
                    "error": {"code": step[1], "message": step[2]}}}


def _design(job: Job) -> dict[str, Any]:
    design_id = f"DAF{job.id.replace('-', '')}"
    return {"id": design_id, "title": job.body.get("title", "Brand template"),
            "url": f"https://www.canva.com/design/{design_id}/edit",
            "thumbnail": {"width": 595, "height": 335,
                          "url": "https://document-export.canva.com/thumbnail/0001.png"},
            "urls": {"edit_url": f"https://www.canva.com/api/design/{design_id}/edit",
                     "view_url": f"https://www.canva.com/api/design/{design_id}/view"},
            "created_at": 1732867200, "updated_at": 1732867200, "page_count": 1}


def app(state: CanvaState) -> Litestar:
    """The fake Connect API over `state`."""

    def refused(request: Request[Any, Any, Any]) -> Response[Any] | None:
        if request.headers.get("authorization") != f"Bearer {state.token}":
            return Response(canva_error("invalid_access_token", "Access token is invalid"),
                            status_code=401)
        if state.next_errors:
            status, body, headers = state.next_errors.pop(0)
            return Response(body, status_code=status, headers=headers)
        return None

    def autofill_body(job: Job, step: Any) -> dict[str, Any]:
        if isinstance(step, tuple):
            return _failed(job.id, step)
        answer: dict[str, Any] = {"id": job.id, "status": step}
        if step == "success":
            answer["result"] = {"type": "create_design", "design": _design(job)}
        return {"job": answer}

    def export_body(job: Job, step: Any, base: str) -> dict[str, Any]:
        if isinstance(step, tuple):
            return _failed(job.id, step)
        answer: dict[str, Any] = {"id": job.id, "status": step}
        if step == "success":
            kind = job.body["format"]["type"]
            answer["urls"] = [f"{base}/exports/{job.id}/{page}.{kind}?X-Amz-Signature=abc"
                              for page in range(1, state.pages + 1)]
        return {"job": answer}

    @post("/v1/autofills", status_code=200)
    async def create_autofill(request: Request[Any, Any, Any]) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        job = Job(id=f"af-{next(state.ids)}", body=await request.json(),
                  steps=list(state.autofill_steps))
        state.autofills[job.id] = job
        return Response(autofill_body(job, "in_progress"))

    @get("/v1/autofills/{job_id:str}")
    async def get_autofill(request: Request[Any, Any, Any], job_id: str) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        job = state.autofills.get(job_id)
        if job is None:
            return Response(canva_error("not_found", "Job not found"), status_code=404)
        return Response(autofill_body(job, _step(job)))

    @post("/v1/exports", status_code=200)
    async def create_export(request: Request[Any, Any, Any]) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        job = Job(id=f"ex-{next(state.ids)}", body=await request.json(),
                  steps=list(state.export_steps))
        state.exports[job.id] = job
        return Response(export_body(job, "in_progress", ""))

    @get("/v1/exports/{job_id:str}")
    async def get_export(request: Request[Any, Any, Any], job_id: str) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        job = state.exports.get(job_id)
        if job is None:
            return Response(canva_error("not_found", "Export not found"), status_code=404)
        return Response(export_body(job, _step(job), f"http://{request.url.netloc}"))

    def upload_body(job: Job, step: Any) -> dict[str, Any]:
        if isinstance(step, tuple):
            return _failed(job.id, step)
        answer: dict[str, Any] = {"id": job.id, "status": step}
        if step == "success":
            answer["asset"] = {"id": f"MA{job.id.replace('-', '')}", "name": job.body["name"],
                               "tags": [], "created_at": 1732867200,
                               "updated_at": 1732867200,
                               "thumbnail": {"width": 48, "height": 32,
                                             "url": "https://document-export.canva.com/t.png"}}
        return {"job": answer}

    @post("/v1/asset-uploads", status_code=200)
    async def create_upload(request: Request[Any, Any, Any]) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        if request.headers.get("content-type") != "application/octet-stream":
            return Response(canva_error("bad_request_body", "Content-Type must be "
                                        "application/octet-stream"), status_code=400)
        try:
            metadata = json.loads(request.headers.get("asset-upload-metadata", ""))
            name = base64.b64decode(metadata["name_base64"]).decode()
        except (ValueError, KeyError, TypeError):
            return Response(canva_error("bad_request_body", "Asset-Upload-Metadata is "
                                        "missing or invalid"), status_code=400)
        job = Job(id=f"up-{next(state.ids)}",
                  body={"name": name, "data": await request.body()},
                  steps=list(state.upload_steps))
        state.uploads[job.id] = job
        return Response(upload_body(job, "in_progress"))

    @get("/v1/asset-uploads/{job_id:str}")
    async def get_upload(request: Request[Any, Any, Any], job_id: str) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        job = state.uploads.get(job_id)
        if job is None:
            return Response(canva_error("not_found", "Job not found"), status_code=404)
        return Response(upload_body(job, _step(job)))

    @get("/v1/users/me")
    async def users_me(request: Request[Any, Any, Any]) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        return Response({"team_user": {"user_id": "auDAbliZ2rQNNOsUl5OLu",
                                       "team_id": "Oi2RJILTrKk0KRhRUZozX"}})

    @get("/v1/brand-templates")
    async def brand_templates(request: Request[Any, Any, Any]) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        ids = [key for key, (_, fields) in state.brand_templates.items()
               if request.query_params.get("dataset") != "non_empty" or fields]
        start = int(request.query_params.get("continuation") or 0)
        page = ids[start:start + state.page_size]
        body: dict[str, Any] = {"items": [{
            "id": key, "title": state.brand_templates[key][0],
            "view_url": f"https://www.canva.com/design/{key}/view",
            "create_url": f"https://www.canva.com/design/{key}/remix",
            "thumbnail": {"width": 595, "height": 335,
                          "url": "https://document-export.canva.com/thumbnail/0001.png"},
            "created_at": 1704110400, "updated_at": 1719835200} for key in page]}
        if start + state.page_size < len(ids):
            body["continuation"] = str(start + state.page_size)
        return Response(body)

    @get("/v1/brand-templates/{template_id:str}/dataset")
    async def dataset(request: Request[Any, Any, Any], template_id: str) -> Response[Any]:
        if (answer := refused(request)) is not None:
            return answer
        if template_id not in state.brand_templates:
            return Response(canva_error("not_found", "Brand template not found"),
                            status_code=404)
        fields = state.brand_templates[template_id][1]
        return Response({"dataset": {name: {"type": kind} for name, kind in fields.items()}}
                        if fields else {})

    @get("/exports/{job_id:str}/{name:str}")
    async def download(job_id: str, name: str) -> Response[bytes]:
        page = int(name.split(".")[0])
        kind = name.rsplit(".", 1)[-1]
        content = {"png": image_bytes("PNG", (page * 40, 80, 120)),
                   "jpg": image_bytes("JPEG", (page * 40, 80, 120)),
                   "pdf": PDF, "mp4": MP4}[kind]
        return Response(content, media_type="application/octet-stream")

    return Litestar([create_autofill, get_autofill, create_export, get_export, users_me,
                     brand_templates, dataset, download, create_upload, get_upload],
                    debug=False)
