"""The gallery API (docs/gallery.md): the generation's new fields, favourites, delete and the
media job, bulk actions, the zip, share links; each on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
from sqlalchemy import update

from gateway.core.settings import Settings
from gateway.generations import gallery
from gateway.generations.models import Generation
from tests.conftest import Gate, Gateway, make_settings, running_gateway
from tests.gateway.generations.test_cache import final, serving, until

IMAGE = {"type": "image", "prompt": "a lighthouse at dusk", "params": {"size": "256x128"}}


def image(prompt: str, **params: Any) -> dict[str, Any]:
    return {"type": "image", "prompt": prompt, "params": {"size": "256x128", **params}}


def stored_files(gateway: Gateway, tenant_id: str, generation_id: str) -> list[Path]:
    root = Path(gateway.runtime.settings.storage_url.removeprefix("file://"))
    folder = root / tenant_id / generation_id
    # A purge running meanwhile (a SAQ worker) may remove the folder while it is walked.
    try:
        return sorted(p for p in folder.rglob("*") if p.is_file())
    except FileNotFoundError:
        return []


async def test_a_generation_shows_its_prompt_params_favourite_and_team(
        gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    done = await gateway.finish(tenant.auth, image("a red fox", seed=7))
    assert done["prompt"] == "a red fox"
    assert done["params"] == {"size": "256x128", "seed": 7}
    assert done["favourite"] is False
    assert done["team_id"] is None


async def test_favourite_marks_and_filters(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    first = await gateway.finish(tenant.auth, image("one"))
    second = await gateway.finish(tenant.auth, image("two"))
    marked = await gateway.client.put(f"/v1/generations/{first['id']}/favourite",
                                      headers=tenant.auth)
    assert marked.status_code == 200, marked.text
    assert marked.json()["favourite"] is True
    again = await gateway.client.put(f"/v1/generations/{first['id']}/favourite",
                                     headers=tenant.auth)
    assert again.json()["favourite"] is True
    listed = await gateway.client.get("/v1/generations?favourite=true", headers=tenant.auth)
    assert [g["id"] for g in listed.json()["data"]] == [first["id"]]
    others = await gateway.client.get("/v1/generations?favourite=false", headers=tenant.auth)
    assert [g["id"] for g in others.json()["data"]] == [second["id"]]
    unmarked = await gateway.client.delete(f"/v1/generations/{first['id']}/favourite",
                                           headers=tenant.auth)
    assert unmarked.status_code == 200, unmarked.text
    assert unmarked.json()["favourite"] is False


async def test_full_text_search_over_prompts_in_any_language(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    fox = await gateway.finish(tenant.auth, image("A red fox in the snow"))
    sunset = await gateway.finish(tenant.auth, image("red sunset over the sea"))
    arabic = await gateway.finish(tenant.auth, image("قطة سوداء تجلس على السطح"))

    async def found(q: str) -> list[str]:
        r = await gateway.client.get("/v1/generations", params={"q": q}, headers=tenant.auth)
        assert r.status_code == 200, r.text
        return [g["id"] for g in r.json()["data"]]

    assert await found("red") == [sunset["id"], fox["id"]]
    assert await found("RED fox") == [fox["id"]]
    assert await found("red sun") == [sunset["id"]]      # the last word is a prefix
    assert await found("snow sea") == []                  # every word must match
    assert await found("قطة") == [arabic["id"]]
    assert await found("سوداء السطح") == [arabic["id"]]
    assert await found("fox, (snow)!") == [fox["id"]]     # punctuation is not syntax
    bad = await gateway.client.get("/v1/generations", params={"q": "!!"},
                                   headers=tenant.auth)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_query"


async def test_delete_hides_it_everywhere_and_removes_its_media(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    done = await gateway.finish(tenant.auth, IMAGE)
    assert stored_files(gateway, tenant.id, done["id"])
    before = await gateway.balance(tenant.auth)
    r = await gateway.client.delete(f"/v1/generations/{done['id']}", headers=tenant.auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": done["id"], "deleted": True, "object": "generation"}
    await gateway.drain()
    assert stored_files(gateway, tenant.id, done["id"]) == []
    media = await gateway.media(done["outputs"][0]["url"])
    assert media.status_code == 404
    assert (await gateway.client.get(f"/v1/generations/{done['id']}",
                                     headers=tenant.auth)).status_code == 404
    listed = await gateway.client.get("/v1/generations", headers=tenant.auth)
    assert listed.json()["data"] == []
    # The money was settled: deleting changes no balance.
    assert await gateway.balance(tenant.auth) == before
    again = await gateway.client.delete(f"/v1/generations/{done['id']}", headers=tenant.auth)
    assert again.status_code == 404, again.text


async def test_a_running_generation_cannot_be_deleted(gated: tuple[Gateway, Gate]) -> None:
    gateway, gate = gated
    tenant = await gateway.tenant()
    r = await gateway.client.post("/v1/generations", headers=tenant.auth,
                                  json={**IMAGE, "provider": "gate"})
    assert r.status_code == 202, r.text
    await gate.entered.wait()
    refused = await gateway.client.delete(f"/v1/generations/{r.json()['id']}",
                                          headers=tenant.auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "generation_active"
    gate.release.set()
    await gateway.drain()
    ok = await gateway.client.delete(f"/v1/generations/{r.json()['id']}", headers=tenant.auth)
    assert ok.status_code == 200, ok.text


async def test_two_deletes_at_once_one_wins(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    done = await gateway.finish(tenant.auth, IMAGE)
    answers = await asyncio.gather(*[
        gateway.client.delete(f"/v1/generations/{done['id']}", headers=tenant.auth)
        for _ in range(2)])
    assert sorted(a.status_code for a in answers) == [200, 404]
    await gateway.drain()


async def test_a_repeated_idempotency_key_of_a_deleted_one_is_refused(
        gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    headers = {**tenant.auth, "Idempotency-Key": "once"}
    r = await gateway.client.post("/v1/generations", headers=headers, json=IMAGE)
    await gateway.drain()
    await gateway.client.delete(f"/v1/generations/{r.json()['id']}", headers=tenant.auth)
    again = await gateway.client.post("/v1/generations", headers=headers, json=IMAGE)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "generation_deleted"
    await gateway.drain()


async def test_bulk_answers_per_id_scoped_like_single_calls(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    alice = {**tenant.auth, "X-Customer-Id": "alice"}
    bob = {**tenant.auth, "X-Customer-Id": "bob"}
    mine = await gateway.finish(alice, image("mine"))
    also = await gateway.finish(alice, image("also mine"))
    theirs = await gateway.finish(bob, image("theirs"))
    r = await gateway.client.post("/v1/generations/bulk", headers=alice, json={
        "action": "favourite", "ids": [mine["id"], theirs["id"], also["id"]]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["id"], x["ok"]) for x in results] == [
        (mine["id"], True), (theirs["id"], False), (also["id"], True)]
    assert results[1]["error"]["code"] == "generation_not_found"
    bob_sees = await gateway.client.get(f"/v1/generations/{theirs['id']}", headers=bob)
    assert bob_sees.json()["favourite"] is False
    deleted = await gateway.client.post("/v1/generations/bulk", headers=alice, json={
        "action": "delete", "ids": [mine["id"], theirs["id"]]})
    assert [x["ok"] for x in deleted.json()["results"]] == [True, False]
    assert (await gateway.client.get(f"/v1/generations/{theirs['id']}",
                                     headers=bob)).status_code == 200
    too_many = await gateway.client.post("/v1/generations/bulk", headers=alice, json={
        "action": "delete", "ids": [f"gen_{n}" for n in range(101)]})
    assert too_many.status_code in (400, 422)
    await gateway.drain()


async def test_archive_streams_a_zip_that_reads_back(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    first = await gateway.finish(tenant.auth, image("first"))
    second = await gateway.finish(tenant.auth, image("second", seed=3))
    r = await gateway.client.get("/v1/generations/archive",
                                 params={"ids": f"{first['id']},{second['id']}"},
                                 headers=tenant.auth)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/zip")
    assert r.headers["content-disposition"].startswith("attachment")
    with zipfile.ZipFile(io.BytesIO(r.content)) as zipped:
        names = zipped.namelist()
        assert f"{first['id']}-1.png" in names
        assert f"{second['id']}-1.png" in names
        stored, _ = await gateway.runtime.storage.get(
            f"{tenant.id}/{first['id']}/0.png")
        assert zipped.read(f"{first['id']}-1.png") == stored
        index = json.loads(zipped.read("generations.json"))
    assert [g["id"] for g in index] == [first["id"], second["id"]]
    assert index[1]["prompt"] == "second"
    assert index[1]["params"]["seed"] == 3
    assert index[0]["outputs"] == [f"{first['id']}-1.png"]
    other = await gateway.tenant()
    refused = await gateway.client.get("/v1/generations/archive",
                                       params={"ids": first["id"]}, headers=other.auth)
    assert refused.status_code == 404


async def test_archive_holds_one_output_at_a_time(gateway: Gateway) -> None:
    """100 generations: the stream is read chunk by chunk, and between chunks at most one
    output has been read from storage that was not yet handed on."""
    tenant = await gateway.tenant()
    done = await gateway.finish(tenant.auth, IMAGE)
    storage = gateway.runtime.storage
    reads: list[str] = []
    real_get = storage.get

    async def counting_get(key: str) -> tuple[bytes, str]:
        reads.append(key)
        return await real_get(key)

    async with gateway.runtime.db.session() as session:
        row = await session.get(Generation, done["id"])
    assert row is not None
    rows = [Generation(id=f"gen_copy{n}", type=row.type, prompt=row.prompt, params=row.params,
                       outputs=row.outputs, created_at=row.created_at) for n in range(100)]
    storage.get = counting_get  # type: ignore[method-assign]
    try:
        chunks = 0
        async for chunk in gallery.archive(gateway.runtime, rows):
            chunks += 1
            # Each output is handed on right after it was read: never two read ahead.
            assert len(reads) <= chunks
            assert len(chunk) < 2 * 1024 * 1024
    finally:
        storage.get = real_get  # type: ignore[method-assign]
    assert len(reads) == 100
    assert chunks == 101


async def test_share_links_open_publicly_until_deleted(gateway: Gateway) -> None:
    studio = f"studio-{secrets.token_hex(4)}.example.com"  # domains are unique per database
    tenant = await gateway.tenant(domains=[studio])
    done = await gateway.finish(tenant.auth, IMAGE)
    r = await gateway.client.post(f"/v1/generations/{done['id']}/share",
                                  headers={**tenant.auth, "Host": studio},
                                  json={"expires_in_s": 3600})
    assert r.status_code == 200, r.text
    share = r.json()
    assert share["url"] == f"http://{studio}/shared/{share['token']}"
    opened = await gateway.client.get(f"/v1/shared/{share['token']}",
                                      headers={"Host": studio})
    assert opened.status_code == 200, opened.text
    body = opened.json()
    assert body["id"] == done["id"]
    assert body["prompt"] == IMAGE["prompt"]
    assert body["object"] == "shared_generation"
    assert urlsplit(body["outputs"][0]["url"]).netloc == studio
    assert (await gateway.media(body["outputs"][0]["url"])).status_code == 200
    # Tampered with: 404.
    forged = share["token"][:-2] + ("AA" if not share["token"].endswith("AA") else "BB")
    assert (await gateway.client.get(f"/v1/shared/{forged}")).status_code == 404
    assert (await gateway.client.get("/v1/shared/nonsense")).status_code == 404
    # Deleted: 404.
    await gateway.client.delete(f"/v1/generations/{done['id']}", headers=tenant.auth)
    gone = await gateway.client.get(f"/v1/shared/{share['token']}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "share_not_found"
    await gateway.drain()


async def test_a_share_link_opens_on_its_tenants_domain_only(gateway: Gateway) -> None:
    a, b = (f"{name}-{secrets.token_hex(4)}.example.com" for name in "ab")
    tenant = await gateway.tenant(domains=[a])
    await gateway.tenant(domains=[b])
    done = await gateway.finish(tenant.auth, IMAGE)
    token = (await gateway.client.post(f"/v1/generations/{done['id']}/share",
                                       headers=tenant.auth)).json()["token"]
    assert (await gateway.client.get(f"/v1/shared/{token}",
                                     headers={"Host": b})).status_code == 404
    assert (await gateway.client.get(f"/v1/shared/{token}",
                                     headers={"Host": a})).status_code == 200


def test_an_expired_token_reads_as_nothing() -> None:
    token = gallery.share_token(b"k" * 32, tenant_id="ten_a", generation_id="gen_a",
                                expires=1_000)
    assert gallery.read_token(b"k" * 32, token, now=999) == ("ten_a", "gen_a")
    assert gallery.read_token(b"k" * 32, token, now=1_001) is None
    assert gallery.read_token(b"x" * 32, token, now=999) is None


async def test_cached_answers_share_media_until_the_last_is_deleted(
        settings: Settings) -> None:
    """A cached answer reuses the stored outputs of the generation that made them: deleting
    either keeps the files while the other is shown, the cache never answers with a deleted
    generation, and the last delete removes the files."""
    cached_settings = msgspec.structs.replace(settings, cache_ttl_s=3600)
    async with running_gateway(cached_settings) as gateway:
        tenant = await gateway.tenant()
        original = await gateway.finish(tenant.auth, IMAGE)
        copy = await gateway.finish(tenant.auth, IMAGE)
        assert copy["cached"] is True
        files = stored_files(gateway, tenant.id, original["id"])
        assert files

        await gateway.client.delete(f"/v1/generations/{original['id']}", headers=tenant.auth)
        await gateway.drain()
        assert stored_files(gateway, tenant.id, original["id"]) == files  # the copy shows them
        shown = await gateway.client.get(f"/v1/generations/{copy['id']}", headers=tenant.auth)
        assert (await gateway.media(shown.json()["outputs"][0]["url"])).status_code == 200

        # The cache pointed at the deleted one: a miss, so a fresh run with its own files.
        fresh = await gateway.finish(tenant.auth, IMAGE)
        assert fresh["cached"] is False
        assert stored_files(gateway, tenant.id, fresh["id"])

        await gateway.client.delete(f"/v1/generations/{copy['id']}", headers=tenant.auth)
        await gateway.drain()
        assert stored_files(gateway, tenant.id, original["id"]) == []
        assert stored_files(gateway, tenant.id, fresh["id"])


async def test_deleted_videos_leave_the_openai_surface(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    video = await gateway.finish(tenant.auth, {"type": "video", "prompt": "waves"})
    assert (await gateway.client.get(f"/v1/videos/{video['id']}",
                                     headers=tenant.auth)).status_code == 200
    await gateway.client.delete(f"/v1/generations/{video['id']}", headers=tenant.auth)
    assert (await gateway.client.get(f"/v1/videos/{video['id']}",
                                     headers=tenant.auth)).status_code == 404
    listed = await gateway.client.get("/v1/videos", headers=tenant.auth)
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == []
    await gateway.drain()


async def test_the_purge_job_runs_on_a_saq_worker(tmp_path: Path, pg_url: str,
                                                  valkey: str) -> None:
    """With Valkey the purge is a SAQ job like any other: a worker process removes the
    media (here a worker in the test's loop)."""
    settings = make_settings(pg_url, tmp_path, valkey_url=valkey)
    async with serving(settings) as gateway:
        tenant = await gateway.tenant()
        r = await gateway.client.post("/v1/generations", headers=tenant.auth, json=IMAGE)
        assert r.status_code == 202, r.text
        done = await final(gateway, tenant, r.json()["id"])
        assert done["status"] == "succeeded"
        assert stored_files(gateway, tenant.id, done["id"])
        deleted = await gateway.client.delete(f"/v1/generations/{done['id']}",
                                              headers=tenant.auth)
        assert deleted.status_code == 200, deleted.text

        async def purged() -> bool:
            return stored_files(gateway, tenant.id, done["id"]) == []

        await until(purged)


async def test_a_lost_purge_is_queued_again(gateway: Gateway) -> None:
    """A generation marked deleted whose purge job never ran (an embedded process stopped):
    the periodic sweep queues it again, and a purged row lists no media any more."""
    tenant = await gateway.tenant()
    done = await gateway.finish(tenant.auth, IMAGE)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    async with gateway.runtime.db.transaction() as session:
        await session.execute(update(Generation).where(Generation.id == done["id"])
                              .values(deleted_at=long_ago))
    assert stored_files(gateway, tenant.id, done["id"])
    assert await gallery.requeue_purges(gateway.runtime) == 1
    await gateway.drain()
    assert stored_files(gateway, tenant.id, done["id"]) == []
    assert await gallery.requeue_purges(gateway.runtime) == 0


async def test_share_views_are_rate_limited_per_address(gateway: Gateway) -> None:
    for _ in range(gallery.SHARED_VIEWS_PER_MINUTE):
        r = await gateway.client.get("/v1/shared/not-a-token")
        assert r.status_code == 404
    limited = await gateway.client.get("/v1/shared/not-a-token")
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert int(limited.headers["retry-after"]) >= 1
