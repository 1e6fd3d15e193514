"""Media given as URLs, fetched through the egress guard (gateway/egress.py).

- **Inputs** (`params.image_url`, `params.mask_url`): fetched at submit, before anything is
  reserved, typed by their bytes (images only), stored under the tenant's prefix
  (`<tenant>/inputs/<sha256>.<ext>`) and handed to providers as the `params.image` /
  `params.mask` `data:` URL that every provider already accepts; the URL stays in the
  generation's params for the record. A bad URL is a 422 naming the parameter. The row
  records a reference to the stored copy, not the bytes (`stow_inputs`, also for inputs sent
  inline as `data:` URLs); the worker turns it back into a `data:` URL (`load_inputs`).
- **Audio samples** (`params.sample_urls`, 1 to 25 URLs, for a voice clone): fetched and
  stored the same way (audio only, all of them together at most `MAX_INPUT_BYTES`) and
  handed over as `params.samples`, a list of `data:` URLs; a bad one is a 422 naming
  `params.sample_urls[i]`.
- **Provider outputs** given as a URL (`ProviderOutput.url`, no `data`): fetched by the worker
  right after the provider answers, within the call's time limit, and stored by the pipeline
  like any output. A failed fetch is classified like a provider error (a timeout or network
  failure fails over to the next candidate; a refused URL, a file too large or not media
  fails the generation).
- The webhook target `webhook_url` is checked (http(s), public address) at submit.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Final

import msgspec

from gateway.core.egress import (
    EgressError,
    FetchFailed,
    FetchTimeout,
)
from gateway.core.runtime import Runtime
from gateway.core.storage import MediaNotFound
from gateway.generations.schemas import GenerationCreate
from plugins import media
from plugins.errors import ProviderError
from plugins.provider import ProviderOutput, ProviderResult
from tenants.kernel.errors import InvalidRequest

#: URL parameter → the parameter providers read (a data: URL).
INPUT_URL_PARAMS: Final = {"image_url": "image", "mask_url": "mask"}
#: Inputs are handed over as data: URLs, so they are capped lower than outputs (the audio
#: samples of one request share this cap).
MAX_INPUT_BYTES: Final = 20 * 1024 * 1024
#: Audio samples (`params.sample_urls`) → `params.samples`, 1 to `MAX_SAMPLES` of them.
SAMPLE_URLS_PARAM: Final = "sample_urls"
SAMPLES_TARGET: Final = "samples"
MAX_SAMPLES: Final = 25
_EXTENSIONS: Final = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif",
                      "image/webp": ".webp", "audio/mpeg": ".mp3", "audio/wav": ".wav",
                      "audio/ogg": ".ogg", "audio/flac": ".flac", "audio/mp4": ".m4a"}


async def prepare(runtime: Runtime, body: GenerationCreate) -> GenerationCreate:
    """Check `webhook_url` and fetch input URLs of a submit; returns the body the providers
    see. Raises `InvalidRequest` naming the parameter; nothing is reserved before it."""
    if body.webhook_url is not None:
        await check_url(runtime, body.webhook_url, param="webhook_url")
    params = dict(body.params)
    changed = False
    for url_param, target in INPUT_URL_PARAMS.items():
        url = params.get(url_param)
        if url is None:
            continue
        name = f"params.{url_param}"
        _refuse_both(params, target, name)
        params[target], _ = await _fetch_input(runtime, url, param=name,
                                               kinds=("image/",), max_bytes=MAX_INPUT_BYTES)
        changed = True
    urls = params.get(SAMPLE_URLS_PARAM)
    if urls is not None:
        params[SAMPLES_TARGET] = await _fetch_samples(runtime, urls, params)
        changed = True
    return msgspec.structs.replace(body, params=params) if changed else body


def _refuse_both(params: dict[str, object], target: str, name: str) -> None:
    if target in params:
        raise InvalidRequest(f"give params.{target} or {name}, not both",
                             code="invalid_parameter", param=name)


async def _fetch_samples(runtime: Runtime, urls: object,
                         params: dict[str, object]) -> list[str]:
    """`params.sample_urls` fetched in order as audio `data:` URLs, sharing one size cap."""
    name = f"params.{SAMPLE_URLS_PARAM}"
    if not isinstance(urls, list) or not 1 <= len(urls) <= MAX_SAMPLES:
        raise InvalidRequest(f"{name} must be a list of 1 to {MAX_SAMPLES} http(s) URLs",
                             code="invalid_parameter", param=name)
    _refuse_both(params, SAMPLES_TARGET, name)
    samples: list[str] = []
    budget = MAX_INPUT_BYTES
    for index, url in enumerate(urls):
        sample, size = await _fetch_input(runtime, url, param=f"{name}[{index}]",
                                          kinds=("audio/",), max_bytes=budget)
        budget -= size
        samples.append(sample)
    return samples


async def _fetch_input(runtime: Runtime, url: object, *, param: str,
                       kinds: tuple[str, ...], max_bytes: int) -> tuple[str, int]:
    """Fetch one input URL through the egress guard, typed by its bytes as one of `kinds`;
    returns it as a `data:` URL and its size in bytes (`stow_inputs` stores it once the
    request is planned). Raises `InvalidRequest` naming `param`."""
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
    return (f"data:{fetched.sniffed};base64," + base64.b64encode(fetched.data).decode(),
            len(fetched.data))


#: Inputs a generation row refers to instead of holding their bytes (`stow_inputs`).
STORED_INPUT_PREFIX: Final = "mediahub-input:"
#: The parameters that carry input media as `data:` URLs (one, or a list for samples).
INPUT_PARAMS: Final = ("image", "mask", SAMPLES_TARGET)


async def stow_inputs(runtime: Runtime, tenant_id: str,
                      params: dict[str, Any]) -> dict[str, Any]:
    """The params to record in the generation row: every input `data:` URL (fetched from a
    URL, or sent inline) replaced by a reference to its copy under `<tenant>/inputs/`, so a
    row never holds megabytes of base64. Called by `submit` once the request is planned."""
    stored = dict(params)
    for name in INPUT_PARAMS:
        value = stored.get(name)
        if isinstance(value, str):
            stored[name] = await _stow(runtime, tenant_id, value)
        elif isinstance(value, list):
            stored[name] = [await _stow(runtime, tenant_id, v) if isinstance(v, str) else v
                            for v in value]
    return stored


async def _stow(runtime: Runtime, tenant_id: str, value: str) -> str:
    parsed = media.decode(value)
    if parsed is None:
        return value  # not a data: URL the gateway can read: the provider judges it
    content_type, data = parsed
    key = f"{tenant_id}/inputs/{hashlib.sha256(data).hexdigest()}" \
          f"{_EXTENSIONS.get(content_type, '.bin')}"
    await runtime.storage.put(key, data, content_type)  # named by content: rewriting is harmless
    return STORED_INPUT_PREFIX + key


async def load_inputs(runtime: Runtime, params: dict[str, Any]) -> dict[str, Any]:
    """The params a provider sees: references `stow_inputs` recorded turned back into
    `data:` URLs. Called by the worker before it calls a provider (not for polls). Raises
    `ProviderError` (`input_missing`, final) when a stored input is gone."""
    if not any(_is_ref(params.get(name)) for name in INPUT_PARAMS):
        return params
    loaded = dict(params)
    for name in INPUT_PARAMS:
        value = loaded.get(name)
        if isinstance(value, str):
            loaded[name] = await _load(runtime, value)
        elif isinstance(value, list):
            loaded[name] = [await _load(runtime, v) if isinstance(v, str) else v
                            for v in value]
    return loaded


def _is_ref(value: object) -> bool:
    if isinstance(value, list):
        return any(_is_ref(v) for v in value)
    return isinstance(value, str) and value.startswith(STORED_INPUT_PREFIX)


async def _load(runtime: Runtime, value: str) -> str:
    if not value.startswith(STORED_INPUT_PREFIX):
        return value
    try:
        data, content_type = await runtime.storage.get(value[len(STORED_INPUT_PREFIX):])
    except MediaNotFound as exc:
        raise ProviderError("an input of this generation is no longer stored",
                            code="input_missing", retryable=False) from exc
    return f"data:{content_type};base64," + base64.b64encode(data).decode()


async def check_url(runtime: Runtime, url: str, *, param: str) -> None:
    """Refuse (422 naming `param`) a URL that is not http(s) or does not resolve to an
    address egress may reach; called before anything is stored or reserved."""
    try:
        await runtime.egress.resolve(url)
    except EgressError as exc:
        raise InvalidRequest(exc.message, code=exc.code, param=param) from exc


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
