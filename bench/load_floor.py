"""The floor for `bench/load_bench.py`: the submit's I/O done by hand, nothing else.

    uv run python bench/load_floor.py --port P --database-url postgresql://... --valkey-url redis://...

One Litestar endpoint, `POST /v1/generations`, served by uvicorn like `mediahub serve`, that
does what a submit must do at the least and no more: one GCRA script call in Valkey (one round
trip), one PostgreSQL transaction with a conditional debit of a wallet and two inserts (the
generation and its reservation), and one queue push (an RPUSH). No authentication, routing,
pricing, validation beyond decoding JSON, ORM or cache. Its tables are its own (`floor_*`),
created at start. Answers `202` with a small JSON body, or `402`/`429`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from typing import Any

import asyncpg
import uvicorn
import valkey.asyncio as valkey_client
from litestar import Litestar, Request, Response, post

# GCRA: the same algorithm and one round trip as the product's limiter.
GCRA = """
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
local now, interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if tat < now then tat = now end
local allow_at = tat - interval * burst
if now < allow_at then return {0, allow_at - now} end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_wallets (
    id text PRIMARY KEY, posted bigint NOT NULL, pending bigint NOT NULL,
    CHECK (posted - pending >= 0));
CREATE TABLE IF NOT EXISTS floor_generations (
    id text PRIMARY KEY, tenant_id text NOT NULL, prompt text NOT NULL,
    params jsonb NOT NULL, status text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS floor_transfers (
    id text PRIMARY KEY, idempotency_key text UNIQUE NOT NULL, wallet_id text NOT NULL,
    generation_id text NOT NULL, amount bigint NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO floor_wallets VALUES ('w1', 1000000000000000, 0) ON CONFLICT DO NOTHING;
"""

PRICE = 130


def make_app(database_url: str, valkey_url: str, prefix: str) -> Litestar:
    state: dict[str, Any] = {}

    async def start() -> None:
        state["pool"] = await asyncpg.create_pool(database_url, min_size=4, max_size=20)
        async with state["pool"].acquire() as conn:
            await conn.execute(SCHEMA)
        state["valkey"] = valkey_client.from_url(valkey_url)
        state["gcra"] = state["valkey"].register_script(GCRA)

    async def stop() -> None:
        await state["pool"].close()
        await state["valkey"].aclose()

    @post("/v1/generations", status_code=202)
    async def submit(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = json.loads(await request.body())
        now_ms = int(time.time() * 1000)
        allowed, _wait = await state["gcra"](keys=[f"{prefix}:floor:rl:t1"],
                                             args=[now_ms, 1, 10**9])
        if not allowed:
            return Response(b'{"error":"rate"}', status_code=429)
        generation_id = f"gen_{secrets.token_hex(10)}"
        async with state["pool"].acquire() as conn, conn.transaction():
            debited = await conn.fetchval(
                "UPDATE floor_wallets SET pending = pending + $1 "
                "WHERE id = 'w1' AND posted - pending >= $1 RETURNING posted - pending", PRICE)
            if debited is None:
                return Response(b'{"error":"credits"}', status_code=402)
            await conn.execute(
                "INSERT INTO floor_generations VALUES ($1, 't1', $2, $3, 'queued', now())",
                generation_id, body.get("prompt", ""), json.dumps(body.get("params", {})))
            await conn.execute(
                "INSERT INTO floor_transfers VALUES ($1, $2, 'w1', $3, $4, now())",
                f"tr_{secrets.token_hex(10)}", f"gen:{generation_id}", generation_id, PRICE)
        await state["valkey"].rpush(f"{prefix}:floor:queue", generation_id)
        return Response(json.dumps({"id": generation_id, "object": "generation",
                                    "status": "queued"}).encode(), status_code=202,
                        media_type="application/json")

    return Litestar([submit], on_startup=[start], on_shutdown=[stop])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True, help="postgresql://... (asyncpg)")
    parser.add_argument("--valkey-url", required=True)
    parser.add_argument("--prefix", default="bench")
    args = parser.parse_args()
    uvicorn.run(make_app(args.database_url, args.valkey_url, args.prefix), host="127.0.0.1",
                port=args.port, log_level="info")  # as `mediahub serve` runs


if __name__ == "__main__":
    main()
