"""Breaker history: every change of a provider's (platform) breaker between closed and open
is one `provider_events` row, however many processes saw it, and the operator counts them
per period with `GET /admin/v1/analytics/breakers`."""

from __future__ import annotations

import asyncio
import csv
import io
import secrets

from sqlalchemy import select

from gateway.core.settings import Settings
from gateway.providers.models import ProviderEvent
from gateway.providers.states import ProviderStates
from plugins.errors import error_for_status
from plugins.provider import Provider
from plugins.routing.stats import RoutingConfig
from tests.conftest import Gateway, ProvidersPlugin, running_gateway, scripted

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def _events(gw: Gateway, provider: str) -> list[tuple[str, str]]:
    async with gw.runtime.db.session() as session:
        rows = await session.scalars(select(ProviderEvent).where(
            ProviderEvent.provider == provider).order_by(ProviderEvent.at, ProviderEvent.kind))
        return [(e.kind, e.detail) for e in rows]


async def test_each_transition_is_written_once_across_processes(gateway: Gateway) -> None:
    provider = scripted(f"brk-{secrets.token_hex(3)}")
    clock = Clock()
    config = RoutingConfig(failure_threshold=2, cooldown_s=30)
    # Three processes, each with its own in-memory breaker, sharing the table.
    processes = [ProviderStates(clock=clock, config=config) for _ in range(3)]
    runtime = gateway.runtime
    failure = error_for_status(503)
    for cycle in range(3):
        for states in processes:
            await states.record(runtime, provider, latency_ms=5, error=failure)
        # The second failure opens every process's breaker at the same moment.
        await asyncio.gather(*(states.record(runtime, provider, latency_ms=5, error=failure)
                               for states in processes))
        assert [kind for kind, _ in await _events(gateway, provider.name)].count(
            "breaker_opened") == cycle + 1
        clock.now += 31  # cool-down over: each process's trial succeeds and closes it
        await asyncio.gather(*(states.record(runtime, provider, latency_ms=5, error=None)
                               for states in processes))
        clock.now += 60
    events = await _events(gateway, provider.name)
    assert [kind for kind, _ in events] == ["breaker_opened", "breaker_closed"] * 3
    assert events[0][1] == "2 consecutive failures, the last server_error"
    assert events[1][1] == "a call succeeded"


async def test_the_operator_counts_openings_per_period(settings: Settings) -> None:
    provider = scripted(f"brk-{secrets.token_hex(3)}")
    async with running_gateway(settings, extra=[ProvidersPlugin(provider)]) as gateway:
        await _count_openings(gateway, provider)


async def _count_openings(gateway: Gateway, provider: Provider) -> None:
    clock = Clock()
    states = ProviderStates(clock=clock, config=RoutingConfig(failure_threshold=1,
                                                             cooldown_s=30))
    gateway.services.providers = states
    runtime = gateway.runtime
    # Two openings on the 15th, one on the 16th, one on 4 February; each closed again by
    # the operator's reset (the last through the API).
    for moment in (T0, T0 + 600, T0 + 86400, T0 + 20 * 86400):
        clock.now = moment
        await states.record(runtime, provider, latency_ms=5, error=error_for_status(500))
        clock.now += 1
        r = await gateway.client.post(f"/admin/v1/providers/{provider.name}/reset",
                                      headers=gateway.admin())
        assert r.status_code == 200, r.text

    async def series(query: str) -> list[dict[str, object]]:
        r = await gateway.client.get(f"/admin/v1/analytics/breakers?{query}",
                                     headers=gateway.admin())
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["object"], body["series"]) == ("analytics.series", "breakers")
        assert body["columns"] == ["period", "group", "openings", "closings"]
        return [row for row in body["data"] if row["group"] == provider.name]

    days = await series("from=2027-01-01&to=2027-03-01&interval=day")
    assert days == [
        {"period": "2027-01-15", "group": provider.name, "openings": 2, "closings": 2},
        {"period": "2027-01-16", "group": provider.name, "openings": 1, "closings": 1},
        {"period": "2027-02-04", "group": provider.name, "openings": 1, "closings": 1}]
    weeks = await series("from=2027-01-01&to=2027-03-01&interval=week")
    assert [(w["period"], w["openings"]) for w in weeks] == [("2027-01-11", 3),
                                                            ("2027-02-01", 1)]
    months = await series("from=2027-01-01&to=2027-03-01&interval=month")
    assert [(m["period"], m["openings"]) for m in months] == [("2027-01-01", 3),
                                                             ("2027-02-01", 1)]
    assert await series("from=2027-01-16&to=2027-01-17") == days[1:2]  # `to` exclusive

    r = await gateway.client.get("/admin/v1/analytics/breakers?from=2027-01-01&to=2027-03-01"
                                 "&interval=month&format=csv", headers=gateway.admin())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["period", "group", "openings", "closings"]
    assert ["2027-02-01", provider.name, "1", "1"] in rows
    reset = await _events(gateway, provider.name)
    assert reset[-1] == ("breaker_closed", "reset by the operator")

    for query, code in (("interval=hour", "invalid_interval"),
                        ("from=2027-02-01&to=2027-01-01", "invalid_range"),
                        ("from=2020-01-01&to=2027-01-01", "invalid_range"),
                        ("from=yesterday", "invalid_date")):
        r = await gateway.client.get(f"/admin/v1/analytics/breakers?{query}",
                                     headers=gateway.admin())
        assert r.status_code == 422, query
        assert r.json()["error"]["code"] == code
    tenant = await gateway.tenant(credits_mc=0)
    r = await gateway.client.get("/admin/v1/analytics/breakers", headers=tenant.auth)
    assert r.status_code == 401
