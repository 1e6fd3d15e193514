"""The plugin host: built-ins through the same hook as third-party plugins, hard errors on
duplicates, a block list, and the local image engine's contract; and the one `data:` URL
decoder of plugins/media.py."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from plugins.builtin.local.image import LocalImage
from plugins.errors import InvalidParams
from plugins.hookspecs import hookimpl
from plugins.host import BUILTIN_PLUGINS, FORMER_NAMES, DuplicateProvider, build_plugin_host
from plugins.media import MediaInput, decode_data_url, split_inputs
from plugins.provider import Credentials, Provider, ProviderRequest


def test_builtins_register_through_the_hook() -> None:
    host = build_plugin_host(load_entry_points=False)
    assert [p.name for p in host.all()] == [
        "automatic1111", "canva", "elevenlabs", "kling", "local-3d", "local-design",
        "local-image", "local-speech", "local-video", "openai", "openai_chat", "runway",
        "stability", "veo"]
    assert [p.name for p in host.for_operation("image", "text_to_image")] == [
        "automatic1111", "local-image", "openai", "stability"]
    assert [p.name for p in host.for_operation("audio", "text_to_speech")] == [
        "elevenlabs", "local-speech", "openai"]
    assert [p.name for p in host.for_operation("image", "image_edit")] == [
        "automatic1111", "local-image", "openai"]
    assert [p.name for p in host.for_operation("video", "image_to_video")] == [
        "kling", "local-video", "runway", "veo"]
    assert [p.name for p in host.for_operation("design", "design_autofill")] == [
        "canva", "local-design"]
    assert [p.name for p in host.for_operation("model_3d", "image_to_3d")] == ["stability"]


def test_a_blocked_plugin_is_not_loaded() -> None:
    host = build_plugin_host(load_entry_points=False, blocked=["plugins.builtin.local.image"])
    assert "local-image" not in [p.name for p in host.all()]
    assert "local-image" not in [p.name for p in host.for_operation("image", "text_to_image")]


def test_a_builtin_is_still_blocked_by_its_former_module_name() -> None:
    # Block lists written before the built-ins moved under plugins.builtin keep working.
    host = build_plugin_host(load_entry_points=False,
                             blocked=["plugins.local_image", "plugins.openai"])
    assert {"local-image", "openai"}.isdisjoint(p.name for p in host.all())
    # openai_chat came after the move: it never had another name.
    assert set(FORMER_NAMES.values()) == set(BUILTIN_PLUGINS) - {"plugins.builtin.openai_chat"}


def test_a_duplicate_provider_name_is_a_hard_error() -> None:
    class Twin:
        @hookimpl
        def register_providers(self, register: Callable[[Provider], None]) -> None:
            register(LocalImage())

    with pytest.raises(DuplicateProvider, match="local-image"):
        build_plugin_host(load_entry_points=False, extra=[Twin()])


async def test_local_image_honours_size_seed_and_style() -> None:
    engine = LocalImage()
    request = ProviderRequest(type="image", operation="text_to_image", prompt="a red fox",
                              params={"size": "320x200", "seed": 42, "style": "shapes"})
    async with httpx.AsyncClient() as client:
        first = await engine.generate(request, Credentials(), client)
        again = await engine.generate(request, Credentials(), client)
        other = await engine.generate(
            ProviderRequest(type="image", operation="text_to_image", prompt="a red fox",
                            params={"size": "320x200", "seed": 43, "style": "shapes"}),
            Credentials(), client)
    [output] = first.outputs
    image = Image.open(io.BytesIO(output.data))
    assert image.format == "PNG"
    assert image.size == (320, 200) == (output.width, output.height)
    assert again.outputs[0].data == output.data  # same seed, same picture
    assert other.outputs[0].data != output.data
    assert first.cost_usd_micros == engine.estimate_cost(request) == 2000


@pytest.mark.parametrize(
    ("params", "param"),
    [({"size": "10x10"}, "params.size"), ({"size": "axb"}, "params.size"),
     ({"style": "baroque"}, "params.style"), ({"seed": "seven"}, "params.seed"),
     ({"seed": True}, "params.seed")],
)
def test_local_image_refuses_bad_params_before_pricing(params: dict[str, object],
                                                       param: str) -> None:
    request = ProviderRequest(type="image", operation="text_to_image", prompt="x", params=params)
    with pytest.raises(InvalidParams) as caught:
        LocalImage().estimate_cost(request)
    assert caught.value.param == param


def test_cost_grows_with_megapixels() -> None:
    def cost(size: str) -> int:
        return LocalImage().estimate_cost(
            ProviderRequest(type="image", operation="text_to_image", prompt="x",
                            params={"size": size}))

    assert cost("1024x1024") == 2000
    assert cost("1025x1024") == 4000
    assert cost("2048x2048") == 8000


# --- plugins.media: the one data: URL decoder ----------------------------------------------


def test_decode_data_url_gives_the_bytes_and_the_lower_cased_type() -> None:
    png = b"\x89PNG\r\n\x1a\n"
    encoded = base64.b64encode(png).decode()
    decoded = decode_data_url(f" data:Image/PNG;base64,{encoded[:4]}\n{encoded[4:]} ", "p")
    assert decoded == MediaInput(data=png, content_type="image/png")
    assert decode_data_url(decoded.as_data_url(), "p") == decoded
    assert decoded.as_base64() == encoded


@pytest.mark.parametrize("value", [
    None, 7, "https://example.com/a.png", "data:image/png,plain", "data:png;base64,AAAA",
    "data:image/png;base64,!!!", "data:image/png;base64,", "data:image/png;base64,AAA",
])
def test_decode_data_url_refuses_what_is_not_one_naming_the_param(value: object) -> None:
    with pytest.raises(InvalidParams) as caught:
        decode_data_url(value, "params.image")
    assert caught.value.param == "params.image"


def test_split_inputs_takes_the_input_media_out_of_params() -> None:
    image = MediaInput(data=b"img", content_type="image/png")
    sample = MediaInput(data=b"ID3", content_type="audio/mpeg")
    plain, inputs, samples = split_inputs({
        "image": image.as_data_url(), "mask": None, "samples": [sample.as_data_url()] * 2,
        "size": "64x64", "image_url": "https://example.com/a.png"})
    assert plain == {"size": "64x64", "image_url": "https://example.com/a.png"}
    assert inputs == {"image": image}
    assert samples == [sample, sample]
    with pytest.raises(InvalidParams) as caught:
        split_inputs({"samples": [sample.as_data_url(), "data:audio/mpeg;base64,@"]})
    assert caught.value.param == "params.samples[1]"


def test_every_operation_belongs_to_exactly_one_media_type() -> None:
    from plugins.vocabulary import DEFAULT_OPERATIONS, MEDIA_TYPES, OPERATIONS, TYPE_OPERATIONS

    assert set(TYPE_OPERATIONS) == set(MEDIA_TYPES)
    owners = [op for ops in TYPE_OPERATIONS.values() for op in ops]
    assert sorted(owners) == sorted(OPERATIONS)
    assert all(DEFAULT_OPERATIONS[t] in TYPE_OPERATIONS[t] for t in MEDIA_TYPES)
