"""`POST /v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay`: the same event and body
sent again through the normal queue, signed anew, to the real receiver; never another
tenant's; audited."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from gateway.webhooks.models import WebhookDelivery
from tests.conftest import scripted
from tests.gateway.webhooks.test_webhooks import (
    ADMIN_SCOPES,
    endpoint,
    generate,
    hook_settings,
    settle,
    stack,
    verify,
)


async def test_a_replay_sends_the_same_event_signed_again(database_url: str,
                                                          tmp_path: Path) -> None:
    async with stack(hook_settings(database_url, tmp_path), scripted("ok")) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        made = await endpoint(gw, tenant, f"{rec.url}/hook")
        assert (await generate(gw, tenant, "ok")).status_code == 202
        await settle(gw)
        [first] = await rec.wait_for(1)
        log = (await gw.client.get(f"/v1/webhook_endpoints/{made['id']}/deliveries",
                                   headers=tenant.auth)).json()["data"]
        original = log[0]["delivery_id"]
        assert log[0]["replay_of"] is None

        r = await gw.client.post(
            f"/v1/webhooks/{made['id']}/deliveries/{original}/replay", headers=tenant.auth)
        assert r.status_code == 202, r.text
        replay = r.json()
        assert replay["object"] == "webhook_delivery"
        assert replay["replay_of"] == original
        assert replay["id"] != original
        assert replay["status"] == "pending"
        assert replay["event_type"] == "generation.succeeded"
        await settle(gw)
        [_, second] = await rec.wait_for(2)
        # Same event, same body, verified with the endpoint's secret.
        assert second.body == first.body
        assert verify(made["secret"], second) == json.loads(first.body)
        assert second.headers["webhook-id"] == first.headers["webhook-id"]

        log = (await gw.client.get(f"/v1/webhook_endpoints/{made['id']}/deliveries",
                                   headers=tenant.auth)).json()["data"]
        assert [(a["delivery_id"], a["replay_of"], a["status_code"]) for a in log] == [
            (replay["id"], original, 200), (original, None, 200)]
        async with gw.runtime.db.session() as session:
            row = await session.get(WebhookDelivery, replay["id"])
        assert row is not None
        assert (row.status, row.replay_of) == ("succeeded", original)

        audit = (await gw.client.get("/v1/audit_log?action=webhook_delivery.replayed",
                                     headers=tenant.auth)).json()["data"]
        assert [(e["target_id"], e["after"]["replay_of"], e["actor"]) for e in audit] == [
            (replay["id"], original, f"key:{tenant.key_id}")]


async def test_another_tenants_delivery_is_not_found(database_url: str,
                                                     tmp_path: Path) -> None:
    async with stack(hook_settings(database_url, tmp_path), scripted("ok")) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        made = await endpoint(gw, tenant, f"{rec.url}/hook")
        assert (await generate(gw, tenant, "ok")).status_code == 202
        await settle(gw)
        await rec.wait_for(1)
        async with gw.runtime.db.session() as session:
            delivery_id = await session.scalar(select(WebhookDelivery.id).where(
                WebhookDelivery.tenant_id == tenant.id))
        other = await gw.tenant(scopes=ADMIN_SCOPES)
        own = await endpoint(gw, other, f"{rec.url}/other")
        for path in (f"/v1/webhooks/{made['id']}/deliveries/{delivery_id}/replay",
                     f"/v1/webhooks/{own['id']}/deliveries/{delivery_id}/replay"):
            r = await gw.client.post(path, headers=other.auth)
            assert r.status_code == 404, r.text
            assert r.json()["error"]["code"] == "webhook_delivery_not_found"
        plain = await gw.tenant()  # no tenant_admin scope
        r = await gw.client.post(
            f"/v1/webhooks/{made['id']}/deliveries/{delivery_id}/replay", headers=plain.auth)
        assert r.status_code == 403
        await settle(gw)
        assert len(rec.requests) == 1  # nothing replayed
        async with gw.runtime.db.session() as session:
            assert len(list(await session.scalars(select(WebhookDelivery).where(
                WebhookDelivery.tenant_id.in_([tenant.id, other.id]))))) == 1
