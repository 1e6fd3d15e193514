"""The `mediahub` command as a user runs it: real processes, real ports."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import socket
import sqlite3
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAHUB_")}
    env.update(extra)
    return env


async def mediahub(*args: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    async with asyncio.timeout(120):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_demo_serves_an_image_from_a_fresh_directory(tmp_path: Path) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "demo", "--port", str(port), cwd=tmp_path,
        env=clean_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    printed = ""
    try:
        async with asyncio.timeout(90):
            # The banner is printed once the port listens, and ends with this line.
            while "Press Ctrl-C to stop." not in printed:
                line = await proc.stdout.readline()
                assert line, f"demo exited early:\n{printed}"
                printed += line.decode()
        base = f"http://127.0.0.1:{port}"
        # A quiet start: the banner alone, no migration or server chatter before it.
        assert "alembic" not in printed.lower(), printed
        assert "INFO" not in printed, printed
        assert printed.lstrip().startswith("mediahub demo is running"), printed
        key = re.search(r"API key\s+(mh_\S+)", printed)
        admin = re.search(r"admin token\s+(\S+)", printed)
        assert key, printed
        assert admin, printed
        assert re.search(rf"portal\s+http://localhost:{port}/", printed), printed
        assert re.search(rf"API base\s+{re.escape(base)}/v1\n", printed), printed
        assert f"curl -s {base}/v1/generations" in printed
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            r = await client.post(
                "/v1/generations", headers={"Authorization": f"Bearer {key.group(1)}",
                                            "Prefer": "wait=30"},
                json={"type": "image", "prompt": "a lighthouse at dusk",
                      "params": {"size": "512x512"}})
            assert r.status_code == 200, r.text
            url = r.json()["outputs"][0]["url"]
            assert url.startswith(base)
            image = await client.get(url)
            assert Image.open(io.BytesIO(image.content)).size == (512, 512)
            tenants = await client.get("/admin/v1/tenants",
                                       headers={"Authorization": f"Bearer {admin.group(1)}"})
            assert [t["slug"] for t in tenants.json()["data"]] == ["demo"]
        # The portal, on localhost, with the printed demo customer who has credits.
        sign_in = re.search(r"sign in as (\S+) with (\S+)", printed)
        assert sign_in, printed
        portal = f"http://localhost:{port}"
        async with httpx.AsyncClient(base_url=portal, timeout=60) as browser:
            page = await browser.get("/signin")
            assert page.status_code == 200
            assert "<title>Demo Studio</title>" in page.text
            assert '<script type="module"' in page.text
            login = await browser.post("/v1/auth/login", json={
                "email": sign_in.group(1), "password": sign_in.group(2)})
            assert login.status_code == 200, login.text
            balance = await browser.get("/v1/credits/balance")
            assert balance.status_code == 200, balance.text
            assert balance.json()["available"] > 0, balance.text
    finally:
        proc.terminate()
        async with asyncio.timeout(30):
            await proc.wait()
    assert (tmp_path / "mediahub.db").exists()
    assert (tmp_path / "media").is_dir()


async def test_admin_commands_make_a_working_tenant(tmp_path: Path) -> None:
    env = clean_env(MEDIAHUB_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    code, out = await mediahub("db", "upgrade", cwd=tmp_path, env=env)
    assert code == 0, out
    # Unlike the embedded start, `db upgrade` lists the migrations it runs.
    assert "Running upgrade  -> 0001" in out, out
    with sqlite3.connect(tmp_path / "cli.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"tenants", "api_keys", "accounts", "transfers", "generations"} <= tables

    code, out = await mediahub("tenants", "create", "--name", "Acme", "--slug", "acme",
                               cwd=tmp_path, env=env)
    assert code == 0, out
    tenant_id = out.strip().splitlines()[-1]
    assert tenant_id.startswith("ten_")
    code, out = await mediahub("credits", "grant", "--tenant", tenant_id, "--amount", "5000",
                               "--idempotency-key", "k1", cwd=tmp_path, env=env)
    assert code == 0, out
    assert "balance=5000" in out
    # Same idempotency key: no second grant.
    code, out = await mediahub("credits", "grant", "--tenant", tenant_id, "--amount", "5000",
                               "--idempotency-key", "k1", cwd=tmp_path, env=env)
    assert "balance=5000" in out
    code, out = await mediahub("keys", "create", "--tenant", tenant_id, "--name", "ci",
                               cwd=tmp_path, env=env)
    assert code == 0, out
    assert re.fullmatch(r"mh_[0-9a-f]{12}_\S+", out.strip().splitlines()[-1])
    code, out = await mediahub("tenants", "create", "--name", "Again", "--slug", "acme",
                               cwd=tmp_path, env=env)
    assert code == 1
    assert "already taken" in out


async def test_bad_settings_stop_the_command_with_every_problem(tmp_path: Path) -> None:
    env = clean_env(MEDIAHUB_DATABASE_URL="mysql://nope", MEDIAHUB_WORKER_CONCURRENCY="lots")
    code, out = await mediahub("db", "upgrade", cwd=tmp_path, env=env)
    assert code == 2
    assert "MEDIAHUB_DATABASE_URL" in out
    assert "MEDIAHUB_WORKER_CONCURRENCY" in out


async def test_the_demo_tenant_chooses_the_offline_engines_even_in_an_older_database(
        tmp_path: Path) -> None:
    # Offline engines serve only tenants that choose them: the demo tenant does, also when
    # its database was made before allow lists existed (its routing has none).
    from gateway.cli import _demo_setup
    from tests.conftest import make_settings

    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}", tmp_path)
    tenant_id, _, _ = await _demo_setup(settings)

    def allowed() -> object:
        with sqlite3.connect(tmp_path / "demo.db") as db:
            (routing,) = db.execute("SELECT routing FROM tenants WHERE id = ?",
                                    (tenant_id,)).fetchone()
        return json.loads(routing).get("allowed_providers")

    assert allowed() == ["*"]
    with sqlite3.connect(tmp_path / "demo.db") as db:
        db.execute("UPDATE tenants SET routing = ? WHERE id = ?",
                   (json.dumps({"strategy": "balanced"}), tenant_id))
    assert allowed() is None
    assert (await _demo_setup(settings))[0] == tenant_id
    assert allowed() == ["*"]


async def test_serve_links_media_to_its_own_port_without_a_public_base_url(
    tmp_path: Path,
) -> None:
    port = free_port()
    admin = {"Authorization": "Bearer serve-test-admin-token"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "serve", "--port", str(port), cwd=tmp_path,
        env=clean_env(MEDIAHUB_ADMIN_TOKEN=admin["Authorization"].split()[1]),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    printed = ""
    try:
        async with asyncio.timeout(90):
            # Printed once the port is bound (the app starts before the bind).
            while "Uvicorn running on" not in printed:
                line = await proc.stdout.readline()
                assert line, f"serve exited early:\n{printed}"
                printed += line.decode()
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            tenant = await client.post("/admin/v1/tenants", headers=admin,
                                       json={"name": "Port", "slug": "port"})
            tenant_id = tenant.json()["id"]
            await client.post(f"/admin/v1/tenants/{tenant_id}/credits",
                              headers={**admin, "Idempotency-Key": "g"},
                              json={"amount": 1_000_000, "reason": "test"})
            key = await client.post(f"/admin/v1/tenants/{tenant_id}/keys", headers=admin,
                                    json={"name": "k", "scopes": ["generate", "read"]})
            r = await client.post(
                "/v1/generations", headers={"Authorization": f"Bearer {key.json()['key']}",
                                            "Prefer": "wait=30"},
                json={"type": "image", "prompt": "a lighthouse", "provider": "local-image",
                      "params": {"size": "64x64"}})
            assert r.status_code == 200, r.text
            url = r.json()["outputs"][0]["url"]
            assert url.startswith(f"{base}/"), url
            assert (await client.get(url)).status_code == 200
    finally:
        proc.terminate()
        async with asyncio.timeout(30):
            await proc.wait()


def test_serve_runs_on_uvloop_and_httptools(tmp_path: Path) -> None:
    from gateway.cli import server_config
    from tests.conftest import make_settings

    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", tmp_path)
    config = server_config(settings, "127.0.0.1", 8123)
    assert (config.loop, config.http) == ("uvloop", "httptools")
    assert (config.host, config.port) == ("127.0.0.1", 8123)


def test_serve_falls_back_to_asyncio_and_h11_without_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from gateway.cli import server_config
    from tests.conftest import make_settings

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("uvloop", "httptools")
                        else real(name, *a))
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", tmp_path)
    config = server_config(settings, "127.0.0.1", 8123)
    assert (config.loop, config.http) == ("asyncio", "h11")


async def test_analytics_rollup_refreshes_and_rebuilds(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from gateway.generations.models import Generation
    from tenants.kernel.db import Database, new_id

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = clean_env(MEDIAHUB_DATABASE_URL=url)
    assert (await mediahub("db", "upgrade", cwd=tmp_path, env=env))[0] == 0
    code, out = await mediahub("tenants", "create", "--name", "Acme", "--slug", "acme",
                               cwd=tmp_path, env=env)
    tenant_id = out.strip().splitlines()[-1]
    db = Database(url)
    try:
        async with db.transaction() as session:
            for day in (3, 4):
                session.add(Generation(
                    id=new_id("gen"), tenant_id=tenant_id, type="image",
                    operation="text_to_image", prompt="p", provider="echo", status="failed",
                    cost_usd_micros=0, wholesale_mc=0, retail_mc=0, estimated_mc=0,
                    request_hash="h", created_at=datetime(2026, 11, day, 12, tzinfo=UTC),
                    updated_at=datetime(2026, 11, day, 12, tzinfo=UTC)))
    finally:
        await db.dispose()
    code, out = await mediahub("analytics", "rollup", cwd=tmp_path, env=env)
    assert code == 0, out
    assert "refreshed 1 tenant(s), 2 row(s)" in out
    code, out = await mediahub("analytics", "rollup", "--tenant", tenant_id, "--since",
                               "2026-11-04", cwd=tmp_path, env=env)
    assert code == 0, out
    assert "rebuilt 1 row(s)" in out
    code, out = await mediahub("analytics", "rollup", "--tenant", "ten_nope", cwd=tmp_path,
                               env=env)
    assert code == 1
    assert "no tenant ten_nope" in out
