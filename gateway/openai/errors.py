"""OpenAI's error shape and `x-request-id` for the OpenAI-compatible routes only.

The native handler (`gateway.core.errors.handle_exception`) decides the status and the
error; this one rewrites its answer as OpenAI does (`{"error": {"message", "type", "param",
"code"}}`), so the official SDKs raise their usual classes:

- 402 (a wallet, budget or allocation short) is OpenAI's quota answer: `429` with type and
  code `insufficient_quota` (the SDK raises `RateLimitError`), and `x-should-retry: false`
  so the SDK does not retry what only a top-up fixes. Our own code stays in the message.
- 422 (an invalid parameter) is OpenAI's `400 invalid_request_error` (`BadRequestError`),
  our code and `param` kept.
- 404 is `invalid_request_error` as OpenAI types it (`NotFoundError` in the SDK).
- Other statuses keep our status, type and code (401 `authentication_error`, 429
  `rate_limit_error` with `Retry-After`, 409, 5xx).
"""

from __future__ import annotations

import secrets
from typing import Any

from litestar import Request, Response

from gateway.core.errors import handle_exception
from tenants.kernel.errors import InvalidRequest

#: Where a request's id is kept in the ASGI scope's state, once made.
REQUEST_ID_STATE_KEY = "mediahub.openai.request_id"
REQUEST_ID_HEADER = "x-request-id"


def request_id(request: Request[Any, Any, Any]) -> str:
    """This request's id (`req_<hex>`), made on first use; sent as `x-request-id`."""
    state = request.scope.setdefault("state", {})
    found = state.get(REQUEST_ID_STATE_KEY)
    if not isinstance(found, str):
        found = state[REQUEST_ID_STATE_KEY] = f"req_{secrets.token_hex(16)}"
    return found


def _openai_body(status: int, error: dict[str, Any]) -> tuple[int, dict[str, Any], bool]:
    """The OpenAI status and error object for our `error`; the flag says "do not retry"."""
    type_, code, message = error.get("type"), error.get("code"), error.get("message")
    param = error.get("param")
    stop_retrying = False
    if status == 402:
        status, type_, stop_retrying = 429, "insufficient_quota", True
        message = f"You exceeded your current quota: {message} ({code})"
        code = "insufficient_quota"
    elif status == 422:
        status, type_ = 400, "invalid_request_error"
    elif status == 404:
        type_ = "invalid_request_error"
    elif status >= 500 and type_ == "api_error":
        type_ = "server_error"
    return status, {"error": {"message": message, "type": type_, "param": param,
                              "code": code}}, stop_retrying


def handle_openai_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The exception handler of the OpenAI-compatible controllers: the native answer in
    OpenAI's shape and statuses, with `x-request-id`."""
    if isinstance(exc, UnicodeDecodeError):
        # Litestar decodes a multipart form's text parts as UTF-8 and lets this escape.
        exc = InvalidRequest("a form field is not valid UTF-8 text (send files with a "
                             "filename)", code="malformed_body")
    native = handle_exception(request, exc)
    content = native.content if isinstance(native.content, dict) else {}
    status, body, stop_retrying = _openai_body(native.status_code or 500,
                                               dict(content.get("error") or {}))
    headers = dict(native.headers)
    headers[REQUEST_ID_HEADER] = request_id(request)
    if stop_retrying:
        headers["x-should-retry"] = "false"
    return Response(body, status_code=status, headers=headers)


async def add_request_id(response: Response[Any]) -> Response[Any]:
    """`after_request` of the OpenAI-compatible controllers: every answer carries the
    request's `x-request-id` (errors get theirs in `handle_openai_exception`)."""
    response.headers.setdefault(REQUEST_ID_HEADER, f"req_{secrets.token_hex(16)}")
    return response
