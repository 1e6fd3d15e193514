"""Ranking: each candidate's four normalised scores, the balanced score, and `rank`, which
orders the providers that can serve a request by a strategy (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Protocol, TypeVar

from plugins.routing.breaker import HALF_OPEN
from plugins.routing.policy import STRATEGIES, Weights
from plugins.routing.stats import ProviderStats, RoutingConfig


class Routable(Protocol):
    """What ranking needs of a provider (`plugins.provider.Provider` has it all)."""

    @property
    def name(self) -> str: ...

    @property
    def local(self) -> bool: ...


P = TypeVar("P", bound=Routable)

DEFAULT_CONFIG: Final = RoutingConfig()
DEFAULT_WEIGHTS: Final = Weights()


def _neutral_latency(stats: Sequence[ProviderStats], now: float,
                     half_life_s: float) -> float | None:
    known = [s.latency(now, half_life_s, None) for s in stats]
    values = [v for v in known if v is not None]
    return sum(values) / len(values) if values else None


def scores(candidates: Sequence[P], estimates: Mapping[str, int],
           stats: Mapping[str, ProviderStats], now: float,
           config: RoutingConfig = DEFAULT_CONFIG) -> dict[str, dict[str, float]]:
    """Each candidate's four normalised scores (1 best): cost, speed, load, availability."""
    table = {p.name: stats.get(p.name) or ProviderStats() for p in candidates}
    neutral = _neutral_latency(list(table.values()), now, config.half_life_s)
    costs = {p.name: max(estimates.get(p.name, 0), 0) for p in candidates}
    cheapest = min(costs.values(), default=0)
    latencies = {name: s.latency(now, config.half_life_s, neutral) for name, s in table.items()}
    known = [v for v in latencies.values() if v is not None]
    fastest = max(min(known), 1.0) if known else None
    out: dict[str, dict[str, float]] = {}
    for p in candidates:
        s = table[p.name]
        latency = latencies[p.name]
        speed = 1.0 if latency is None or fastest is None else fastest / max(latency, 1.0)
        availability = 1.0 - min(max(s.error_rate(now, config.half_life_s), 0.0), 1.0)
        if s.breaker.state(now) == HALF_OPEN:
            availability *= 0.5
        out[p.name] = {
            "cost": (cheapest + 1) / (costs[p.name] + 1),
            "speed": speed,
            "load": 1.0 - s.load(),
            "availability": availability,
        }
    return out


def balanced_score(score: Mapping[str, float], weights: Weights = DEFAULT_WEIGHTS) -> float:
    total = weights.cost + weights.speed + weights.load + weights.availability
    if total <= 0:
        return 0.0
    return (weights.cost * score["cost"] + weights.speed * score["speed"]
            + weights.load * score["load"]
            + weights.availability * score["availability"]) / total


def rank(candidates: Sequence[P], strategy: str, estimates: Mapping[str, int],
         stats: Mapping[str, ProviderStats], now: float, *, order: Sequence[str] = (),
         include_others: bool = True, weights: Weights | None = None,
         config: RoutingConfig = DEFAULT_CONFIG) -> list[P]:
    """The candidates to try, best first, without those that cannot be called now.

    `estimates` are the candidates' `estimate_cost` (USD micros) for this request; `stats`
    what is known of each (a missing entry counts as a fresh provider). `order` and
    `include_others` only matter for the `pinned` strategy (see the module docstring).
    Raises `ValueError` for an unknown strategy.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown routing strategy {strategy!r}")
    fresh = ProviderStats()
    usable = [p for p in candidates if (stats.get(p.name) or fresh).available(now)]
    if not usable:
        return []
    table = scores(usable, estimates, stats, now, config)
    weights = weights or DEFAULT_WEIGHTS

    def tier(p: P) -> tuple[bool, bool, bool]:
        s = stats.get(p.name) or fresh
        return (s.healthy is False, p.local, s.load() >= 1.0)

    def key(p: P) -> tuple[object, ...]:
        score = table[p.name]
        if strategy == "cheapest":
            return (tier(p), -score["cost"], -score["load"], p.name)
        if strategy == "fastest":
            return (tier(p), -score["speed"], -score["load"], p.name)
        return (tier(p), -balanced_score(score, weights), p.name)

    if strategy != "pinned":
        return sorted(usable, key=key)
    by_name = {p.name: p for p in usable}
    listed: list[P] = []
    for name in order:
        found = by_name.pop(name, None)
        if found is not None:
            listed.append(found)
    if not include_others:
        return listed
    return listed + sorted(by_name.values(), key=key)
