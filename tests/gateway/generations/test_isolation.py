"""A customer never sees or reaches another's: idempotency keys per (tenant, customer), a key
left free by a refused request, and what a white-label customer is shown (SQLite and
PostgreSQL)."""

from __future__ import annotations

from urllib.parse import urlsplit

from gateway.core.jobs import SaqQueue
from gateway.core.settings import Settings
from plugins.errors import ProviderError
from tests.conftest import Gateway, ProvidersPlugin, running_gateway, scripted

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk", "params": {"size": "256x128"}}


async def test_idempotency_keys_are_per_customer(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    alice = {**tenant.auth, "X-Customer-Id": "alice", "Idempotency-Key": "order-1"}
    bob = {**tenant.auth, "X-Customer-Id": "bob", "Idempotency-Key": "order-1"}
    own = {**tenant.auth, "Idempotency-Key": "order-1"}
    first = await gateway.client.post("/v1/generations", headers=alice, json=IMAGE)
    assert first.status_code == 202, first.text
    await gateway.drain()
    # Bob replays Alice's key and body: his own generation, not hers (nor her outputs).
    theirs = await gateway.client.post("/v1/generations", headers=bob, json=IMAGE)
    assert theirs.status_code == 202, theirs.text
    assert theirs.json()["id"] != first.json()["id"]
    # The tenant's own key (no customer) is a third, distinct key.
    tenants = await gateway.client.post("/v1/generations", headers=own, json=IMAGE)
    assert tenants.status_code == 202, tenants.text
    assert tenants.json()["id"] not in {first.json()["id"], theirs.json()["id"]}
    # Each caller's replay still answers its own first generation.
    for headers, answer in ((alice, first), (bob, theirs), (own, tenants)):
        again = await gateway.client.post("/v1/generations", headers=headers, json=IMAGE)
        assert again.status_code == 202, again.text
        assert again.json()["id"] == answer.json()["id"]
    await gateway.drain()


async def test_a_request_refused_by_a_down_queue_leaves_its_key_free(gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=20_000)
    headers = {**tenant.auth, "Idempotency-Key": "retry-me"}
    working = gateway.runtime.queue
    # The queue is down: a real SAQ queue whose Valkey does not listen (port 1).
    gateway.runtime.queue = SaqQueue("redis://127.0.0.1:1/0", prefix="mhtestdown")
    try:
        refused = await gateway.client.post("/v1/generations", headers=headers, json=IMAGE)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "queue_unavailable"
    finally:
        down = gateway.runtime.queue
        gateway.runtime.queue = working
        await down.close()
    # The queue is back: the retry with the same key runs, as a new generation.
    retry = await gateway.client.post("/v1/generations", headers=headers, json=IMAGE)
    assert retry.status_code == 202, retry.text
    assert retry.json()["status"] == "queued"
    await gateway.drain()
    done = (await gateway.client.get(f"/v1/generations/{retry.json()['id']}",
                                     headers=tenant.auth)).json()
    assert done["status"] == "succeeded"
    # And the key now belongs to it.
    again = await gateway.client.post("/v1/generations", headers=headers, json=IMAGE)
    assert again.json()["id"] == retry.json()["id"]


async def test_a_customer_sees_retail_only_in_the_estimate(gateway: Gateway) -> None:
    tenant = await gateway.tenant(pricing={"markup_bps": {"default": 5_000}})
    as_tenant = await gateway.client.post("/v1/generations/estimate", headers=tenant.auth,
                                          json=IMAGE)
    assert as_tenant.status_code == 200, as_tenant.text
    full = as_tenant.json()
    assert set(full["breakdown"]) == {"cost_usd_micros", "wholesale", "retail"}
    for customer in ({**tenant.auth, "X-Customer-Id": "alice"},
                     await customer_key(gateway, tenant.id, "bob")):
        r = await gateway.client.post("/v1/generations/estimate", headers=customer, json=IMAGE)
        assert r.status_code == 200, r.text
        shown = r.json()
        assert shown["breakdown"] == {"retail": full["breakdown"]["retail"]}
        assert shown["amount"] == full["breakdown"]["retail"]
        assert shown["provider"] != full["provider"]
        assert shown["provider"].startswith("engine_")
    # The tenant bills its customers itself (`self`) and pays wholesale; its customer's
    # generation still shows the retail price, never the wholesale one.
    assert full["breakdown"]["retail"] != full["breakdown"]["wholesale"]
    done = await gateway.finish({**tenant.auth, "X-Customer-Id": "alice"}, IMAGE)
    assert done["cost"]["estimated"] == done["cost"]["charged"] == full["breakdown"]["retail"]
    real = (await gateway.client.get(f"/v1/generations/{done['id']}",
                                     headers=tenant.auth)).json()
    assert real["cost"]["charged"] == full["breakdown"]["wholesale"]


async def customer_key(gateway: Gateway, tenant_id: str, customer: str) -> dict[str, str]:
    """The auth header of a new key bound to `customer` of the tenant."""
    key = await gateway.client.post(
        f"/admin/v1/tenants/{tenant_id}/keys", headers=gateway.admin(),
        json={"name": customer, "customer_id": customer, "scopes": ["generate", "read"]})
    assert key.status_code == 201, key.text
    return {"Authorization": f"Bearer {key.json()['key']}"}


async def test_customers_see_no_provider_prices_nor_names_unless_the_tenant_shows_them(
    gateway: Gateway,
) -> None:
    tenant = await gateway.tenant()
    customer = {**tenant.auth, "X-Customer-Id": "alice"}
    own = (await gateway.client.get("/v1/providers", headers=tenant.auth)).json()["data"]
    names = {p["name"] for p in own}
    assert "openai" in names
    assert any(p["pricing"] for p in own)  # the tenant sees the USD price tables
    seen = await gateway.client.get("/v1/providers", headers=customer)
    assert seen.status_code == 200, seen.text
    shown = seen.json()["data"]
    assert len(shown) == len(own)
    assert all(p["pricing"] == {} and p["description"] == "" for p in shown)
    assert not names & {p["name"] for p in shown}
    # A finished generation names no provider to the customer either.
    done = await gateway.finish(customer, IMAGE)
    assert done["status"] == "succeeded", done
    assert done["provider"] not in names
    assert done["attempts"]
    assert all(a["provider"] not in names for a in done["attempts"])
    listed = (await gateway.client.get("/v1/generations", headers=customer)).json()["data"]
    assert [g["provider"] for g in listed] == [done["provider"]]
    # The tenant sees the real name of the same generation.
    real = (await gateway.client.get(f"/v1/generations/{done['id']}",
                                     headers=tenant.auth)).json()
    assert real["provider"] in names
    # The tenant's setting shows names (never USD prices) to its customers.
    r = await gateway.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin(),
                                   json={"branding": {"show_provider_names": True}})
    assert r.status_code == 200, r.text
    shown = (await gateway.client.get("/v1/providers", headers=customer)).json()["data"]
    assert {p["name"] for p in shown} == names
    assert all(p["pricing"] == {} for p in shown)
    again = (await gateway.client.get(f"/v1/generations/{done['id']}", headers=customer)).json()
    assert again["provider"] == real["provider"]


async def test_show_provider_names_must_be_a_boolean(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin(),
                                   json={"branding": {"show_provider_names": "yes"}})
    assert r.status_code in (400, 422), r.text
    assert r.json()["error"]["type"] == "invalid_request_error"


async def test_media_links_use_the_tenants_own_domain(gateway: Gateway) -> None:
    tenant = await gateway.tenant(domains=["studio.example.com"])
    other = await gateway.tenant(domains=["other.example.com"])
    done = await gateway.finish(tenant.auth, IMAGE)
    path = f"/v1/generations/{done['id']}"
    # Through the tenant's own domain: links on that domain, and they answer there.
    r = await gateway.client.get(path, headers={**tenant.auth, "Host": "studio.example.com"})
    assert r.status_code == 200, r.text
    url = r.json()["outputs"][0]["url"]
    assert url.startswith("http://studio.example.com/"), url
    parts = urlsplit(url)
    media = await gateway.client.get(f"{parts.path}?{parts.query}",
                                     headers={"Host": "studio.example.com"})
    assert media.status_code == 200
    listed = await gateway.client.get("/v1/generations",
                                      headers={**tenant.auth, "Host": "studio.example.com"})
    assert listed.json()["data"][0]["outputs"][0]["url"].startswith("http://studio.example.com/")
    # Through the platform's host, or another tenant's domain: the platform's base URL.
    for host in ("testserver", "other.example.com"):
        r = await gateway.client.get(path, headers={**tenant.auth, "Host": host})
        assert r.json()["outputs"][0]["url"].startswith("http://testserver/"), host
    assert other.id != tenant.id
    # The API docs answer there too: the schema's server is relative, never the platform's.
    schema = await gateway.client.get("/schema/openapi.json",
                                      headers={"Host": "studio.example.com"})
    assert schema.status_code == 200
    assert schema.json()["servers"] == [{"url": "/"}]


async def test_a_customer_pins_a_provider_by_the_neutral_name_it_was_shown(
    gateway: Gateway,
) -> None:
    tenant = await gateway.tenant()
    customer = {**tenant.auth, "X-Customer-Id": "alice"}
    shown = (await gateway.client.get("/v1/providers", headers=customer,
                                      params={"type": "image"})).json()["data"]
    [local] = [p for p in shown if p["local"]]
    assert local["name"].startswith("engine_")
    pinned = {**IMAGE, "provider": local["name"]}
    estimate = await gateway.client.post("/v1/generations/estimate", headers=customer,
                                         json=pinned)
    assert estimate.status_code == 200, estimate.text
    assert estimate.json()["provider"] == local["name"]
    done = await gateway.finish(customer, pinned)
    assert (done["status"], done["provider"]) == ("succeeded", local["name"])
    real = (await gateway.client.get(f"/v1/generations/{done['id']}",
                                     headers=tenant.auth)).json()
    assert real["provider"] == "local-image"
    # Another tenant's neutral name means nothing here.
    other = await gateway.tenant()
    r = await gateway.client.post("/v1/generations", json=pinned,
                                  headers={**other.auth, "X-Customer-Id": "alice"})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["param"] == "provider"


async def test_a_providers_error_message_names_it_neutrally_to_a_customer(
    settings: Settings,
) -> None:
    acme = scripted("acme")
    acme.script = [ProviderError.invalid_input("Acme refused the prompt (acme policy 7)")]
    async with running_gateway(settings, extra=[ProvidersPlugin(acme)]) as gw:
        tenant = await gw.tenant()
        customer = {**tenant.auth, "X-Customer-Id": "alice"}
        done = await gw.finish(customer, {**IMAGE, "provider": "acme"})
        assert done["status"] == "failed"
        label = done["provider"]
        assert label.startswith("engine_")
        assert done["error"]["message"] == f"{label} refused the prompt ({label} policy 7)"
        real = (await gw.client.get(f"/v1/generations/{done['id']}",
                                    headers=tenant.auth)).json()
        assert real["error"]["message"] == "Acme refused the prompt (acme policy 7)"
