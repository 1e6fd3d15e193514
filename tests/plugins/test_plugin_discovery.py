"""Plugins as a contract: a package installed with an entry point is discovered and served end
to end, the block list keeps it out, every provider keeps the reusable contract (which fails
broken providers), and every hook spec is documented and tested."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import io
import os
import re
import shutil
import subprocess
import sys
import wave
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, cast, get_args, get_type_hints
from urllib.parse import urlsplit

import httpx
import pluggy
import pytest

from gateway.app import create_app, start_services
from gateway.core.runtime import Runtime
from gateway.core.settings import Settings
from gateway.generations.schemas import GenerationCreate
from plugins import hookspecs
from plugins.host import ENTRY_POINT_GROUP, build_plugin_host
from plugins.provider import (
    Credentials,
    Health,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
)
from plugins.testing import (
    KNOWN_MEDIA_TYPES,
    KNOWN_OPERATIONS,
    check_provider_contract,
    request_from_params,
    sample_image,
)
from plugins.vocabulary import DEFAULT_OPERATIONS, ParamSpec
from tests.conftest import Gateway, make_settings

TESTS_DIR = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = TESTS_DIR / "example_plugin"
EXAMPLE_DIST = "mediahub-example-provider"
EXAMPLE_MODULE = "mediahub_example_provider"
EXAMPLE_ENTRY_POINT = "example"
EXAMPLE_PROVIDER = "example-echo"


# --- Installing the example package ------------------------------------------------------


def _example_entry_points() -> list[importlib.metadata.EntryPoint]:
    return [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            if ep.name == EXAMPLE_ENTRY_POINT]


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/example_plugin built and installed (module, metadata, entry point) into a private
    directory with uv; the project's environment is never touched."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to install tests/example_plugin; run the tests with `uv run`")
    target = tmp_path_factory.mktemp("example-site")
    command = [uv, "pip", "install", "--quiet", "--python", sys.executable, "--no-deps",
               "--target", str(target), str(EXAMPLE_DIR)]
    # The build backend (hatchling) normally comes from uv's cache; fetch it only if missing.
    done = subprocess.run([*command, "--offline"], capture_output=True, text=True, timeout=120,
                          check=False)
    if done.returncode != 0:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                              check=False)
    assert done.returncode == 0, f"installing {EXAMPLE_DIR} failed:\n{done.stderr}"
    assert (target / f"{EXAMPLE_MODULE}.py").is_file()
    return target


@pytest.fixture
def example_installed(example_site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The example package on `sys.path` for one test, and gone (module and path) after it."""
    assert importlib.util.find_spec(EXAMPLE_MODULE) is None, (
        f"{EXAMPLE_MODULE} is importable before the test installs it: uninstall it, or "
        "discovery is not what these tests prove")
    assert _example_entry_points() == []
    monkeypatch.syspath_prepend(str(example_site))
    importlib.invalidate_caches()
    try:
        yield example_site
    finally:
        sys.modules.pop(EXAMPLE_MODULE, None)


# --- Discovery, end to end ---------------------------------------------------------------


def test_an_installed_package_is_discovered_through_its_entry_point(
        example_installed: Path) -> None:
    [entry_point] = _example_entry_points()
    assert entry_point.value == EXAMPLE_MODULE
    assert entry_point.dist is not None
    assert entry_point.dist.name == EXAMPLE_DIST

    # Without entry points the host knows nothing of it, although it is importable now.
    assert build_plugin_host(load_entry_points=False).get(EXAMPLE_PROVIDER) is None

    host = build_plugin_host(load_entry_points=True)
    provider = host.get(EXAMPLE_PROVIDER)
    assert provider is not None
    # Loaded from the installed copy, not from the source folder under tests/.
    module = sys.modules[type(provider).__module__]
    assert module.__name__ == EXAMPLE_MODULE
    assert Path(str(module.__file__)).parent == example_installed
    assert EXAMPLE_PROVIDER in [p.name for p in host.for_operation("audio", "text_to_speech")]
    assert host.get("local-image") is not None  # built-ins are still there


@pytest.fixture
async def discovering_gateway(settings: Settings,
                              example_installed: Path) -> AsyncIterator[Gateway]:
    """The app with the plugin host it builds itself in production: entry points included."""
    services = await start_services(settings)
    app = create_app(settings, services=services)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
                               base_url="http://testserver")
    try:
        yield Gateway(app=app, client=client)
    finally:
        await client.aclose()
        await services.close()


async def test_the_gateway_serves_a_discovered_provider_end_to_end(
        discovering_gateway: Gateway) -> None:
    gw = discovering_gateway
    tenant = await gw.tenant()

    r = await gw.client.get("/v1/providers", headers=tenant.auth)
    assert r.status_code == 200, r.text
    listed = {p["name"]: p for p in r.json()["data"]}
    expected = {
        "name": EXAMPLE_PROVIDER, "types": ["audio"], "operations": ["text_to_speech"],
        "status": "available", "local": True,
        "description": "Example plugin: one short tone per word of the text (not speech).",
        "pricing": {"usd_micros_per_word": 50, "local": True},
    }
    assert {k: listed[EXAMPLE_PROVIDER].get(k) for k in expected} == expected

    r = await gw.client.post("/v1/generations", headers={**tenant.auth, "Prefer": "wait=30"},
                             json={"type": "audio", "text": "hello plugin world",
                                   "provider": EXAMPLE_PROVIDER})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "succeeded", done
    assert done["provider"] == EXAMPLE_PROVIDER
    assert done["operation"] == "text_to_speech"
    assert done["cost"]["charged"] == done["cost"]["estimated"] > 0
    [output] = done["outputs"]
    assert output["content_type"] == "audio/wav"
    assert output["duration_s"] == pytest.approx(0.15)

    parts = urlsplit(output["url"])
    fetched = await gw.client.get(f"{parts.path}?{parts.query}")
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "audio/wav"
    assert len(fetched.content) == output["bytes"]
    with wave.open(io.BytesIO(fetched.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        assert wav.getnframes() == 3 * 400  # three words, 50 ms each at 8 kHz


async def test_a_blocked_entry_point_plugin_is_not_loaded(example_installed: Path,
                                                          tmp_path: Path) -> None:
    assert _example_entry_points(), "nothing to block: the entry point is not installed"
    host = build_plugin_host(load_entry_points=True, blocked=[EXAMPLE_ENTRY_POINT])
    assert host.get(EXAMPLE_PROVIDER) is None
    assert host.get("local-image") is not None
    assert EXAMPLE_MODULE not in sys.modules  # blocked before its module is even imported

    # The same through settings (MEDIAHUB_DISABLED_PLUGINS), as the gateway builds its host.
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", tmp_path,
                             disabled_plugins=(EXAMPLE_ENTRY_POINT,))
    runtime = await Runtime.start(settings, with_queue=False)
    try:
        assert runtime.plugins.get(EXAMPLE_PROVIDER) is None
        assert runtime.plugins.get("local-image") is not None
    finally:
        await runtime.close()
    assert EXAMPLE_MODULE not in sys.modules


# --- The reusable provider contract ------------------------------------------------------

#: The offline built-ins: each remote provider runs the contract against its fake server in
#: its own test module (tests/test_provider_*.py).
BUILTIN_PROVIDERS = [p.name for p in build_plugin_host(load_entry_points=False).all() if p.local]
PROMPT = "a lighthouse at dusk"
#: More sample requests for built-ins whose operations take input media.
SAMPLE_REQUESTS: dict[str, list[ProviderRequest]] = {
    "local-video": [ProviderRequest(type="video", operation="image_to_video", prompt=PROMPT,
                                    params={"duration_s": 1, "resolution": "480p"},
                                    inputs={"image": sample_image(96, 64)})],
    "local-design": [ProviderRequest(type="design", operation="design_autofill", prompt=PROMPT,
                                     inputs={"image": sample_image()})],
}


def sample_requests(provider: Provider) -> list[ProviderRequest]:
    """One request per media type whose default operation the provider serves, and the
    provider's `SAMPLE_REQUESTS`."""
    return [ProviderRequest(type=media_type, operation=DEFAULT_OPERATIONS[media_type],
                            prompt=PROMPT)
            for media_type in sorted(provider.media_types)
            if DEFAULT_OPERATIONS.get(media_type) in provider.operations
            ] + SAMPLE_REQUESTS.get(provider.name, [])


def test_the_contract_knows_the_gateways_media_types_and_operations() -> None:
    hints = get_type_hints(GenerationCreate)
    assert set(get_args(hints["type"])) == KNOWN_MEDIA_TYPES
    [operation] = [arg for arg in get_args(hints["operation"]) if arg is not type(None)]
    assert set(get_args(operation)) == KNOWN_OPERATIONS


@pytest.mark.parametrize("name", BUILTIN_PROVIDERS)
async def test_every_builtin_provider_keeps_the_contract(name: str) -> None:
    provider = build_plugin_host(load_entry_points=False).get(name)
    assert provider is not None
    requests = sample_requests(provider)
    assert requests, f"{name} serves no default operation: add it to SAMPLE_REQUESTS"
    for request in requests:
        await check_provider_contract(provider, request)


async def test_the_example_provider_keeps_the_contract(example_installed: Path) -> None:
    provider = build_plugin_host(load_entry_points=True).get(EXAMPLE_PROVIDER)
    assert provider is not None
    result = await check_provider_contract(
        provider, ProviderRequest(type="audio", operation="text_to_speech", prompt="one two"))
    with wave.open(io.BytesIO(result.outputs[0].data)) as wav:
        assert wav.getnframes() == 2 * 400


class Tidy(Provider):
    """A provider that keeps the contract; each broken one below changes one thing."""

    name = "tidy"
    media_types = frozenset({"image"})
    operations = frozenset({"text_to_image"})
    needs_api_key = False
    params: ClassVar[Mapping[str, ParamSpec] | None] = {}

    def estimate_cost(self, request: ProviderRequest) -> int:
        return 100

    def outputs(self) -> list[ProviderOutput]:
        return [ProviderOutput(data=b"\x89PNG", content_type="image/png", width=1, height=1)]

    def cost(self) -> int:
        return 80

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        return ProviderResult(outputs=self.outputs(), cost_usd_micros=self.cost())


class NegativeCost(Tidy):
    def cost(self) -> int:
        return -1


class CostAboveEstimate(Tidy):
    def cost(self) -> int:
        return 101


class NegativeEstimate(Tidy):
    def estimate_cost(self, request: ProviderRequest) -> int:
        return -100


class NoOutputs(Tidy):
    def outputs(self) -> list[ProviderOutput]:
        return []


class EmptyBytes(Tidy):
    def outputs(self) -> list[ProviderOutput]:
        return [ProviderOutput(data=b"", content_type="image/png")]


class BadContentType(Tidy):
    def outputs(self) -> list[ProviderOutput]:
        return [ProviderOutput(data=b"\x89PNG", content_type="png")]


class BadMediaType(Tidy):
    media_types = frozenset({"image", "hologram"})


class BadOperation(Tidy):
    operations = frozenset({"text_to_image", "telepathy"})


class NoOperations(Tidy):
    operations = frozenset()


class BadName(Tidy):
    name = "Tidy Provider"


class Undeclared(Tidy):
    params = None


class SharedNameOtherKind(Tidy):
    # `seed` is the vocabulary's integer; a provider must not make it mean something else.
    params = {"seed": ParamSpec(kind="string")}


class MediaNotAnInput(Tidy):
    # Input files have fixed names (the gateway fetches and decodes them); no others.
    params = {"picture": ParamSpec(kind="media")}


class ParamForAnotherOperation(Tidy):
    params = {"steps": ParamSpec(kind="integer", operations=frozenset({"image_edit"}))}


class HealthNotHealth(Tidy):
    async def health(self, credentials: Credentials, client: httpx.AsyncClient) -> Health:
        return cast(Health, {"ok": True})


IMAGE_REQUEST = ProviderRequest(type="image", operation="text_to_image", prompt=PROMPT)


async def test_a_provider_that_keeps_the_contract_passes() -> None:
    result = await check_provider_contract(Tidy(), IMAGE_REQUEST)
    assert result.cost_usd_micros == 80


BROKEN: list[tuple[type[Tidy], str]] = [
    (NegativeCost, r"generate\(\)\.cost_usd_micros must not be negative"),
    (CostAboveEstimate, r"must not exceed estimate_cost\(\)"),
    (NegativeEstimate, r"estimate_cost\(\) must not be negative"),
    (NoOutputs, r"at least one output"),
    (EmptyBytes, r"outputs\[0\]\.data must be non-empty bytes"),
    (BadContentType, r"outputs\[0\]\.content_type must be a MIME type"),
    (BadMediaType, r"media_types has unknown values \['hologram'\]"),
    (BadOperation, r"operations has unknown values \['telepathy'\]"),
    (NoOperations, r"operations must be a non-empty frozenset"),
    (BadName, r"name must be"),
    (HealthNotHealth, r"health\(\) must return a Health"),
    (Undeclared, r"params is not declared"),
    (SharedNameOtherKind, r"shared vocabulary's 'seed' and must be of kind 'integer'"),
    (MediaNotAnInput, r"media and media_list are for the input files"),
    (ParamForAnotherOperation, r"operations the provider does not serve: \['image_edit'\]"),
]


@pytest.mark.parametrize(("broken", "message"),
                         [pytest.param(cls, msg, id=cls.__name__) for cls, msg in BROKEN])
async def test_the_contract_fails_a_broken_provider(broken: type[Tidy], message: str) -> None:
    with pytest.raises(AssertionError, match=message) as caught:
        await check_provider_contract(broken(), IMAGE_REQUEST)
    # Exactly one rule is broken, and only that one is reported.
    assert str(caught.value).count("\n- ") == 1, str(caught.value)


async def test_the_contract_fails_a_request_with_input_media_left_in_params() -> None:
    # Providers get inputs decoded in `inputs`; a sample request built otherwise is refused.
    request = ProviderRequest(type="image", operation="text_to_image", prompt=PROMPT,
                              params={"image": "data:image/png;base64,iVBORw0KGgo="})
    with pytest.raises(AssertionError, match=r"carries params\.image") as caught:
        await check_provider_contract(Tidy(), request)
    assert str(caught.value).count("\n- ") == 1, str(caught.value)


async def test_the_contract_fails_a_sample_request_with_an_undeclared_param() -> None:
    # The gateway would refuse it (422 unknown_param): the declaration must list what the
    # provider reads.
    request = ProviderRequest(type="image", operation="text_to_image", prompt=PROMPT,
                              params={"size": "64x64"})
    with pytest.raises(AssertionError, match=r"params\.size is refused by the provider's "
                                             r"params declaration") as caught:
        await check_provider_contract(Tidy(), request)
    assert str(caught.value).count("\n- ") == 1, str(caught.value)


def test_request_from_params_decodes_inputs_as_the_gateway_does() -> None:
    image = sample_image()
    request = request_from_params(type="image", operation="image_edit", prompt=PROMPT,
                                  params={"image": image.as_data_url(), "size": "64x64",
                                          "samples": None})
    assert request.params == {"size": "64x64"}
    assert request.inputs == {"image": image}
    assert request.samples == []


async def test_the_contract_fails_a_request_the_provider_does_not_serve() -> None:
    with pytest.raises(AssertionError, match="not one the provider declares"):
        await check_provider_contract(
            Tidy(), ProviderRequest(type="video", operation="text_to_video", prompt=PROMPT))


# --- Hook specs: documented and tested ---------------------------------------------------


def _hookspecs() -> dict[str, Callable[..., Any]]:
    marker = f"{hookspecs.PROJECT}_spec"
    specs: dict[str, Callable[..., Any]] = {
        name: fn for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, marker)}
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    assert set(specs) == set(vars(pm.hook)), "the marker scan and pluggy disagree on the hooks"
    return specs


HOOKSPECS = sorted(_hookspecs())


def test_there_are_hookspecs() -> None:
    assert HOOKSPECS


@pytest.mark.parametrize("name", HOOKSPECS)
def test_every_hookspec_documents_when_it_is_called_and_what_to_return(name: str) -> None:
    spec = _hookspecs()[name]
    doc = inspect.getdoc(spec) or ""
    assert doc, f"{name} has no docstring"
    assert re.search(r"\bcalled\b", doc, re.IGNORECASE), f"{name}: say when it is called"
    assert re.search(r"\breturns?\b", doc, re.IGNORECASE), f"{name}: say what to return"
    signature = inspect.signature(spec)
    assert signature.return_annotation is not inspect.Signature.empty, \
        f"{name}: annotate the return type"
    for parameter in signature.parameters.values():
        assert parameter.annotation is not inspect.Parameter.empty, \
            f"{name}: annotate {parameter.name}"
        assert re.search(rf"\b{parameter.name}\b", doc), \
            f"{name}: the docstring does not say what {parameter.name} is"


@pytest.mark.parametrize("name", HOOKSPECS)
def test_every_hookspec_is_named_in_a_test(name: str) -> None:
    # This file names hooks only through the scan above, so it does not count.
    sources = [path for path in TESTS_DIR.rglob("*.py")
               if EXAMPLE_DIR not in path.parents and path != Path(__file__).resolve()]
    using = [path.name for path in sources
             if re.search(rf"\b{name}\b", path.read_text(encoding="utf-8"))]
    assert using, f"no test under tests/ names the hook {name}"

