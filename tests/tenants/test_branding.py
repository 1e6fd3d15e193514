"""Typed branding: rows stored while branding was free-form still load, field by field."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from tenants.branding import BrandColors, Branding, BrandingIn, load_branding

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=3),
    max_leaves=10)
keys = st.sampled_from(["display_name", "colors", "fonts", "css_variables", "support",
                        "show_provider_names", "sender_email", "logo", "primary_color",
                        "logo_url", "version"]) | st.text(max_size=10)


@given(st.dictionaries(keys, json_values, max_size=8))
def test_any_stored_object_loads_into_valid_branding(raw: dict[str, Any]) -> None:
    loaded = load_branding(raw)
    assert isinstance(loaded, Branding)
    # What it loads is itself valid branding: it round-trips through the strict type.
    settable = {k: v for k, v in msgspec.to_builtins(loaded).items()
                if k not in ("logo", "favicon", "icon")}
    assert msgspec.convert(settable, BrandingIn) is not None


def test_valid_fields_are_kept_and_the_legacy_colour_is_mapped() -> None:
    loaded = load_branding({"primary_color": "#ff0066", "logo_url": "https://x.test/l.png",
                            "show_provider_names": True, "sender_email": "not valid",
                            "support": {"email": "a@b.example"}})
    assert loaded.colors == BrandColors(primary="#ff0066")
    assert loaded.show_provider_names is True
    assert loaded.sender_email is None
    assert loaded.support is not None
    assert loaded.support.email == "a@b.example"
    assert load_branding({"primary_color": "red}</style>"}).colors is None
    assert load_branding(None) == Branding()
    assert load_branding(["x"]) == Branding()
