"""Brand kits on the web and in generations (docs/brand-kits.md): `/v1/brand_kits` (routes),
the checks and storage of their fonts and logos (assets), and turning a kit into a
generation request's changes before it is planned (apply)."""
