"""The periodic rollup refresh, bound in each process's task registry (thin: the work is
`billing.usage.rollup.refresh`)."""

from __future__ import annotations

from billing.usage import rollup
from gateway.core.runtime import Runtime

NAME = "analytics.rollups"


def register(runtime: Runtime) -> None:
    """Declare the refresh as a periodic task, every `MEDIAHUB_ROLLUP_INTERVAL_S`. Called by
    the API's and the worker's entry points."""

    async def refresh() -> None:
        await rollup.refresh(runtime.db)

    runtime.tasks.every(NAME, runtime.settings.rollup_interval_s, refresh)
