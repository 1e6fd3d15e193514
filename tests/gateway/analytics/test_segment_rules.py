"""The segments the database computes are the rules of docs/analytics-segments.md, written
again here plainly in Python, for random histories and thresholds (boundaries included:
whole days land exactly on them)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.pricing import div_ceil
from gateway.analytics import segments
from gateway.app import start_services
from gateway.generations.models import Generation
from gateway.generations.services import Services
from gateway.tenancy.service import create_tenant, update_tenant
from plugins.host import build_plugin_host
from tenants.kernel.db import new_id
from tenants.models import Customer
from tenants.schemas import TenantAnalytics, TenantCreate, TenantUpdate
from tests.conftest import make_settings

T = datetime(2027, 3, 1, tzinfo=UTC)

#: One generation: days before T (0 or less: at or after T), status, retail, wholesale.
Row = tuple[int, str, int, int]
rows = st.tuples(st.integers(-3, 200), st.sampled_from(["succeeded", "succeeded", "failed"]),
                 st.integers(0, 5_000), st.integers(0, 5_000))
histories = st.lists(st.lists(rows, min_size=0, max_size=4), min_size=0, max_size=8)


@st.composite
def thresholds(draw: st.DrawFn) -> TenantAnalytics:
    active = draw(st.integers(1, 60))
    return TenantAnalytics(new_days=draw(st.integers(1, 60)), active_days=active,
                           lapsed_days=active + draw(st.integers(1, 90)),
                           top_spender_percent=draw(st.integers(1, 100)))


def expected(history: list[list[Row]], t: TenantAnalytics,
             ids: list[str]) -> dict[str, tuple[int, int, int]]:
    """The rules, plainly: segment → (customers, spend, wholesale)."""
    out = {name: [0, 0, 0] for name in segments.SEGMENTS}
    spenders: list[tuple[int, str, int]] = []
    for customer_id, gens in zip(ids, history, strict=True):
        past = [g for g in gens if g[0] > 0]
        if not past:
            continue
        first, last = max(g[0] for g in past), min(g[0] for g in past)
        recent = [g for g in past if g[0] < t.active_days and g[1] == "succeeded"]
        spend, wholesale = sum(g[2] for g in recent), sum(g[3] for g in recent)
        if first < t.new_days:
            name = "new"
        elif last < t.active_days:
            before = any(t.active_days <= g[0] < 2 * t.active_days for g in past)
            name = "active" if before else "returning"
        elif last < t.lapsed_days:
            name = "at_risk"
        else:
            name = "lapsed"
        for index, value in enumerate((1, spend, wholesale)):
            out[name][index] += value
        if spend > 0:
            spenders.append((spend, customer_id, wholesale))
    spenders.sort(key=lambda s: (-s[0], s[1]))
    top = spenders[:div_ceil(len(spenders) * t.top_spender_percent, 100)]
    out["top_spenders"] = [len(top), sum(s[0] for s in top), sum(s[2] for s in top)]
    return {name: (v[0], v[1], v[2]) for name, v in out.items()}


async def one_history(services: Services, history: list[list[Row]],
                      t: TenantAnalytics) -> None:
    runtime = services.runtime
    slug = f"seg-{secrets.token_hex(4)}"
    tenant = await create_tenant(runtime, TenantCreate(name=slug, slug=slug))
    await update_tenant(runtime, tenant.id, TenantUpdate(analytics=t))
    # Ids in a known order, so ties between equal spenders have one right answer.
    ids = [f"cus_{slug}_{n:02d}" for n in range(len(history))]
    async with runtime.db.transaction() as session:
        for customer_id, gens in zip(ids, history, strict=True):
            session.add(Customer(id=customer_id, tenant_id=tenant.id, external_id=customer_id))
            await session.flush()
            for days, status, retail, wholesale in gens:
                session.add(Generation(
                    id=new_id("gen"), tenant_id=tenant.id, customer_id=customer_id,
                    type="image", operation="text_to_image", prompt="p", provider="echo",
                    status=status, cached=False, cost_usd_micros=0, wholesale_mc=wholesale,
                    retail_mc=retail, estimated_mc=wholesale, request_hash="h",
                    created_at=T - timedelta(days=days)))
    found = await segments.report(runtime, tenant.id, T)
    got = {row.segment: (row.customers, row.spend_mc, row.wholesale_mc) for row in found.data}
    assert got == expected(history, t, ids)
    assert all(row.margin_mc == row.spend_mc - row.wholesale_mc for row in found.data)
    for name in segments.SEGMENTS:
        listed = await segments.customers(runtime, tenant.id, name, T, limit=100, after=None)
        assert len(listed.data) == got[name][0]
        assert sum(c.spend_mc for c in listed.data) == got[name][1]


def test_the_database_follows_the_rules(database_url: str, tmp_path: Path) -> None:
    with asyncio.Runner() as runner:
        services = runner.run(start_services(make_settings(database_url, tmp_path),
                                             plugins=build_plugin_host(load_entry_points=False)))

        @given(history=histories, t=thresholds())
        @settings(max_examples=20, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        def check(history: list[list[Row]], t: TenantAnalytics) -> None:
            runner.run(one_history(services, history, t))

        try:
            check()
        finally:
            runner.run(services.close())
