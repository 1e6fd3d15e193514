"""Every provider's published price table matches what `plugins/README.md` says of it, and
operators can override prices with `MEDIAHUB_<PROVIDER>_PRICES`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gateway.core.runtime import apply_price_overrides
from gateway.core.settings import SettingsError, load_settings
from plugins.host import build_plugin_host
from plugins.provider import Provider, ProviderRequest

README = Path(__file__).resolve().parents[3] / "plugins" / "README.md"
_BLOCK = re.compile(r"<!-- prices ([a-z0-9_-]+) -->\n(.*?)<!-- /prices -->", re.DOTALL)
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([0-9,_]+)\s*\|")


def readme_prices() -> dict[str, dict[str, int]]:
    """The `<!-- prices NAME -->` tables of plugins/README.md: price name → USD micros."""
    tables: dict[str, dict[str, int]] = {}
    for name, body in _BLOCK.findall(README.read_text()):
        rows = {}
        for line in body.splitlines():
            match = _ROW.match(line)
            if match:
                rows[match[1]] = int(match[2].replace(",", "").replace("_", ""))
        tables[name] = rows
    return tables


def priced_providers() -> dict[str, Provider]:
    host = build_plugin_host(load_entry_points=False)
    return {p.name: p for p in host.all() if type(p).prices}


def test_readme_price_tables_are_the_providers_tables() -> None:
    documented = readme_prices()
    providers = priced_providers()
    assert providers, "no built-in provider publishes a price table"
    assert set(documented) == set(providers), (
        "plugins/README.md must have one prices table for each provider with prices")
    for name, provider in providers.items():
        assert documented[name] == dict(type(provider).prices), name


def test_each_documented_price_states_its_date() -> None:
    for name, body in _BLOCK.findall(README.read_text()):
        for line in body.splitlines():
            if _ROW.match(line):
                assert re.search(r"\b20\d\d-\d\d(-\d\d)?\b", line), (name, line)


def test_operator_overrides_a_price() -> None:
    providers = priced_providers()
    name, provider = next(iter(sorted(providers.items())))
    key = next(iter(type(provider).prices))
    env_name = name.upper().replace("-", "_")
    settings = load_settings({f"MEDIAHUB_{env_name}_PRICES": f'{{"{key}": 12345}}'})
    published = dict(type(provider).prices)
    host = build_plugin_host(load_entry_points=False)
    apply_price_overrides(host, settings.provider_prices)
    overridden = host.get(name)
    assert overridden is not None
    assert overridden.prices == {**published, key: 12345}
    assert dict(type(overridden).prices) == published  # the class's table is untouched


@pytest.mark.parametrize(("raw", "problem"), [
    ("not json", "must be a JSON object"),
    ('{"x": -1}', "must not be negative"),
    ('{"x": 1.5}', "must be a JSON object"),
])
def test_bad_price_overrides_are_refused_at_start(raw: str, problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"MEDIAHUB_ANYTHING_PRICES": raw})
    assert problem in str(caught.value)


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"NO_SUCH_PROVIDER": {"x": 1}}, "no installed provider"),
    ("unknown-price", "has no prices named"),
])
def test_overrides_naming_what_does_not_exist_stop_the_start(overrides: Any,
                                                             problem: str) -> None:
    host = build_plugin_host(load_entry_points=False)
    if overrides == "unknown-price":
        name = next(iter(sorted(priced_providers())))
        overrides = {name.upper().replace("-", "_"): {"no-such-price": 1}}
    with pytest.raises(SettingsError) as caught:
        apply_price_overrides(host, overrides)
    assert problem in str(caught.value)


def test_a_local_engine_is_priced_from_its_overridable_table() -> None:
    settings = load_settings({"MEDIAHUB_LOCAL_IMAGE_PRICES": '{"usd_micros_per_megapixel": 7}'})
    host = build_plugin_host(load_entry_points=False)
    engine = host.get("local-image")
    assert engine is not None
    request = ProviderRequest(type="image", operation="text_to_image", prompt="x",
                              params={"size": "2048x1024"})  # 2 megapixels
    assert engine.estimate_cost(request) == 2 * 2000
    apply_price_overrides(host, settings.provider_prices)
    assert engine.estimate_cost(request) == 2 * 7
    assert engine.pricing()["usd_micros_per_megapixel"] == 7
