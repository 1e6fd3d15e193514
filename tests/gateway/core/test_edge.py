"""Bad input is a clear 4xx in the error shape, never a 500 (on SQLite and PostgreSQL): bodies
that cannot be decoded, NUL characters, values of the wrong JSON type, bad cursors and
filters, over-long headers."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import Gateway
from tests.gateway.core.test_errors import assert_shape

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk", "params": {"size": "256x128"}}


@pytest.mark.parametrize("body", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"type": "image", "prompt": "\xff\xfe"}',
    b'{"type": "image", "prompt": ',
], ids=["nested too deep", "invalid utf-8", "truncated"])
async def test_an_undecodable_body_is_400(gateway: Gateway, body: bytes) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    headers = {"Content-Type": "application/json"}
    r = await gateway.client.post("/v1/generations", content=body,
                                  headers={**tenant.auth, **headers})
    error = assert_shape(r, 400, "invalid_request_error")
    assert "not valid JSON" in error["message"]
    r = await gateway.client.post("/admin/v1/tenants", content=body,
                                  headers={**gateway.admin(), **headers})
    assert_shape(r, 400, "invalid_request_error")


async def test_a_nul_in_a_body_string_is_422(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=1_000_000)
    r = await gateway.client.post("/v1/generations", headers=tenant.auth,
                                  json={**IMAGE, "prompt": "a\x00b"})
    assert assert_shape(r, 422, "invalid_request_error")["code"] == "nul_character"
    r = await gateway.client.post("/admin/v1/tenants", headers=gateway.admin(),
                                  json={"name": "Nul\x00", "slug": "nul"})
    assert assert_shape(r, 422, "invalid_request_error")["code"] == "nul_character"
    r = await gateway.client.post("/v1/generations", headers=tenant.auth,
                                  json={**IMAGE, "metadata": {"k\x00": "v"}})
    assert assert_shape(r, 422, "invalid_request_error")["code"] == "nul_character"
    # An escaped backslash followed by "u0000" is text, not a NUL: accepted.
    r = await gateway.client.post(
        "/v1/generations/estimate", headers={**tenant.auth, "Content-Type": "application/json"},
        content=b'{"type": "image", "prompt": "a \\\\u0000 b", "params": {"size": "256x128"}}')
    assert r.status_code == 200, r.text


async def test_a_nul_in_a_path_id_is_404_and_in_a_query_422(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    for path in ("/v1/generations/gen_%00x", "/v1/credits/purchases/pur_%00"):
        r = await gateway.client.get(path, headers=tenant.auth)
        assert_shape(r, 404, "not_found_error")
    r = await gateway.client.get(f"/admin/v1/tenants/{tenant.id}%00/keys",
                                 headers=gateway.admin())
    assert_shape(r, 404, "not_found_error")
    r = await gateway.client.get("/v1/generations?status=queued%00", headers=tenant.auth)
    error = assert_shape(r, 422, "invalid_request_error")
    assert (error["code"], error["param"]) == ("nul_character", "status")


def cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize("raw", ["2026-01-01T00:00:00|gen_x", "2026-01-01T00:00:00+00:00|\x00",
                                 "2026-13-01T00:00:00+00:00|gen_x"])
async def test_a_cursor_without_timezone_or_with_nul_is_422(gateway: Gateway, raw: str) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    for path in ("/v1/generations", "/v1/credits/transactions"):
        r = await gateway.client.get(path, params={"cursor": cursor(raw)}, headers=tenant.auth)
        error = assert_shape(r, 422, "invalid_request_error")
        assert (error["code"], error["param"]) == ("invalid_cursor", "cursor")


async def test_an_unknown_type_filter_is_422_like_an_unknown_status(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    for path in ("/v1/generations", "/v1/providers"):
        r = await gateway.client.get(path, params={"type": "bogus"}, headers=tenant.auth)
        error = assert_shape(r, 422, "invalid_request_error")
        assert (error["code"], error["param"]) == ("invalid_type", "type")
    r = await gateway.client.get("/v1/generations", params={"type": "image"},
                                 headers=tenant.auth)
    assert r.status_code == 200, r.text


async def test_a_string_where_a_number_belongs_is_422(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    r = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/credits",
                                  headers={**gateway.admin(), "Idempotency-Key": "s"},
                                  json={"amount": "100", "reason": "typed as text"})
    error = assert_shape(r, 422, "invalid_request_error")
    assert error["param"] == "amount"
    assert "Expected `int`, got `str`" in error["message"]
    assert (await gateway.balance(tenant.auth))["available"] == 0
    r = await gateway.client.post("/v1/generations/estimate", headers=tenant.auth,
                                  json={**IMAGE, "metadata": {"k": 1}})
    error = assert_shape(r, 422, "invalid_request_error")
    assert error["param"] == "metadata"


async def test_an_operation_of_another_type_is_422(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=1_000_000)
    for path in ("/v1/generations", "/v1/generations/estimate"):
        r = await gateway.client.post(path, headers=tenant.auth,
                                      json={**IMAGE, "operation": "text_to_speech"})
        error = assert_shape(r, 422, "invalid_request_error")
        assert (error["code"], error["param"]) == ("invalid_operation", "operation")
        assert "text_to_image" in error["message"]
    assert (await gateway.balance(tenant.auth))["available"] == 1_000_000


async def test_an_over_long_customer_id_is_422_not_401(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    r = await gateway.client.get("/v1/generations",
                                 headers={**tenant.auth, "X-Customer-Id": "c" * 201})
    error = assert_shape(r, 422, "invalid_request_error")
    assert (error["code"], error["param"]) == ("invalid_customer", "X-Customer-Id")
    r = await gateway.client.get("/v1/generations",
                                 headers={**tenant.auth, "X-Customer-Id": "c" * 200})
    assert r.status_code == 200, r.text


async def test_a_grant_idempotency_key_has_one_limit_on_both_databases(
    gateway: Gateway,
) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    url = f"/admin/v1/tenants/{tenant.id}/credits"
    body = {"amount": 1_000, "reason": "long key"}
    r = await gateway.client.post(url, json=body,
                                  headers={**gateway.admin(), "Idempotency-Key": "k" * 217})
    error = assert_shape(r, 422, "invalid_request_error")
    assert error["param"] == "idempotency_key"
    assert "216" in error["message"]
    # The longest accepted key, with the longest tenant id, still fits the stored column.
    for _ in range(2):
        r = await gateway.client.post(
            url, json=body, headers={**gateway.admin(), "Idempotency-Key": "k" * 216})
        assert r.status_code == 201, r.text
    assert (await gateway.balance(tenant.auth))["available"] == 1_000


async def test_a_malformed_host_header_is_not_a_500(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    bad_host = {**tenant.auth, "Host": "example.com:port"}
    r = await gateway.client.get("/v1/nothing-here", headers=bad_host)
    assert_shape(r, 404, "not_found_error")
    r = await gateway.client.get("/v1/generations", headers=bad_host)
    assert r.status_code == 200, r.text
