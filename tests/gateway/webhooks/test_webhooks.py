"""Outgoing webhooks and media from URLs, end to end against a real local receiver.

Signatures are checked by an implementation written here from the Standard Webhooks
specification, not by the code under test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from billing.models import LedgerEvent
from gateway.core.settings import Settings, SettingsError, load_settings
from gateway.generations import inputs as media_urls
from gateway.generations.models import Generation
from gateway.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEvent
from gateway.webhooks.queues import DELIVER_WEBHOOK, InProcessWebhookQueue, SaqWebhookQueue
from gateway.webhooks.service import build_webhook_worker
from plugins.errors import ProviderError
from plugins.media import MediaInput
from plugins.provider import Credentials, ProviderOutput, ProviderRequest, ProviderResult
from tenants.kernel.db import new_id, utcnow
from tests.conftest import (
    Gate,
    GatePlugin,
    Gateway,
    ProvidersPlugin,
    Scripted,
    Tenant,
    make_settings,
    running_gateway,
    scripted,
    valkey_url,
)
from tests.receiver import DRIP, STALL, File, Receiver, Recorded, receiver

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
ADMIN_SCOPES = ["generate", "read", "billing", "tenant_admin"]
BASE_MS = 40


def verify(secret: str, request: Recorded, *, tolerance_s: int = 300) -> dict[str, Any]:
    """An independent Standard Webhooks verifier: the body if any signature matches."""
    msg_id = request.headers["webhook-id"]
    timestamp = request.headers["webhook-timestamp"]
    assert abs(int(timestamp) - time.time()) <= tolerance_s
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = f"{msg_id}.{timestamp}.".encode() + request.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    for item in request.headers["webhook-signature"].split(" "):
        version, _, signature = item.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            body: dict[str, Any] = json.loads(request.body)
            return body
    raise AssertionError("no valid signature")


async def eventually(check: Callable[[], Awaitable[Any]], timeout_s: float = 20.0) -> Any:
    """Poll `check` until it returns something truthy, failing after a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        assert loop.time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.05)  # a poll interval, not synchronisation


async def attempts_logged(gw: Gateway, tenant: Tenant, endpoint_id: str,
                          count: int) -> list[dict[str, Any]] | None:
    log: list[dict[str, Any]] = (await gw.client.get(
        f"/v1/webhook_endpoints/{endpoint_id}/deliveries", headers=tenant.auth)).json()["data"]
    return log if len(log) >= count else None


def hook_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"egress_allow_networks": ("127.0.0.0/8", "::1/128"),
                              "webhook_retry_base_ms": BASE_MS, "webhook_timeout_s": 5,
                              "webhook_max_attempts": 5}
    values.update(overrides)
    return make_settings(database_url, tmp_path, **values)


@contextlib.asynccontextmanager
async def stack(settings: Settings, *providers: Any,
                extra: list[Any] | None = None) -> AsyncIterator[tuple[Gateway, Receiver]]:
    async with receiver() as rec, running_gateway(
            settings, extra=[ProvidersPlugin(*providers), *(extra or [])]) as gw:
        yield gw, rec


async def settle(gw: Gateway) -> None:
    """Run every queued generation job, then every webhook dispatch and attempt."""
    await gw.drain()
    await gw.services.webhooks.idle()


async def endpoint(gw: Gateway, tenant: Tenant, url: str,
                   events: list[str] | None = None) -> dict[str, Any]:
    r = await gw.client.post("/v1/webhook_endpoints", headers=tenant.auth,
                             json={"url": url, **({"events": events} if events else {})})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    assert created["secret"].startswith("whsec_")
    return created


async def generate(gw: Gateway, tenant: Tenant, provider: str, **extra: Any) -> httpx.Response:
    # An input image is used by an edit only (gateway/generations/inputs.py).
    edit = {"operation": "image_edit"} if "image_url" in extra.get("params", {}) else {}
    return await gw.client.post("/v1/generations", headers=tenant.auth,
                                json={"type": "image", "prompt": "p", "provider": provider,
                                      **edit, **extra})


async def test_succeeded_event_is_signed_and_endpoints_are_managed(database_url: str,
                                                                    tmp_path: Path) -> None:
    async with stack(hook_settings(database_url, tmp_path), scripted("ok")) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        made = await endpoint(gw, tenant, f"{rec.url}/hook")
        r = await generate(gw, tenant, "ok")
        assert r.status_code == 202, r.text
        await settle(gw)
        [request] = await rec.wait_for(1)
        body = verify(made["secret"], request)
        assert body["type"] == "generation.succeeded"
        assert body["id"] == request.headers["webhook-id"]
        assert body["id"].startswith("evt_")
        assert body["data"]["id"] == r.json()["id"]
        assert body["data"]["status"] == "succeeded"
        assert body["data"]["outputs"][0]["content_type"] == "image/png"
        # The secret is shown once; lists never carry it; another tenant sees nothing.
        listed = (await gw.client.get("/v1/webhook_endpoints", headers=tenant.auth)).json()
        assert [e["id"] for e in listed["data"]] == [made["id"]]
        assert "secret" not in listed["data"][0]
        other = await gw.tenant(scopes=ADMIN_SCOPES)
        assert (await gw.client.get(f"/v1/webhook_endpoints/{made['id']}",
                                    headers=other.auth)).status_code == 404
        assert (await gw.client.delete(f"/v1/webhook_endpoints/{made['id']}",
                                       headers=other.auth)).status_code == 404
        plain = await gw.tenant()  # no tenant_admin scope
        assert (await gw.client.get("/v1/webhook_endpoints",
                                    headers=plain.auth)).status_code == 403
        log = (await gw.client.get(f"/v1/webhook_endpoints/{made['id']}/deliveries",
                                   headers=tenant.auth)).json()["data"]
        assert [(a["event_type"], a["attempt"], a["status_code"]) for a in log] == [
            ("generation.succeeded", 1, 200)]
        gone = await gw.client.delete(f"/v1/webhook_endpoints/{made['id']}",
                                      headers=tenant.auth)
        assert gone.json() == {"id": made["id"], "deleted": True, "object": "webhook_endpoint"}
        await generate(gw, tenant, "ok")
        await settle(gw)
        assert len(rec.requests) == 1  # deleted: nothing more sent


async def test_a_cache_hit_is_announced_like_any_success(database_url: str,
                                                         tmp_path: Path) -> None:
    ok = scripted("ok")
    async with stack(hook_settings(database_url, tmp_path, cache_ttl_s=3600), ok) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        made = await endpoint(gw, tenant, f"{rec.url}/hook")
        first = (await generate(gw, tenant, "ok")).json()
        await settle(gw)
        hit = (await generate(gw, tenant, "ok")).json()
        assert hit["cached"] is True
        await settle(gw)
        bodies = [verify(made["secret"], q) for q in await rec.wait_for(2)]
        assert sorted((b["type"], b["data"]["id"], b["data"]["cached"]) for b in bodies) == \
            sorted([("generation.succeeded", first["id"], False),
                    ("generation.succeeded", hit["id"], True)])
        assert ok.calls == 1


async def test_no_event_is_kept_for_a_tenant_nobody_listens_to(database_url: str,
                                                                tmp_path: Path) -> None:
    async with stack(hook_settings(database_url, tmp_path), scripted("ok")) as (gw, rec):
        quiet = await gw.tenant(scopes=ADMIN_SCOPES)
        heard = await gw.tenant(scopes=ADMIN_SCOPES)
        await endpoint(gw, heard, f"{rec.url}/hook")
        for tenant in (quiet, heard):
            assert (await generate(gw, tenant, "ok")).status_code == 202
        with_url = (await generate(gw, quiet, "ok", webhook_url=f"{rec.url}/one")).json()
        await settle(gw)
        async with gw.runtime.db.session() as session:
            events = (await session.execute(
                select(WebhookEvent.tenant_id, WebhookEvent.generation_id)
                .where(WebhookEvent.tenant_id.in_((quiet.id, heard.id))))).all()
        assert sorted(t for t, _ in events) == sorted([heard.id, quiet.id])
        assert [g for t, g in events if t == quiet.id] == [with_url["id"]]
        await rec.wait_for(2)


async def test_failed_and_canceled_events(database_url: str, tmp_path: Path) -> None:
    bad = scripted("bad")
    bad.script = [ProviderError.invalid_input("no")]
    gate = Gate()
    async with stack(hook_settings(database_url, tmp_path), bad,
                     extra=[GatePlugin(gate)]) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        made = await endpoint(gw, tenant, f"{rec.url}/hook",
                              events=["generation.failed", "generation.canceled"])
        failed = (await generate(gw, tenant, "bad")).json()["id"]
        await settle(gw)
        waiting = (await generate(gw, tenant, "gate")).json()["id"]
        await asyncio.wait_for(gate.entered.wait(), 10)
        r = await gw.client.post(f"/v1/generations/{waiting}/cancel", headers=tenant.auth)
        assert r.status_code == 200, r.text
        gate.release.set()
        await settle(gw)
        bodies = [verify(made["secret"], q) for q in await rec.wait_for(2)]
        assert sorted((b["type"], b["data"]["id"]) for b in bodies) == sorted([
            ("generation.failed", failed), ("generation.canceled", waiting)])
        failed_body = next(b for b in bodies if b["type"] == "generation.failed")
        assert failed_body["data"]["error"]["code"] == "invalid_input"
        assert len(rec.requests) == 2  # no generation.succeeded: not subscribed


async def test_retries_after_500s_with_backoff_then_success(database_url: str,
                                                            tmp_path: Path) -> None:
    async with stack(hook_settings(database_url, tmp_path), scripted("ok")) as (gw, rec):
        rec.statuses = [500, 503, 500]
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        made = await endpoint(gw, tenant, f"{rec.url}/hook")
        await generate(gw, tenant, "ok")
        await settle(gw)
        requests = await rec.wait_for(4)
        assert len(requests) == 4
        assert len({q.headers["webhook-id"] for q in requests}) == 1  # one event, retried
        for q in requests:
            verify(made["secret"], q)
        gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
        for n, gap in enumerate(gaps, start=1):  # jitter keeps at least half of each step
            assert gap >= 0.5 * BASE_MS / 1000 * 2 ** (n - 1) * 0.9, gaps
        log = (await gw.client.get(f"/v1/webhook_endpoints/{made['id']}/deliveries",
                                   headers=tenant.auth)).json()["data"]
        assert [(a["attempt"], a["status_code"]) for a in reversed(log)] == [
            (1, 500), (2, 503), (3, 500), (4, 200)]
        assert [a["next_attempt_at"] is None for a in reversed(log)] == [
            False, False, False, True]
        assert log[-1]["error"] == "HTTP 500"


async def test_no_retry_after_a_400_and_attempts_are_capped(pg_url: str,
                                                            tmp_path: Path) -> None:
    async with stack(hook_settings(pg_url, tmp_path, webhook_max_attempts=2),
                     scripted("ok")) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        rejecting = await endpoint(gw, tenant, f"{rec.url}/rejecting")
        rec.statuses = [400]
        await generate(gw, tenant, "ok")
        await settle(gw)
        assert [q.path for q in rec.requests] == ["/rejecting"]
        log = (await gw.client.get(f"/v1/webhook_endpoints/{rejecting['id']}/deliveries",
                                   headers=tenant.auth)).json()["data"]
        assert [(a["attempt"], a["status_code"], a["next_attempt_at"]) for a in log] == [
            (1, 400, None)]
        await gw.client.delete(f"/v1/webhook_endpoints/{rejecting['id']}",
                               headers=tenant.auth)
        down = await endpoint(gw, tenant, f"{rec.url}/down")
        rec.statuses = [500, 500, 500]
        await generate(gw, tenant, "ok")
        await settle(gw)
        assert [q.path for q in rec.requests[1:]] == ["/down", "/down"]  # max 2 attempts
        log = (await gw.client.get(f"/v1/webhook_endpoints/{down['id']}/deliveries",
                                   headers=tenant.auth)).json()["data"]
        assert [(a["attempt"], a["status_code"]) for a in log] == [(2, 500), (1, 500)]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://localhost/hook",
                                 "http://[::ffff:10.0.0.1]/hook", "http://169.254.169.254/",
                                 "ftp://example.com/hook"])
async def test_private_webhook_url_is_refused_at_submit(database_url: str, tmp_path: Path,
                                                        url: str) -> None:
    # Loopback NOT allowed here: the defaults.
    async with running_gateway(make_settings(database_url, tmp_path),
                               extra=[ProvidersPlugin(scripted("ok"))]) as gw:
        tenant = await gw.tenant()
        before = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        r = await generate(gw, tenant, "ok", webhook_url=url)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["param"] == "webhook_url"
        assert r.json()["error"]["code"] == "url_not_allowed"
        after = (await gw.client.get("/v1/credits/balance", headers=tenant.auth)).json()
        assert after == before
        listed = (await gw.client.get("/v1/generations", headers=tenant.auth)).json()
        assert listed["data"] == []


async def test_webhook_url_is_signed_with_the_tenant_secret(database_url: str,
                                                           tmp_path: Path) -> None:
    async with stack(hook_settings(database_url, tmp_path), scripted("ok")) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        secret = (await gw.client.get("/v1/webhook_secret", headers=tenant.auth)).json()
        r = await generate(gw, tenant, "ok", webhook_url=f"{rec.url}/mine")
        await settle(gw)
        [request] = await rec.wait_for(1)
        assert request.path == "/mine"
        body = verify(secret["secret"], request)
        assert body["data"]["id"] == r.json()["id"]
        other = await gw.tenant(scopes=ADMIN_SCOPES)
        other_secret = (await gw.client.get("/v1/webhook_secret", headers=other.auth)).json()
        with pytest.raises(AssertionError, match="no valid signature"):
            verify(other_secret["secret"], request)


async def test_rotation_signs_with_both_secrets(tmp_path: Path, pg_url: str) -> None:
    async with stack(hook_settings(pg_url, tmp_path), scripted("ok")) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        made = await endpoint(gw, tenant, f"{rec.url}/hook")
        rotated = (await gw.client.post(f"/v1/webhook_endpoints/{made['id']}/rotate_secret",
                                        headers=tenant.auth)).json()
        assert rotated["secret"] != made["secret"]
        await generate(gw, tenant, "ok")
        await settle(gw)
        [request] = await rec.wait_for(1)
        assert len(request.headers["webhook-signature"].split(" ")) == 2
        verify(made["secret"], request)
        verify(rotated["secret"], request)


async def test_credits_low_is_delivered_once(database_url: str, tmp_path: Path) -> None:
    # Charged what it reserves: a first generation settling before the second is reserved
    # releases nothing, so the wallet crosses the threshold once whatever the timing.
    async with stack(hook_settings(database_url, tmp_path),
                     scripted("ok", cost_usd_micros=10_000,
                              actual_usd_micros=10_000)) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES, credits_mc=3_000,
                                 low_balance_threshold_mc=2_000)
        made = await endpoint(gw, tenant, f"{rec.url}/hook", events=["credits.low"])
        for _ in range(2):  # 1300 each: the first crosses 2000, the second stays below
            assert (await generate(gw, tenant, "ok")).status_code == 202
        await settle(gw)
        [request] = await rec.wait_for(1)
        body = verify(made["secret"], request)
        assert body["type"] == "credits.low"
        assert body["data"]["threshold"] == 2_000
        assert body["data"]["available"] < 2_000
        assert len(rec.requests) == 1


class UrlOutput(Scripted):
    """A provider that answers with a URL to its output, as many hosted APIs do."""

    name = "url-out"
    output_url = ""

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        return ProviderResult(outputs=[ProviderOutput(url=self.output_url)],
                              cost_usd_micros=4_000)


class SeesInput(Scripted):
    """A provider that keeps the request it was given (an edit of an input image)."""

    name = "sees-input"
    operations = frozenset({"text_to_image", "image_edit"})
    seen: list[ProviderRequest]

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        self.seen.append(request)
        return await super().generate(request, credentials, client)


async def test_provider_output_url_is_fetched_and_stored(database_url: str,
                                                        tmp_path: Path) -> None:
    provider = UrlOutput()
    async with stack(hook_settings(database_url, tmp_path), provider) as (gw, rec):
        rec.files["/out.bin"] = File(PNG, "application/octet-stream")
        provider.output_url = f"{rec.url}/out.bin"
        tenant = await gw.tenant()
        gid = (await generate(gw, tenant, "url-out")).json()["id"]
        await settle(gw)
        done = (await gw.client.get(f"/v1/generations/{gid}", headers=tenant.auth)).json()
        assert done["status"] == "succeeded", done
        assert done["outputs"][0]["content_type"] == "image/png"  # typed by its bytes
        assert done["outputs"][0]["bytes"] == len(PNG)
        media = await gw.client.get(done["outputs"][0]["url"])
        assert media.content == PNG
        assert await gw.runtime.storage.get(f"{tenant.id}/{gid}/0.png") == (PNG, "image/png")
        # An output URL pointing somewhere private fails the generation, stores nothing.
        provider.output_url = "http://169.254.169.254/latest/meta-data/"
        gid = (await generate(gw, tenant, "url-out")).json()["id"]
        await settle(gw)
        done = (await gw.client.get(f"/v1/generations/{gid}", headers=tenant.auth)).json()
        assert done["status"] == "failed"
        assert done["error"]["code"] == "output_fetch_refused"


async def test_input_image_url_is_fetched_and_handed_over(database_url: str,
                                                         tmp_path: Path) -> None:
    provider = SeesInput()
    provider.seen = []
    async with stack(hook_settings(database_url, tmp_path), provider) as (gw, rec):
        rec.files["/in.png"] = File(PNG, "text/plain")
        tenant = await gw.tenant()
        r = await generate(gw, tenant, "sees-input", params={"image_url": f"{rec.url}/in.png"})
        assert r.status_code == 202, r.text
        await settle(gw)
        [request] = provider.seen
        # Handed over decoded, typed by its bytes; the URL stays in params for the record.
        assert request.inputs["image"] == MediaInput(data=PNG, content_type="image/png")
        assert request.params == {"image_url": f"{rec.url}/in.png"}
        stored = await gw.runtime.storage.get(
            f"{tenant.id}/inputs/{hashlib.sha256(PNG).hexdigest()}.png")
        assert stored == (PNG, "image/png")
        for url, code in [("http://10.0.0.5/in.png", "url_not_allowed"),
                          (f"{rec.url}/missing", "fetch_failed")]:
            r = await generate(gw, tenant, "sees-input", params={"image_url": url})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["param"] == "params.image_url"
            assert r.json()["error"]["code"] == code


async def test_the_row_records_a_reference_to_an_input_not_its_bytes(
        database_url: str, tmp_path: Path) -> None:
    provider = SeesInput()
    provider.seen = []
    async with stack(hook_settings(database_url, tmp_path), provider) as (gw, rec):
        rec.files["/in.png"] = File(PNG, "image/png")
        tenant = await gw.tenant()
        inline = "data:image/png;base64," + base64.b64encode(PNG).decode()
        key = f"{tenant.id}/inputs/{hashlib.sha256(PNG).hexdigest()}.png"
        ids = []
        for params in ({"image_url": f"{rec.url}/in.png"}, {"image": inline}):
            r = await generate(gw, tenant, "sees-input", params=params)
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        await settle(gw)
        # The provider got the bytes both times; the rows hold only a reference.
        assert [request.inputs["image"] for request in provider.seen] == [
            MediaInput(data=PNG, content_type="image/png")] * 2
        assert not any("image" in request.params for request in provider.seen)
        async with gw.runtime.db.session() as session:
            rows = [await session.get(Generation, gid) for gid in ids]
        assert [row.params["image"] for row in rows if row is not None] == [
            f"mediahub-input:{key}"] * 2
        assert await gw.runtime.storage.get(key) == (PNG, "image/png")

        # An input gone from storage by the time a worker loads it: a final error.
        with pytest.raises(ProviderError) as gone:
            await media_urls.load_inputs(gw.runtime, {
                "image": f"mediahub-input:{tenant.id}/inputs/{'0' * 64}.png"})
        assert (gone.value.code, gone.value.retryable) == ("input_missing", False)

        # A row recorded with an inline data: URL (before references) is decoded; samples
        # are loaded in order; the plain params stay.
        params, inputs = await media_urls.load_inputs(gw.runtime, {
            "image_tail": inline, "samples": [f"mediahub-input:{key}", inline], "seed": 7})
        assert params == {"seed": 7}
        assert inputs.media == {"image_tail": MediaInput(data=PNG, content_type="image/png")}
        assert inputs.samples == [MediaInput(data=PNG, content_type="image/png")] * 2
        with pytest.raises(ProviderError) as unreadable:
            await media_urls.load_inputs(gw.runtime, {"mask": "not a data url"})
        assert (unreadable.value.code, unreadable.value.retryable) == ("invalid_input", False)


async def test_a_malformed_inline_input_is_refused_naming_it(database_url: str,
                                                            tmp_path: Path) -> None:
    provider = SeesInput()
    provider.seen = []
    async with stack(hook_settings(database_url, tmp_path), provider) as (gw, _):
        tenant = await gw.tenant()
        for params, param in [({"image": "https://example.com/a.png"}, "params.image"),
                              ({"mask": "data:image/png;base64,!!!"}, "params.mask"),
                              ({"samples": "data:audio/mpeg;base64,AAAA"}, "params.samples"),
                              ({"samples": ["data:audio/mpeg;base64,"]}, "params.samples[0]")]:
            r = await generate(gw, tenant, "sees-input", params=params)
            assert r.status_code == 422, r.text
            assert r.json()["error"]["code"] == "invalid_parameter"
            assert r.json()["error"]["param"] == param
        assert provider.seen == []


async def test_deliveries_on_saq_retry_after_500s(pg_url: str, valkey: str,
                                                  tmp_path: Path) -> None:
    settings = hook_settings(pg_url, tmp_path, valkey_url=valkey)
    async with stack(settings, scripted("ok")) as (gw, rec):
        rec.statuses = [500]
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        made = await endpoint(gw, tenant, f"{rec.url}/hook")
        queue = gw.services.webhooks.queue
        assert isinstance(queue, SaqWebhookQueue)
        worker = build_webhook_worker(queue, gw.services.webhooks, concurrency=2)
        task = asyncio.create_task(worker.start())
        try:
            # The generation's own job is not needed here: cancel a queued one (no worker
            # works the image queue), which emits generation.canceled.
            gid = (await generate(gw, tenant, "ok")).json()["id"]
            await gw.client.post(f"/v1/generations/{gid}/cancel", headers=tenant.auth)
            requests = await rec.wait_for(2, timeout_s=30)
            log = await eventually(lambda: attempts_logged(gw, tenant, made["id"], 2))
        finally:
            await worker.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        bodies = [verify(made["secret"], q) for q in requests]
        assert [b["type"] for b in bodies] == ["generation.canceled"] * 2
        assert bodies[0]["data"]["id"] == gid
        assert [(a["attempt"], a["status_code"]) for a in reversed(log)] == [(1, 500),
                                                                            (2, 200)]


async def test_ended_events_past_their_retention_are_pruned(database_url: str,
                                                           tmp_path: Path) -> None:
    async with stack(hook_settings(database_url, tmp_path),
                     scripted("ok", cost_usd_micros=10_000,
                              actual_usd_micros=10_000)) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES, credits_mc=3_000,
                                 low_balance_threshold_mc=2_000)
        await endpoint(gw, tenant, f"{rec.url}/hook")
        rec.statuses = [200, 400]  # a delivery that succeeds, one that fails for good
        for _ in range(2):
            assert (await generate(gw, tenant, "ok")).status_code == 202
        await settle(gw)
        await rec.wait_for(3)  # two generation.succeeded and one credits.low
        webhooks, db = gw.services.webhooks, gw.runtime.db
        async with db.session() as session:
            events = {e.id: e.type for e in await session.scalars(
                select(WebhookEvent).where(WebhookEvent.tenant_id == tenant.id))}
            deliveries = {d.event_id: d for d in await session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant.id))}
        assert sorted(events.values()) == ["credits.low", "generation.succeeded",
                                           "generation.succeeded"]
        assert sorted(d.status for d in deliveries.values()) == [
            "failed", "succeeded", "succeeded"]
        # One event is still being delivered: it stays whatever its age.
        still = next(i for i, t in events.items() if t == "generation.succeeded"
                     and deliveries[i].status == "succeeded")
        async with db.transaction() as session:
            await session.execute(update(WebhookDelivery)
                                  .where(WebhookDelivery.event_id == still)
                                  .values(status="pending"))

        async def left() -> tuple[list[str], set[str], list[str]]:
            async with db.session() as session:
                return (list(await session.scalars(select(WebhookEvent.id).where(
                            WebhookEvent.tenant_id == tenant.id))),
                        set(await session.scalars(select(WebhookAttempt.event_id).where(
                            WebhookAttempt.tenant_id == tenant.id))),
                        list(await session.scalars(select(LedgerEvent.id).where(
                            LedgerEvent.tenant_id == tenant.id))))

        await webhooks.prune(utcnow() - timedelta(days=1))  # nothing of this test is that old
        assert sorted((await left())[0]) == sorted(events)
        # (Other tests' ended events in a shared database go too: that is what prune does.)
        assert await webhooks.prune(utcnow() + timedelta(seconds=1)) >= 2
        assert await left() == ([still], {still}, [])
        # The credits.low copy is not imported again from the ledger's outbox.
        await webhooks.dispatch_pending()
        assert (await left())[0] == [still]


# -- one tenant must not hurt another ------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql", "saq"])
def sender(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """(database URL, Valkey URL): deliveries on the embedded sender on either database, or
    on a SAQ webhook worker (PostgreSQL and Valkey, as `mediahub worker` runs it)."""
    if request.param == "sqlite":
        path = tmp_path / "mediahub.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}", None
    url: str = request.getfixturevalue("pg_url")
    return url, valkey_url() if request.param == "saq" else None


@contextlib.asynccontextmanager
async def delivering(sender: tuple[str, str | None], tmp_path: Path,
                     **overrides: Any) -> AsyncIterator[tuple[Gateway, Receiver]]:
    """A gateway on `sender`, with a SAQ webhook worker running when it has Valkey."""
    database_url, valkey = sender
    settings = hook_settings(database_url, tmp_path, valkey_url=valkey, **overrides)
    async with stack(settings, scripted("ok")) as (gw, rec):
        if valkey is None:
            yield gw, rec
            return
        queue = gw.services.webhooks.queue
        assert isinstance(queue, SaqWebhookQueue)
        worker = build_webhook_worker(queue, gw.services.webhooks,
                                      concurrency=settings.webhook_concurrency)
        task = asyncio.create_task(worker.start())
        try:
            yield gw, rec
        finally:
            rec.release()
            await worker.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def emit(gw: Gateway, tenant: Tenant) -> None:
    """Make one generation event for `tenant`: a finished generation when embedded, a
    canceled one on SAQ (no worker runs the image queue there)."""
    gid = (await generate(gw, tenant, "ok")).json()["id"]
    if isinstance(gw.services.webhooks.queue, InProcessWebhookQueue):
        await gw.drain()
    else:
        r = await gw.client.post(f"/v1/generations/{gid}/cancel", headers=tenant.auth)
        assert r.status_code == 200, r.text


async def test_a_tenant_with_hanging_receivers_does_not_delay_another(
        sender: tuple[str, str | None], tmp_path: Path) -> None:
    # Four sending slots, two per tenant; A's receivers hang far longer than the bound.
    async with delivering(sender, tmp_path, webhook_concurrency=4,
                          webhook_max_in_flight=2, webhook_timeout_s=60) as (gw, slow), \
            receiver() as fast:
        slow.statuses = [STALL] * 6
        a = await gw.tenant(scopes=ADMIN_SCOPES)
        b = await gw.tenant(scopes=ADMIN_SCOPES)
        for i in range(6):
            await endpoint(gw, a, f"{slow.url}/a{i}")
        made_b = await endpoint(gw, b, f"{fast.url}/b")
        await emit(gw, a)  # six deliveries, all queued before B's
        await slow.wait_held(2)
        await emit(gw, b)
        [delivered] = await fast.wait_for(1, timeout_s=5)
        assert verify(made_b["secret"], delivered)["type"].startswith("generation.")
        # A never had more than its cap in flight although slots were free.
        assert slow.held == 2
        queue = gw.services.webhooks.queue
        if isinstance(queue, SaqWebhookQueue):
            assert await queue.slots.in_flight(a.id) == 2
        else:
            assert queue.in_flight(a.id) == 2
        # Released, A's deliveries all go out (the waiting ones were not lost).
        slow.release()
        await slow.wait_for(6, timeout_s=20)
        if sender[1] is None:
            await gw.services.webhooks.idle()
        assert sorted(r.path for r in slow.posts()) == [f"/a{i}" for i in range(6)]


async def test_the_in_process_sender_takes_tenants_in_turn(database_url: str,
                                                          tmp_path: Path) -> None:
    # One slot: B's one attempt goes next after A's first, not after all of A's four.
    settings = hook_settings(database_url, tmp_path, webhook_concurrency=1,
                             webhook_max_in_flight=1, webhook_timeout_s=60)
    async with stack(settings, scripted("ok")) as (gw, rec):
        rec.statuses = [STALL]
        a = await gw.tenant(scopes=ADMIN_SCOPES)
        b = await gw.tenant(scopes=ADMIN_SCOPES)
        for i in range(4):  # the first to go out is held: the rest queue behind it
            await endpoint(gw, a, f"{rec.url}/a{i}")
        await endpoint(gw, b, f"{rec.url}/b")
        await emit(gw, a)
        await rec.wait_held(1)
        await emit(gw, b)
        queue = gw.services.webhooks.queue
        assert isinstance(queue, InProcessWebhookQueue)

        async def b_waits() -> bool:
            return queue.waiting(b.id) == 1

        await eventually(b_waits)
        assert queue.waiting(a.id) == 3
        rec.release()
        await gw.services.webhooks.idle()
        paths = [r.path for r in rec.posts()]
        assert paths[0].startswith("/a")
        assert paths[1] == "/b", paths  # next in turn, not after A's three
        assert len(paths) == 5


async def test_a_tenant_has_at_most_its_cap_of_deliveries_in_flight(
        sender: tuple[str, str | None], tmp_path: Path) -> None:
    async with delivering(sender, tmp_path, webhook_concurrency=8,
                          webhook_max_in_flight=3, webhook_timeout_s=60) as (gw, rec), \
            receiver() as marker:
        rec.statuses = [STALL] * 5
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        for i in range(5):
            await endpoint(gw, tenant, f"{rec.url}/h{i}")
        other = await gw.tenant(scopes=ADMIN_SCOPES)
        await endpoint(gw, other, f"{marker.url}/m")
        await emit(gw, tenant)
        await rec.wait_held(3)
        # Another tenant's delivery, queued after the five, has gone out: the other two
        # had their turn before it, and wait (without a slot) although five slots are free.
        await emit(gw, other)
        await marker.wait_for(1, timeout_s=5)
        assert rec.held == 3
        assert len(rec.posts()) == 3
        rec.release()
        await rec.wait_for(5, timeout_s=20)
        log = await eventually(lambda: _all_attempts(gw, tenant, 5))
        assert sorted(a["status_code"] for a in log) == [200] * 5


async def _all_attempts(gw: Gateway, tenant: Tenant, count: int) -> list[Any] | None:
    async with gw.runtime.db.session() as session:
        rows = list(await session.scalars(select(WebhookAttempt).where(
            WebhookAttempt.tenant_id == tenant.id)))
    found = [{"status_code": a.status_code} for a in rows]
    return found if len(found) >= count else None


async def test_endpoints_per_tenant_are_capped(database_url: str, tmp_path: Path) -> None:
    async with stack(hook_settings(database_url, tmp_path, webhook_max_endpoints=2),
                     scripted("ok")) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        first = await endpoint(gw, tenant, f"{rec.url}/1")
        await endpoint(gw, tenant, f"{rec.url}/2")
        r = await gw.client.post("/v1/webhook_endpoints", headers=tenant.auth,
                                 json={"url": f"{rec.url}/3"})
        assert r.status_code == 409, r.text
        error = r.json()["error"]
        assert (error["type"], error["code"], error["param"]) == (
            "conflict_error", "webhook_endpoint_limit", None)
        assert "at most 2" in error["message"]
        # Another tenant's allowance is its own; a deletion makes room again.
        other = await gw.tenant(scopes=ADMIN_SCOPES)
        await endpoint(gw, other, f"{rec.url}/o")
        await gw.client.delete(f"/v1/webhook_endpoints/{first['id']}", headers=tenant.auth)
        await endpoint(gw, tenant, f"{rec.url}/3")


async def test_concurrent_creates_do_not_pass_the_endpoint_cap(database_url: str,
                                                               tmp_path: Path) -> None:
    async with stack(hook_settings(database_url, tmp_path, webhook_max_endpoints=3),
                     scripted("ok")) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        answers = await asyncio.gather(*(
            gw.client.post("/v1/webhook_endpoints", headers=tenant.auth,
                           json={"url": f"{rec.url}/{i}"}) for i in range(8)))
        assert sorted(r.status_code for r in answers) == [201] * 3 + [409] * 5
        listed = (await gw.client.get("/v1/webhook_endpoints", headers=tenant.auth)).json()
        assert len(listed["data"]) == 3


@pytest.mark.parametrize("hang", [STALL, DRIP], ids=["no-answer", "trickled-body"])
async def test_a_hanging_receiver_is_cut_at_the_attempt_timeout_and_retried(
        sender: tuple[str, str | None], tmp_path: Path, hang: int) -> None:
    async with delivering(sender, tmp_path, webhook_timeout_s=1) as (gw, rec):
        rec.statuses = [hang]  # the first attempt hangs, the second is answered at once
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        made = await endpoint(gw, tenant, f"{rec.url}/hook")
        await emit(gw, tenant)
        log = await eventually(lambda: attempts_logged(gw, tenant, made["id"], 2))
        second, first = log
        assert (first["attempt"], first["status_code"]) == (1, None)
        assert first["error"].startswith("fetch_timeout")
        assert 900 <= first["duration_ms"] < 5000
        assert (second["attempt"], second["status_code"]) == (2, 200)
        assert len(rec.posts()) == 2


def test_the_fairness_settings_are_read_and_checked() -> None:
    env = {"MEDIAHUB_DATABASE_URL": "postgresql+asyncpg://db/mediahub",
           "MEDIAHUB_SECRET_KEY": "s" * 40}
    defaults = load_settings(env)
    assert (defaults.webhook_concurrency, defaults.webhook_max_in_flight,
            defaults.webhook_max_endpoints, defaults.webhook_timeout_s) == (32, 8, 20, 10)
    read = load_settings({**env, "MEDIAHUB_WEBHOOK_CONCURRENCY": "64",
                          "MEDIAHUB_WEBHOOK_MAX_IN_FLIGHT": "4",
                          "MEDIAHUB_WEBHOOK_MAX_ENDPOINTS": "5"})
    assert (read.webhook_concurrency, read.webhook_max_in_flight,
            read.webhook_max_endpoints) == (64, 4, 5)
    for name in ("MEDIAHUB_WEBHOOK_CONCURRENCY", "MEDIAHUB_WEBHOOK_MAX_IN_FLIGHT",
                 "MEDIAHUB_WEBHOOK_MAX_ENDPOINTS"):
        with pytest.raises(SettingsError) as caught:
            load_settings({**env, name: "0"})
        assert [p.split("=")[0] for p in caught.value.problems] == [name]


async def test_a_job_queued_without_its_tenant_is_still_delivered(pg_url: str, valkey: str,
                                                                 tmp_path: Path) -> None:
    # Jobs queued by the previous version carry only the delivery id.
    settings = hook_settings(pg_url, tmp_path, valkey_url=valkey)
    async with delivering((pg_url, valkey), tmp_path) as (gw, rec):
        tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        made = await endpoint(gw, tenant, f"{rec.url}/hook")
        queue = gw.services.webhooks.queue
        assert isinstance(queue, SaqWebhookQueue)
        event_id, delivery_id = new_id("evt"), new_id("whd")
        async with gw.runtime.db.transaction() as session:
            session.add(WebhookEvent(id=event_id, tenant_id=tenant.id, type="credits.low",
                                     body=json.dumps({"id": event_id}),
                                     dispatched_at=utcnow()))
            await session.flush()  # the delivery refers to it
            session.add(WebhookDelivery(id=delivery_id, tenant_id=tenant.id,
                                        event_id=event_id, endpoint_id=made["id"],
                                        url=f"{rec.url}/hook", status="pending", attempts=0,
                                        next_attempt_at=utcnow()))
        await queue.queue.enqueue(DELIVER_WEBHOOK, key=f"{delivery_id}:1",
                                  delivery_id=delivery_id, timeout=settings.webhook_timeout_s)
        [request] = await rec.wait_for(1)
        assert request.headers["webhook-id"] == event_id
        log = await eventually(lambda: attempts_logged(gw, tenant, made["id"], 1))
        assert [(a["delivery_id"], a["status_code"]) for a in log] == [(delivery_id, 200)]
