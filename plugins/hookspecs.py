"""mediahub's plugin hooks. Few on purpose: add one only when a real plugin needs it."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from plugins.provider import Provider

PROJECT = "mediahub"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_providers(register: Callable[[Provider], None]) -> None:
    """Register provider instances.

    Called once per process when the plugin host is built, for built-in and installed plugins
    alike. Call `register(provider)` once for each `Provider` instance the plugin offers; a
    provider whose `name` is already registered is a hard error. Return nothing.
    """
