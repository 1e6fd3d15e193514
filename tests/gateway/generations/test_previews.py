"""Output previews made by the worker (contract C2): an image's WebP thumbnail, a video's JPEG
poster frame and audio's waveform peaks, made from the local engines' real media through the
real pipeline (SQLite and PostgreSQL); a preview that cannot be made never fails a generation."""

from __future__ import annotations

import io
import subprocess
from array import array
from pathlib import Path

from PIL import Image

from gateway.generations import derivatives
from gateway.generations.models import Generation
from plugins import programs
from tests.conftest import Gateway, ProvidersPlugin, make_settings, running_gateway, scripted


async def test_an_image_gets_a_webp_thumbnail_beside_it(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    done = await gateway.finish(tenant.auth, {
        "type": "image", "provider": "local-image", "prompt": "a lighthouse at dusk",
        "params": {"size": "1024x768"}})
    assert done["status"] == "succeeded", done
    [output] = done["outputs"]
    assert "peaks" not in output or output["peaks"] is None
    thumb = await gateway.media(output["thumbnail_url"])
    assert thumb.status_code == 200
    assert thumb.headers["content-type"].startswith("image/webp")
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.format == "WEBP"
        assert max(image.size) == 512
        # The aspect ratio is kept (1024x768 → 512x384).
        assert image.size == (512, 384)
    # Stored beside the output, under its generation's key prefix.
    [stored] = (await _row(gateway, done["id"])).outputs
    assert stored.thumbnail_key is not None
    assert stored.thumbnail_key.rsplit("/", 1)[0] == stored.key.rsplit("/", 1)[0]


async def test_a_video_gets_a_jpeg_poster_frame(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    done = await gateway.finish(tenant.auth, {
        "type": "video", "provider": "local-video", "prompt": "waves on a beach"})
    assert done["status"] == "succeeded", done
    [output] = done["outputs"]
    poster = await gateway.media(output["thumbnail_url"])
    assert poster.status_code == 200
    assert poster.content.startswith(b"\xff\xd8\xff")
    with Image.open(io.BytesIO(poster.content)) as image:
        assert image.format == "JPEG"
        assert max(image.size) <= 512
        # A real frame of the clip: not one flat colour.
        extrema = image.convert("L").getextrema()
        assert extrema[1] - extrema[0] > 10


async def test_audio_gets_256_waveform_peaks(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    done = await gateway.finish(tenant.auth, {
        "type": "audio", "provider": "local-speech",
        "text": "The quick brown fox jumps over the lazy dog, twice."})
    assert done["status"] == "succeeded", done
    [output] = done["outputs"]
    peaks = output["peaks"]
    assert len(peaks) == 256
    assert all(0.0 <= p <= 1.0 for p in peaks)
    assert max(peaks) == 1.0
    # Speech has pauses and loud parts: the peaks are not flat.
    assert min(peaks) < 0.5
    assert output.get("thumbnail_url") is None


async def test_a_generation_whose_preview_fails_still_succeeds(
        database_url: str, tmp_path: Path) -> None:
    # The scripted provider answers "image/png" whose bytes are no PNG at all.
    settings = make_settings(database_url, tmp_path)
    async with running_gateway(settings, extra=[ProvidersPlugin(scripted("oddpng"))]) as gw:
        tenant = await gw.tenant()
        done = await gw.finish(tenant.auth, {"type": "image", "provider": "oddpng",
                                             "prompt": "anything"})
        assert done["status"] == "succeeded", done
        [output] = done["outputs"]
        assert output.get("thumbnail_url") is None
        assert (await gw.media(output["url"])).content == b"x"


async def test_a_preview_that_fails_leaves_the_output_without_one(gateway: Gateway) -> None:
    # Bytes that claim to be an image, a video and audio but are none: no preview, no error.
    for content_type in ("image/png", "video/mp4", "audio/wav"):
        derived = await derivatives.derive(gateway.runtime, "t/g/0.bin", content_type,
                                           b"not media at all")
        assert derived == derivatives.Derived()
    assert not await gateway.runtime.storage.exists("t/g/0.thumb.webp")


def test_peaks_are_the_loudest_sample_of_each_bucket_normalised() -> None:
    samples = array("f", [0.0] * 512)
    samples[3] = -0.5   # bucket 1 (samples 2..3): magnitude counts
    samples[510] = 0.25  # the last bucket
    peaks = derivatives.peaks_of(samples)
    assert len(peaks) == 256
    assert peaks[1] == 1.0
    assert peaks[255] == 0.5
    assert peaks[0] == 0.0
    assert derivatives.peaks_of(array("f")) == [0.0] * 256
    assert derivatives.peaks_of(array("f", [0.0] * 10)) == [0.0] * 256


async def _row(gateway: Gateway, generation_id: str) -> Generation:
    async with gateway.runtime.db.session() as session:
        row = await session.get(Generation, generation_id)
    assert row is not None
    return row


async def test_a_clip_shorter_than_the_poster_time_gets_its_first_frame(
        gateway: Gateway, tmp_path: Path) -> None:
    clip = tmp_path / "short.mp4"
    ffmpeg = programs.ffmpeg()
    assert ffmpeg is not None
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=duration=0.2:size=640x360:rate=25", "-pix_fmt", "yuv420p",
                    str(clip)], check=True)
    derived = await derivatives.derive(gateway.runtime, "t/g/0.mp4", "video/mp4",
                                       clip.read_bytes())
    assert derived.thumbnail_key == "t/g/0.poster.jpg"
    data, content_type = await gateway.runtime.storage.get("t/g/0.poster.jpg")
    assert content_type == "image/jpeg"
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (512, 288)
