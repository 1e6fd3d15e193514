"""Litestar dependencies shared by the route modules."""

from __future__ import annotations

from litestar.datastructures import State
from litestar.di import NamedDependency

from gateway.core.runtime import Runtime
from tenants.kernel.errors import InvalidRequest


def provide_runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def page_limit(limit: int | None, *, default: int = 20, maximum: int = 100) -> int:
    """A list endpoint's page size: `default` when absent, refused outside 1..maximum."""
    if limit is None:
        return default
    if not 1 <= limit <= maximum:
        raise InvalidRequest(f"limit must be between 1 and {maximum}", code="invalid_limit",
                             param="limit")
    return limit


#: The process's runtime, injected by name into every route that declares it.
RuntimeDep = NamedDependency[Runtime]
