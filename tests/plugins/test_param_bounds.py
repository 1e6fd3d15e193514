"""Parameter declarations with choices, ranges and defaults (issue 14, contract C3): the
contract check refuses declarations the gateway could not honour, every builtin provider's
is clean, and the local engines declare exactly what their code takes."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from plugins.builtin.automatic1111 import Automatic1111
from plugins.builtin.canva import Canva
from plugins.builtin.elevenlabs import ElevenLabs
from plugins.builtin.kling import Kling
from plugins.builtin.local.design import LocalDesign
from plugins.builtin.local.image import LocalImage
from plugins.builtin.local.model_3d import Local3D
from plugins.builtin.local.speech import LocalSpeech
from plugins.builtin.local.video import LocalVideo
from plugins.builtin.openai import OpenAI
from plugins.builtin.runway import Runway
from plugins.builtin.stability import Stability
from plugins.builtin.veo import Veo
from plugins.errors import InvalidParams
from plugins.provider import ModelSpec, Provider, ProviderRequest, check_params, model_of
from plugins.testing import params_problems
from plugins.vocabulary import ParamLimits, ParamSpec, limit_problem

BUILTIN: list[type[Provider]] = [OpenAI, Stability, Automatic1111, ElevenLabs, Runway, Kling,
                                 Veo, Canva, LocalImage, LocalVideo, Local3D, LocalSpeech,
                                 LocalDesign]
LOCAL: dict[type[Provider], tuple[str, str]] = {
    LocalImage: ("image", "text_to_image"), LocalVideo: ("video", "text_to_video"),
    Local3D: ("model_3d", "text_to_3d"), LocalDesign: ("design", "design_autofill")}


class Declaring(Provider):
    name = "declaring"
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image"})
    params: ClassVar[dict[str, ParamSpec] | None] = {}

    def estimate_cost(self, request: ProviderRequest) -> int:
        return 1

    async def generate(self, *args: Any) -> Any:
        raise NotImplementedError


def declaring(params: dict[str, ParamSpec],
              models: dict[str, ModelSpec] | None = None) -> Provider:
    cls = type("Declared", (Declaring,), {"params": params, "models": models or {}})
    provider: Provider = cls()
    return provider


@pytest.mark.parametrize(("spec", "words"), [
    (ParamSpec(kind="string", choices=("a", "b"), default="c"), "default 'c' must be one of"),
    (ParamSpec(kind="number", minimum=0, maximum=1, default=2), "default 2 must be at most 1"),
    (ParamSpec(kind="integer", default="five"), "default 'five' must be an integer"),
    (ParamSpec(kind="string", minimum=1), "minimum/maximum are for numbers"),
    (ParamSpec(kind="number", minimum=2, maximum=1), "minimum is above its maximum"),
    (ParamSpec(kind="string", choices=()), "choices is empty"),
    (ParamSpec(kind="integer", choices=(1, "2")), "choices has '2'"),
])
def test_the_contract_check_refuses_a_declaration_the_gateway_cannot_honour(
        spec: ParamSpec, words: str) -> None:
    problems = params_problems(declaring({"knob": spec}))
    assert any(words in p for p in problems), problems


def test_the_contract_check_refuses_model_limits_outside_the_declaration() -> None:
    provider = declaring({"quality": ParamSpec(kind="string", choices=("low", "high"))}, {
        "m1": ModelSpec(operations=frozenset({"text_to_image"}),
                        limits={"quality": ParamLimits(choices=("ultra",)),
                                "steps": ParamLimits(maximum=5)})})
    problems = params_problems(provider)
    assert any("limits['quality'].choices has 'ultra'" in p for p in problems), problems
    assert any("limits['steps'] limits a parameter the provider does not declare" in p
               for p in problems), problems


@pytest.mark.parametrize("cls", BUILTIN, ids=lambda c: c.__name__)
def test_every_builtin_declaration_is_sound(cls: type[Provider]) -> None:
    assert params_problems(cls.__new__(cls)) == []


def test_a_boolean_is_not_the_number_one() -> None:
    assert limit_problem(True, choices=(1, 2), minimum=None, maximum=None) is not None
    assert limit_problem(1, choices=(1, 2), minimum=None, maximum=None) is None
    assert limit_problem(None, choices=(1, 2), minimum=None, maximum=None) is None


def test_a_model_is_selected_by_its_params_or_the_providers_defaults() -> None:
    veo = Veo()
    assert model_of(veo, {}, "text_to_video") is not None  # the default model
    selected = model_of(veo, {"model": "veo-2.0-generate-001"}, "text_to_video")
    assert selected is not None
    assert selected[0] == "veo-2.0-generate-001"
    request = ProviderRequest(type="video", operation="text_to_video", prompt="waves",
                              params={"model": "veo-2.0-generate-001", "resolution": "1080p"})
    with pytest.raises(InvalidParams) as refused:
        check_params(veo, request)
    assert refused.value.param == "params.resolution"


def _accepts(provider: Provider, media: str, operation: str, params: dict[str, Any]) -> bool:
    request = ProviderRequest(type=media, operation=operation, prompt="a red box",
                              params=params)
    try:
        provider.estimate_cost(request)
    except InvalidParams:
        return False
    return True


@pytest.mark.parametrize("cls", list(LOCAL), ids=lambda c: c.__name__)
def test_local_engines_declare_exactly_what_their_code_takes(cls: type[Provider]) -> None:
    provider = cls()
    media, operation = LOCAL[cls]
    assert provider.params is not None
    for name, spec in provider.params.items():
        if spec.operations and operation not in spec.operations:
            continue
        if spec.default is not None:
            assert _accepts(provider, media, operation, {name: spec.default}), name
        for choice in spec.choices or ():
            assert _accepts(provider, media, operation, {name: choice}), (name, choice)
        step = 1 if spec.kind == "integer" else 0.01
        if spec.minimum is not None:
            low = int(spec.minimum) if spec.kind == "integer" else spec.minimum
            assert _accepts(provider, media, operation, {name: low}), name
            assert not _accepts(provider, media, operation, {name: low - step}), name
        if spec.maximum is not None:
            high = int(spec.maximum) if spec.kind == "integer" else spec.maximum
            assert _accepts(provider, media, operation, {name: high}), name
            assert not _accepts(provider, media, operation, {name: high + step}), name


def test_local_speech_declares_its_speed_and_pitch() -> None:
    provider = LocalSpeech()
    assert provider.params is not None
    for name in ("speed", "pitch"):
        spec = provider.params[name]
        assert spec.minimum is not None
        assert spec.maximum is not None
        for value, ok in ((int(spec.minimum), True), (int(spec.maximum), True),
                          (int(spec.maximum) + 1, False)):
            request = ProviderRequest(type="audio", operation="text_to_speech",
                                      prompt="hello", params={name: value})
            try:
                provider._options(request)
            except InvalidParams:
                assert not ok, (name, value)
            else:
                assert ok, (name, value)
