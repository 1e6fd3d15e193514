"""Input media of a generation, and media given as URLs, fetched through the egress guard
(gateway/core/egress.py).

- **Which, and how long**: only the input URLs the operation uses (`USED_INPUT_URLS`; another
  is a 422 `unused_input`), fetched at once, all within `MEDIAHUB_INPUT_FETCH_DEADLINE_S`
  (past it, 422 `input_fetch_timeout`), so one submit cannot hold a request for minutes.
- **Inputs** (`params.image_url`, `params.mask_url`): fetched at submit, before anything is
  reserved, typed by their bytes (images only); the URL stays in the generation's params for
  the record. Inputs may also be sent inline as `data:` URLs (`params.image`, `params.mask`,
  `params.image_tail`), decoded by `plugins.media` (a malformed one is a 422 naming it). Either
  way providers get them decoded, in `ProviderRequest.inputs`, never as base64 in `params`.
  A bad URL is a 422 naming the parameter.
- **Audio samples** (`params.sample_urls`, 1 to 25 URLs, for a voice clone): fetched the same
  way (audio only, all of them together at most `MAX_INPUT_BYTES`), or sent inline as
  `params.samples` (a list of `data:` URLs); providers get them in `ProviderRequest.samples`.
  A bad one is a 422 naming `params.sample_urls[i]` (or `params.samples[i]`).
- **The row** records a reference to each input's stored copy
  (`<tenant>/inputs/<sha256>.<ext>`), not its bytes (`stow_inputs`, under the input's own
  name: `params.image`, `params.samples[i]`, ...); the worker loads them back into the
  request before it calls a provider (`load_inputs`).
- **Provider outputs** given as a URL (`ProviderOutput.url`, no `data`): fetched by the worker
  right after the provider answers, within the call's time limit, and stored by the pipeline
  like any output. A failed fetch is classified like a provider error (a timeout or network
  failure fails over to the next candidate; a refused URL, a file too large or not media
  fails the generation).
- The webhook target `webhook_url` is checked (http(s), public address) at submit.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import msgspec

from gateway.core.egress import (
    EgressError,
    FetchFailed,
    FetchTimeout,
    check_url,
)
from gateway.core.runtime import Runtime
from gateway.core.storage import MediaNotFound
from gateway.generations.schemas import GenerationCreate
from plugins.errors import InvalidParams, ProviderError
from plugins.media import INPUT_NAMES, SAMPLES, MediaInput, decode_data_url, split_inputs
from plugins.provider import ProviderOutput, ProviderResult
from plugins.vocabulary import DEFAULT_OPERATIONS
from tenants.kernel.errors import InvalidRequest

#: URL parameter → the input it gives (`ProviderRequest.inputs`).
INPUT_URL_PARAMS: Final = {"image_url": "image", "mask_url": "mask"}
#: Inputs are held in memory for a provider call, so they are capped lower than outputs (the
#: audio samples of one request share this cap).
MAX_INPUT_BYTES: Final = 20 * 1024 * 1024
#: Audio samples (`params.sample_urls`) → `ProviderRequest.samples`, 1 to `MAX_SAMPLES`.
SAMPLE_URLS_PARAM: Final = "sample_urls"
MAX_SAMPLES: Final = 25
_EXTENSIONS: Final = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif",
                      "image/webp": ".webp", "audio/mpeg": ".mp3", "audio/wav": ".wav",
                      "audio/ogg": ".ogg", "audio/flac": ".flac", "audio/mp4": ".m4a"}


@dataclass(frozen=True, slots=True)
class Inputs:
    """A request's input media, decoded: what `ProviderRequest.inputs` and `.samples` get."""

    media: dict[str, MediaInput] = field(default_factory=dict)
    samples: list[MediaInput] = field(default_factory=list)


def split(params: dict[str, Any]) -> tuple[dict[str, Any], Inputs]:
    """`params` without the inline input `data:` URLs, and those decoded. Raises
    `InvalidRequest` naming a malformed one; nothing is reserved before it."""
    try:
        plain, media, samples = split_inputs(params)
    except InvalidParams as exc:
        raise InvalidRequest(exc.message, code="invalid_parameter", param=exc.param) from exc
    return plain, Inputs(media=media, samples=samples)


#: The input URLs each operation uses; an operation not named here takes none. A submit
#: giving one its operation does not use is refused, not fetched (nor silently ignored).
USED_INPUT_URLS: Final[Mapping[str, frozenset[str]]] = MappingProxyType({
    "image_edit": frozenset({"image_url", "mask_url"}),
    "image_variation": frozenset({"image_url"}),
    "image_to_video": frozenset({"image_url"}),
    "image_to_3d": frozenset({"image_url"}),
    "design_autofill": frozenset({"image_url"}),
    "voice_clone": frozenset({SAMPLE_URLS_PARAM}),
})
#: Sample fetches in flight at once for one submit: each may bring up to the bytes the
#: samples have left, so this bounds what one request holds in memory at a time.
SAMPLE_FETCHES_AT_ONCE: Final = 4


async def prepare(runtime: Runtime, body: GenerationCreate) -> tuple[GenerationCreate, Inputs]:
    """Check `webhook_url`, fetch the input URLs of a submit and decode its inline inputs;
    called by `submit` before anything is reserved.

    Only the URLs the operation uses (`USED_INPUT_URLS`) are fetched, all at once, within
    `MEDIAHUB_INPUT_FETCH_DEADLINE_S` for the whole request. Returns the body with only plain
    params (the input URLs stay, for the record) and the decoded inputs. Raises
    `InvalidRequest` naming the parameter: a bad or unused URL, or `input_fetch_timeout`
    naming the first input still unfetched at the deadline."""
    if body.webhook_url is not None:
        await check_url(runtime.egress, body.webhook_url, param="webhook_url")
    params = body.params
    operation = body.operation or DEFAULT_OPERATIONS[body.type]
    used = USED_INPUT_URLS.get(operation, frozenset())
    for url_param in (*INPUT_URL_PARAMS, SAMPLE_URLS_PARAM):
        if params.get(url_param) is not None and url_param not in used:
            raise InvalidRequest(f"{operation} does not use params.{url_param}",
                                 code="unused_input", param=f"params.{url_param}")
    fetches: dict[str, Coroutine[Any, Any, Any]] = {}
    for url_param, target in INPUT_URL_PARAMS.items():
        url = params.get(url_param)
        if url is None:
            continue
        name = f"params.{url_param}"
        _refuse_both(params, target, name)
        fetches[name] = _fetch_input(runtime, url, param=name, kinds=("image/",),
                                     max_bytes=MAX_INPUT_BYTES)
    urls = params.get(SAMPLE_URLS_PARAM)
    if urls is not None:
        fetches[f"params.{SAMPLE_URLS_PARAM}"] = _fetch_samples(runtime, urls, params)
    results = await _within_deadline(runtime, fetches)
    fetched = {INPUT_URL_PARAMS[name.removeprefix("params.")]: result[0]
               for name, result in results.items() if name != f"params.{SAMPLE_URLS_PARAM}"}
    samples: list[MediaInput] | None = results.get(f"params.{SAMPLE_URLS_PARAM}")
    plain, inline = split(params)
    inputs = Inputs(media={**inline.media, **fetched},
                    samples=inline.samples if samples is None else samples)
    return msgspec.structs.replace(body, params=plain), inputs


async def _within_deadline(runtime: Runtime,
                           fetches: dict[str, Coroutine[Any, Any, Any]]) -> dict[str, Any]:
    """Run `fetches` (by parameter name) at once under the request's one deadline; returns
    their results by name. The first failure cancels the others and is raised; past the
    deadline, `InvalidRequest` (`input_fetch_timeout`) names the first one unfinished."""
    if not fetches:
        return {}
    tasks = {name: asyncio.ensure_future(fetch) for name, fetch in fetches.items()}
    deadline_s = runtime.settings.input_fetch_deadline_s
    try:
        async with asyncio.timeout(deadline_s):
            await asyncio.gather(*tasks.values())
    except TimeoutError:
        late = next((name for name, task in tasks.items() if task.cancelled()), next(iter(tasks)))
        raise InvalidRequest(
            f"the input URLs were not all fetched within {deadline_s} s ({late} was not)",
            code="input_fetch_timeout", param=late) from None
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    return {name: task.result() for name, task in tasks.items()}


def _refuse_both(params: dict[str, object], target: str, name: str) -> None:
    if target in params:
        raise InvalidRequest(f"give params.{target} or {name}, not both",
                             code="invalid_parameter", param=name)


async def _fetch_samples(runtime: Runtime, urls: object,
                         params: dict[str, object]) -> list[MediaInput]:
    """`params.sample_urls` fetched as audio, `SAMPLE_FETCHES_AT_ONCE` at a time, sharing one
    size cap (a fetch may bring what the finished ones left); returns them in order."""
    name = f"params.{SAMPLE_URLS_PARAM}"
    if not isinstance(urls, list) or not 1 <= len(urls) <= MAX_SAMPLES:
        raise InvalidRequest(f"{name} must be a list of 1 to {MAX_SAMPLES} http(s) URLs",
                             code="invalid_parameter", param=name)
    _refuse_both(params, SAMPLES, name)
    for index, url in enumerate(urls):
        if not isinstance(url, str):
            raise InvalidRequest(f"{name}[{index}] must be an http(s) URL",
                                 code="invalid_parameter", param=f"{name}[{index}]")
    slots = asyncio.Semaphore(SAMPLE_FETCHES_AT_ONCE)
    left = MAX_INPUT_BYTES

    async def fetch(index: int, url: str) -> MediaInput:
        nonlocal left
        async with slots:
            sample, size = await _fetch_input(runtime, url, param=f"{name}[{index}]",
                                              kinds=("audio/",), max_bytes=left)
        left -= size
        return sample

    fetched = await _gather_all(fetch(index, url) for index, url in enumerate(urls))
    # The cap is checked in order once all are in, so the sample named is the first that
    # does not fit whichever fetch finished first.
    total = 0
    for index, sample in enumerate(fetched):
        total += len(sample.data)
        if total > MAX_INPUT_BYTES:
            raise InvalidRequest(f"the inputs together exceed {MAX_INPUT_BYTES} bytes",
                                 code="fetch_too_large", param=f"{name}[{index}]")
    return fetched


async def _gather_all(fetches: Iterable[Coroutine[Any, Any, MediaInput]]) -> list[MediaInput]:
    """All of `fetches` at once, results in order; the first failure cancels the rest and is
    raised."""
    tasks = [asyncio.ensure_future(fetch) for fetch in fetches]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _fetch_input(runtime: Runtime, url: object, *, param: str,
                       kinds: tuple[str, ...], max_bytes: int) -> tuple[MediaInput, int]:
    """Fetch one input URL through the egress guard, typed by its bytes as one of `kinds`;
    returns it and its size in bytes (`stow_inputs` stores it once the request is planned).
    Raises `InvalidRequest` naming `param`."""
    if not isinstance(url, str):
        raise InvalidRequest(f"{param} must be an http(s) URL", code="invalid_parameter",
                             param=param)
    if max_bytes <= 0:
        raise InvalidRequest(f"the inputs together exceed {MAX_INPUT_BYTES} bytes",
                             code="fetch_too_large", param=param)
    try:
        fetched = await runtime.egress.fetch_media(
            url, kinds=kinds, max_bytes=min(max_bytes, runtime.settings.egress_max_bytes))
    except EgressError as exc:
        raise InvalidRequest(exc.message, code=exc.code, param=param) from exc
    assert fetched.sniffed is not None
    return MediaInput(data=fetched.data, content_type=fetched.sniffed), len(fetched.data)


#: Inputs a generation row refers to instead of holding their bytes (`stow_inputs`).
STORED_INPUT_PREFIX: Final = "mediahub-input:"


async def stow_inputs(runtime: Runtime, tenant_id: str, params: dict[str, Any],
                      inputs: Inputs) -> dict[str, Any]:
    """The params to record in the generation row: the plain `params`, and each input as a
    reference to its copy under `<tenant>/inputs/` under its own name (a list for the
    samples), so a row never holds the media. Called by `submit` once the request is
    planned."""
    stored = dict(params)
    for name, media in inputs.media.items():
        stored[name] = await _stow(runtime, tenant_id, media)
    if inputs.samples:
        stored[SAMPLES] = [await _stow(runtime, tenant_id, s) for s in inputs.samples]
    return stored


async def _stow(runtime: Runtime, tenant_id: str, media: MediaInput) -> str:
    key = f"{tenant_id}/inputs/{hashlib.sha256(media.data).hexdigest()}" \
          f"{_EXTENSIONS.get(media.content_type, '.bin')}"
    # Named by content: rewriting is harmless.
    await runtime.storage.put(key, media.data, media.content_type)
    return STORED_INPUT_PREFIX + key


def holds_inputs(params: dict[str, Any]) -> bool:
    """Whether recorded `params` name inputs that `load_inputs` must load."""
    return any(name in params for name in (*INPUT_NAMES, SAMPLES))


async def load_inputs(runtime: Runtime, params: dict[str, Any]) -> tuple[dict[str, Any], Inputs]:
    """The plain params a provider sees and its inputs, loaded from the references
    `stow_inputs` recorded (a `data:` URL recorded before references existed is decoded).

    Called by the worker before it calls a provider (not for polls). Raises `ProviderError`
    (final): `input_missing` when a stored input is gone, `invalid_input` when a recorded one
    cannot be read."""
    plain = {k: v for k, v in params.items() if k not in INPUT_NAMES and k != SAMPLES}
    media = {name: await _load(runtime, params[name], f"params.{name}")
             for name in INPUT_NAMES if params.get(name) is not None}
    recorded = params.get(SAMPLES)
    if recorded is not None and not isinstance(recorded, list):
        raise ProviderError(f"params.{SAMPLES} of this generation cannot be read",
                            code="invalid_input", retryable=False)
    samples = [await _load(runtime, value, f"params.{SAMPLES}[{index}]")
               for index, value in enumerate(recorded or [])]
    return plain, Inputs(media=media, samples=samples)


async def _load(runtime: Runtime, value: object, param: str) -> MediaInput:
    if isinstance(value, str) and value.startswith(STORED_INPUT_PREFIX):
        try:
            data, content_type = await runtime.storage.get(value[len(STORED_INPUT_PREFIX):])
        except MediaNotFound as exc:
            raise ProviderError("an input of this generation is no longer stored",
                                code="input_missing", retryable=False) from exc
        return MediaInput(data=data, content_type=content_type)
    try:
        return decode_data_url(value, param)
    except InvalidParams as exc:
        raise ProviderError(f"{param} of this generation cannot be read ({exc.message})",
                            code="invalid_input", retryable=False) from exc


async def fetch_outputs(runtime: Runtime, result: ProviderResult) -> ProviderResult:
    """Replace every output given as a URL by its bytes, typed by those bytes.

    Raises `ProviderError`: `timeout` / `network_error` (retryable) when the fetch times out
    or fails, `output_fetch_refused` (final) for a refused URL, a file over the cap or bytes
    that are not media.
    """
    if not any(o.url and not o.data for o in result.outputs):
        return result
    outputs: list[ProviderOutput] = []
    for output in result.outputs:
        if not output.url or output.data:
            outputs.append(output)
            continue
        try:
            fetched = await runtime.egress.fetch_media(output.url)
        except FetchTimeout as exc:
            raise ProviderError.timeout(f"fetching the output timed out ({exc.message})") \
                from exc
        except FetchFailed as exc:
            raise ProviderError.network_error(f"fetching the output failed ({exc.message})") \
                from exc
        except EgressError as exc:
            raise ProviderError(f"the provider's output URL was refused: {exc.message}",
                                code="output_fetch_refused", retryable=False) from exc
        assert fetched.sniffed is not None
        outputs.append(msgspec.structs.replace(output, data=fetched.data,
                                               content_type=fetched.sniffed))
    return msgspec.structs.replace(result, outputs=outputs)
