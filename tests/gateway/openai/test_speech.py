"""`POST /v1/audio/speech` with the official `openai` client: the audio streamed to a file
in the format asked for (the offline engine speaks WAV; other formats through ffmpeg)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest

from gateway.generations.models import Generation
from tests.gateway.openai.conftest import Served


async def test_speech_to_a_file_as_mp3_sync(served: Served, tmp_path: Path) -> None:
    tenant = await served.gw.tenant()
    client = served.sync(tenant)
    target = tmp_path / "hello.mp3"

    def speak() -> str:
        with client.audio.speech.with_streaming_response.create(
                model="local/speech", voice="alloy", input="Hello there",
                response_format="mp3") as response:
            response.stream_to_file(target)
            assert response.headers["x-request-id"].startswith("req_")
            return response.headers["content-type"]

    content_type = await asyncio.to_thread(speak)
    assert content_type == "audio/mpeg"
    data = target.read_bytes()
    # An MP3 starts with an ID3 tag or a frame sync.
    assert data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


@pytest.mark.parametrize(("fmt", "magic"), [("wav", b"RIFF"), ("flac", b"fLaC"),
                                             ("opus", b"OggS")])
async def test_speech_formats_async(served: Served, tmp_path: Path, fmt: str,
                                    magic: bytes) -> None:
    tenant = await served.gw.tenant()
    target = tmp_path / f"out.{fmt}"
    async with served.aio(tenant) as client, \
            client.audio.speech.with_streaming_response.create(
                model="tts-1", voice="alloy", input="Testing formats",
                response_format=fmt) as response:  # type: ignore[arg-type]
        await response.stream_to_file(target)
    assert target.read_bytes().startswith(magic)
    listed = (await served.gw.client.get("/v1/generations?type=audio",
                                         headers=tenant.auth)).json()["data"]
    assert len(listed) == 1
    assert listed[0]["status"] == "succeeded"


async def test_pcm_is_raw_samples(served: Served) -> None:
    tenant = await served.gw.tenant()
    async with served.aio(tenant) as client:
        response = await client.audio.speech.create(model="local/speech", voice="en",
                                                    input="Raw", response_format="pcm")
        data = response.read()
    assert not data.startswith(b"RIFF")
    assert len(data) % 2 == 0
    assert len(data) > 0


async def test_speech_errors(served: Served) -> None:
    tenant = await served.gw.tenant()
    async with served.aio(tenant) as client:
        with pytest.raises(openai.NotFoundError):
            await client.audio.speech.create(model="nope", voice="alloy", input="x")
        with pytest.raises(openai.BadRequestError) as bad:
            await client.audio.speech.create(model="local/speech", voice="alloy", input="x",
                                             speed=9)
        assert bad.value.param == "speed"
        with pytest.raises(openai.BadRequestError) as wrong:
            await client.audio.speech.create(model="local/image", voice="alloy", input="x")
        assert wrong.value.code == "model_not_supported"
        with pytest.raises(openai.BadRequestError) as image_model:
            await client.audio.speech.create(model="dall-e-3", voice="alloy", input="x")
        assert image_model.value.code == "model_not_supported"


async def test_speed_is_the_local_engines_words_per_minute(served: Served) -> None:
    tenant = await served.gw.tenant()
    async with served.aio(tenant) as client:
        response = await client.audio.speech.create(model="local/speech", voice="en",
                                                    input="Quick", response_format="wav",
                                                    speed=2.0)
        assert response.read().startswith(b"RIFF")
    (generation,) = (await served.gw.client.get("/v1/generations",
                                                headers=tenant.auth)).json()["data"]
    assert generation["provider"] == "local-speech"
    async with served.gw.runtime.db.session() as session:
        row = await session.get(Generation, generation["id"])
    assert row is not None
    assert row.params["speed"] == 350
