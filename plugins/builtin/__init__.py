"""The providers that ship with mediahub, one module per vendor, and `local/` the offline
engines. Each module registers its provider through `register_providers`, the same hook as
third-party plugins (`plugins.host.BUILTIN_PLUGINS` lists them)."""
