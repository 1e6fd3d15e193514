"""The local offline engines (speech, design, video, 3D): each output decoded, bad params named,
a missing binary reported rather than crashing, and every media type end to end through the
gateway; and the same with no system espeak-ng or ffmpeg at all (the packaged ones)."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import struct
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from plugins import programs
from plugins.builtin.local import _media
from plugins.builtin.local import design as local_design
from plugins.builtin.local import model_3d as local_3d
from plugins.builtin.local import speech as local_speech
from plugins.builtin.local import video as local_video
from plugins.builtin.local.design import TEMPLATES, LocalDesign
from plugins.builtin.local.model_3d import Local3D
from plugins.builtin.local.speech import LocalSpeech
from plugins.builtin.local.video import LocalVideo
from plugins.errors import InvalidParams, ProviderError
from plugins.host import build_plugin_host
from plugins.provider import Credentials, Provider, ProviderRequest, ProviderResult
from plugins.testing import request_from_params
from tests.conftest import Gateway

# --- helpers -------------------------------------------------------------------------------


def request(media_type: str, operation: str, prompt: str = "a lighthouse at dusk",
            **params: Any) -> ProviderRequest:
    """As the gateway builds it: an `image=` data: URL becomes the decoded input."""
    return request_from_params(type=media_type, operation=operation, prompt=prompt,
                               params=params)


async def generate(provider: Provider, req: ProviderRequest) -> ProviderResult:
    async with httpx.AsyncClient() as client:
        return await provider.generate(req, Credentials(), client)


def data_url(image: Image.Image, fmt: str = "PNG") -> str:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(out.getvalue()).decode()}"


def halves(width: int = 320, height: int = 200) -> Image.Image:
    """Red on the left, blue on the right."""
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    return image


def decode_wav(data: bytes) -> tuple[int, int, int, float]:
    """(channels, sample rate, sample width, duration in s) from the WAV header."""
    with wave.open(io.BytesIO(data)) as wav:
        frames = wav.readframes(wav.getnframes())
        assert len(frames) == wav.getnframes() * wav.getnchannels() * wav.getsampwidth()
        return (wav.getnchannels(), wav.getframerate(), wav.getsampwidth(),
                wav.getnframes() / wav.getframerate())


def ffmpeg() -> str:
    binary = programs.ffmpeg()
    assert binary is not None, "no ffmpeg, neither the system's nor imageio-ffmpeg's"
    return binary


def probe(data: bytes, tmp_path: Path) -> dict[str, Any]:
    """What ffmpeg reports about an MP4 it decodes in full, shaped like ffprobe's JSON (not
    every ffmpeg package ships ffprobe): container, duration and the streams."""
    path = tmp_path / "probe.mp4"
    path.write_bytes(data)
    done = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path), "-f", "null",
                           "-"], capture_output=True, text=True, check=True, timeout=30)
    described = done.stderr.split("Stream mapping:")[0]  # the input only, not the null output
    container = re.search(r"Input #0, (\S+), from", described)
    duration = re.search(r"Duration: (\d+):(\d+):(\d+\.\d+)", described)
    assert container, described
    assert duration, described
    hours, minutes, seconds = duration.groups()
    streams = [{"codec_type": kind.lower(), "codec_name": codec, "pix_fmt": pix_fmt,
                "width": int(width), "height": int(height)}
               for kind, codec, pix_fmt, width, height in re.findall(
                   r"Stream #0:\d+\S*: (Video): (\w+)[^,]*, (\w+)[^,]*, (\d+)x(\d+)",
                   described)]
    streams += [{"codec_type": kind.lower(), "codec_name": codec}
                for kind, codec in re.findall(r"Stream #0:\d+\S*: (Audio|Data): (\w+)",
                                              described)]
    return {"format": {"format_name": container[1],
                       "duration": int(hours) * 3600 + int(minutes) * 60 + float(seconds)},
            "streams": streams}


def frame(data: bytes, tmp_path: Path, *, last: bool) -> Image.Image:
    """The first or last frame of an MP4, decoded by ffmpeg to PNG."""
    source, target = tmp_path / "frames.mp4", tmp_path / "frame.png"
    source.write_bytes(data)
    # The last: seek near the end and keep overwriting one file; the first: stop after one.
    where, keep = (["-sseof", "-0.3"], ["-update", "1"]) if last else ([], ["-frames:v", "1"])
    subprocess.run([ffmpeg(), "-v", "error", "-y", *where, "-i", str(source), *keep,
                    str(target)], check=True, timeout=30)
    return Image.open(target).convert("RGB")


def assert_mp4(data: bytes, tmp_path: Path, *, width: int, height: int,
               duration_s: float) -> None:
    info = probe(data, tmp_path)
    [stream] = info["streams"]
    assert stream["codec_type"] == "video"
    assert stream["codec_name"] == "h264"
    assert stream["pix_fmt"] == "yuv420p"
    assert (stream["width"], stream["height"]) == (width, height)
    assert "mp4" in info["format"]["format_name"]
    assert abs(float(info["format"]["duration"]) - duration_s) <= 0.2


COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}
SIZES = {5123: ("H", 2), 5125: ("I", 4), 5126: ("f", 4)}


def parse_glb(data: bytes) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """Check a GLB's container, then return its JSON and every accessor's decoded values."""
    magic, version, length = struct.unpack_from("<III", data, 0)
    assert magic == 0x46546C67
    assert data[:4] == b"glTF"
    assert version == 2
    assert length == len(data)
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A  # "JSON"
    assert json_length % 4 == 0
    raw_json = data[20:20 + json_length]
    assert raw_json.rstrip(b" ") == raw_json.rstrip()  # padded with spaces only
    gltf: dict[str, Any] = json.loads(raw_json)
    bin_at = 20 + json_length
    bin_length, bin_type = struct.unpack_from("<II", data, bin_at)
    assert bin_type == 0x004E4942  # "BIN\0"
    assert bin_length % 4 == 0
    assert bin_at + 8 + bin_length == len(data)
    binary = data[bin_at + 8:]
    [buffer] = gltf["buffers"]
    assert "uri" not in buffer
    assert len(binary) - 3 <= buffer["byteLength"] <= len(binary)
    assert gltf["asset"]["version"] == "2.0"

    decoded = []
    for accessor in gltf["accessors"]:
        view = gltf["bufferViews"][accessor["bufferView"]]
        code, size = SIZES[accessor["componentType"]]
        width = COMPONENTS[accessor["type"]]
        assert view["byteLength"] == accessor["count"] * width * size
        assert view["byteOffset"] % 4 == 0
        assert view["byteOffset"] + view["byteLength"] <= buffer["byteLength"]
        decoded.append(struct.unpack_from(f"<{accessor['count'] * width}{code}", binary,
                                          view["byteOffset"]))
    return gltf, decoded


def check_mesh(gltf: dict[str, Any], decoded: list[tuple[Any, ...]]) -> tuple[
        list[tuple[float, ...]], list[int]]:
    """The primitive's vertices and indices, after checking bounds and outward winding."""
    [mesh] = gltf["meshes"]
    [primitive] = mesh["primitives"]
    assert primitive.get("mode", 4) == 4
    position = gltf["accessors"][primitive["attributes"]["POSITION"]]
    flat = decoded[primitive["attributes"]["POSITION"]]
    vertices = [tuple(flat[i:i + 3]) for i in range(0, len(flat), 3)]
    assert position["min"] == [min(v[k] for v in vertices) for k in range(3)]
    assert position["max"] == [max(v[k] for v in vertices) for k in range(3)]
    normals = decoded[primitive["attributes"]["NORMAL"]]
    assert len(normals) == len(flat)
    indices = list(decoded[primitive["indices"]])
    assert len(indices) % 3 == 0
    assert max(indices) < len(vertices)
    # The shapes are convex and centred on the origin: every triangle faces outwards.
    for t in range(0, len(indices), 3):
        a, b, c = (vertices[i] for i in indices[t:t + 3])
        ab = [b[k] - a[k] for k in range(3)]
        ac = [c[k] - a[k] for k in range(3)]
        normal = (ab[1] * ac[2] - ab[2] * ac[1], ab[2] * ac[0] - ab[0] * ac[2],
                  ab[0] * ac[1] - ab[1] * ac[0])
        assert math.hypot(*normal) > 0, "degenerate triangle"
        centroid = [(a[k] + b[k] + c[k]) / 3 for k in range(3)]
        assert sum(n * p for n, p in zip(normal, centroid, strict=True)) > 0
    return vertices, indices


def param_of(provider: Provider, req: ProviderRequest) -> str:
    with pytest.raises(InvalidParams) as caught:
        provider.validate(req)
    with pytest.raises(InvalidParams):
        provider.estimate_cost(req)
    return caught.value.param


def refused_param(provider: Provider, media_type: str, operation: str, **params: Any) -> str:
    """The parameter a bad request is refused by: where the gateway decodes its inputs (a
    malformed data: URL), or else by the provider (`param_of`)."""
    try:
        req = request(media_type, operation, **params)
    except InvalidParams as exc:
        return exc.param
    return param_of(provider, req)


# --- speech --------------------------------------------------------------------------------


async def test_speech_is_a_wav_whose_length_follows_the_text() -> None:
    engine = LocalSpeech()
    short = await generate(engine, request("audio", "text_to_speech", "Hello."))
    long = await generate(engine, request(
        "audio", "text_to_speech",
        "Hello. This sentence is a good deal longer, so it takes longer to say out loud."))
    [short_out], [long_out] = short.outputs, long.outputs
    assert short_out.content_type == long_out.content_type == "audio/wav"
    channels, rate, width, short_s = decode_wav(short_out.data)
    assert (channels, rate, width) == (1, 22050, 2)
    _, _, _, long_s = decode_wav(long_out.data)
    assert 0 < short_s < long_s
    assert short_out.duration_s == pytest.approx(short_s, abs=0.001)
    assert long_out.duration_s == pytest.approx(long_s, abs=0.001)
    assert short.cost_usd_micros == engine.estimate_cost(
        request("audio", "text_to_speech", "Hello.")) == 1000


async def test_speech_speed_pitch_and_voice_change_the_audio() -> None:
    engine = LocalSpeech()
    text = "The quick brown fox jumps over the lazy dog, twice over."
    slow = (await generate(engine, request("audio", "text_to_speech", text, speed=100)))
    fast = (await generate(engine, request("audio", "text_to_speech", text, speed=400)))
    assert decode_wav(slow.outputs[0].data)[3] > 2 * decode_wav(fast.outputs[0].data)[3]
    low = await generate(engine, request("audio", "text_to_speech", text, pitch=10))
    high = await generate(engine, request("audio", "text_to_speech", text, pitch=90))
    assert low.outputs[0].data != high.outputs[0].data
    english = await generate(engine, request("audio", "text_to_speech", text, voice="en"))
    french = await generate(engine, request("audio", "text_to_speech", text, voice="FR"))
    assert english.outputs[0].data != french.outputs[0].data
    assert decode_wav(french.outputs[0].data)[3] > 0


def test_voices_are_what_espeak_lists() -> None:
    command = programs.espeak_ng()
    assert command is not None
    listed = subprocess.run([*command, "--voices"], capture_output=True, text=True,
                            check=True).stdout
    voices = local_speech.voices()
    ids = {v.id for v in voices}
    assert {"en", "en-us", "en-gb", "fr"} <= ids
    # Every language espeak-ng prints is offered, and nothing it does not print.
    languages = {line.split()[1] for line in listed.splitlines()[1:] if line.strip()}
    assert languages <= ids
    for voice in voices:
        assert voice.id in languages or voice.alias_of in languages
    [en] = [v for v in voices if v.id == "en"]
    assert en.alias_of is not None
    assert en.alias_of.startswith("en")
    assert "en" in LocalSpeech().pricing()["voices"]


def test_voice_listing_is_parsed_with_espeaks_priorities() -> None:
    listing = (
        "Pty Language       Age/Gender VoiceName          File                 Other Languages\n"
        " 5  en-029          --/M      English_(Caribbean) gmw/en-029           (en 10)\n"
        " 2  en-gb           --/M      English_(Great_Britain) gmw/en               (en 2)\n"
        " 5  en-gb-x-rp      --/F      English_(RP)       gmw/en-GB-x-rp       (en-gb 4)(en 5)\n"
        " 5  yue             --/M      Chinese_(Cantonese) sit/yue              (zh-yue 5)(zh 8)\n"
        " 5  yue             --/M      Chinese_(Cantonese_Jyutping) sit/yue-Latn-jyutping\n"
    )
    voices = {v.id: v for v in local_speech.parse_voices(listing)}
    assert set(voices) == {"en", "en-029", "en-gb", "en-gb-x-rp", "yue", "zh", "zh-yue"}
    assert voices["en"].alias_of == "en-gb"  # priority 2 beats 5 and 10
    assert voices["en-gb-x-rp"].gender == "female"
    assert voices["en-gb-x-rp"].name == "English (RP)"
    assert voices["yue"].name == "Chinese (Cantonese)"  # the first of a repeated id
    assert voices["zh"].alias_of == "yue"


@pytest.mark.parametrize(
    ("params", "param"),
    [({"voice": "klingon"}, "params.voice"), ({"voice": 3}, "params.voice"),
     ({"voice": "--help"}, "params.voice"), ({"speed": 79}, "params.speed"),
     ({"speed": 451}, "params.speed"), ({"speed": "fast"}, "params.speed"),
     ({"speed": 150.5}, "params.speed"), ({"pitch": 100}, "params.pitch"),
     ({"pitch": -1}, "params.pitch"), ({"pitch": True}, "params.pitch")],
)
def test_speech_names_bad_params(params: dict[str, Any], param: str) -> None:
    assert param_of(LocalSpeech(), request("audio", "text_to_speech", **params)) == param


# --- design --------------------------------------------------------------------------------


@pytest.mark.parametrize("template", sorted(TEMPLATES))
async def test_design_png_fills_each_templates_slots(template: str) -> None:
    layout = TEMPLATES[template]
    result = await generate(LocalDesign(), request(
        "design", "design_autofill", "Summer sale", template=template,
        fields={"headline": "Summer sale", "body": "Everything must go, this weekend only.",
                "cta": "Shop now"},
        colors={"background": "#204060", "accent": "#ffcc00", "text": "#fff"},
        image=data_url(Image.new("RGB", (64, 48), (0, 200, 0)))))
    [output] = result.outputs
    assert output.content_type == "image/png"
    decoded = Image.open(io.BytesIO(output.data))
    assert decoded.format == "PNG"
    assert decoded.size == (layout.width, layout.height) == (output.width, output.height)
    image = decoded.convert("RGB")
    x0, y0, x1, y1 = layout.image_box
    assert image.getpixel(((x0 + x1) // 2, (y0 + y1) // 2)) == (0, 200, 0)  # the image slot
    tx0, ty0, tx1, _ = layout.text_box
    assert image.getpixel((tx1 - 2, ty0 - 4)) == (0x20, 0x40, 0x60)  # the background colour
    assert image.getpixel((tx0 + 60, ty0 + 5)) == (0xFF, 0xCC, 0x00)  # the accent bar
    text_area = image.crop(layout.text_box)
    assert (255, 255, 255) in {c for _, c in text_area.getcolors(1 << 20) or []}  # text drawn
    assert result.cost_usd_micros == 3000


async def test_design_pdf_is_one_page_of_the_templates_size() -> None:
    result = await generate(LocalDesign(), request(
        "design", "design_autofill", "Grand opening", template="banner", format="pdf",
        fields={"cta": "Come along"}))
    [output] = result.outputs
    assert output.content_type == "application/pdf"
    data = output.data
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == 1
    assert re.search(rb"/Count\s+1\b", data)
    assert re.search(rb"/MediaBox\s*\[\s*0\s+0\s+1500(?:\.0+)?\s+500(?:\.0+)?\s*\]", data)
    assert (output.width, output.height) == (1500, 500)


async def test_design_reads_the_shared_output_format() -> None:
    # `output_format` is this engine's `format` (before, it was ignored and a PNG made).
    result = await generate(LocalDesign(), request(
        "design", "design_autofill", "Grand opening", output_format="pdf"))
    assert result.outputs[0].content_type == "application/pdf"


async def test_design_without_an_image_is_deterministic_per_seed() -> None:
    def req(seed: int) -> ProviderRequest:
        return request("design", "design_autofill", "Night market", template="social_square",
                       seed=seed)

    first, again, other = [await generate(LocalDesign(), req(s)) for s in (1, 1, 2)]
    assert first.outputs[0].data == again.outputs[0].data
    assert first.outputs[0].data != other.outputs[0].data


NOT_AN_IMAGE = "data:image/png;base64," + base64.b64encode(b"plain text, not a png").decode()


@pytest.mark.parametrize(
    ("params", "param"),
    [({"template": "billboard"}, "params.template"), ({"format": "gif"}, "params.format"),
     ({"colors": {"background": "red"}}, "params.colors.background"),
     ({"colors": {"accent": "#12345"}}, "params.colors.accent"),
     ({"colors": {"text": 0xFFFFFF}}, "params.colors.text"),
     ({"colors": {"shadow": "#000"}}, "params.colors.shadow"),
     ({"colors": "#000"}, "params.colors"),
     ({"fields": {"headline": 7}}, "params.fields.headline"),
     ({"fields": {"cta": "x" * 41}}, "params.fields.cta"),
     ({"fields": {"footer": "hi"}}, "params.fields.footer"),
     ({"fields": ["headline"]}, "params.fields"),
     ({"image": "https://example.com/a.png"}, "params.image"),
     ({"image": "data:image/png;base64,!!!"}, "params.image"),
     ({"image": NOT_AN_IMAGE}, "params.image"),
     ({"image": "data:image/svg+xml;base64,PHN2Zz4="}, "params.image"),
     ({"seed": "one"}, "params.seed")],
)
def test_design_names_bad_params(params: dict[str, Any], param: str) -> None:
    assert refused_param(LocalDesign(), "design", "design_autofill", **params) == param


def test_design_refuses_an_image_whose_type_lies() -> None:
    jpeg_labelled_png = data_url(halves(), "JPEG").replace("image/jpeg", "image/png")
    req = request("design", "design_autofill", image=jpeg_labelled_png)
    assert param_of(LocalDesign(), req) == "params.image"


def test_design_refuses_an_image_with_too_many_pixels() -> None:
    huge = data_url(Image.new("1", (7000, 6000)))  # 42 megapixels, a few kB as PNG
    req = request("design", "design_autofill", image=huge)
    assert param_of(LocalDesign(), req) == "params.image"


# --- video ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aspect", "resolution", "duration", "size"),
    [("16:9", "480p", 1.5, (854, 480)), ("9:16", "480p", 1, (480, 854)),
     ("1:1", "720p", 1, (720, 720))],
)
async def test_text_to_video_is_an_h264_title_card(tmp_path: Path, aspect: str,
                                                   resolution: str, duration: float,
                                                   size: tuple[int, int]) -> None:
    req = request("video", "text_to_video", "Opening night", duration_s=duration,
                  aspect_ratio=aspect, resolution=resolution)
    result = await generate(LocalVideo(), req)
    [output] = result.outputs
    assert output.content_type == "video/mp4"
    assert (output.width, output.height) == size
    assert output.duration_s == duration
    assert_mp4(output.data, tmp_path, width=size[0], height=size[1], duration_s=duration)
    first, last = frame(output.data, tmp_path, last=False), frame(output.data, tmp_path,
                                                                   last=True)
    assert first.size == last.size == size
    assert first.tobytes() != last.tobytes()  # the zoom moves
    rate = local_video.PRICES[f"usd_micros_per_second_{resolution}"]
    assert result.cost_usd_micros == math.ceil(duration) * rate


async def test_image_to_video_pans_and_zooms_over_the_image(tmp_path: Path) -> None:
    req = request("video", "image_to_video", "pan across", duration_s=2, aspect_ratio="16:9",
                  resolution="480p", image=data_url(halves()))
    [output] = (await generate(LocalVideo(), req)).outputs
    assert (output.width, output.height, output.duration_s) == (854, 480, 2)
    assert_mp4(output.data, tmp_path, width=854, height=480, duration_s=2)

    def blue_share(image: Image.Image) -> float:
        red, _, blue = (band.tobytes() for band in image.split())
        return sum(1 for r, b in zip(red, blue, strict=True) if b > r) / len(red)

    first, last = frame(output.data, tmp_path, last=False), frame(output.data, tmp_path,
                                                                   last=True)
    # The whole picture (half blue) at the start; zoomed in on the right (bluer) at the end.
    assert blue_share(first) == pytest.approx(0.5, abs=0.05)
    assert blue_share(last) > blue_share(first) + 0.05


@pytest.mark.parametrize(
    ("operation", "params", "param"),
    [("text_to_video", {"duration_s": 0.5}, "params.duration_s"),
     ("text_to_video", {"duration_s": 21}, "params.duration_s"),
     ("text_to_video", {"duration_s": "5"}, "params.duration_s"),
     ("text_to_video", {"duration_s": True}, "params.duration_s"),
     ("text_to_video", {"aspect_ratio": "4:3"}, "params.aspect_ratio"),
     ("text_to_video", {"resolution": "1080p"}, "params.resolution"),
     ("text_to_video", {"image": data_url(halves())}, "params.image"),
     ("image_to_video", {}, "params.image"),
     ("image_to_video", {"image": NOT_AN_IMAGE}, "params.image"),
     ("image_to_video", {"image": "not a url"}, "params.image")],
)
def test_video_names_bad_params(operation: str, params: dict[str, Any], param: str) -> None:
    assert refused_param(LocalVideo(), "video", operation, **params) == param


# --- 3D ------------------------------------------------------------------------------------


async def test_text_to_3d_sphere_is_a_valid_glb() -> None:
    result = await generate(Local3D(), request("model_3d", "text_to_3d", "a red planet",
                                               size=2, color="#ff0000", detail=8))
    [output] = result.outputs
    assert output.content_type == "model/gltf-binary"
    gltf, decoded = parse_glb(output.data)
    vertices, indices = check_mesh(gltf, decoded)
    assert len(vertices) == 9 * 17  # (rings + 1) x (segments + 1)
    assert len(indices) == 3 * (2 * 8 * 16 - 2 * 16)  # two per quad, one at each pole row
    assert gltf["accessors"][2]["componentType"] == 5123  # UNSIGNED_SHORT
    radii = {round(math.hypot(*v), 5) for v in vertices}
    assert radii == {1.0}
    assert gltf["materials"][0]["pbrMetallicRoughness"]["baseColorFactor"] == [1.0, 0, 0, 1.0]
    assert gltf["nodes"][0]["name"] == "a red planet"
    assert result.cost_usd_micros == 5000


async def test_text_to_3d_box_has_flat_faces_and_its_size() -> None:
    [output] = (await generate(Local3D(), request("model_3d", "text_to_3d", "a wooden crate",
                                                  size=0.5))).outputs
    gltf, decoded = parse_glb(output.data)
    vertices, indices = check_mesh(gltf, decoded)
    assert (len(vertices), len(indices)) == (24, 36)
    assert gltf["accessors"][0]["min"] == [-0.25] * 3
    assert gltf["accessors"][0]["max"] == [0.25] * 3
    normals = decoded[1]
    assert {tuple(normals[i:i + 3]) for i in range(0, len(normals), 3)} == {
        (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)}


async def test_text_to_3d_uses_32_bit_indices_past_65535_vertices() -> None:
    [output] = (await generate(Local3D(), request("model_3d", "text_to_3d", "a ball",
                                                  detail=256))).outputs
    gltf, decoded = parse_glb(output.data)
    assert gltf["accessors"][0]["count"] == 257 * 513 > 0xFFFF
    assert gltf["accessors"][2]["componentType"] == 5125  # UNSIGNED_INT
    assert max(decoded[2]) > 0xFFFF


async def test_text_to_3d_follows_the_prompt_and_seed() -> None:
    async def model(prompt: str, **params: Any) -> bytes:
        result = await generate(Local3D(), request("model_3d", "text_to_3d", prompt, **params))
        return result.outputs[0].data

    assert await model("a thing", seed=5) == await model("a thing", seed=5)
    assert await model("a thing", seed=5) != await model("a thing", seed=6)
    assert await model("a lamp") != await model("a chair")
    gltf, _ = parse_glb(await model("a thing", seed=5))
    assert json.loads(json.dumps(gltf))["scene"] == 0


@pytest.mark.parametrize(
    ("params", "param"),
    [({"shape": "torus"}, "params.shape"), ({"size": 0}, "params.size"),
     ({"size": 11}, "params.size"), ({"size": "big"}, "params.size"),
     ({"color": "blue"}, "params.color"), ({"detail": 3}, "params.detail"),
     ({"detail": 257}, "params.detail"), ({"detail": 8.5}, "params.detail"),
     ({"seed": "x"}, "params.seed"), ({"seed": False}, "params.seed")],
)
def test_3d_names_bad_params(params: dict[str, Any], param: str) -> None:
    assert param_of(Local3D(), request("model_3d", "text_to_3d", **params)) == param


# --- a missing binary ----------------------------------------------------------------------


@pytest.fixture
def no_system_binaries(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PATH holds only an empty directory: no system espeak-ng, ffmpeg or ffprobe, as on a
    machine with nothing but uv."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert programs.ffmpeg() == programs.packaged_ffmpeg()
    assert programs.espeak_ng() == [sys.executable, str(Path(programs.__file__).parent
                                                        / "builtin/local/espeak_library.py")]


@pytest.fixture
def no_binaries(no_system_binaries: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the system's programs nor the packaged ones (as if imageio-ffmpeg and
    espeakng-loader had been uninstalled)."""
    monkeypatch.setattr(programs, "packaged_ffmpeg", lambda: None)
    monkeypatch.setattr(programs, "packaged_espeak_ng", lambda: False)
    assert programs.ffmpeg() is None
    assert programs.espeak_ng() is None


@pytest.mark.usefixtures("no_binaries")
@pytest.mark.parametrize(
    ("engine", "req", "detail"),
    [(LocalSpeech(), request("audio", "text_to_speech", "hello"),
      "espeak-ng not found: apt-get install espeak-ng"),
     (LocalVideo(), request("video", "text_to_video", "hello", duration_s=1),
      "ffmpeg not found: apt-get install ffmpeg")],
)
async def test_a_missing_binary_is_reported_not_a_crash(engine: Provider, req: ProviderRequest,
                                                        detail: str) -> None:
    async with httpx.AsyncClient() as client:
        health = await engine.health(Credentials(), client)
        assert (health.ok, health.detail) == (False, detail)
        engine.validate(req)  # pricing still works: nothing is wrong with the request
        assert engine.estimate_cost(req) > 0
        assert engine.pricing()["local"] is True
        with pytest.raises(ProviderError) as caught:
            await engine.generate(req, Credentials(), client)
    assert caught.value.code == "engine_unavailable"
    assert caught.value.retryable is True
    assert caught.value.message == detail


@pytest.mark.usefixtures("no_binaries")
def test_the_plugin_host_builds_without_the_binaries() -> None:
    host = build_plugin_host(load_entry_points=False)
    assert {p.name for p in host.all()} >= {"local-image", "local-speech", "local-design",
                                            "local-video", "local-3d"}
    assert local_speech.voices() == []
    assert LocalSpeech().pricing()["voices"] == []


@pytest.mark.usefixtures("no_binaries")
async def test_bad_params_are_refused_before_any_engine_runs() -> None:
    with pytest.raises(InvalidParams) as caught:
        await generate(LocalVideo(), request("video", "text_to_video", resolution="4k"))
    assert caught.value.param == "params.resolution"
    with pytest.raises(InvalidParams) as caught:
        await generate(LocalSpeech(), request("audio", "text_to_speech", pitch=200))
    assert caught.value.param == "params.pitch"


def test_engines_say_what_they_are() -> None:
    for engine in (LocalSpeech(), LocalDesign(), LocalVideo(), Local3D()):
        assert engine.local is True
        assert engine.needs_api_key is False
        assert engine.description.startswith("Local engine")
        assert "not " in engine.description  # says plainly it is not a hosted model
    for table in (local_speech.PRICES, local_design.PRICES, local_video.PRICES,
                  local_3d.PRICES):
        assert table
        assert all(isinstance(v, int) and v > 0 for v in table.values())


async def test_a_hung_engine_is_killed_at_its_timeout() -> None:
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(ProviderError) as caught:
        await _media.run(hang, timeout_s=0.2)
    assert (caught.value.code, caught.value.retryable) == ("engine_timeout", True)


async def test_a_failing_engine_reports_its_stderr() -> None:
    crash = [sys.executable, "-c", "import sys; sys.stderr.write('no codec'); sys.exit(3)"]
    with pytest.raises(ProviderError) as caught:
        await _media.run(crash, timeout_s=30)
    assert caught.value.code == "engine_failed"
    assert caught.value.message.endswith("exited with 3: no codec")
    echoed = await _media.run([sys.executable, "-c", "import sys; print(sys.stdin.read()[::-1])"],
                              timeout_s=30, stdin=b"abc")
    assert echoed.strip() == b"cba"


# --- end to end through the gateway --------------------------------------------------------


def _decode_audio(data: bytes, output: dict[str, Any], tmp_path: Path) -> None:
    channels, _, _, duration = decode_wav(data)
    assert channels == 1
    assert duration > 0
    assert output["duration_s"] == pytest.approx(duration, abs=0.001)


def _decode_image(data: bytes, output: dict[str, Any], tmp_path: Path) -> None:
    assert Image.open(io.BytesIO(data)).size == (output["width"], output["height"]) == (96, 64)


def _decode_design(data: bytes, output: dict[str, Any], tmp_path: Path) -> None:
    assert Image.open(io.BytesIO(data)).size == (1080, 1080) == (output["width"],
                                                                 output["height"])


def _decode_design_pdf(data: bytes, output: dict[str, Any], tmp_path: Path) -> None:
    assert data.startswith(b"%PDF-")
    assert len(re.findall(rb"/Type\s*/Page\b", data)) == 1


def _decode_video(data: bytes, output: dict[str, Any], tmp_path: Path) -> None:
    assert (output["width"], output["height"], output["duration_s"]) == (480, 480, 1)
    assert_mp4(data, tmp_path, width=480, height=480, duration_s=1)


def _decode_model(data: bytes, output: dict[str, Any], tmp_path: Path) -> None:
    gltf, decoded = parse_glb(data)
    check_mesh(gltf, decoded)


SQUARE = {"duration_s": 1, "aspect_ratio": "1:1", "resolution": "480p"}
END_TO_END = {
    "audio": ({"type": "audio", "text": "Hello from the gateway."}, "local-speech",
              "audio/wav", _decode_audio),
    "image": ({"type": "image", "prompt": "a fox", "params": {"size": "96x64"}}, "local-image",
              "image/png", _decode_image),
    "design": ({"type": "design", "prompt": "Open day",
                "params": {"template": "social_square", "fields": {"cta": "Visit"}}},
               "local-design", "image/png", _decode_design),
    "design_pdf": ({"type": "design", "prompt": "Open day", "params": {"format": "pdf"}},
                   "local-design", "application/pdf", _decode_design_pdf),
    "video": ({"type": "video", "prompt": "The end", "params": SQUARE}, "local-video",
              "video/mp4", _decode_video),
    "image_to_video": ({"type": "video", "operation": "image_to_video", "prompt": "pan",
                        "params": {**SQUARE, "image": data_url(halves(64, 48))}},
                       "local-video", "video/mp4", _decode_video),
    "model_3d": ({"type": "model_3d", "prompt": "a small box"}, "local-3d",
                 "model/gltf-binary", _decode_model),
}


async def end_to_end(gateway: Gateway, tmp_path: Path, case: str) -> dict[str, Any]:
    """Generate END_TO_END[case] through the gateway, fetch and decode the output; returns
    the output as the API lists it."""
    body, provider, content_type, decode = END_TO_END[case]
    tenant = await gateway.tenant()
    r = await gateway.client.post("/v1/generations", json=body,
                                  headers={**tenant.auth, "Prefer": "wait=60"})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "succeeded", done
    assert done["provider"] == provider
    assert done["cost"]["charged"] > 0
    [output] = done["outputs"]
    assert output["content_type"] == content_type
    parts = urlsplit(output["url"])
    fetched = await gateway.client.get(f"{parts.path}?{parts.query}")
    assert fetched.status_code == 200
    assert fetched.headers["content-type"].startswith(content_type)
    assert len(fetched.content) == output["bytes"]
    decode(fetched.content, output, tmp_path)
    result: dict[str, Any] = output
    return result


@pytest.mark.parametrize("case", list(END_TO_END))
async def test_every_media_type_end_to_end(gateway: Gateway, tmp_path: Path,
                                           case: str) -> None:
    await end_to_end(gateway, tmp_path, case)


@pytest.mark.usefixtures("no_system_binaries")
@pytest.mark.parametrize("case", ["audio", "video", "image_to_video"])
async def test_speech_and_video_need_no_system_programs(gateway: Gateway, tmp_path: Path,
                                                        case: str) -> None:
    """On a machine with nothing but uv: espeak-ng's library (espeakng-loader) speaks, and
    imageio-ffmpeg's ffmpeg encodes the video and its poster frame."""
    output = await end_to_end(gateway, tmp_path, case)
    if case == "audio":
        assert len(output["peaks"]) == 256
        assert "en-us" in {v.id for v in local_speech.voices()}
    else:
        poster = await gateway.media(output["thumbnail_url"])
        assert poster.status_code == 200
        assert poster.content.startswith(b"\xff\xd8\xff")


@pytest.mark.usefixtures("no_binaries")
async def test_a_missing_binary_fails_the_generation_and_releases_the_credits(
        gateway: Gateway) -> None:
    tenant = await gateway.tenant(credits_mc=50_000)
    r = await gateway.client.post("/v1/generations", json={"type": "audio", "text": "hi"},
                                  headers={**tenant.auth, "Prefer": "wait=60"})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "failed"
    assert done["error"] == {"code": "engine_unavailable",
                             "message": "espeak-ng not found: apt-get install espeak-ng"}
    balance = (await gateway.client.get("/v1/credits/balance", headers=tenant.auth)).json()
    assert (balance["available"], balance["pending"]) == (50_000, 0)


async def test_the_engines_are_listed_as_local(gateway: Gateway) -> None:
    tenant = await gateway.tenant()
    r = await gateway.client.get("/v1/providers", headers=tenant.auth)
    listed = {p["name"]: p for p in r.json()["data"]}
    for name, media_type in (("local-speech", "audio"), ("local-design", "design"),
                             ("local-video", "video"), ("local-3d", "model_3d")):
        assert listed[name]["types"] == [media_type]
        assert listed[name]["local"] is True
        assert listed[name]["status"] == "available"
        assert listed[name]["description"].startswith("Local engine")
    assert "en" in listed["local-speech"]["pricing"]["voices"]
    assert listed["local-video"]["operations"] == ["image_to_video", "text_to_video"]
