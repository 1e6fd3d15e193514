"""Canva Connect: a design autofilled from a brand template, then exported (PNG, PDF, JPG or
MP4), in two asynchronous stages.

The wire format, as verified (plugins/README.md, "Canva"), all under
`https://api.canva.com/rest` with `Authorization: Bearer <OAuth access token>`:

- `POST /v1/autofills` `{"brand_template_id", "title"?, "data": {field: {"type": "text",
  "text"} | {"type": "image", "asset_id"} | {"type": "chart", "chart_data"}}}` →
  `{"job": {"id", "status": "in_progress" | "success" | "failed", "result"?: {"type":
  "create_design", "design": {"id", ...}}, "error"?: {"code", "message"}}}`;
  `GET /v1/autofills/{jobId}` → the same job.
- `POST /v1/exports` `{"design_id", "format": {"type": "png" | "pdf" | "jpg" | "mp4", ...}}`
  → `{"job": {"id", "status", "urls"?, "error"?}}`; `GET /v1/exports/{exportId}`. The URLs
  (one a page, presigned) are the outputs; the gateway downloads them.
- Errors: `{"code", "message"}` with codes such as `invalid_access_token`,
  `revoked_access_token`, `permission_denied`, `not_found`, `too_many_requests`,
  `invalid_field`, `quota_exceeded`.
- `GET /v1/users/me` (no scope needed) is the health check. Canva has no cancel for either job.
- Brand kits (docs/brand-kits.md): with `params.brand` (and the input `brand_logo`) the
  template's dataset (`GET /v1/brand-templates/{id}/dataset`) is read and every field of
  `BRAND_TEXT_FIELDS`' names (and `brand_logo`, an image field) the template has and `data`
  does not give is filled from the kit. The logo is uploaded first: `POST /v1/asset-uploads`
  (the bytes as `application/octet-stream`, `Asset-Upload-Metadata: {"name_base64"}`) →
  `{"job": {"id", "status", "asset"?: {"id"}, "error"?}}`, `GET /v1/asset-uploads/{jobId}`
  until it is done (at most `MAX_UPLOAD_POLLS` times); its `asset.id` fills the field.

The access token is the tenant's (or the platform's) `credentials.api_key`: a reseller
connects its own Canva account by giving mediahub its token. Brand templates and autofill
need the Canva account to be on a plan that offers them (Canva Enterprise).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

import httpx
import msgspec

from plugins.errors import (
    AUTH,
    INVALID_INPUT,
    QUOTA_EXHAUSTED,
    RATE_LIMITED,
    SERVER_ERROR,
    InvalidParams,
    ProviderError,
    error_for_status,
    error_from_exception,
)
from plugins.hookspecs import hookimpl
from plugins.provider import (
    Credentials,
    DesignTemplate,
    Health,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
    ProviderTask,
    TemplateField,
    mapped_param,
    run_to_completion,
)
from plugins.vocabulary import ParamSpec, declare

BASE_URL: Final = "https://api.canva.com/rest"
FORMATS: Final = ("png", "pdf", "jpg", "mp4")
CONTENT_TYPES: Final[Mapping[str, str]] = {"png": "image/png", "pdf": "application/pdf",
                                           "jpg": "image/jpeg", "mp4": "video/mp4"}
MP4_QUALITIES: Final = ("horizontal_480p", "horizontal_720p", "horizontal_1080p",
                        "horizontal_4k", "vertical_480p", "vertical_720p", "vertical_1080p",
                        "vertical_4k")
DEFAULT_JPG_QUALITY: Final = 90
DEFAULT_MP4_QUALITY: Final = "horizontal_1080p"
MAX_TITLE: Final = 255
_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,50}")
#: A task id is `<stage>:<job id>:<export format>`; the format (with its quality) rides
#: along because `poll`, which starts the export, sees only the task.
_TASK: Final = re.compile(r"(autofill|export):([A-Za-z0-9_-]{1,50}):(png|pdf|jpg-\d{1,3}|"
                          r"mp4-[a-z0-9_]+)")
TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)
#: Exports are a few MB; the cap only matters to `generate`, which downloads them itself.
MAX_EXPORT_BYTES: Final = 100 * 1024 * 1024
DEFAULT_POLL_AFTER_S: Final = 2.0
#: The most brand templates `list_templates` reads (each costs a dataset call, and Canva
#: allows 100 calls a minute per user).
MAX_TEMPLATES: Final = 50

#: The Canva Connect API has no per-call price: this is the operator's fee per design
#: autofilled and exported (USD micros), an operator override away from their own figure.
PRICES: Final[Mapping[str, int]] = {"autofill_export": 20_000}

#: The text fields a brand kit fills when a template has them: `brand_name`, `brand_font`
#: (the font's family), `brand_tone` (the tone words, `", "`-separated), and per colour
#: `brand_color_<n>` (1-based, in the kit's order) and `brand_color_<name>` (its name in
#: lower case, runs of other characters than a-z and 0-9 as `_`), each `#rrggbb`.
BRAND_TEXT_FIELDS: Final = ("brand_name", "brand_font", "brand_tone", "brand_color_<n>",
                            "brand_color_<name>")
BRAND_LOGO_FIELD: Final = "brand_logo"
MAX_UPLOAD_POLLS: Final = 30


class Options(msgspec.Struct, frozen=True, kw_only=True):
    body: dict[str, Any]
    #: The export format as carried in task ids: `png`, `pdf`, `jpg-<q>` or `mp4-<quality>`.
    export: str


def _field_value(key: str, value: Any) -> dict[str, Any]:
    """One `data` entry as Canva's dataset value; a plain string is a text field."""
    param = f"params.data.{key}"
    if isinstance(value, str):
        return {"type": "text", "text": value}
    if not isinstance(value, dict):
        raise InvalidParams(f"data.{key} must be text or an object with a type", param=param)
    kind = value.get("type")
    if kind == "text" and isinstance(value.get("text"), str) and set(value) == {"type", "text"}:
        return dict(value)
    if kind == "image" and isinstance(value.get("asset_id"), str) \
            and _ID.fullmatch(value["asset_id"]) and set(value) == {"type", "asset_id"}:
        return dict(value)
    if kind == "chart" and isinstance(value.get("chart_data"), dict) \
            and isinstance(value["chart_data"].get("rows"), list) \
            and set(value) == {"type", "chart_data"}:
        return dict(value)
    raise InvalidParams(f"data.{key} must be {{type: text, text}}, {{type: image, asset_id}} "
                        f"or {{type: chart, chart_data: {{rows}}}}", param=param)


def _data(request: ProviderRequest) -> dict[str, dict[str, Any]]:
    given = request.params.get("data", {})
    if not isinstance(given, dict):
        raise InvalidParams("data must be an object of field name → value",
                            param="params.data")
    data = {str(k): _field_value(str(k), v) for k, v in given.items()}
    prompt_field = request.params.get("prompt_field")
    if prompt_field is not None:
        if not isinstance(prompt_field, str) or not prompt_field:
            raise InvalidParams("prompt_field must name a data field",
                                param="params.prompt_field")
        if prompt_field in data:
            raise InvalidParams(f"prompt_field {prompt_field!r} is also given in data",
                                param="params.prompt_field")
        data[prompt_field] = {"type": "text", "text": request.prompt}
    if not data:
        raise InvalidParams("give at least one field in data (or prompt_field)",
                            param="params.data")
    return data


def _export(params: Mapping[str, Any]) -> str:
    fmt = params.get("format", "png")
    if fmt not in FORMATS:
        raise InvalidParams(f"format must be one of {', '.join(FORMATS)}",
                            param="params.format")
    quality = params.get("quality")
    if fmt == "jpg":
        quality = DEFAULT_JPG_QUALITY if quality is None else quality
        if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
            raise InvalidParams("quality must be an integer from 1 to 100 for jpg",
                                param="params.quality")
        return f"jpg-{quality}"
    if fmt == "mp4":
        quality = DEFAULT_MP4_QUALITY if quality is None else quality
        if quality not in MP4_QUALITIES:
            raise InvalidParams(f"quality must be one of {', '.join(MP4_QUALITIES)} for mp4",
                                param="params.quality")
        return f"mp4-{quality}"
    if quality is not None:
        raise InvalidParams("quality is only used by the jpg and mp4 formats",
                            param="params.quality")
    return str(fmt)


def options(request: ProviderRequest) -> Options:
    """The autofill body and the export format; raises `InvalidParams` naming the bad
    parameter. Without `prompt_field` the prompt titles the design (unless `title` does)."""
    # The shared `output_format` is Canva's `format` (it used to be ignored: a PNG was made).
    params = mapped_param(request.params, "output_format", "format")
    template = params.get("brand_template_id")
    if not isinstance(template, str) or not _ID.fullmatch(template):
        raise InvalidParams("brand_template_id is required (a Canva brand template ID)",
                            param="params.brand_template_id")
    title = params.get("title")
    if title is not None and (not isinstance(title, str) or not 1 <= len(title) <= MAX_TITLE):
        raise InvalidParams(f"title must be 1 to {MAX_TITLE} characters",
                            param="params.title")
    if title is None and params.get("prompt_field") is None:
        title = request.prompt.strip()[:MAX_TITLE] or None
    body: dict[str, Any] = {"brand_template_id": template, "data": _data(request)}
    if title is not None:
        body["title"] = title
    return Options(body=body, export=_export(params))


def brand_texts(brand: Any) -> dict[str, str]:
    """The text values a kit offers a template (`BRAND_TEXT_FIELDS`), by field name."""
    if not isinstance(brand, dict):
        raise InvalidParams("brand must be an object", param="params.brand")
    texts: dict[str, str] = {}
    for key, field_name in (("name", "brand_name"), ("font_family", "brand_font")):
        if isinstance(brand.get(key), str) and brand[key]:
            texts[field_name] = brand[key]
    tone = brand.get("tone_words")
    if isinstance(tone, list) and tone:
        texts["brand_tone"] = ", ".join(str(word) for word in tone)
    colors = brand.get("colors")
    for index, color in enumerate(colors if isinstance(colors, list) else [], start=1):
        if not isinstance(color, dict) or not isinstance(color.get("hex"), str):
            continue
        texts[f"brand_color_{index}"] = color["hex"]
        slug = re.sub(r"[^a-z0-9]+", "_", str(color.get("name", "")).lower()).strip("_")
        if slug:
            texts.setdefault(f"brand_color_{slug}", color["hex"])
    return texts


def export_format(spec: str) -> dict[str, Any]:
    """The `format` object of an export request from a task's format spec."""
    kind, _, quality = spec.partition("-")
    if kind == "jpg":
        return {"type": "jpg", "quality": int(quality)}
    if kind == "mp4":
        return {"type": "mp4", "quality": quality}
    return {"type": kind}


# --- Bodies ---------------------------------------------------------------------------------

class _JobError(msgspec.Struct):
    code: str = ""
    message: str = ""


class _Design(msgspec.Struct):
    id: str = ""


class _AutofillResult(msgspec.Struct):
    type: str = ""
    design: _Design | None = None


class _Job(msgspec.Struct):
    id: str = ""
    status: str = ""
    result: _AutofillResult | None = None
    urls: list[str] = msgspec.field(default_factory=list)
    error: _JobError | None = None


class _JobEnvelope(msgspec.Struct):
    job: _Job


class _Asset(msgspec.Struct):
    id: str = ""


class _UploadJob(msgspec.Struct):
    id: str = ""
    status: str = ""
    asset: _Asset | None = None
    error: _JobError | None = None


class _UploadEnvelope(msgspec.Struct):
    job: _UploadJob


class _BrandTemplate(msgspec.Struct):
    id: str
    title: str = ""


class _BrandTemplates(msgspec.Struct):
    """`GET /v1/brand-templates`: `{"items": [{"id", "title", "view_url", "create_url",
    "thumbnail"?, "created_at", "updated_at"}], "continuation"?}`."""

    items: list[_BrandTemplate] = msgspec.field(default_factory=list)
    continuation: str | None = None


class _DataField(msgspec.Struct):
    type: str = "text"


class _Dataset(msgspec.Struct):
    """`GET /v1/brand-templates/{id}/dataset`: `{"dataset": {field: {"type": "image" |
    "text" | "chart"}}}` (no `dataset` when the template has no autofill fields)."""

    dataset: dict[str, _DataField] = msgspec.field(default_factory=dict)


#: Canva's error codes that say more than the HTTP status does.
_ERROR_CODES: Final[Mapping[str, tuple[str, bool]]] = {
    "invalid_access_token": (AUTH, False),
    "revoked_access_token": (AUTH, False),
    "missing_scope": (AUTH, False),
    "permission_denied": (AUTH, False),
    "feature_not_available": (AUTH, False),
    "license_required": (AUTH, False),
    "too_many_requests": (RATE_LIMITED, True),
    # The Canva account's quota, not the request: another provider may serve it.
    "quota_exceeded": (QUOTA_EXHAUSTED, True),
    "not_found": (INVALID_INPUT, False),
    "design_not_found": (INVALID_INPUT, False),
    "invalid_field": (INVALID_INPUT, False),
    "missing_field": (INVALID_INPUT, False),
    "bad_request_body": (INVALID_INPUT, False),
    "autofill_data_invalid": (INVALID_INPUT, False),
    "design_not_fillable": (INVALID_INPUT, False),
    "internal_error": (SERVER_ERROR, True),
}
#: A failed job's `error.code`.
_JOB_CODES: Final[Mapping[str, tuple[str, bool]]] = {
    "autofill_error": (INVALID_INPUT, False),        # the data did not fit the template
    "create_design_error": (SERVER_ERROR, True),
    "thumbnail_generation_error": (SERVER_ERROR, True),
    "license_required": (INVALID_INPUT, False),       # premium elements in the design
    "internal_failure": (SERVER_ERROR, True),
}


def error_from_canva(response: httpx.Response) -> ProviderError:
    """Classify a Connect API error answer by Canva's `code` (else by its status)."""
    try:
        body = msgspec.json.decode(response.content, type=_JobError)
    except msgspec.DecodeError:
        body = _JobError()
    message = (f"Canva: {body.message} ({body.code})" if body.message
               else f"Canva answered HTTP {response.status_code}")
    error = error_for_status(response.status_code, message,
                             retry_after=response.headers.get("retry-after"))
    if body.code in _ERROR_CODES:
        error.code, error.retryable = _ERROR_CODES[body.code]
    return error


def _job_error(stage: str, error: _JobError | None) -> ProviderError:
    code, retryable = _JOB_CODES.get(error.code if error else "", (SERVER_ERROR, True))
    detail = f"{error.message} ({error.code})" if error else "no reason given"
    return ProviderError(f"Canva's {stage} job failed: {detail}", code=code,
                         retryable=retryable)


def _parse_task(task_id: str) -> tuple[str, str, str]:
    match = _TASK.fullmatch(task_id)
    if match is None:
        raise ProviderError(f"not a Canva task id: {task_id!r}", code="invalid_task",
                            retryable=False)
    return match[1], match[2], match[3]


class Canva(Provider):
    name = "canva"
    description = ("Canva Connect: a design autofilled from a brand template, exported as "
                   "PNG, PDF, JPG or MP4 (needs a Canva Enterprise account's access token).")
    media_types = frozenset({"design"})
    operations = frozenset({"design_autofill"})
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        "quality": declare("quality", description="jpg: 1 to 100 (default 90); mp4: one of "
                           f"{', '.join(MP4_QUALITIES)} (default {DEFAULT_MP4_QUALITY})"),
        "output_format": declare("output_format", choices=FORMATS, default="png",
                                 description="The export's file type"),
        "brand_template_id": ParamSpec(kind="string", max_length=128,
                                       description="A brand template of the account "
                                                   "(GET /v1/design/templates)"),
        "title": ParamSpec(kind="string", max_length=MAX_TITLE,
                           description="The new design's title in Canva"),
        "data": ParamSpec(kind="object", max_length=100,
                          description="The template's fields: {name: text, or {type, ...}}"),
        "prompt_field": ParamSpec(kind="string", max_length=128,
                                  description="The text field the prompt fills"),
        "brand": declare("brand", description="A brand kit (from brand_kit_id): fills the "
                         "template's brand_* fields"),
        "brand_logo": declare("brand_logo", description="Fills the template's brand_logo "
                              "image field"),
        #: Canva's own word for `output_format`, still accepted.
        "format": ParamSpec(kind="string", max_length=8, choices=FORMATS, default="png",
                            description="The export's file type"),
    }
    asynchronous = True
    capacity = 4
    param_defaults = {"format": "png"}
    prices: Mapping[str, int] = PRICES

    def __init__(self, *, poll_after_s: float = DEFAULT_POLL_AFTER_S) -> None:
        self.poll_after_s = poll_after_s

    def estimate_cost(self, request: ProviderRequest) -> int:
        """Called before anything is reserved: the operator's fee for one design. Raises
        `InvalidParams` for a request Canva cannot take."""
        options(request)
        return self.prices["autofill_export"]

    def pricing(self) -> dict[str, Any]:
        """The fee table for `GET /v1/providers`."""
        return {"usd_micros_per_design": self.prices["autofill_export"],
                "unit": "design autofilled and exported (operator's fee; Canva charges "
                        "no per-call price)"}

    # -- calls ------------------------------------------------------------------------------

    @staticmethod
    def _base(credentials: Credentials) -> str:
        return (credentials.base_url or BASE_URL).rstrip("/")

    @staticmethod
    def _headers(credentials: Credentials) -> dict[str, str]:
        if not credentials.api_key:
            raise ProviderError.auth("no Canva access token is configured")
        return {"Authorization": f"Bearer {credentials.api_key}"}

    async def _call(self, method: str, path: str, credentials: Credentials,
                    client: httpx.AsyncClient, body: dict[str, Any] | None = None) -> _Job:
        try:
            response = await client.request(method, f"{self._base(credentials)}{path}",
                                            json=body, headers=self._headers(credentials),
                                            timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise error_from_exception(exc) from exc
        if response.status_code != 200:
            raise error_from_canva(response)
        try:
            return msgspec.json.decode(response.content, type=_JobEnvelope).job
        except msgspec.DecodeError as exc:
            raise ProviderError.server_error(f"Canva answered {path} with no job") from exc

    async def submit(self, request: ProviderRequest, credentials: Credentials,
                     client: httpx.AsyncClient) -> ProviderTask:
        """Called once per generation: starts the autofill job; returns its task
        (`autofill:<job id>:<format>`). Raises a classified `ProviderError`."""
        opts = options(request)
        body = opts.body
        if request.params.get("brand") is not None or BRAND_LOGO_FIELD in request.inputs:
            body = {**body, "data": await self._with_brand(request, body, credentials, client)}
        job = await self._call("POST", "/v1/autofills", credentials, client, body)
        if job.status == "failed":
            raise _job_error("autofill", job.error)
        if not _ID.fullmatch(job.id):
            raise ProviderError.server_error(f"Canva answered an unexpected job id {job.id!r}")
        return ProviderTask(task_id=f"autofill:{job.id}:{opts.export}",
                            poll_after_s=self.poll_after_s)

    async def _with_brand(self, request: ProviderRequest, body: dict[str, Any],
                          credentials: Credentials,
                          client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
        """The autofill `data` with the brand kit's values in the template's `brand_*`
        fields that `data` leaves empty (module docstring)."""
        template = body["brand_template_id"]
        try:
            dataset = msgspec.json.decode(await self._get(
                f"/v1/brand-templates/{template}/dataset", {}, credentials, client),
                type=_Dataset).dataset
        except msgspec.DecodeError as exc:
            raise ProviderError.server_error("Canva's brand template dataset did not "
                                             "parse") from exc
        data = dict(body["data"])
        brand = request.params.get("brand")
        texts = brand_texts(brand) if brand is not None else {}
        for name, value in texts.items():
            if name not in data and name in dataset and dataset[name].type == "text":
                data[name] = {"type": "text", "text": value}
        logo = request.inputs.get(BRAND_LOGO_FIELD)
        field = dataset.get(BRAND_LOGO_FIELD)
        if logo is not None and BRAND_LOGO_FIELD not in data and field is not None \
                and field.type == "image":
            asset_id = await self._upload(logo.data, "brand-logo", credentials, client)
            data[BRAND_LOGO_FIELD] = {"type": "image", "asset_id": asset_id}
        return data

    async def _upload(self, data: bytes, name: str, credentials: Credentials,
                      client: httpx.AsyncClient) -> str:
        """Upload a file to the account's library and wait for it; returns its asset id."""
        metadata = json.dumps({"name_base64": base64.b64encode(name.encode()).decode()})
        headers = {**self._headers(credentials), "Content-Type": "application/octet-stream",
                   "Asset-Upload-Metadata": metadata}
        url = f"{self._base(credentials)}/v1/asset-uploads"
        job_id: str | None = None
        for _ in range(MAX_UPLOAD_POLLS + 1):
            try:
                response = await (
                    client.post(url, content=data, headers=headers, timeout=TIMEOUT)
                    if job_id is None else
                    client.get(f"{url}/{job_id}", headers=self._headers(credentials),
                               timeout=TIMEOUT))
            except httpx.HTTPError as exc:
                raise error_from_exception(exc) from exc
            if response.status_code != 200:
                raise error_from_canva(response)
            try:
                job = msgspec.json.decode(response.content, type=_UploadEnvelope).job
            except msgspec.DecodeError as exc:
                raise ProviderError.server_error("Canva answered the upload with no job") \
                    from exc
            if job.status == "success" and job.asset is not None and _ID.fullmatch(
                    job.asset.id):
                return job.asset.id
            if job.status != "in_progress" or not _ID.fullmatch(job.id):
                raise _job_error("asset upload", job.error)
            job_id = job.id
            await asyncio.sleep(self.poll_after_s)
        raise ProviderError.timeout("Canva's asset upload did not finish in time")

    async def poll(self, task: ProviderTask, credentials: Credentials,
                   client: httpx.AsyncClient) -> ProviderResult | ProviderTask | None:
        """Called by the pipeline's poll jobs. Autofill stage: None while it runs; once it
        succeeds, starts the export and returns the export's task. Export stage: None while
        it runs; once done the export URLs (one a page) as outputs the gateway downloads.
        Raises `ProviderError` when either job failed."""
        stage, job_id, spec = _parse_task(task.task_id)
        if stage == "autofill":
            job = await self._call("GET", f"/v1/autofills/{job_id}", credentials, client)
            if job.status == "in_progress":
                return None
            if job.status != "success":
                raise _job_error("autofill", job.error)
            design = job.result.design if job.result is not None else None
            if design is None or not design.id:
                raise ProviderError.server_error("Canva's autofill succeeded without a design")
            export = await self._call("POST", "/v1/exports", credentials, client,
                                      {"design_id": design.id,
                                       "format": export_format(spec)})
            if export.status == "failed":
                raise _job_error("export", export.error)
            if not _ID.fullmatch(export.id):
                raise ProviderError.server_error(f"Canva answered an unexpected export id "
                                                 f"{export.id!r}")
            return ProviderTask(task_id=f"export:{export.id}:{spec}",
                                poll_after_s=self.poll_after_s)
        job = await self._call("GET", f"/v1/exports/{job_id}", credentials, client)
        if job.status == "in_progress":
            return None
        if job.status != "success":
            raise _job_error("export", job.error)
        if not job.urls:
            raise ProviderError.server_error("Canva's export succeeded without a file")
        content_type = CONTENT_TYPES[spec.partition("-")[0]]
        return ProviderResult(
            outputs=[ProviderOutput(url=url, content_type=content_type) for url in job.urls],
            cost_usd_micros=self.prices["autofill_export"])

    async def cancel(self, task: ProviderTask, credentials: Credentials,
                     client: httpx.AsyncClient) -> None:
        """Called when a generation is canceled: nothing to call, since the Connect API has
        no cancel for autofill or export jobs (both finish within seconds anyway)."""

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        """Both stages to completion, outside the pipeline's poll jobs. The export URLs are
        downloaded here (they are presigned: no token is sent), since no gateway is there to
        fetch them."""
        result = await run_to_completion(self, request, credentials, client)
        outputs = [ProviderOutput(data=await _download(o.url, client),
                                  content_type=o.content_type)
                   if o.url and not o.data else o for o in result.outputs]
        return ProviderResult(outputs=outputs, cost_usd_micros=result.cost_usd_micros)

    async def _get(self, path: str, params: Mapping[str, str], credentials: Credentials,
                   client: httpx.AsyncClient) -> bytes:
        try:
            response = await client.get(f"{self._base(credentials)}{path}", params=params,
                                        headers=self._headers(credentials), timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise error_from_exception(exc) from exc
        if response.status_code != 200:
            raise error_from_canva(response)
        return response.content

    async def list_templates(self, credentials: Credentials,
                             client: httpx.AsyncClient) -> list[DesignTemplate]:
        """Called for `GET /v1/design/templates`: the account's brand templates that have
        autofill fields (`GET /v1/brand-templates?dataset=non_empty`, following
        `continuation` up to `MAX_TEMPLATES`), each with its fields (`GET
        /v1/brand-templates/{id}/dataset`). Raises a classified `ProviderError`."""
        found: list[_BrandTemplate] = []
        query: dict[str, str] = {"dataset": "non_empty"}
        while len(found) < MAX_TEMPLATES:
            try:
                page = msgspec.json.decode(await self._get(
                    "/v1/brand-templates", query, credentials, client), type=_BrandTemplates)
            except msgspec.DecodeError as exc:
                raise ProviderError.server_error("Canva's brand template list did not "
                                                 "parse") from exc
            found += page.items
            if not page.continuation:
                break
            query = {**query, "continuation": page.continuation}
        templates = []
        for item in found[:MAX_TEMPLATES]:
            if not _ID.fullmatch(item.id):
                continue  # not an id autofill would take
            try:
                dataset = msgspec.json.decode(await self._get(
                    f"/v1/brand-templates/{item.id}/dataset", {}, credentials, client),
                    type=_Dataset).dataset
            except msgspec.DecodeError as exc:
                raise ProviderError.server_error("Canva's brand template dataset did not "
                                                 "parse") from exc
            templates.append(DesignTemplate(
                id=item.id, name=item.title or item.id, formats=FORMATS, brand=True,
                fields=tuple(TemplateField(name=key, kind=value.type,
                                           label=key.replace("_", " ").capitalize())
                             for key, value in dataset.items())))
        return templates

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        """Called by health checks: `GET /v1/users/me`, which any valid token may call."""
        try:
            response = await client.get(f"{self._base(credentials)}/v1/users/me",
                                        headers=self._headers(credentials), timeout=TIMEOUT)
        except (httpx.HTTPError, ProviderError) as exc:
            return Health(ok=False, detail=error_from_exception(exc).message)
        if response.status_code != 200:
            return Health(ok=False, detail=error_from_canva(response).message)
        return Health(ok=True)


async def _download(url: str, client: httpx.AsyncClient) -> bytes:
    try:
        async with client.stream("GET", url, timeout=TIMEOUT, follow_redirects=True) as response:
            if response.status_code != 200:
                raise ProviderError.server_error(f"Canva's export URL answered HTTP "
                                                 f"{response.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_EXPORT_BYTES:
                    raise ProviderError(f"Canva's export is larger than {MAX_EXPORT_BYTES} "
                                        f"bytes", code="output_too_large", retryable=False)
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise error_from_exception(exc) from exc
    return b"".join(chunks)


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(Canva())
