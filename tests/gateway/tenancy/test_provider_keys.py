"""Tenants' own provider keys: sealed at rest, used for that tenant's generations only, and
managed by the tenant (`/v1/provider_keys`) or the operator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from plugins.provider import (
    Credentials,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
)
from tenants.models import Tenant as TenantRow
from tenants.provider_keys import UnsealError, seal, unseal
from tests.conftest import Gateway, ProvidersPlugin, Tenant, make_settings, running_gateway

SECRET = b"k" * 40


class Remote(Provider):
    """A remote provider that needs a key and remembers the credentials of each call."""

    name = "remote"
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image"})

    def __init__(self) -> None:
        self.seen: list[Credentials] = []

    def estimate_cost(self, request: ProviderRequest) -> int:
        return 10_000

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        self.seen.append(credentials)
        return ProviderResult(outputs=[ProviderOutput(data=b"\x89PNG\r\n\x1a\n",
                                                      content_type="image/png")],
                              cost_usd_micros=4_000)


@given(st.text(min_size=1, max_size=200), st.text(min_size=1, max_size=40))
def test_a_sealed_key_opens_for_its_tenant_and_provider_only(key: str, tenant: str) -> None:
    sealed = seal(SECRET, tenant, "remote", key)
    assert unseal(SECRET, tenant, "remote", sealed) == key
    for other in ((SECRET, tenant + "x", "remote"), (SECRET, tenant, "other"),
                  (b"j" * 40, tenant, "remote")):
        with pytest.raises(UnsealError):
            unseal(other[0], other[1], other[2], sealed)


@pytest.fixture
async def remote_gw(database_url: str, tmp_path: Path,
                    monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Gateway, Remote]]:
    monkeypatch.delenv("MEDIAHUB_REMOTE_API_KEY", raising=False)
    remote = Remote()
    async with running_gateway(make_settings(database_url, tmp_path),
                               extra=[ProvidersPlugin(remote)]) as gw:
        yield gw, remote


async def _admin_tenant(gw: Gateway) -> Tenant:
    return await gw.tenant(scopes=["generate", "read", "billing", "tenant_admin"])


async def _generate(gw: Gateway, tenant: Tenant) -> dict[str, Any]:
    r = await gw.client.post("/v1/generations", headers={**tenant.auth, "Prefer": "wait=30"},
                             json={"type": "image", "prompt": "a key", "provider": "remote"})
    assert r.status_code in (200, 202), r.text
    await gw.drain()
    got = await gw.client.get(f"/v1/generations/{r.json()['id']}", headers=tenant.auth)
    body: dict[str, Any] = got.json()
    return body


async def test_each_tenant_calls_with_its_own_key_and_others_with_the_platforms(
        remote_gw: tuple[Gateway, Remote], monkeypatch: pytest.MonkeyPatch) -> None:
    gw, remote = remote_gw
    monkeypatch.setenv("MEDIAHUB_REMOTE_API_KEY", "platform-key")
    a, b = await _admin_tenant(gw), await _admin_tenant(gw)
    r = await gw.client.put("/v1/provider_keys/remote", headers=a.auth,
                            json={"api_key": "tenant-a-secret-0042"})
    assert r.status_code == 200, r.text
    assert r.json() == {"provider": "remote", "last4": "0042", "has_secret": False,
                        "base_url": None, "updated_at": r.json()["updated_at"],
                        "object": "provider_key"}

    assert (await _generate(gw, a))["status"] == "succeeded"
    assert (await _generate(gw, b))["status"] == "succeeded"
    assert [c.api_key for c in remote.seen] == ["tenant-a-secret-0042", "platform-key"]

    deleted = await gw.client.delete("/v1/provider_keys/remote", headers=a.auth)
    assert deleted.json() == {"provider": "remote", "deleted": True, "object": "provider_key"}
    assert (await _generate(gw, a))["status"] == "succeeded"
    assert remote.seen[-1].api_key == "platform-key"
    again = await gw.client.delete("/v1/provider_keys/remote", headers=a.auth)
    assert again.status_code == 404


async def test_the_key_is_stored_sealed_and_never_shown(
        remote_gw: tuple[Gateway, Remote]) -> None:
    gw, _ = remote_gw
    a = await _admin_tenant(gw)
    await gw.client.put("/v1/provider_keys/remote", headers=a.auth,
                        json={"api_key": "sk-live-abcdefgh1234", "api_secret": "s3cr3t-pair"})
    listed = await gw.client.get("/v1/provider_keys", headers=a.auth)
    assert [k["provider"] for k in listed.json()["data"]] == ["remote"]
    assert listed.json()["data"][0]["has_secret"] is True
    assert "sk-live" not in listed.text
    assert "s3cr3t" not in listed.text
    tenant = await gw.client.get(f"/admin/v1/tenants/{a.id}", headers=gw.admin())
    assert "sk-live" not in tenant.text
    assert "provider_credentials" not in tenant.text
    async with gw.runtime.db.session() as session:
        row = await session.get(TenantRow, a.id)
        assert row is not None
        stored = json.dumps(row.provider_credentials)
    assert "sk-live-abcdefgh1234" not in stored
    assert "s3cr3t-pair" not in stored
    assert "v1:" in stored


async def test_a_tenant_key_makes_an_unconfigured_provider_available_to_that_tenant_only(
        remote_gw: tuple[Gateway, Remote]) -> None:
    gw, remote = remote_gw  # no platform key
    a, b = await _admin_tenant(gw), await _admin_tenant(gw)
    await gw.client.put("/v1/provider_keys/remote", headers=a.auth, json={"api_key": "own-1"})

    def status(body: dict[str, Any]) -> str:
        return str(next(p["status"] for p in body["data"] if p["name"] == "remote"))

    assert status((await gw.client.get("/v1/providers", headers=a.auth)).json()) == "available"
    assert status((await gw.client.get("/v1/providers", headers=b.auth)).json()) == \
        "unconfigured"
    # A's key serves A; B pinning the provider anyway is refused before anything is reserved.
    assert (await _generate(gw, a))["status"] == "succeeded"
    refused = await gw.client.post("/v1/generations", headers=b.auth,
                                   json={"type": "image", "prompt": "a key",
                                         "provider": "remote"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "provider_unconfigured"
    assert [c.api_key for c in remote.seen] == ["own-1"]


async def test_who_may_manage_provider_keys(remote_gw: tuple[Gateway, Remote]) -> None:
    gw, _ = remote_gw
    plain = await gw.tenant()  # no tenant_admin scope
    r = await gw.client.put("/v1/provider_keys/remote", headers=plain.auth,
                            json={"api_key": "x"})
    assert r.status_code == 403
    a = await _admin_tenant(gw)
    unknown = await gw.client.put("/v1/provider_keys/nope", headers=a.auth,
                                  json={"api_key": "x"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_provider"
    local = await gw.client.put("/v1/provider_keys/local-image", headers=a.auth,
                                json={"api_key": "x"})
    assert local.status_code == 422
    # Only the operator may choose the endpoint a tenant's calls go to.
    endpoint = await gw.client.put("/v1/provider_keys/remote", headers=a.auth,
                                   json={"api_key": "x", "base_url": "http://10.0.0.1"})
    assert endpoint.status_code in (400, 422), endpoint.text
    assert (await gw.client.get("/v1/provider_keys", headers=a.auth)).json()["data"] == []


async def test_the_operator_sets_a_key_and_endpoint_for_a_tenant(
        remote_gw: tuple[Gateway, Remote]) -> None:
    gw, remote = remote_gw
    a = await _admin_tenant(gw)
    r = await gw.client.put(f"/admin/v1/tenants/{a.id}/provider_keys/remote",
                            headers=gw.admin(),
                            json={"api_key": "kling-access", "api_secret": "kling-secret",
                                  "base_url": "http://engine.internal:7860"})
    assert r.status_code == 200, r.text
    assert (await _generate(gw, a))["status"] == "succeeded"
    assert remote.seen[-1] == Credentials(api_key="kling-access", api_secret="kling-secret",
                                          base_url="http://engine.internal:7860")
    listed = await gw.client.get(f"/admin/v1/tenants/{a.id}/provider_keys", headers=gw.admin())
    assert [k["base_url"] for k in listed.json()["data"]] == ["http://engine.internal:7860"]
    gone = await gw.client.delete(f"/admin/v1/tenants/{a.id}/provider_keys/remote",
                                  headers=gw.admin())
    assert gone.status_code == 200


async def test_a_key_that_no_longer_opens_fails_the_generation_as_auth(
        remote_gw: tuple[Gateway, Remote]) -> None:
    gw, remote = remote_gw
    a = await _admin_tenant(gw)
    await gw.client.put("/v1/provider_keys/remote", headers=a.auth, json={"api_key": "own-2"})
    # The platform secret changes under a running gateway (a botched rotation).
    gw.runtime.settings = msgspec.structs.replace(gw.runtime.settings, secret_key=b"z" * 40)
    generation = await _generate(gw, a)
    assert generation["status"] == "failed"
    assert generation["error"]["code"] == "auth"
    assert remote.seen == []
    balance = await gw.client.get("/v1/credits/balance", headers=a.auth)
    assert balance.json()["pending"] == 0
