"""The `mediahub` command: serve, worker, db upgrade, demo, tenants/keys/credits admin."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import importlib.util
import logging
import os
import secrets
import socket
import sys
from collections.abc import Coroutine, Sequence
from datetime import date
from typing import Any

import msgspec
import uvicorn
from litestar import Litestar
from sqlalchemy import select
from uvicorn.supervisors import Multiprocess

from billing.usage import rollup
from gateway.app import create_app
from gateway.core import logs, tracing
from gateway.core import metrics as core_metrics
from gateway.core.migrate import upgrade
from gateway.core.runtime import Runtime, apply_price_overrides
from gateway.core.settings import Settings, SettingsError, load_settings
from gateway.credits.service import CreditGrant, grant_credits
from gateway.generations import push
from gateway.tenancy.customers import CreditMove, move_credits
from gateway.tenancy.service import create_key, create_tenant, update_tenant
from gateway.worker import run_worker
from plugins.host import build_plugin_host
from plugins.vocabulary import MEDIA_TYPES
from tenants import service as tenants_service
from tenants.branding import BrandingIn
from tenants.kernel.db import Database
from tenants.kernel.errors import DomainError
from tenants.models import Tenant
from tenants.schemas import KeyCreate, TenantCreate, TenantRouting, TenantUpdate
from tenants.users import passwords
from tenants.users import service as users

log = logging.getLogger("mediahub")


def _listening_url(host: str, port: int) -> str:
    """The base URL of `serve --host/--port`, for media links when
    `MEDIAHUB_PUBLIC_BASE_URL` is unset (a wildcard address is reached as localhost)."""
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _settings(listening: str | None = None) -> Settings:
    """The settings from the environment; `listening` (the address `serve` and `demo` bind)
    is the public base URL unless `MEDIAHUB_PUBLIC_BASE_URL` says otherwise, so media links
    follow `--port`."""
    env = dict(os.environ)
    if listening is not None and not env.get("MEDIAHUB_PUBLIC_BASE_URL"):
        env["MEDIAHUB_PUBLIC_BASE_URL"] = listening
    try:
        settings = load_settings(env)
        if settings.provider_prices:
            # Price names exist only once the providers are loaded: check them here too, so
            # a bad override is reported like any bad setting (exit 2), not at app start.

            apply_price_overrides(build_plugin_host(blocked=settings.disabled_plugins),
                                  settings.provider_prices)
        return settings
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from exc


def server_config(settings: Settings, host: str, port: int,
                  log_level: str = "info") -> uvicorn.Config:
    """The uvicorn configuration of `serve` and `demo`: uvloop and httptools when installed
    (the runtime dependencies; about +18 % for the API), asyncio and h11 otherwise, so a
    machine without their wheels still serves. On SIGTERM, open requests get
    `MEDIAHUB_SHUTDOWN_GRACE_S` to finish: event streams never do by themselves."""
    return uvicorn.Config(
        create_app(settings), host=host, port=port, log_level=log_level,
        # uvicorn's lines go through the process's one handler (`logs.configure`): the same
        # format, with the request id on access lines.
        log_config=None,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11")


class _Server(uvicorn.Server):
    """uvicorn's server, ending the process's observing once it has shut down: uvicorn
    re-raises a SIGTERM after its graceful shutdown, so no `finally` after `run` would run."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        stop_observing()


class _BannerServer(_Server):
    """A uvicorn server that prints `banner` once it listens (the demo's only output)."""

    def __init__(self, config: uvicorn.Config, banner: str) -> None:
        super().__init__(config)
        self.banner = banner

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self.banner, flush=True)
            # Quiet start, but the requests one tries are still shown.
            logging.getLogger("uvicorn.access").setLevel(logging.INFO)


def _run_server(server: uvicorn.Server) -> None:
    # uvicorn re-raises Ctrl-C after its clean shutdown; `uvicorn.run` ignores it too.
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise SystemExit(3)  # uvicorn's own status for a failed start (port taken, ...)


def start_observing(settings: Settings, *, service: str) -> None:
    """A process's start, after `enable_multiprocess`: logs in the configured format and
    tracing when an OTLP endpoint is set. Called by `serve`, `demo` and `worker`."""
    logs.configure(settings.log_format)
    tracing.setup(settings.otel_endpoint, os.environ, service=service)


def stop_observing() -> None:
    """Flush the spans and drop this process's live gauges (and a private metrics
    directory); idempotent, as the server's shutdown and the command's end both call it."""
    tracing.shutdown()
    core_metrics.process_exited()


def _serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    # Before the app records anything, and before any child is spawned (they inherit the
    # directory through the environment): requests answered by this process, its
    # children and the jobs they run (embedded) are merged with every other process
    # sharing the directory.
    core_metrics.enable_multiprocess()
    start_observing(settings, service="mediahub-api")
    try:
        if workers > 1:
            _serve_processes(settings, host, port, workers)
        else:
            _run_server(_Server(server_config(settings, host, port)))
    finally:
        stop_observing()


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived process's main coroutine on uvloop when installed (as `serve` runs
    the API): the worker's time is mostly socket writes to PostgreSQL and Valkey, which
    uvloop does in C."""
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


def _serve_processes(settings: Settings, host: str, port: int, workers: int) -> None:
    """`serve --workers N`: uvicorn's supervisor binds the port once and spawns N
    processes accepting on it (the kernel spreads connections), restarting any that dies.
    Each child builds its own app from the environment (`process_app`), which the parent
    completed: the public base URL it derived from `--host/--port`."""
    if settings.database_url.startswith("sqlite"):
        # Embedded mode: one process owns the SQLite file and the in-process queue.
        print("mediahub serve --workers needs PostgreSQL (MEDIAHUB_DATABASE_URL) and Valkey "
              "(MEDIAHUB_VALKEY_URL): embedded mode runs one process", file=sys.stderr)
        raise SystemExit(2)
    os.environ.setdefault("MEDIAHUB_PUBLIC_BASE_URL", settings.public_base_url)
    config = uvicorn.Config(
        "gateway.cli:process_app", factory=True, host=host, port=port, workers=workers,
        log_config=None, timeout_graceful_shutdown=settings.shutdown_grace_s,
        # A child answers the supervisor's pings only once its imports are done: seconds
        # on a busy small machine, past uvicorn's 5 s (it then kills and respawns it).
        timeout_worker_healthcheck=60,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11")
    with contextlib.suppress(KeyboardInterrupt):
        Multiprocess(config, sockets=[config.bind_socket()]).run()


def process_app() -> Litestar:
    """The app of one `serve --workers` child: settings from the inherited environment,
    metrics into the parent's shared directory, logs and traces set up as `serve` does."""
    settings = _settings()
    core_metrics.enable_multiprocess()
    start_observing(settings, service="mediahub-api")
    # uvicorn's supervisor runs its own server class in the child, not `_Server`.
    atexit.register(stop_observing)
    return create_app(settings)


def cmd_serve(args: argparse.Namespace) -> None:
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        raise SystemExit(2)
    _serve(_settings(_listening_url(args.host, args.port)), args.host, args.port,
           args.workers)


def openapi_document() -> bytes:
    """The gateway's OpenAPI schema as sorted, indented JSON: what `/schema/openapi.json`
    serves, built without a database (the portal's TypeScript types come from it)."""
    app = create_app(load_settings({"MEDIAHUB_DATABASE_URL": "sqlite+aiosqlite:///:memory:"}))
    return msgspec.json.format(msgspec.json.encode(app.openapi_schema.to_schema(),
                                                   order="sorted"), indent=1) + b"\n"


def cmd_openapi(args: argparse.Namespace) -> None:
    document = openapi_document()
    if args.out:
        with open(args.out, "wb") as out:
            out.write(document)
    else:
        sys.stdout.buffer.write(document)


def cmd_worker(args: argparse.Namespace) -> None:
    settings = _settings()
    if not settings.valkey_url:
        print("mediahub worker needs MEDIAHUB_VALKEY_URL; in embedded mode `mediahub serve` "
              "runs jobs in-process.", file=sys.stderr)
        raise SystemExit(2)
    media_types = [t.strip() for t in args.queues.split(",") if t.strip()]
    unknown = sorted(set(media_types) - set(MEDIA_TYPES))
    if unknown:
        print(f"unknown queue(s): {', '.join(unknown)}; choose from {', '.join(MEDIA_TYPES)}",
              file=sys.stderr)
        raise SystemExit(2)

    if core_metrics.multiprocess_dir():
        core_metrics.enable_multiprocess()
    else:
        # A worker has no HTTP port: only a shared directory lets the API's /metrics show
        # the generations and provider calls it records.
        log.warning("PROMETHEUS_MULTIPROC_DIR is unset: this worker's metrics are not "
                    "exported (set it to the directory the API processes use)")
    start_observing(settings, service="mediahub-worker")
    try:
        _run_loop(run_worker(settings, media_types))
    finally:
        stop_observing()


def cmd_db_upgrade(args: argparse.Namespace) -> None:

    upgrade(_settings().database_url, args.revision, quiet=False)
    print(f"database at {args.revision}")


async def _admin(settings: Settings, action: str, args: argparse.Namespace) -> None:

    runtime = await Runtime.start(settings, with_queue=False)
    try:
        if action == "tenant":
            tenant = await create_tenant(runtime, TenantCreate(
                name=args.name, slug=args.slug, domains=args.domain or []))
            print(tenant.id)
        elif action == "key":
            key = await create_key(runtime, args.tenant, KeyCreate(
                name=args.name, scopes=args.scopes.split(","), customer_id=args.customer))
            print(key.key)
        elif action == "grant":
            grant = await grant_credits(runtime, args.tenant,
                                        CreditGrant(amount=args.amount, reason=args.reason),
                                        args.idempotency_key or secrets.token_hex(16))
            print(f"{grant.id} balance={grant.balance} millicredits")
    finally:
        await runtime.close()


def _run_admin(action: str) -> object:
    def run(args: argparse.Namespace) -> None:

        try:
            asyncio.run(_admin(_settings(), action, args))
        except DomainError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            raise SystemExit(1) from exc
    return run


def cmd_analytics_rollup(args: argparse.Namespace) -> None:
    """`mediahub analytics rollup`: without options, what the periodic refresh does; with
    `--tenant` and/or `--since`, a rebuild of those tenants' days (billing/usage/rollup.py)."""

    async def run() -> str:
        db = Database(_settings().database_url)
        try:
            if args.tenant is None and args.since is None:
                done = await rollup.refresh(db)
                return f"refreshed {done.tenants} tenant(s), {done.rows} row(s)"
            rows = await rollup.rebuild_since(db, args.tenant, args.since)
            return f"rebuilt {rows} row(s)"
        finally:
            await db.dispose()

    try:
        print(asyncio.run(run()))
    except LookupError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        raise SystemExit(1) from exc


DEMO_CREDITS_MC = 1_000_000


DEMO_EMAIL = "demo@example.com"
DEMO_CUSTOMER_CREDITS_MC = 200_000


async def _demo_customer(runtime: Runtime, tenant_id: str) -> str:
    """The demo portal's customer (`DEMO_EMAIL`, verified, funded once); a fresh password
    each run, returned to print (nothing else knows it)."""
    password = secrets.token_urlsafe(12)
    password_hash = await passwords.hash_password(password)
    async with runtime.db.transaction() as session:
        user = await users.user_by_email(session, tenant_id, DEMO_EMAIL)
        if user is None:
            customer = await tenants_service.customer_for(session, tenant_id, "portal:demo",
                                                          create=True)
            assert customer is not None
            await users.create_user(session, tenant_id, email=DEMO_EMAIL, role="customer",
                                    password_hash=password_hash, customer_id=customer.id,
                                    verified=True)
        else:
            user.password_hash = password_hash
        tenant = await session.get(Tenant, tenant_id)
        mediahub_billing = tenant is not None and tenant.billing_mode == "mediahub"
    if mediahub_billing:
        await move_credits(runtime, tenant_id, "portal:demo",
                           CreditMove(amount=DEMO_CUSTOMER_CREDITS_MC, reason="demo credits"),
                           "demo-customer-grant", take_back=False, actor="operator")
    return password


async def _demo_setup(settings: Settings) -> tuple[str, str, str]:


    await asyncio.to_thread(upgrade, settings.database_url)
    runtime = await Runtime.start(settings, with_queue=False)
    try:
        async with runtime.db.session() as session:
            demo = await session.scalar(select(Tenant).where(Tenant.slug == "demo"))
        tenant_id = demo.id if demo is not None else None
        if demo is not None and demo.routing.allowed_providers is None:
            # A demo database made before allow lists: its tenant chooses the engines too.
            await update_tenant(runtime, demo.id, TenantUpdate(routing=msgspec.structs.replace(
                demo.routing, allowed_providers=["*"])))
        if tenant_id is None:
            # The offline engines serve only tenants that choose them: the demo does (`*`:
            # they serve it without any provider key, remote providers too once configured).
            # Customers have wallets (`mediahub` billing), so the portal's credits page
            # has a balance, a history and packages to show.
            tenant_id = (await create_tenant(runtime, TenantCreate(
                name="Demo Studio", slug="demo", domains=["localhost"], billing_mode="mediahub",
                branding=BrandingIn(open_signup=True),
                routing=TenantRouting(allowed_providers=["*"])))).id
            await grant_credits(runtime, tenant_id,
                                CreditGrant(amount=DEMO_CREDITS_MC, reason="demo credits"),
                                "demo-initial-grant")
        key = await create_key(runtime, tenant_id, KeyCreate(
            name="demo", scopes=["generate", "read", "billing"]))
        return tenant_id, key.key, await _demo_customer(runtime, tenant_id)
    finally:
        await runtime.close()


def cmd_demo(args: argparse.Namespace) -> None:
    """Embedded gateway with a demo tenant, a fresh key and credits; prints how to try it."""
    os.environ.setdefault("MEDIAHUB_ADMIN_TOKEN", secrets.token_urlsafe(24))
    if not os.environ.get("MEDIAHUB_VAPID_PRIVATE_KEY"):
        # Web push works in the demo too: a key pair for this process (browsers subscribed
        # under it must subscribe again after a restart).
        public, private = push.vapid_pair()
        os.environ["MEDIAHUB_VAPID_PUBLIC_KEY"], os.environ["MEDIAHUB_VAPID_PRIVATE_KEY"] = (
            public, private)
    settings = _settings(_listening_url(args.host, args.port))
    core_metrics.enable_multiprocess()
    start_observing(settings, service="mediahub-api")
    try:
        tenant_id, key, password = asyncio.run(_demo_setup(settings))
        banner = demo_banner(settings, args.port, tenant_id, key, password)
        _run_server(_BannerServer(server_config(settings, args.host, args.port, "warning"),
                                  banner))
    finally:
        stop_observing()


def demo_banner(settings: Settings, port: int, tenant_id: str, key: str,
                password: str) -> str:
    """What `mediahub demo` prints once it listens: where to look and a first request."""
    base = settings.public_base_url.rstrip("/")
    return f"""
mediahub demo is running — embedded mode
  database     {settings.database_url}  (media in {settings.storage_url})

  portal       http://localhost:{port}/  (tenant {tenant_id})
               sign in as {DEMO_EMAIL} with {password}
  API base     {base}/v1
  API key      {key}
  admin token  {settings.admin_token}
  API docs     {base}/schema

Make an image (waits up to 30 s for it):

  curl -s {base}/v1/generations \\
    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\
    -H 'Prefer: wait=30' \\
    -d '{{"type": "image", "prompt": "a lighthouse at dusk", "params": {{"size": "512x512"}}}}'

Press Ctrl-C to stop.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediahub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1,
                       help="API processes sharing the port (PostgreSQL and Valkey only); "
                            "see the connection budget in docs/operations.md")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run SAQ workers (needs MEDIAHUB_VALKEY_URL)")
    worker.add_argument("--queues", default=",".join(MEDIA_TYPES),
                        help="comma-separated media types to work on")
    worker.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    up = db_sub.add_parser("upgrade", help="apply migrations")
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)

    demo = sub.add_parser("demo", help="embedded gateway with a demo tenant, key and credits")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(func=cmd_demo)

    openapi = sub.add_parser("openapi", help="print the OpenAPI schema (JSON)")
    openapi.add_argument("--out", help="write it to this file instead")
    openapi.set_defaults(func=cmd_openapi)

    tenants = sub.add_parser("tenants", help="tenant commands")
    t_sub = tenants.add_subparsers(dest="tenants_command", required=True)
    t_create = t_sub.add_parser("create", help="create a tenant; prints its id")
    t_create.add_argument("--name", required=True)
    t_create.add_argument("--slug", required=True)
    t_create.add_argument("--domain", action="append")
    t_create.set_defaults(func=_run_admin("tenant"))

    keys = sub.add_parser("keys", help="API key commands")
    k_sub = keys.add_subparsers(dest="keys_command", required=True)
    k_create = k_sub.add_parser("create", help="create a key; prints it (shown only once)")
    k_create.add_argument("--tenant", required=True)
    k_create.add_argument("--name", required=True)
    k_create.add_argument("--scopes", default="generate,read,billing")
    k_create.add_argument("--customer")
    k_create.set_defaults(func=_run_admin("key"))

    credits = sub.add_parser("credits", help="credit commands")
    c_sub = credits.add_subparsers(dest="credits_command", required=True)
    c_grant = c_sub.add_parser("grant", help="grant millicredits to a tenant's wallet")
    c_grant.add_argument("--tenant", required=True)
    c_grant.add_argument("--amount", type=int, required=True, help="in millicredits")
    c_grant.add_argument("--reason", default="operator grant")
    c_grant.add_argument("--idempotency-key")
    c_grant.set_defaults(func=_run_admin("grant"))

    analytics = sub.add_parser("analytics", help="analytics commands")
    a_sub = analytics.add_subparsers(dest="analytics_command", required=True)
    a_rollup = a_sub.add_parser("rollup", help="refresh the usage rollups, or rebuild some")
    a_rollup.add_argument("--tenant", help="rebuild only this tenant's rollups")
    a_rollup.add_argument("--since", type=date.fromisoformat,
                          help="rebuild from this local date (YYYY-MM-DD) through today")
    a_rollup.set_defaults(func=cmd_analytics_rollup)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    # The format is known before the settings are read, so their own errors use it too.
    logs.configure(logs.log_format_from(os.environ))
    args = build_parser().parse_args(argv)
    args.func(args)
