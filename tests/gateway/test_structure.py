"""What the gateway's inside promises: credentials before bodies, one way to end a
generation (holding its claim), one task registry. Both databases where a database is used."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, text, update

from gateway.core.jobs import TaskRegistry
from gateway.generations import lifecycle
from gateway.generations.models import (
    RUNNING,
    SUCCEEDED,
    AttemptRecord,
    ErrorRecord,
    Generation,
    StoredOutput,
)
from tenants.kernel.db import JSONType
from tenants.models import Tenant as TenantRow
from tenants.schemas import RateLimitPolicy, TenantCache, TenantPricing, TenantRouting
from tests.conftest import Gate, Gateway

BAD_BODY = {"type": "image", "prompt": "x", "unknown_field": 1}


@pytest.mark.parametrize(("path", "headers"), [
    ("/v1/generations", {}),
    ("/v1/generations", {"Authorization": "Bearer mh_nope_nope"}),
    ("/v1/generations/estimate", {}),
    ("/admin/v1/tenants", {"Authorization": "Bearer not-the-admin-token"}),
])
async def test_a_bad_credential_is_401_before_the_body_is_read(
    gateway: Gateway, path: str, headers: dict[str, str],
) -> None:
    # The body is invalid for every one of these routes: a 422 would describe the schema to
    # a caller who may not even call it. The guard answers first.
    r = await gateway.client.post(path, headers=headers, json=BAD_BODY)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["type"] == "authentication_error"


async def test_a_scope_missing_is_403_before_the_body_is_read(gateway: Gateway) -> None:
    tenant = await gateway.tenant(scopes=["read"])
    r = await gateway.client.post("/v1/generations", headers=tenant.auth, json=BAD_BODY)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["param"] == "generate"


async def test_a_job_that_lost_its_claim_cannot_settle_the_generation(
    gated: tuple[Gateway, Gate],
) -> None:
    gw, gate = gated
    tenant = await gw.tenant()
    r = await gw.client.post("/v1/generations", headers=tenant.auth,
                             json={"type": "image", "prompt": "held", "provider": "gate"})
    assert r.status_code == 202, r.text
    gen_id = r.json()["id"]
    await gate.entered.wait()
    async with gw.runtime.db.session() as session:
        stale = await session.get(Generation, gen_id)
    assert stale is not None
    assert stale.status == RUNNING
    # Another job takes the generation over (its lease ran out): the sequence moves on.
    async with gw.runtime.db.transaction() as session:
        await session.execute(update(Generation).where(Generation.id == gen_id)
                              .values(lease_seq=Generation.lease_seq + 1))
    settled = await lifecycle.end(gw.services, stale, lifecycle.Succeeded(
        outputs=[], provider="gate", cost_usd_micros=1), held=True)
    assert settled is False
    async with gw.runtime.db.session() as session:
        row = await session.get(Generation, gen_id)
    assert row is not None
    assert row.status == RUNNING
    assert row.charged_mc is None
    gate.release.set()
    await gw.drain()
    async with gw.runtime.db.session() as session:
        row = await session.get(Generation, gen_id)
    # The original job's own success is refused too (it no longer holds the claim); the
    # reconciler's job settles it later, never twice.
    assert row is not None
    assert row.status != SUCCEEDED


def test_a_task_name_is_registered_once() -> None:
    registry = TaskRegistry()

    async def run() -> None:
        return None

    registry.register("generation.run", run)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("generation.run", run)
    with pytest.raises(LookupError, match="no task named"):
        registry.get("generation.poll")


async def test_json_columns_read_back_as_typed_records_even_when_written_by_older_code(
    gated: tuple[Gateway, Gate],
) -> None:
    gw, gate = gated
    tenant = await gw.tenant()
    r = await gw.client.post("/v1/generations", headers=tenant.auth,
                             json={"type": "image", "prompt": "typed", "provider": "gate"})
    gen_id = r.json()["id"]
    await gate.entered.wait()
    # As an older version wrote them: dicts with a key this version does not know, and
    # without keys it added since.
    old_attempts = [{"provider": "gate", "outcome": "failed", "error_code": "timeout",
                     "latency_ms": 12, "legacy_field": True}]
    old_outputs = [{"key": f"{tenant.id}/{gen_id}/0.png", "content_type": "image/png",
                    "bytes": 3}]
    statement = text("UPDATE generations SET attempts_log = :a, outputs = :o, error = :e "
                     "WHERE id = :id").bindparams(bindparam("a", type_=JSONType),
                                                  bindparam("o", type_=JSONType),
                                                  bindparam("e", type_=JSONType))
    async with gw.runtime.db.transaction() as session:
        await session.execute(statement, {"a": old_attempts, "o": old_outputs,
                                          "e": {"code": "timeout", "message": "slow"},
                                          "id": gen_id})
    async with gw.runtime.db.session() as session:
        row = await session.get(Generation, gen_id)
    assert row is not None
    assert row.attempts_log == [AttemptRecord(provider="gate", outcome="failed",
                                              error_code="timeout", latency_ms=12)]
    assert row.outputs == [StoredOutput(key=f"{tenant.id}/{gen_id}/0.png",
                                        content_type="image/png", bytes=3)]
    assert row.error == ErrorRecord(code="timeout", message="slow")
    gate.release.set()


async def test_tenant_policies_read_back_as_typed_structs(gateway: Gateway) -> None:
    made = await gateway.tenant(pricing={"markup_bps": {"image": 2500}},
                                rate_limits={"requests_per_minute": 90},
                                routing={"strategy": "cheapest"},
                                cache={"enabled": False})
    # A row as the first versions stored it: empty JSON objects for the defaults.
    statement = text("UPDATE tenants SET routing = :empty WHERE id = :id").bindparams(
        bindparam("empty", type_=JSONType))
    async with gateway.runtime.db.transaction() as session:
        row = await session.get(TenantRow, made.id)
        assert row is not None
        assert row.pricing == TenantPricing(markup_bps={"image": 2500})
        assert row.rate_limits == RateLimitPolicy(requests_per_minute=90)
        assert row.routing == TenantRouting(strategy="cheapest")
        assert row.cache == TenantCache(enabled=False)
        await session.execute(statement, {"empty": {}, "id": made.id})
    async with gateway.runtime.db.session() as session:
        row = await session.get(TenantRow, made.id)
    assert row is not None
    assert row.routing == TenantRouting()
    r = await gateway.client.get(f"/admin/v1/tenants/{made.id}", headers=gateway.admin())
    assert r.json()["pricing"] == {"markup_bps": {"image": 2500}}
    assert r.json()["cache"] == {"enabled": False}
