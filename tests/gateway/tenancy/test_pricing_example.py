"""`POST /v1/tenant/pricing/example`: the price of a request for a tier, step by step, from
the same pricing code as the estimate, so a changed markup moves both by the same amount."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from billing.pricing import div_ceil
from tests.conftest import Gateway, ProvidersPlugin, make_settings, running_gateway, scripted
from tests.gateway.people.support import invited, open_tenant

ADMIN_SCOPES = ["generate", "read", "billing", "tenant_admin"]
COST = 123_457  # USD micros: odd, so every rounding shows


async def _example(gw: Gateway, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await gw.client.post("/v1/tenant/pricing/example", headers=auth,
                             json={"type": "image", "provider": "px", **body})
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


async def _estimate(gw: Gateway, auth: dict[str, str], customer: str) -> int:
    r = await gw.client.post("/v1/generations/estimate",
                             headers={**auth, "X-Customer-Id": customer},
                             json={"type": "image", "prompt": "p", "provider": "px"})
    assert r.status_code == 200, r.text
    amount: int = r.json()["amount"]
    return amount


async def test_the_example_and_the_estimate_move_together(database_url: str,
                                                          tmp_path: Path) -> None:
    plugin = ProvidersPlugin(scripted("px", cost_usd_micros=COST))
    async with running_gateway(make_settings(database_url, tmp_path), extra=[plugin]) as gw:
        tenant = await gw.tenant(scopes=ADMIN_SCOPES, billing_mode="mediahub", pricing={
            "markup_bps": {"default": 1000}, "tier_markup_bps": {"pro": 2500}})
        customer = f"c-{secrets.token_hex(3)}"
        made = await gw.client.post("/v1/customers", headers=tenant.auth,
                                    json={"external_id": customer, "tier": "pro"})
        assert made.status_code == 201, made.text

        before = await _example(gw, tenant.auth, tier="pro")
        wholesale = div_ceil(COST * 13_000, 100_000)  # the default platform markup, 30 %
        assert before["cost_usd_micros"] == COST
        assert before["wholesale_mc"] == wholesale
        assert before["retail_mc"] == div_ceil(wholesale * 13_500, 10_000)
        assert (before["provider"], before["tier"], before["model"]) == ("px", "pro", None)
        assert [(s["label"], s["amount"], s["unit"]) for s in before["steps"]] == [
            ("provider cost", COST, "usd_micros"), ("wholesale", wholesale, "millicredit"),
            ("retail", before["retail_mc"], "millicredit")]
        assert "30%" in before["steps"][1]["detail"]
        assert "tier markup 25%" in before["steps"][2]["detail"]
        assert "image markup 10%" in before["steps"][2]["detail"]
        estimate_before = await _estimate(gw, tenant.auth, customer)
        assert estimate_before == before["retail_mc"]
        standard = await _example(gw, tenant.auth)  # the default tier: no tier markup
        assert standard["tier"] == "standard"
        assert standard["retail_mc"] == div_ceil(wholesale * 11_000, 10_000)

        r = await gw.client.patch("/v1/tenant", headers=tenant.auth, json={"pricing": {
            "markup_bps": {"default": 1000}, "tier_markup_bps": {"pro": 4750}}})
        assert r.status_code == 200, r.text
        after = await _example(gw, tenant.auth, tier="pro")
        estimate_after = await _estimate(gw, tenant.auth, customer)
        assert after["retail_mc"] == div_ceil(wholesale * 15_750, 10_000)
        assert after["retail_mc"] - before["retail_mc"] == estimate_after - estimate_before
        assert after["retail_mc"] - before["retail_mc"] > 0
        assert "tier markup 47.50%" in after["steps"][2]["detail"]


async def test_who_may_ask_and_bad_requests(gateway: Gateway, smtp_server: Any) -> None:
    tenant_id, slug, key = await open_tenant(gateway)
    plain = {"Authorization": f"Bearer {key}"}  # no tenant_admin scope
    r = await gateway.client.post("/v1/tenant/pricing/example", headers=plain,
                                  json={"type": "image"})
    assert r.status_code == 403
    billing, billing_in = await invited(gateway, smtp_server, tenant_id, slug, "billing")
    csrf = {"X-CSRF-Token": billing_in["csrf_token"]}
    r = await billing.post("/v1/tenant/pricing/example", headers=csrf,
                           json={"type": "image", "provider": "local-image"})
    assert r.status_code == 200, r.text
    assert r.json()["provider"] == "local-image"
    developer, developer_in = await invited(gateway, smtp_server, tenant_id, slug, "developer")
    r = await developer.post("/v1/tenant/pricing/example", json={"type": "image"},
                             headers={"X-CSRF-Token": developer_in["csrf_token"]})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "role_not_allowed"
    for body, param in (({"type": "hologram"}, None),
                        ({"type": "image", "operation": "text_to_speech"}, "operation"),
                        ({"type": "image", "provider": "nobody"}, "provider"),
                        ({"type": "image", "params": {"sise": "1x1"}}, "params.sise"),
                        ({"type": "image", "tier": ""}, None)):
        r = await billing.post("/v1/tenant/pricing/example", headers=csrf, json=body)
        assert r.status_code == 422, (body, r.text)
        if param is not None:
            assert r.json()["error"]["param"] == param, r.text
