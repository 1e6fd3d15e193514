"""A local fake of the part of Stripe's API mediahub calls, plus Stripe-style webhook signing.

`FakeStripe` is a real HTTP server on 127.0.0.1 (a thread running `ThreadingHTTPServer`; the
socket listens before `start()` returns, so no wait is needed). It answers as Stripe does:

- `POST /v1/checkout/sessions`: a form-encoded body with Stripe's bracket notation
  (`line_items[0][price_data][unit_amount]=…`), parsed into nested objects as Stripe does;
  a `checkout.session` object with Stripe's field names; `Idempotency-Key` honoured (the same
  key and parameters replay the first answer with `Idempotent-Replayed: true`, other
  parameters are an `idempotency_error`); `GET /v1/checkout/sessions/{id}`.
- Auth: `Authorization: Bearer <key>` or Basic with the key as user name; a missing or wrong
  key is Stripe's 401 `invalid_request_error` ("Invalid API Key provided: sk_test_****…").
- A bad parameter is a 400 naming it in `param` (missing or unknown currency, no line items,
  a non-integer amount, …).

Every request is recorded (`requests`) so tests assert what the client sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

#: A subset of Stripe's presentment currencies; anything else is "Invalid currency".
CURRENCIES = frozenset({"usd", "eur", "gbp", "jpy", "cad", "aud", "chf", "sek", "nok", "dkk",
                        "pln", "brl", "mxn", "inr", "sgd", "hkd", "nzd"})


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    params: dict[str, Any]


class StripeAPIError(Exception):
    def __init__(self, status: int, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.status = status
        self.error = error


def _missing(param: str) -> StripeAPIError:
    return StripeAPIError(400, {"type": "invalid_request_error", "code": "parameter_missing",
                                "message": f"Missing required param: {param}.",
                                "param": param})


def _invalid(param: str, message: str, code: str = "parameter_invalid_string"
             ) -> StripeAPIError:
    return StripeAPIError(400, {"type": "invalid_request_error", "code": code,
                                "message": message, "param": param})


def parse_stripe_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """`a[b][0][c]=v` pairs → nested dicts; objects whose keys are all indices → lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        parts = [head] + ([p.rstrip("]") for p in rest.split("[")] if rest else [])
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def listify(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        items = {k: listify(v) for k, v in value.items()}
        if items and all(k.isdigit() for k in items):
            return [items[k] for k in sorted(items, key=int)]
        return items

    result: dict[str, Any] = listify(root)
    return result


def _int(value: Any, param: str) -> int:
    if not isinstance(value, str) or not value.lstrip("-").isdigit():
        raise _invalid(param, f"Invalid integer: {value}", code="parameter_invalid_integer")
    return int(value)


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(obj))
    return copied


def _mask(key: str) -> str:
    return f"{key[:8]}****{key[-4:]}" if len(key) > 12 else "****"


@dataclass
class FakeStripe:
    api_key: str
    requests: list[Recorded] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Idempotency-Key → (path and parameters, status, body).
    idempotency: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    #: Answers to give the next requests instead of handling them: (status, error).
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeStripe:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def fail_next(self, status: int, error: dict[str, Any]) -> None:
        self.failures.append((status, error))

    def posts(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path == path]

    def complete(self, session_id: str) -> dict[str, Any]:
        """The session as Stripe shows it once the buyer has paid (for building events)."""
        with self._lock:
            session = self.sessions[session_id]
            session.update(status="complete", payment_status="paid",
                           payment_intent=f"pi_test_{secrets.token_hex(12)}",
                           customer_details={"email": "buyer@example.com"})
            return _copy(session)

    # --- the server side ------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        url = urlsplit(handler.path)
        pairs = parse_qsl(raw if handler.command == "POST" else url.query,
                          keep_blank_values=True)
        recorded = Recorded(method=handler.command, path=url.path,
                            headers={k.lower(): v for k, v in handler.headers.items()},
                            form=dict(pairs), params=parse_stripe_form(pairs))
        request_id = f"req_{secrets.token_hex(7)}"
        extra_headers: dict[str, str] = {}
        with self._lock:
            self.requests.append(recorded)
            try:
                self._authenticate(recorded)
                if self.failures:
                    status, error = self.failures.pop(0)
                    raise StripeAPIError(status, error)
                status, body, replayed = self._route(recorded, raw)
                if replayed:
                    extra_headers["Idempotent-Replayed"] = "true"
            except StripeAPIError as exc:
                status = exc.status
                body = {"error": {**exc.error, "request_log_url":
                                  f"https://dashboard.stripe.com/test/logs/{request_id}"}}
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Request-Id", request_id)
        handler.send_header("Stripe-Version", recorded.headers.get("stripe-version", ""))
        for name, value in extra_headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _authenticate(self, request: Recorded) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = credential.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credential).decode().partition(":")[0]
            except ValueError:
                key = ""
        if not key:
            raise StripeAPIError(401, {
                "type": "invalid_request_error",
                "message": "You did not provide an API key. You need to provide your API key "
                           "in the Authorization header, using Bearer auth (e.g. "
                           "'Authorization: Bearer YOUR_SECRET_KEY')."})
        if not hmac.compare_digest(key, self.api_key):
            raise StripeAPIError(401, {"type": "invalid_request_error",
                                       "message": f"Invalid API Key provided: {_mask(key)}"})

    def _route(self, request: Recorded, raw: str) -> tuple[int, dict[str, Any], bool]:
        if request.method == "POST" and request.path == "/v1/checkout/sessions":
            key = request.headers.get("idempotency-key")
            fingerprint = f"{request.path}?{raw}"
            if key and key in self.idempotency:
                first, status, body = self.idempotency[key]
                if first != fingerprint:
                    raise StripeAPIError(400, {
                        "type": "idempotency_error",
                        "message": "Keys for idempotent requests can only be used with the "
                                   "same parameters they were first used with. Try using a "
                                   f"key other than '{key}' if you meant to execute a "
                                   "different request."})
                return status, body, True
            session = self._create_session(request.params)
            if key:
                self.idempotency[key] = (fingerprint, 200, session)
            return 200, session, False
        if request.method == "GET" and request.path.startswith("/v1/checkout/sessions/"):
            session_id = request.path.rsplit("/", 1)[1]
            if session_id not in self.sessions:
                raise StripeAPIError(404, {"type": "invalid_request_error",
                                           "code": "resource_missing", "param": "session",
                                           "message": f"No such checkout.session: "
                                                      f"'{session_id}'"})
            return 200, self.sessions[session_id], False
        raise StripeAPIError(404, {"type": "invalid_request_error",
                                   "message": f"Unrecognized request URL ({request.method}: "
                                              f"{request.path})."})

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        mode = params.get("mode")
        if mode is None:
            raise _missing("mode")
        if mode not in ("payment", "setup", "subscription"):
            raise _invalid("mode", "Invalid mode: must be one of payment, setup, or "
                                   "subscription")
        known = {"mode", "line_items", "success_url", "cancel_url", "client_reference_id",
                 "metadata", "payment_intent_data", "customer_email", "expires_at"}
        for name in params:
            if name not in known:
                raise _invalid(name, f"Received unknown parameter: {name}",
                               code="parameter_unknown")
        items = params.get("line_items")
        if mode == "payment" and not items:
            raise _missing("line_items")
        if not isinstance(items, list):
            raise _invalid("line_items", "Invalid array")
        amount_total, currency = 0, None
        for i, item in enumerate(items):
            where = f"line_items[{i}]"
            if "quantity" not in item:
                raise _missing(f"{where}[quantity]")
            quantity = _int(item["quantity"], f"{where}[quantity]")
            data = item.get("price_data")
            if not isinstance(data, dict):
                raise _missing(f"{where}[price_data]")
            if "currency" not in data:
                raise _missing(f"{where}[price_data][currency]")
            if data["currency"] not in CURRENCIES:
                raise _invalid(f"{where}[price_data][currency]",
                               f"Invalid currency: {data['currency']}. Stripe currently "
                               f"supports these currencies: {', '.join(sorted(CURRENCIES))}")
            if "unit_amount" not in data:
                raise _missing(f"{where}[price_data][unit_amount]")
            unit_amount = _int(data["unit_amount"], f"{where}[price_data][unit_amount]")
            if not 0 <= unit_amount <= 99_999_999:
                raise _invalid(f"{where}[price_data][unit_amount]",
                               "This value must be less than or equal to 99999999.",
                               code="parameter_invalid_integer")
            if not (data.get("product_data") or {}).get("name"):
                raise _missing(f"{where}[price_data][product_data][name]")
            amount_total += unit_amount * quantity
            currency = data["currency"]
        metadata = params.get("metadata") or {}
        if not isinstance(metadata, dict) or any(len(k) > 40 or len(v) > 500
                                                 for k, v in metadata.items()):
            raise _invalid("metadata", "Invalid metadata")
        for url_param in ("success_url", "cancel_url"):
            value = params.get(url_param)
            if value is not None and not value.startswith(("http://", "https://")):
                raise _invalid(url_param, "Not a valid URL", code="url_invalid")
        session_id = f"cs_test_{secrets.token_urlsafe(40).replace('-', 'a').replace('_', 'b')}"
        now = int(time.time())
        session = {
            "id": session_id, "object": "checkout.session", "amount_subtotal": amount_total,
            "amount_total": amount_total, "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"), "created": now,
            "currency": currency, "customer": None, "customer_details": None,
            "expires_at": now + 86_400, "livemode": False, "metadata": metadata,
            "mode": mode, "payment_intent": None, "payment_status": "unpaid",
            "status": "open", "success_url": params.get("success_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }
        self.sessions[session_id] = session
        return _copy(session)


# --- webhooks, as Stripe builds and signs them -------------------------------------------

def event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None
          ) -> dict[str, Any]:
    return {"id": event_id or f"evt_{secrets.token_hex(12)}", "object": "event",
            "api_version": "2025-09-30.clover", "created": int(time.time()),
            "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": event_type}


def sign(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """`Stripe-Signature` as Stripe computes it: HMAC-SHA256 of `"{t}.{payload}"`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def charge(*, payment_intent: str, amount: int, amount_refunded: int, currency: str = "usd",
           metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """A `charge` object as `charge.refunded` carries it."""
    return {"id": f"ch_{secrets.token_hex(12)}", "object": "charge", "amount": amount,
            "amount_captured": amount, "amount_refunded": amount_refunded,
            "captured": True, "currency": currency, "livemode": False,
            "metadata": metadata or {}, "paid": True, "payment_intent": payment_intent,
            "refunded": amount_refunded >= amount, "status": "succeeded"}
