"""The plugin host: a factory that builds the pluggy manager, and the typed facade the rest of
mediahub calls (never `pm.hook` directly)."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from types import MappingProxyType, ModuleType

import pluggy

from plugins import hookspecs
from plugins.provider import Provider

ENTRY_POINT_GROUP = "mediahub"
#: The built-in plugins, by module name (also their name in the block list).
BUILTIN_PLUGINS: tuple[str, ...] = (
    # Offline engines: no key, no network.
    "plugins.builtin.local.image", "plugins.builtin.local.speech",
    "plugins.builtin.local.design", "plugins.builtin.local.video",
    "plugins.builtin.local.model_3d",
    # Remote providers: unconfigured (skipped by routing) until their key is set.
    "plugins.builtin.openai", "plugins.builtin.openai_chat", "plugins.builtin.elevenlabs",
    "plugins.builtin.stability", "plugins.builtin.automatic1111", "plugins.builtin.runway",
    "plugins.builtin.kling", "plugins.builtin.veo", "plugins.builtin.canva",
)
#: The built-ins' module names before they moved under `plugins.builtin`: a block list
#: (`MEDIAHUB_DISABLED_PLUGINS`) written with one still blocks the plugin.
FORMER_NAMES: Mapping[str, str] = MappingProxyType({
    "plugins.local_image": "plugins.builtin.local.image",
    "plugins.local_speech": "plugins.builtin.local.speech",
    "plugins.local_design": "plugins.builtin.local.design",
    "plugins.local_video": "plugins.builtin.local.video",
    "plugins.local_3d": "plugins.builtin.local.model_3d",
    **{f"plugins.{vendor}": f"plugins.builtin.{vendor}"
       for vendor in ("openai", "elevenlabs", "stability", "automatic1111", "runway", "kling",
                      "veo", "canva")},
})


class DuplicateProvider(Exception):
    """Two plugins registered a provider of the same name: the host refuses to build."""


class PluginHost:
    """The registered providers, by name: what the gateway asks for a provider (`get`), the
    catalogue (`all`) and the candidates of a request (`for_operation`)."""

    def __init__(self, providers: dict[str, Provider]) -> None:
        self._providers = providers

    def get(self, name: str) -> Provider | None:
        return self._providers.get(name)

    def all(self) -> list[Provider]:
        return sorted(self._providers.values(), key=lambda p: p.name)

    def for_operation(self, media_type: str, operation: str) -> list[Provider]:
        """Providers that can serve `operation` on `media_type`, by name."""
        return [p for p in self.all()
                if media_type in p.media_types and operation in p.operations]


def build_plugin_host(*, load_entry_points: bool = True, blocked: Iterable[str] = (),
                      extra: Iterable[ModuleType | object] = ()) -> PluginHost:
    """Build a fresh plugin host; called once per process at start (and by tests).

    Built-ins register through the same hook as third-party plugins. `blocked` names plugins
    (module or entry-point names; a built-in's former name too, see `FORMER_NAMES`) to leave
    out. Returns the host; raises `DuplicateProvider` when two providers share a name.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = {FORMER_NAMES.get(name, name) for name in blocked}
    for name in blocked:
        pm.set_blocked(name)
    for module_name in BUILTIN_PLUGINS:
        if module_name not in blocked:
            pm.register(importlib.import_module(module_name), name=module_name)
    for plugin in extra:
        pm.register(plugin)
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()

    providers: dict[str, Provider] = {}

    def register(provider: Provider) -> None:
        if provider.name in providers:
            raise DuplicateProvider(f"provider {provider.name!r} is registered twice")
        providers[provider.name] = provider

    pm.hook.register_providers(register=register)
    return PluginHost(providers)
