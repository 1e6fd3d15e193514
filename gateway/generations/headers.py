"""The developer-facing headers of a generation response (issue #16, docs/usage.md):
`X-Credits-Charged`, `X-Credits-Remaining` and `Server-Timing`."""

from __future__ import annotations

from typing import Any

from litestar.datastructures import ResponseHeader

from billing import ledger
from gateway.core.runtime import Runtime
from gateway.core.timing import elapsed_ms
from gateway.generations.models import FINAL_STATES, Generation
from gateway.generations.schemas import GenerationOut
from gateway.generations.views import Audience

#: What the OpenAPI schema says of them, on every route that sends them.
DOCUMENTED = [
    ResponseHeader(name="X-Credits-Charged", documentation_only=True, required=False,
                   description="Millicredits charged for the generation, as its "
                               "`cost.charged` (absent until it is charged)."),
    ResponseHeader(name="X-Credits-Remaining", documentation_only=True, required=False,
                   description="Available millicredits of the wallet that paid, once the "
                               "generation is final (absent when the caller does not see "
                               "that wallet, or nothing was reserved)."),
    ResponseHeader(name="Server-Timing", documentation_only=True, required=False,
                   description="`gateway;dur=<ms>`: the gateway's own time (the request's, "
                               "less any `Prefer: wait`); `provider;dur=<ms>`: the provider "
                               "calls' total, once final."),
]


async def generation_headers(runtime: Runtime, generation: Generation, shown: GenerationOut,
                             to: Audience, scope: Any, *, waited_s: float = 0.0,
                             ) -> dict[str, str]:
    """The headers of a response showing `generation` (as `shown` to `to`); called by the
    generation routes after rendering, last, so `Server-Timing` covers their work.

    `X-Credits-Remaining` costs one read, and only for a final generation: a queued one's
    reservation is still open, so the submit's hot path (202) reads nothing more. Its wallet
    is the one whose charge the caller is shown: the customer's or team's reservation when
    there is one, else the tenant's, which a customer is never shown.
    """
    headers: dict[str, str] = {}
    if shown.cost.charged is not None:
        headers["X-Credits-Charged"] = str(shown.cost.charged)
    final = generation.status in FINAL_STATES
    transfer = generation.customer_reservation_id or (
        None if to.customer else generation.reservation_id)
    if final and transfer is not None:
        async with runtime.db.session() as session:
            remaining = await ledger.payer_available(session, tenant_id=generation.tenant_id,
                                                     transfer_id=transfer)
        if remaining is not None:
            headers["X-Credits-Remaining"] = str(remaining)
    timing = [f"gateway;dur={elapsed_ms(scope, minus_s=waited_s)}"]
    # Calls that ended: a skip made none, a `running` one was cut off (by this cancel).
    calls = [a.latency_ms for a in generation.attempts_log or []
             if a.outcome in ("succeeded", "failed")]
    if final and calls:
        timing.append(f"provider;dur={sum(calls)}")
    headers["Server-Timing"] = ", ".join(timing)
    return headers
