"""The cross-process notification channel (gateway/core/fanout.py) on a real Valkey: a quiet
subscription stays open (the client's default 5 s read timeout used to drop it every few
seconds, deaf for a second each time), a dead one is noticed and reopened, and whoever
listens is told when it is back, since what was published meanwhile was not heard."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import pytest
import valkey.asyncio as valkey_client

from gateway.core import fanout
from gateway.core.fanout import Fanout


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.01)


async def subscribers(url: str, name: str) -> dict[str, str]:
    """The server's clients named `name` (a fanout's listener names its connection after
    its channels): id → the last command each sent."""
    client = valkey_client.from_url(url, decode_responses=True)  # type: ignore[no-untyped-call]
    try:
        listed = await client.execute_command("CLIENT", "LIST", "TYPE", "pubsub")
    finally:
        await client.aclose()
    lines = listed if isinstance(listed, list) else str(listed).splitlines()
    found = {}
    for line in lines:
        fields = dict(f.split("=", 1) for f in str(line).split() if "=" in f)
        if fields.get("name") == name:
            found[fields["id"]] = fields.get("cmd", "")
    return found


async def test_a_quiet_subscription_stays_open_and_pings(
        valkey: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fanout, "IDLE_PING_S", 0.05)
    prefix = f"fan-{secrets.token_hex(4)}"
    heard: list[bytes] = []
    lost: list[bool] = []
    listener = Fanout(valkey, prefix, "ended", heard.append, lambda: lost.append(True))
    publisher = Fanout(valkey, prefix, "ended", lambda _: None)
    try:
        await listener.listening()
        [ours] = await subscribers(valkey, f"{prefix}:ended")
        await asyncio.sleep(0.5)  # quiet on purpose: ten idle periods
        # Still the one connection, and its last word is a PING: nothing dropped or reopened.
        assert await subscribers(valkey, f"{prefix}:ended") == {ours: "ping"}
        assert await publisher.publish("t1", b"gen_1")
        await until(lambda: heard == [b"gen_1"])
        assert lost == []
        assert list(await subscribers(valkey, f"{prefix}:ended")) == [ours]
    finally:
        await listener.close()
        await publisher.close()


async def test_a_killed_subscription_is_reopened_and_says_so(valkey: str) -> None:
    prefix = f"fan-{secrets.token_hex(4)}"
    heard: list[bytes] = []
    back: list[bool] = []
    listener = Fanout(valkey, prefix, "ended", heard.append, lambda: back.append(True))
    publisher = Fanout(valkey, prefix, "ended", lambda _: None)
    admin = valkey_client.from_url(valkey)  # type: ignore[no-untyped-call]
    try:
        await listener.listening()
        [first] = await subscribers(valkey, f"{prefix}:ended")
        await admin.execute_command("CLIENT", "KILL", "ID", first)
        await until(lambda: back == [True])
        assert await publisher.publish("t1", b"gen_2")
        await until(lambda: heard == [b"gen_2"])
        [second] = await subscribers(valkey, f"{prefix}:ended")
        assert second != first
    finally:
        await admin.aclose()
        await listener.close()
        await publisher.close()
