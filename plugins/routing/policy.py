"""What a routing policy can say: the strategy, and the weights of the `balanced` score.

These are the one definition: a tenant's routing policy (`tenants.schemas.TenantRouting`)
stores them as they are, and `plugins.routing.rank.rank` reads them.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal, get_args

import msgspec

#: `cheapest` (cost, then load), `fastest` (latency, then load), `balanced` (the weighted sum
#: of the four scores) or `pinned` (a list of names first; see `plugins.routing`).
Strategy = Literal["cheapest", "fastest", "balanced", "pinned"]
STRATEGIES: Final[tuple[Strategy, ...]] = get_args(Strategy)

#: One weight: a whole number from 0 to 1000.
Weight = Annotated[int, msgspec.Meta(ge=0, le=1000)]


class Weights(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Relative weights of the `balanced` score (normalised by their sum).

    A tenant sets them in its routing policy (`routing.weights`, checked when the policy is
    decoded); `rank` uses the defaults when none are given. At least one must be above 0:
    constructing all zeros raises `ValueError`.
    """

    cost: Weight = 35
    speed: Weight = 25
    load: Weight = 20
    availability: Weight = 20

    def __post_init__(self) -> None:
        if self.cost + self.speed + self.load + self.availability == 0:
            raise ValueError("at least one weight must be above 0")
