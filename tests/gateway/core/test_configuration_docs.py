"""docs/configuration.md is what the settings' definitions render, and the definitions are
complete: every setting described, every variable `load_settings` reads listed, every default
shown the one it applies."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from gateway.core import settings as settings_module
from gateway.core.settings import (
    Settings,
    SettingsError,
    load_settings,
    reference_markdown,
    setting_descriptions,
)

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "configuration.md"
REGENERATE = "uv run python -m gateway.core.settings > docs/configuration.md"


def test_the_doc_is_what_the_definitions_render() -> None:
    assert DOC.read_text() == reference_markdown(), (
        f"docs/configuration.md is out of date: run `{REGENERATE}`")


def test_the_module_prints_the_doc() -> None:
    printed = subprocess.run([sys.executable, "-m", "gateway.core.settings"], cwd=ROOT,
                             capture_output=True, text=True, check=True)
    assert printed.stdout == reference_markdown()
    assert printed.stderr == ""


def test_every_setting_has_a_description() -> None:
    descriptions = setting_descriptions()
    missing = [f.name for f in msgspec.structs.fields(Settings)
               if len(descriptions.get(f.name, "")) < 10]
    assert not missing, f"add a `#:` comment above each of these in settings.py: {missing}"


def test_a_setting_without_a_description_stops_the_rendering(
        monkeypatch: pytest.MonkeyPatch) -> None:
    descriptions = setting_descriptions()
    del descriptions["job_lease_s"]
    monkeypatch.setattr(settings_module, "setting_descriptions", lambda: descriptions)
    with pytest.raises(ValueError, match="job_lease_s"):
        reference_markdown()


def test_every_variable_the_settings_read_is_listed() -> None:
    source = inspect.getsource(settings_module)
    read = set(re.findall(r'"(MEDIAHUB_[A-Z0-9_]*[A-Z0-9])"', source))
    assert "MEDIAHUB_EGRESS_ALLOW_LOOPBACK" in read  # the pattern finds them
    listed = set(re.findall(r"^\| `(MEDIAHUB_[A-Z0-9_<>]+)`", reference_markdown(), re.M))
    assert read - listed == set()
    assert {"MEDIAHUB_<PROVIDER>_API_KEY", "MEDIAHUB_<PROVIDER>_API_SECRET",
            "MEDIAHUB_<PROVIDER>_BASE_URL", "MEDIAHUB_<PROVIDER>_PRICES"} <= listed


def test_documented_defaults_are_the_ones_that_apply(tmp_path: Path) -> None:
    # The table shows the fields' defaults; load_settings has its own copies of them.
    loaded = load_settings({"MEDIAHUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/x.db",
                            "MEDIAHUB_SECRET_KEY": "s" * 40})
    defaults = Settings()
    differ = [f.name for f in msgspec.structs.fields(Settings)
              if f.name not in ("database_url", "secret_key")
              and getattr(loaded, f.name) != getattr(defaults, f.name)]
    assert differ == []


def test_documented_ranges_are_the_ones_checked() -> None:
    rows = re.findall(r"^\| `(MEDIAHUB_[A-Z0-9_]+)` \| integer (\d+)\.\.(\d+) \|",
                      reference_markdown(), re.M)
    assert len(rows) > 10
    for variable, lo, hi in rows:
        for value, ok in ((lo, True), (hi, True), (str(int(lo) - 1), False),
                          (str(int(hi) + 1), False)):
            env = {"MEDIAHUB_SECRET_KEY": "s" * 40, "MEDIAHUB_VALKEY_URL": "redis://x",
                   variable: value}
            if ok:
                load_settings(env)
            else:
                with pytest.raises(SettingsError, match=variable):
                    load_settings(env)
