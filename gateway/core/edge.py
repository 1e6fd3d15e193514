"""What every request must satisfy before any of our code (or the database) sees its input.

- A JSON body that cannot be decoded (invalid UTF-8, nested deeper than the decoder's
  recursion limit, not JSON) is a 400 `malformed_body`, not an unexpected exception.
- A JSON body is checked against the route's `data` type strictly: `"amount": "100"` is a
  422 naming `amount`, not silently the integer 100 (Litestar converts with `strict=False`,
  which is right for query strings and wrong for JSON, where the client chose the type).
- A NUL character anywhere (a body string, a query value, the path) is refused: PostgreSQL
  cannot store it in text and answered 500; no identifier, prompt or name needs one.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import (
    ClientException,
    NotFoundException,
    SerializationException,
    ValidationException,
)
from litestar.serialization import decode_json
from litestar.types import Empty

from tenants.kernel.errors import InvalidRequest

#: A JSON string can only carry NUL escaped; scanning for the escape first keeps the walk
#: over the decoded body off the common path.
_ESCAPED_NUL = b"\\u0000"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _strict_error(exc: msgspec.ValidationError) -> ValidationException:
    """msgspec's "Expected `int`, got `str` - at `$.amount`" as Litestar's validation error,
    so the one handler renders it with `param: "amount"`."""
    message, _, where = str(exc).partition(" - at `")
    key = where.rstrip("`").removeprefix("$").removeprefix(".")
    return ValidationException(detail=message,
                               extra=[{"message": message, "key": key, "source": "body"}])


class GatewayRequest(Request[Any, Any, Any]):
    """The app's request class: `json()` refuses what would otherwise fail deeper as 500."""

    async def json(self) -> Any:
        """The decoded JSON body, called by Litestar when a handler takes `data`. Raises
        400 for an undecodable body or a NUL in it, 422 when a value's JSON type is not the
        declared one."""
        if self._json is not Empty:
            return self._json
        body = await self.body()
        try:
            value = decode_json(body or b"null",
                                type_decoders=self.route_handler.resolve_type_decoders())
        except (SerializationException, RecursionError, UnicodeDecodeError) as exc:
            # Litestar wraps msgspec's DecodeError as SerializationException, but a
            # too-deep nesting and bad UTF-8 escape as themselves.
            reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ClientException(f"the request body is not valid JSON: {reason}") from None
        if _ESCAPED_NUL in body and _has_nul(value):
            raise InvalidRequest("the request body contains a NUL character (\\u0000)",
                                 code="nul_character")
        field = getattr(self.route_handler, "parsed_data_field", None)
        if field is not None and value is not None:
            try:
                msgspec.convert(value, field.annotation, strict=True, str_keys=True,
                                dec_hook=self.route_handler.default_deserializer)
            except msgspec.ValidationError as exc:
                raise _strict_error(exc) from None
        self._json = self._connection_state.json = value
        return value


async def refuse_nul(request: Request[Any, Any, Any]) -> None:
    """`before_request` hook (after the guards, before the handler's arguments are parsed):
    a NUL in the path is a 404 (no id contains one), in the query a 422 naming the
    parameter."""
    # The scope's path, not `request.url`: building the URL parses the Host header, which
    # fails (ValueError) on a malformed one.
    if "\x00" in request.scope["path"]:
        raise NotFoundException()
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise InvalidRequest(f"query parameter {name!r} contains a NUL character",
                                 code="nul_character", param=name.replace("\x00", ""))
