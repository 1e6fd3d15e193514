"""Shared fixtures: real databases (SQLite file and PostgreSQL), real Valkey, the app in-process.

PostgreSQL and Valkey come from `MEDIAHUB_TEST_DATABASE_URL` and `MEDIAHUB_TEST_VALKEY_URL`;
for each one unset, the run starts its own server from a Python package (tests/services.py). A
test that needs one it cannot reach fails with a message naming the variable; nothing is skipped.

The run is parallel (pytest-xdist, see pyproject's addopts): each worker has its own PostgreSQL
database, SQLite files, SMTP server and queue prefixes; Valkey is shared, so a test touches only
keys under its own `queue_prefix`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import re
import secrets
import shutil
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aioboto3
import asyncpg
import httpx
import pytest
import valkey.asyncio as valkey_client
from aiosmtpd.controller import Controller
from litestar import Litestar
from moto.server import ThreadedMotoServer
from sqlalchemy.engine import make_url

from gateway.app import create_app, start_services
from gateway.core.migrate import upgrade
from gateway.core.runtime import Runtime
from gateway.core.settings import Settings
from gateway.generations.services import Services
from plugins.errors import ProviderError
from plugins.hookspecs import hookimpl
from plugins.host import build_plugin_host
from plugins.provider import (
    Credentials,
    Health,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
)
from tests import services

ADMIN_TOKEN = "test-admin-token-0123456789"
SECRET_KEY = b"test-secret-key-0123456789abcdefghijklmnop"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for `-n auto` (pyproject's addopts): one per CPU, at least two (the tests wait on
    PostgreSQL, Valkey and subprocesses much of the time, so two overlap even on one core) and at
    most eight (each worker holds its own database, SMTP server and, for tests/portal, Chromium).
    `PYTEST_XDIST_AUTO_NUM_WORKERS` overrides it."""
    return max(2, min(os.cpu_count() or 1, 8))


def pytest_configure(config: pytest.Config) -> None:
    # Only the controller starts servers: xdist workers (and the subprocesses tests spawn)
    # inherit the URLs it exports. `--help` and `--collect-only` run no test.
    if hasattr(config, "workerinput") or config.getoption("help", False) or config.getoption(
            "collectonly", False):
        return
    config.add_cleanup(services.start_missing())


def pg_base_url() -> str:
    return os.environ[services.DATABASE_VAR]


def valkey_url() -> str:
    return os.environ[services.VALKEY_VAR]


async def _admin_connect(url: str) -> asyncpg.Connection:
    parsed = make_url(url)
    try:
        # A Unix socket directory comes as `?host=` (tests/services.py's PostgreSQL).
        socket_dir = parsed.query.get("host")
        return await asyncpg.connect(
            host=socket_dir if isinstance(socket_dir, str) else parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres", password=parsed.password,
            database=parsed.database or "postgres", timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {parsed.host}:{parsed.port} is unreachable ({exc}); "
                    "set MEDIAHUB_TEST_DATABASE_URL to a server the tests may create "
                    "databases on")


@contextlib.contextmanager
def migrated_database(prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database on the test server, migrated to head and dropped after:
    the session's (`pg_url`) and those of tests whose rows must not reach other tests."""
    base = pg_base_url()
    name = f"{prefix}_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await _admin_connect(base)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to head, dropped after."""
    with migrated_database("mediahub_test") as url:
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies, so migrations run once per session."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each core test runs on the embedded default (SQLite) and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "mediahub.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def valkey() -> str:
    """The test Valkey/Redis URL, checked reachable."""
    url = valkey_url()
    client = valkey_client.from_url(url)
    try:
        await client.ping()
    except Exception as exc:
        pytest.fail(f"Valkey/Redis at {url} is unreachable ({exc}); "
                    "set MEDIAHUB_TEST_VALKEY_URL")
    finally:
        await client.aclose()
    return url


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "storage_url": f"file://{tmp_path / 'media'}",
        "admin_token": ADMIN_TOKEN,
        "secret_key": SECRET_KEY,
        "public_base_url": "http://testserver",
        # A unique queue namespace per test keeps SAQ jobs of parallel tests apart.
        "queue_prefix": f"mhtest{secrets.token_hex(4)}",
        # Tests of other features submit identical requests and expect each to run: the
        # result cache (on by default in the product) is off unless a test turns it on.
        "cache_ttl_s": 0,
        # Tests of other features submit to the offline engines (local-image, ...) and to
        # scripted providers without naming them: the operator's default allows every one.
        # The rule that offline engines serve only tenants that chose them is tested with
        # `default_allowed_providers=()` (tests/gateway/providers/test_allowed_providers.py).
        "default_allowed_providers": ("*",),
        # Without an SMTP server, mail is written here (never into the checkout).
        "mail_outbox_dir": str(tmp_path / "mail"),
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_server: Inbox) -> Settings:
    return make_settings(database_url, tmp_path, smtp_host=smtp_server.host,
                         smtp_port=smtp_server.port)


class Inbox:
    """What the test SMTP server (aiosmtpd on loopback) received, by recipient.

    One server for the session; tests tell their mail apart by using their own addresses."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._messages: list[email.message.EmailMessage] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        with self._arrived:
            self._messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    async def next(self, to: str, *, timeout: float = 15.0) -> email.message.EmailMessage:
        """The first message to `to` not taken yet (removed from the inbox), waiting for it
        to arrive; fails the test after `timeout` seconds."""

        def wait() -> email.message.EmailMessage:
            with self._arrived:
                found = self._arrived.wait_for(lambda: self._take(to), timeout=timeout)
                assert found, f"no mail to {to} within {timeout} s"
                return found

        return await asyncio.to_thread(wait)

    def _take(self, to: str) -> email.message.EmailMessage | None:
        for message in self._messages:
            if to.lower() in str(message["To"]).lower():
                self._messages.remove(message)
                return message
        return None

    def sent_to(self, to: str) -> int:
        """How many messages to `to` are waiting (arrived and not taken)."""
        with self._arrived:
            return sum(to.lower() in str(m["To"]).lower() for m in self._messages)

    @staticmethod
    def link(message: email.message.EmailMessage) -> str:
        """The first http(s) link in the message's plain text part."""
        body = message.get_body(preferencelist=("plain",))
        assert body is not None, "the message has no plain text part"
        found = re.search(r"https?://\S+", body.get_content())
        assert found, "the message holds no link"
        return found[0]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Inbox]:
    """A real SMTP server (aiosmtpd) on a free loopback port for the whole session."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox("127.0.0.1", port)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@dataclass
class Gateway:
    """The app under test and a client that speaks to it over ASGI."""

    app: Litestar
    client: httpx.AsyncClient

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def runtime(self) -> Runtime:
        return self.services.runtime

    async def drain(self) -> None:
        """Wait until the in-process queue has run every job submitted so far."""
        queue = self.runtime.queue
        drain = getattr(queue, "drain", None)
        assert drain is not None, "drain() needs the in-process queue"
        await drain()

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def finish(self, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        """Submit `body` (expects 202), run the in-process queue dry, and read it back."""
        r = await self.client.post("/v1/generations", headers=auth, json=body)
        assert r.status_code == 202, r.text
        await self.drain()
        got = await self.client.get(f"/v1/generations/{r.json()['id']}", headers=auth)
        assert got.status_code == 200, got.text
        done: dict[str, Any] = got.json()
        return done

    async def balance(self, auth: dict[str, str]) -> dict[str, Any]:
        r = await self.client.get("/v1/credits/balance", headers=auth)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def media(self, url: str) -> httpx.Response:
        """Fetch a signed output URL from the app (its path and query, over ASGI)."""
        parts = urlsplit(url)
        return await self.client.get(f"{parts.path}?{parts.query}")

    async def tenant(self, *, credits_mc: int = 1_000_000, slug: str | None = None,
                     scopes: list[str] | None = None, **fields: Any) -> Tenant:
        slug = slug or f"t-{secrets.token_hex(4)}"
        r = await self.client.post("/admin/v1/tenants", headers=self.admin(),
                                   json={"name": f"Tenant {slug}", "slug": slug, **fields})
        assert r.status_code == 201, r.text
        tenant_id = r.json()["id"]
        if credits_mc:
            g = await self.client.post(f"/admin/v1/tenants/{tenant_id}/credits",
                                       headers={**self.admin(), "Idempotency-Key": "seed"},
                                       json={"amount": credits_mc, "reason": "test"})
            assert g.status_code == 201, g.text
        k = await self.client.post(
            f"/admin/v1/tenants/{tenant_id}/keys", headers=self.admin(),
            json={"name": "test", "scopes": scopes or ["generate", "read", "billing"]})
        assert k.status_code == 201, k.text
        return Tenant(id=tenant_id, key=k.json()["key"], key_id=k.json()["id"])


@dataclass
class Tenant:
    id: str
    key: str
    key_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@contextlib.asynccontextmanager
async def running_gateway(settings: Settings, **plugin_kwargs: Any) -> AsyncIterator[Gateway]:
    """The app over ASGI with a runtime this test owns (plugins without entry points)."""
    plugins = build_plugin_host(load_entry_points=False, **plugin_kwargs)
    services = await start_services(settings, plugins=plugins)
    app = create_app(settings, services=services)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                               base_url="http://testserver")
    try:
        yield Gateway(app=app, client=client)
    finally:
        await client.aclose()
        await services.close()


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[Gateway]:
    async with running_gateway(settings) as gw:
        yield gw


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server on a free localhost port, with dummy credentials in the environment."""
    no_config = tmp_path_factory.mktemp("aws") / "none"
    with pytest.MonkeyPatch.context() as mp:
        # Dummy values only, and no host profile or config file can leak into the tests.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_CONFIG_FILE", str(no_config))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(no_config))
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
async def bucket(moto_endpoint: str) -> str:
    """A fresh bucket per test, created with plain aioboto3 (not the code under test)."""
    name = f"media-{uuid.uuid4().hex[:12]}"
    session = aioboto3.Session()
    async with session.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1") as s3:
        await s3.create_bucket(Bucket=name)
    return name


class Gate(Provider):
    """A provider that waits for the test to open a gate, so a job can be caught mid-flight."""

    name = "gate"
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image"})
    needs_api_key = False

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.fail_with: ProviderError | None = None

    def estimate_cost(self, request: ProviderRequest) -> int:
        return 10_000

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        self.entered.set()
        await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return ProviderResult(outputs=[ProviderOutput(data=b"x", content_type="image/png")],
                              cost_usd_micros=4_000)


class GatePlugin:
    def __init__(self, provider: Gate) -> None:
        self.provider = provider

    @hookimpl
    def register_providers(self, register: Callable[[Provider], None]) -> None:
        register(self.provider)


@pytest.fixture
async def gated(settings: Settings) -> AsyncIterator[tuple[Gateway, Gate]]:
    gate = Gate()
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as gw:
        try:
            yield gw, gate
        finally:
            gate.release.set()


class Scripted(Provider):
    """A provider whose calls follow a script: each call takes the next entry of `script`
    (an exception to raise, or `"hang"` to wait until cancelled); an empty script succeeds.

    Make one with `scripted(name, ...)`: each gets its own subclass, since `name` and the
    capabilities are class attributes.
    """

    name = "scripted"
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image"})
    needs_api_key = False
    cost_usd_micros = 10_000
    actual_usd_micros = 4_000

    def __init__(self) -> None:
        self.script: list[BaseException | str] = []
        self.calls = 0
        self.health_result = Health(ok=True)
        self.health_calls = 0

    def estimate_cost(self, request: ProviderRequest) -> int:
        return self.cost_usd_micros

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        self.calls += 1
        step = self.script.pop(0) if self.script else None
        if step == "hang":
            await asyncio.Event().wait()
        if isinstance(step, BaseException):
            raise step
        return ProviderResult(outputs=[ProviderOutput(data=b"x", content_type="image/png")],
                              cost_usd_micros=self.actual_usd_micros)

    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        self.health_calls += 1
        return self.health_result


def scripted(name: str, *, cost_usd_micros: int = 10_000, actual_usd_micros: int | None = None,
             capacity: int = 8, needs_api_key: bool = False) -> Scripted:
    cls = type(f"Scripted_{name}", (Scripted,), {
        "name": name, "cost_usd_micros": cost_usd_micros,
        "actual_usd_micros": (actual_usd_micros if actual_usd_micros is not None
                              else cost_usd_micros * 4 // 10),
        "capacity": capacity, "needs_api_key": needs_api_key})
    provider: Scripted = cls()
    return provider


class ProvidersPlugin:
    """Registers the given provider instances (tests' own providers)."""

    def __init__(self, *providers: Provider) -> None:
        self.providers = providers

    @hookimpl
    def register_providers(self, register: Callable[[Provider], None]) -> None:
        for provider in self.providers:
            register(provider)
