"""Liveness and readiness probes (API.md, "Health and docs")."""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get
from sqlalchemy import text

from gateway.core.deps import RuntimeDep


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/live", summary="The process is up")
    async def live(self) -> dict[str, str]:
        """Liveness: answers 200 `{"status": "ok"}` while the process serves requests; checks
        nothing else."""
        return {"status": "ok"}

    @get("/ready", summary="Database, Valkey and storage answer")
    async def ready(self, runtime: RuntimeDep) -> Response[Readiness]:
        """Readiness: 200 when the database, Valkey (when configured) and storage answer, else
        503 with each check's result."""
        checks: dict[str, str] = {}
        try:
            async with runtime.db.session() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # a probe reports, it does not raise
            checks["database"] = f"error: {type(exc).__name__}"
        if runtime.settings.valkey_url:
            try:
                import valkey.asyncio as valkey

                client = valkey.from_url(runtime.settings.valkey_url)  # type: ignore[no-untyped-call]
                try:
                    await client.ping()
                finally:
                    await client.aclose()
                checks["valkey"] = "ok"
            except Exception as exc:
                checks["valkey"] = f"error: {type(exc).__name__}"
        try:
            await runtime.storage.check()
            checks["storage"] = "ok"
        except Exception as exc:
            checks["storage"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return Response(Readiness(status="ok" if ok else "unavailable", checks=checks),
                        status_code=200 if ok else 503)
