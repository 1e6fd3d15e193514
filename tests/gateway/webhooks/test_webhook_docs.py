"""The webhook verification snippets of docs/user-guide.md ("Webhooks"), Python and
JavaScript, run as written against a real signed delivery: they accept it and refuse it
tampered with, so the documentation cannot rot."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import Tenant, scripted
from tests.gateway.webhooks.test_webhooks import (
    ADMIN_SCOPES,
    endpoint,
    generate,
    hook_settings,
    settle,
    stack,
)
from tests.receiver import Recorded

GUIDE = Path(__file__).parents[3] / "docs" / "user-guide.md"


def snippet(language: str) -> str:
    """The first `language` code block of the guide's Webhooks section."""
    section = GUIDE.read_text().split("\n## Webhooks\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert found, f"no {language} block in the Webhooks section"
    return found.group(1)


def python_verify() -> Callable[[str, dict[str, str], bytes], bool]:
    scope: dict[str, Any] = {}
    exec(snippet("python"), scope)  # the guide's code, as a reader would paste it
    verify: Callable[[str, dict[str, str], bytes], bool] = scope["verify"]
    return verify


def javascript_verify(tmp_path: Path, secret: str, headers: dict[str, str],
                      body: bytes) -> bool:
    node = shutil.which("node")
    assert node, "the JavaScript snippet needs Node.js"
    script = tmp_path / "verify.mjs"
    harness = tmp_path / "run.mjs"
    harness.write_text("""
import { readFileSync } from "node:fs";
import { verify } from "./verify.mjs";
const input = JSON.parse(readFileSync(0, "utf8"));
console.log(JSON.stringify(verify(input.secret, input.headers,
                                  Buffer.from(input.body, "base64"))));
""")
    script.write_text(snippet("javascript"))
    done = subprocess.run([node, str(harness)], input=json.dumps({
        "secret": secret, "headers": headers, "body": base64.b64encode(body).decode()}),
        capture_output=True, text=True, timeout=30, check=True)
    answer: bool = json.loads(done.stdout)
    return answer


async def delivery(database_url: str, tmp_path: Path) -> tuple[str, Recorded]:
    """A real `generation.succeeded` delivery to an endpoint, and the endpoint's secret."""
    async with stack(hook_settings(database_url, tmp_path), scripted("ok")) as (gw, rec):
        tenant: Tenant = await gw.tenant(scopes=ADMIN_SCOPES)
        made = await endpoint(gw, tenant, f"{rec.url}/hook")
        r = await generate(gw, tenant, "ok")
        assert r.status_code == 202, r.text
        await settle(gw)
        [request] = await rec.wait_for(1)
        return made["secret"], request


async def test_the_documented_snippets_verify_a_real_delivery(database_url: str,
                                                              tmp_path: Path) -> None:
    secret, request = await delivery(database_url, tmp_path)
    headers = {k.lower(): v for k, v in request.headers.items()}
    tampered = request.body.replace(b"succeeded", b"failed")
    assert tampered != request.body

    verify = python_verify()
    assert verify(secret, headers, request.body) is True
    assert verify(secret, headers, tampered) is False
    other = "whsec_" + base64.b64encode(b"k" * 32).decode()
    assert verify(other, headers, request.body) is False

    assert javascript_verify(tmp_path, secret, headers, request.body) is True
    assert javascript_verify(tmp_path, secret, headers, tampered) is False
    assert javascript_verify(tmp_path, other, headers, request.body) is False
