"""`GET`/`PATCH /v1/tenant`: a tenant's owners and admins (here: `tenant_admin` keys) change
their own tenant's settings within the operator's caps, and never another tenant's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Gateway, Tenant

ADMIN_SCOPES = ["generate", "read", "billing", "tenant_admin"]

#: Every field a tenant may set, with a value other than its default.
SETTINGS: dict[str, Any] = {
    "name": "Renamed Studio",
    "branding": {
        "display_name": "Studio",
        "colors": {"primary": "#112233", "accent": "#abc", "background": "#ffffffcc"},
        "fonts": {"body": {"family": "Inter", "fallbacks": ["Helvetica", "sans-serif"]},
                  "heading": {"family": "Playfair Display"}},
        "css_variables": {"--radius": "8px", "--shadow": "0 1px 2px rgba(0,0,0,.2)"},
        "support": {"email": "help@studio.example", "url": "https://studio.example/help"},
        "show_provider_names": True,
        "sender_email": "hello@studio.example",
    },
    "pricing": {"markup_bps": {"default": 2000, "image": 3000},
                "tier_markup_bps": {"pro": 1000}, "min_charge_mc": 5},
    "rate_limits": {"requests_per_minute": 120, "burst": 20, "key_requests_per_minute": 60,
                    "key_burst": 10, "concurrent_jobs": {"image": 3, "default": 2},
                    "daily_spend_cap_mc": 50_000},
    "routing": {"strategy": "pinned", "order": ["local-image"], "include_others": False,
                "allowed_providers": ["local-image", "openai"]},
    "cache": {"enabled": False, "ttl_s": 600, "charge": {"percent": 50}},
    "low_balance_threshold_mc": 1234,
}


async def admin_tenant(gateway: Gateway, **fields: Any) -> Tenant:
    return await gateway.tenant(scopes=ADMIN_SCOPES, credits_mc=0, **fields)


async def test_a_tenant_admin_key_reads_and_changes_every_setting(gateway: Gateway) -> None:
    tenant = await admin_tenant(gateway)
    got = await gateway.client.get("/v1/tenant", headers=tenant.auth)
    assert got.status_code == 200, got.text
    assert got.json()["id"] == tenant.id
    assert "provider_credentials" not in got.json()

    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth, json=SETTINGS)
    assert r.status_code == 200, r.text
    changed = r.json()
    for field, value in SETTINGS.items():
        if field == "routing":  # shown with its defaults filled in
            assert {k: changed[field][k] for k in value} == value
        else:
            assert changed[field] == value, field
    # What the tenant reads, and what the operator reads, are the same stored settings.
    again = await gateway.client.get("/v1/tenant", headers=tenant.auth)
    assert again.json() == changed
    operator = await gateway.client.get(f"/admin/v1/tenants/{tenant.id}",
                                        headers=gateway.admin())
    assert operator.json() == changed


async def test_fields_left_out_stay_and_operator_fields_are_refused(gateway: Gateway) -> None:
    tenant = await admin_tenant(gateway, pricing={"markup_bps": {"default": 500}})
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth, json={"name": "Only"})
    assert r.status_code == 200, r.text
    assert r.json()["pricing"] == {"markup_bps": {"default": 500}}
    for field, value in (("billing_mode", "mediahub"), ("caps", {}), ("slug", "x"),
                         ("domains", ["a.example"]), ("provider_credentials", {})):
        r = await gateway.client.patch("/v1/tenant", headers=tenant.auth, json={field: value})
        assert r.status_code in (400, 422), (field, r.text)
        assert r.json()["error"]["param"] == field, r.text
    got = await gateway.client.get(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin())
    assert got.json()["billing_mode"] == "self"


async def test_the_change_applies_at_once(gateway: Gateway) -> None:
    tenant = await admin_tenant(gateway)
    assert (await gateway.client.get("/v1/tenant", headers=tenant.auth)).status_code == 200
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                   json={"rate_limits": {"requests_per_minute": 1,
                                                         "burst": 3}})
    assert r.status_code == 200, r.text
    # The limiter forgot the old limits (a burst of 1000): about three requests, then 429.
    codes = [(await gateway.client.get("/v1/tenant", headers=tenant.auth)).status_code
             for _ in range(5)]
    # Under the old burst of 1000 none of these would be refused; the new one refuses
    # within five requests however slowly they go.
    assert codes[:2] == [200, 200], codes
    assert 429 in codes, codes


async def test_keys_without_tenant_admin_and_customer_keys_are_refused(
        gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=["generate", "read", "billing"])
    for method in ("GET", "PATCH"):
        r = await gateway.client.request(method, "/v1/tenant", headers=tenant.auth,
                                         json={"name": "x"} if method == "PATCH" else None)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["type"] == "permission_error"
    k = await gateway.client.post(f"/admin/v1/tenants/{tenant.id}/keys",
                                  headers=gateway.admin(),
                                  json={"name": "c", "scopes": ADMIN_SCOPES,
                                        "customer_id": "cust-1"})
    customer = {"Authorization": f"Bearer {k.json()['key']}"}
    r = await gateway.client.patch("/v1/tenant", headers=customer, json={"name": "x"})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "customer_key"
    r = await gateway.client.get("/v1/tenant")
    assert r.status_code == 401
    got = await gateway.client.get(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin())
    assert got.json()["name"] != "x"


async def test_a_tenant_never_touches_another(gateway: Gateway) -> None:
    a = await admin_tenant(gateway)
    b = await admin_tenant(gateway, branding={"colors": {"primary": "#000000"}})
    before = (await gateway.client.get(f"/admin/v1/tenants/{b.id}",
                                       headers=gateway.admin())).json()
    r = await gateway.client.patch("/v1/tenant", headers=a.auth, json=SETTINGS)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == a.id
    # B's settings are as they were, and B reads its own tenant.
    after = (await gateway.client.get(f"/admin/v1/tenants/{b.id}",
                                      headers=gateway.admin())).json()
    assert after == before
    mine = await gateway.client.get("/v1/tenant", headers=b.auth)
    assert mine.json()["id"] == b.id
    # No route takes a tenant id: B's id in the query or a header changes nothing.
    r = await gateway.client.patch(f"/v1/tenant?tenant_id={b.id}",
                                   headers={**a.auth, "X-Tenant-Id": b.id},
                                   json={"name": "Hijack"})
    assert r.status_code == 200
    assert r.json()["id"] == a.id
    b_now = await gateway.client.get(f"/admin/v1/tenants/{b.id}", headers=gateway.admin())
    assert b_now.json()["name"] == before["name"]


CAPS = {"requests_per_minute": 100, "burst": 10, "key_requests_per_minute": 50,
        "key_burst": 5, "concurrent_jobs": 4, "daily_spend_cap_mc": 10_000,
        "allowed_providers": ["local-image", "openai"], "max_domains": 3}


@pytest.mark.parametrize(("field", "value", "param"), [
    ("requests_per_minute", 101, "rate_limits.requests_per_minute"),
    ("requests_per_minute", 0, "rate_limits.requests_per_minute"),
    ("burst", 11, "rate_limits.burst"),
    ("key_requests_per_minute", 51, "rate_limits.key_requests_per_minute"),
    ("key_burst", 6, "rate_limits.key_burst"),
    ("concurrent_jobs", {"image": 5}, "rate_limits.concurrent_jobs.image"),
    ("concurrent_jobs", {"default": 0}, "rate_limits.concurrent_jobs.default"),
    ("daily_spend_cap_mc", 10_001, "rate_limits.daily_spend_cap_mc"),
    ("daily_spend_cap_mc", 0, "rate_limits.daily_spend_cap_mc"),
])
async def test_limits_over_the_operators_caps_are_422(gateway: Gateway, field: str,
                                                      value: Any, param: str) -> None:
    tenant = await admin_tenant(gateway)
    r = await gateway.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin(),
                                   json={"caps": CAPS})
    assert r.status_code == 200, r.text
    assert r.json()["caps"] == CAPS
    own = await gateway.client.get("/v1/tenant", headers=tenant.auth)
    assert own.json()["caps"] == CAPS
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                   json={"rate_limits": {field: value}})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error", "over_cap", param)
    # Nothing changed.
    assert (await gateway.client.get("/v1/tenant",
                                     headers=tenant.auth)).json()["rate_limits"] == {}


async def test_limits_within_the_caps_are_accepted(gateway: Gateway) -> None:
    tenant = await admin_tenant(gateway, caps=CAPS)
    within = {"requests_per_minute": 100, "burst": 10, "key_requests_per_minute": 1,
              "key_burst": 5, "concurrent_jobs": {"image": 4, "default": 1},
              "daily_spend_cap_mc": 10_000}
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                   json={"rate_limits": within})
    assert r.status_code == 200, r.text
    assert r.json()["rate_limits"] == within
    # The operator raises a cap; the tenant may follow.
    r = await gateway.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin(),
                                   json={"caps": {**CAPS, "requests_per_minute": 500}})
    assert r.status_code == 200, r.text
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                   json={"rate_limits": {"requests_per_minute": 500}})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("routing", "param"), [
    ({"allowed_providers": ["stability"]}, "routing.allowed_providers[0]"),
    ({"allowed_providers": ["openai", "*"]}, "routing.allowed_providers[1]"),
    ({"strategy": "pinned", "order": ["local-video"]}, "routing.order[0]"),
])
async def test_providers_beyond_the_operators_permission_are_422(
        gateway: Gateway, routing: dict[str, Any], param: str) -> None:
    tenant = await admin_tenant(gateway, caps=CAPS)
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                   json={"routing": routing})
    assert r.status_code == 422, r.text
    assert (r.json()["error"]["code"], r.json()["error"]["param"]) == (
        "provider_not_permitted", param)
    ok = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                    json={"routing": {"allowed_providers": ["openai"]}})
    assert ok.status_code == 200, ok.text
    unknown = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                         json={"routing": {"allowed_providers": ["nope"]}})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_provider"


async def test_the_caps_allow_list_is_the_tenants_default(gateway: Gateway) -> None:
    # The test settings let every provider serve; the operator's caps narrow this tenant.
    tenant = await gateway.tenant(caps={"allowed_providers": ["local-speech"]})
    r = await gateway.client.post("/v1/generations", headers=tenant.auth,
                                  json={"type": "image", "prompt": "a cat"})
    assert r.status_code in (422, 503), r.text
    spoken = await gateway.finish(tenant.auth, {"type": "audio", "text": "hello"})
    assert spoken["status"] == "succeeded", spoken


@pytest.mark.parametrize("branding", [
    {"colors": {"primary": "red"}},
    {"colors": {"pink": "#fff"}},
    {"css_variables": {"--x": "red;} body{display:none"}},
    {"css_variables": {"--x": "</style>"}},
    {"css_variables": {"color": "red"}},
    {"css_variables": {"--x": "a" * 201}},
    {"fonts": {"body": {"family": "Inter;}"}}},
    {"support": {"url": "javascript:alert(1)"}},
    {"support": {"email": "not an email"}},
    {"sender_email": "x@y@z"},
    {"show_provider_names": "yes"},
    {"logo": {"url": "https://evil.example/logo.png"}},
    {"anything": 1},
])
async def test_bad_branding_is_422_naming_the_field(gateway: Gateway,
                                                    branding: dict[str, Any]) -> None:
    tenant = await admin_tenant(gateway)
    r = await gateway.client.patch("/v1/tenant", headers=tenant.auth,
                                   json={"branding": branding})
    assert r.status_code in (400, 422), r.text
    assert r.json()["error"]["param"].startswith("branding"), r.text


async def test_concurrent_patches_each_commit_with_one_audit_event(gateway: Gateway) -> None:
    tenant = await admin_tenant(gateway, caps=CAPS)
    values = list(range(1, 21))
    answers = await asyncio.gather(*(
        gateway.client.patch("/v1/tenant", headers=tenant.auth,
                             json={"rate_limits": {"requests_per_minute": v}})
        for v in values))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    final = (await gateway.client.get("/v1/tenant", headers=tenant.auth)).json()
    assert final["rate_limits"]["requests_per_minute"] in values
    log = await gateway.client.get("/v1/audit_log?action=tenant.updated&limit=100",
                                   headers=tenant.auth)
    assert len(log.json()["data"]) == len(values)


async def test_caps_name_installed_providers(gateway: Gateway) -> None:
    tenant = await admin_tenant(gateway)
    r = await gateway.client.patch(f"/admin/v1/tenants/{tenant.id}", headers=gateway.admin(),
                                   json={"caps": {"allowed_providers": ["openai", "typo"]}})
    assert r.status_code == 422, r.text
    assert (r.json()["error"]["code"], r.json()["error"]["param"]) == (
        "unknown_provider", "caps.allowed_providers[1]")
