"""OpenAI's videos API with the official `openai` client over the offline video engine:
create, retrieve until completed, download, list, delete; another tenant's video is 404."""

from __future__ import annotations

import asyncio
import io

import openai
import pytest
from PIL import Image

from gateway.core.settings import Settings
from gateway.generations.models import FINAL_STATES
from tests.conftest import Gate, GatePlugin, running_gateway
from tests.fakes import serve
from tests.gateway.openai.conftest import Served

# The SDK marks these methods deprecated at OpenAI; this gateway serves them all the same.
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


async def _completed(served: Served, client: openai.AsyncOpenAI, video_id: str) -> str:
    """The video's final status: waits on the in-process queue, then reads it."""
    await served.gw.drain()
    video = await client.videos.retrieve(video_id)
    return video.status


async def test_create_retrieve_download_list(served: Served) -> None:
    tenant = await served.gw.tenant()
    async with served.aio(tenant) as client:
        video = await client.videos.create(prompt="a paper boat", model="local/video",
                                           seconds="4", size="1280x720")
        assert video.id.startswith("gen_")
        assert video.status in ("queued", "in_progress")
        assert await _completed(served, client, video.id) == "completed"
        done = await client.videos.retrieve(video.id)
        assert done.progress == 100
        assert done.size == "1280x720"
        assert done.seconds == "4"
        assert done.model == "local/video"
        assert done.completed_at is not None
        content = await client.videos.download_content(video.id)
        data = content.read()
        assert data[4:8] == b"ftyp"  # an MP4
        listed = await client.videos.list()
        assert [v.id for v in listed.data] == [video.id]
    generations = (await served.gw.client.get("/v1/generations?type=video",
                                              headers=tenant.auth)).json()["data"]
    assert generations[0]["id"] == video.id
    assert generations[0]["cost"]["charged"] > 0


async def test_input_reference_makes_an_image_to_video(served: Served) -> None:
    tenant = await served.gw.tenant()
    still = io.BytesIO()
    Image.new("RGB", (1280, 720), (200, 30, 30)).save(still, format="PNG")
    client = served.sync(tenant)
    video = await asyncio.to_thread(lambda: client.videos.create(
        prompt="it moves", model="sora-2", size="1280x720",
        input_reference=("still.png", still.getvalue(), "image/png")))
    await served.gw.drain()
    got = (await served.gw.client.get(f"/v1/generations/{video.id}",
                                      headers=tenant.auth)).json()
    assert got["operation"] == "image_to_video"
    assert got["status"] == "succeeded"


async def test_not_found_and_other_tenants_videos(served: Served) -> None:
    owner, other = await served.gw.tenant(), await served.gw.tenant()
    async with served.aio(owner) as client:
        video = await client.videos.create(prompt="mine", model="local/video", seconds="4",
                                           size="1280x720")
    await served.gw.drain()
    async with served.aio(other) as stranger:
        with pytest.raises(openai.NotFoundError):
            await stranger.videos.retrieve(video.id)
        with pytest.raises(openai.NotFoundError):
            await stranger.videos.download_content(video.id)
        with pytest.raises(openai.NotFoundError):
            await stranger.videos.retrieve("gen_doesnotexist")
        assert (await stranger.videos.list()).data == []
    async with served.aio(owner) as client:
        with pytest.raises(openai.BadRequestError) as bad:
            await client.videos.create(prompt="x", seconds="5")  # type: ignore[arg-type]
        assert bad.value.param == "seconds"
        # An image generation is not a video.
        image = await client.images.generate(model="local/image", prompt="x", size="256x256")
        assert image.data
        (generation, *_) = (await served.gw.client.get(
            "/v1/generations?type=image", headers=owner.auth)).json()["data"]
        with pytest.raises(openai.NotFoundError):
            await client.videos.retrieve(generation["id"])


async def test_list_pages_with_after(served: Served) -> None:
    tenant = await served.gw.tenant()
    async with served.aio(tenant) as client:
        made = [(await client.videos.create(prompt=f"clip {i}", model="local/video",
                                            seconds="4", size="1280x720")).id
                for i in range(3)]
        await served.gw.drain()
        first = await client.videos.list(limit=2)
        assert [v.id for v in first.data] == made[::-1][:2]
        assert first.has_more
        rest = await client.videos.list(limit=2, after=first.data[-1].id)
        assert [v.id for v in rest.data] == [made[0]]
        oldest = await client.videos.list(order="asc", limit=1)
        assert [v.id for v in oldest.data] == [made[0]]
        every = [v.id async for v in client.videos.list(limit=1)]
        assert every == made[::-1]


async def test_delete_cancels_a_running_video_and_refuses_a_finished_one(
        settings: Settings) -> None:
    gate = Gate()
    gate.media_types = frozenset({"video"})  # type: ignore[misc]
    gate.operations = frozenset({"text_to_video"})  # type: ignore[misc]
    async with running_gateway(settings, extra=[GatePlugin(gate)]) as gw, \
            serve(gw.app) as server:
        served = Served(gw=gw, url=server.url)
        tenant = await gw.tenant()
        before = await gw.balance(tenant.auth)
        async with served.aio(tenant) as client:
            video = await client.videos.create(prompt="slow", model="gate")
            await gate.entered.wait()
            deleted = await client.videos.delete(video.id)
            assert deleted.deleted
            assert deleted.id == video.id
            gone = await client.videos.retrieve(video.id)
            assert gone.status == "failed"
            assert (await gw.balance(tenant.auth))["available"] == before["available"]
            gate.release.set()
            with pytest.raises(openai.ConflictError):
                await client.videos.delete(video.id)
        got = (await gw.client.get(f"/v1/generations/{video.id}", headers=tenant.auth)).json()
        assert got["status"] in FINAL_STATES
