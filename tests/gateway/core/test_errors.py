"""One error shape for every failure, health probes and the OpenAPI document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from gateway.core.settings import Settings
from plugins.hookspecs import hookimpl
from plugins.provider import Credentials, Provider, ProviderRequest, ProviderResult
from tests.conftest import Gateway, running_gateway


def assert_shape(r: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["error"], body
    error: dict[str, Any] = body["error"]
    assert {"type", "code", "message", "param"} <= set(error), body
    assert error["type"] == type_, body
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    return error


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/nothing-here"),
    ("POST", "/v2/generations"),
    ("GET", "/admin/v1/unknown"),
    ("GET", "/health/nope"),
])
async def test_an_unknown_route_is_404_in_the_error_shape(gateway: Gateway, method: str,
                                                          path: str) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    r = await gateway.client.request(method, path, headers=tenant.auth)
    error = assert_shape(r, 404, "not_found_error")
    assert error["param"] is None


@pytest.mark.parametrize(("method", "path"), [
    ("DELETE", "/v1/generations"),
    ("PUT", "/v1/generations"),
    ("DELETE", "/v1/credits/balance"),
    ("POST", "/health/live"),
])
async def test_a_wrong_method_is_405_in_the_error_shape(gateway: Gateway, method: str,
                                                        path: str) -> None:
    tenant = await gateway.tenant(credits_mc=0)
    r = await gateway.client.request(method, path, headers=tenant.auth)
    assert_shape(r, 405, "invalid_request_error")
    assert "allow" in {k.lower() for k in r.headers}


async def test_missing_credentials_are_401_in_the_error_shape(gateway: Gateway) -> None:
    r = await gateway.client.get("/v1/generations")
    error = assert_shape(r, 401, "authentication_error")
    assert error["code"] == "missing_api_key"
    assert r.headers["www-authenticate"] == "Bearer"


class Exploding(Provider):
    """A provider whose pricing fails with an unexpected exception."""

    name = "exploding"
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image"})
    needs_api_key = False

    def estimate_cost(self, request: ProviderRequest) -> int:
        raise RuntimeError("secret detail")

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        raise AssertionError("never called")


class ExplodingPlugin:
    @hookimpl
    def register_providers(self, register: Callable[[Provider], None]) -> None:
        register(Exploding())


@pytest.fixture
async def exploding(settings: Settings) -> AsyncIterator[Gateway]:
    async with running_gateway(settings, extra=[ExplodingPlugin()]) as gw:
        yield gw


async def test_an_unexpected_exception_is_500_without_details(exploding: Gateway) -> None:
    tenant = await exploding.tenant()
    body = {"type": "image", "prompt": "boom", "provider": "exploding"}
    for path in ("/v1/generations/estimate", "/v1/generations"):
        r = await exploding.client.post(path, headers=tenant.auth, json=body)
        error = assert_shape(r, 500, "api_error")
        assert error["code"] == "internal_error"
        assert error["param"] is None
        assert "secret detail" not in r.text
        assert "Traceback" not in r.text
        assert "RuntimeError" not in r.text
        assert "test_errors" not in r.text
    # Nothing was reserved by the failed submit.
    balance = await exploding.client.get("/v1/credits/balance", headers=tenant.auth)
    assert balance.json()["pending"] == 0
    # The app still serves afterwards.
    ok = await exploding.client.post("/v1/generations/estimate", headers=tenant.auth,
                                     json={"type": "image", "prompt": "fine",
                                           "provider": "local-image"})
    assert ok.status_code == 200, ok.text


async def test_health_live_and_ready(gateway: Gateway) -> None:
    live = await gateway.client.get("/health/live")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    ready = await gateway.client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["storage"] == "ok"
    assert "valkey" not in body["checks"]  # in-process mode has none to check


async def test_ready_is_503_when_the_database_is_gone(gateway: Gateway) -> None:
    real = gateway.runtime.db.sessionmaker

    def broken() -> Any:
        raise OSError("connection refused")

    gateway.runtime.db.sessionmaker = broken  # type: ignore[assignment]
    try:
        r = await gateway.client.get("/health/ready")
    finally:
        gateway.runtime.db.sessionmaker = real
    assert r.status_code == 503, r.text
    assert r.json()["status"] == "unavailable"
    assert r.json()["checks"]["database"].startswith("error")
    assert r.json()["checks"]["storage"] == "ok"
    assert "connection refused" not in r.text


async def test_the_openapi_document_lists_the_public_paths(gateway: Gateway) -> None:
    r = await gateway.client.get("/schema/openapi.json")
    assert r.status_code == 200
    document = json.loads(r.content)
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in ("/v1/generations", "/v1/generations/{generation_id}",
                 "/v1/generations/{generation_id}/cancel", "/v1/generations/estimate",
                 "/v1/providers", "/admin/v1/tenants", "/admin/v1/tenants/{tenant_id}",
                 "/admin/v1/tenants/{tenant_id}/keys", "/admin/v1/tenants/{tenant_id}/credits",
                 "/v1/credits/balance", "/v1/credits/transactions", "/health/live",
                 "/health/ready"):
        assert path in paths, (path, sorted(paths))
    assert {"get", "post"} <= set(paths["/v1/generations"])
    assert "patch" in paths["/admin/v1/tenants/{tenant_id}"]
    # Signed media links and the portal are not part of the API.
    assert not any(p.startswith("/media") for p in paths)
    assert "/" not in paths
    ui = await gateway.client.get("/schema")
    assert ui.status_code == 200
    assert ui.headers["content-type"].startswith("text/html")


async def test_the_openapi_document_describes_the_one_error_shape(gateway: Gateway) -> None:
    r = await gateway.client.get("/schema/openapi.json")
    assert r.status_code == 200
    schema = r.json()
    create = schema["paths"]["/v1/generations"]["post"]["responses"]
    for status in ("400", "401", "422", "429"):
        ref = create[status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorBody"), (status, create[status])
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"type", "code", "message", "param"}
    assert "202" in create
