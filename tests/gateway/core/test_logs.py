"""Logs and request ids: one JSON object per line with the request's and the generation's
context; `X-Request-Id` on every response; no media bytes and no key secret in any line."""

from __future__ import annotations

import base64
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gateway.core import logs
from tests.conftest import Gateway


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every record at INFO and above as the JSON handler writes it (the production level)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def png(size: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_every_response_has_a_request_id(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    answers = [
        await gateway.client.get("/v1/credits/balance", headers=tenant.auth),  # 200
        await gateway.client.get("/v1/credits/balance"),  # 401
        await gateway.client.post("/v1/generations", headers=tenant.auth,
                                  json={"type": "image"}),  # 422
        await gateway.client.get("/v1/generations/gen_nope", headers=tenant.auth),  # 404
        await gateway.client.get("/no/such/route"),  # 404, never routed
    ]
    assert [r.status_code for r in answers] == [200, 401, 422, 404, 404]
    ids = [r.headers.get("x-request-id") for r in answers]
    assert all(ids), ids
    assert len(set(ids)) == len(ids), ids
    # Exactly one header, never a copy.
    assert all(len(r.headers.get_list("x-request-id")) == 1 for r in answers)

    given = await gateway.client.get("/health/live", headers={"X-Request-Id": "lb-42.a:b_c"})
    assert given.headers["x-request-id"] == "lb-42.a:b_c"
    for insane in ("has space", "x" * 129, "new\tline"):
        r = await gateway.client.get("/health/live", headers={"X-Request-Id": insane})
        assert r.headers["x-request-id"] != insane
        assert len(r.headers["x-request-id"]) == 32


async def test_json_lines_carry_the_context_and_never_bytes_or_secrets(
        gateway: Gateway, captured: io.StringIO) -> None:
    tenant = await gateway.tenant()
    image = png()
    encoded = base64.b64encode(image).decode()
    r = await gateway.client.post(
        "/v1/generations", headers={**tenant.auth, "X-Request-Id": "req-logs-1"},
        json={"type": "image", "operation": "image_edit", "prompt": "make it blue",
              "params": {"image": f"data:image/png;base64,{encoded}", "size": "64x64"}})
    assert r.status_code == 202, r.text
    generation_id = r.json()["id"]
    await gateway.drain()
    done = (await gateway.client.get(f"/v1/generations/{generation_id}",
                                     headers=tenant.auth)).json()
    assert done["status"] == "succeeded", done

    records = lines(captured)
    assert records, "nothing was logged"
    for record in records:
        assert {"time", "level", "logger", "event", "request_id", "tenant_id", "customer_id",
                "generation_id", "provider"} <= set(record)
        assert record["time"].endswith("Z")
    ended = [r for r in records if r["event"] == "generation ended: succeeded"]
    assert len(ended) == 1
    assert ended[0] | {"time": None} == ended[0] | {
        "time": None, "level": "info", "logger": "gateway.generations.lifecycle",
        "generation_id": generation_id, "tenant_id": tenant.id, "provider": "local-image",
        # The in-process job runs in the submitting request's context: its id follows.
        "request_id": "req-logs-1"}

    text = captured.getvalue()
    assert encoded[:64] not in text
    assert encoded[-64:] not in text
    secret = tenant.key.split("_", 2)[2]
    assert tenant.key not in text
    assert secret not in text


def test_the_command_writes_json_lines(tmp_path: Path) -> None:
    # The real process start: MEDIAHUB_LOG_FORMAT=json, a settings error logged as one line.
    code = ("from gateway.core import logs; import logging; logs.configure('json'); "
            "logging.getLogger('mediahub').warning('hello %s', 'world', "
            "extra={'generation_id': 'gen_1'})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60, cwd=Path(__file__).parents[3])
    [line] = done.stderr.splitlines()
    record = json.loads(line)
    assert record["event"] == "hello world"
    assert record["level"] == "warning"
    assert record["generation_id"] == "gen_1"
    assert record["request_id"] is None
