"""A tenant's branding, typed: what the portal, the sign-in page and mail show in the
reseller's name (docs/reseller.md, "Branding").

`BrandingIn` is what the operator and the tenant send (unknown fields refused); `Branding` is
what is stored and shown: the same fields plus the references of the images uploaded through
`PUT /v1/tenant/branding/{name}` (never set by a PATCH). Rows written while branding was a
free-form object still load: `load_branding` keeps what fits the types (a legacy
`primary_color` becomes `colors.primary`) and drops the rest, field by field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from tenants.kernel.db import StructJSON

HexColor = Annotated[str, msgspec.Meta(
    pattern=r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$",
    description="A CSS hex colour: #rgb, #rgba, #rrggbb or #rrggbbaa.")]
#: A font family name as CSS writes it unquoted or quoted (letters, digits, spaces, `-`, `_`).
FontFamily = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _-]{0,63}$")]
FontRole = Literal["body", "heading", "mono"]
CssVariableName = Annotated[str, msgspec.Meta(pattern=r"^--[a-z0-9-]{1,62}$")]
#: A custom property's value: nothing that could close a declaration or a block, or open
#: markup (`;{}<>`), and no backslash escapes or comments that could smuggle them.
CssVariableValue = Annotated[str, msgspec.Meta(
    min_length=1, max_length=200, pattern=r"^[^;{}<>\\]*$")]
Email = Annotated[str, msgspec.Meta(
    max_length=254, pattern=r"^[^@\s<>\"',;]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")]
HttpUrl = Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^https?://[^\s<>\"']+$")]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

#: The images a tenant may upload (`PUT /v1/tenant/branding/{name}`).
AssetName = Literal["logo", "favicon", "icon"]
ASSET_NAMES: tuple[AssetName, ...] = ("logo", "favicon", "icon")


class BrandColors(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The portal's named colours; each a hex colour, so none can break out of a style
    sheet."""

    primary: HexColor | None = None
    secondary: HexColor | None = None
    accent: HexColor | None = None
    background: HexColor | None = None
    surface: HexColor | None = None
    text: HexColor | None = None
    muted: HexColor | None = None
    border: HexColor | None = None
    success: HexColor | None = None
    warning: HexColor | None = None
    error: HexColor | None = None


class FontStack(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A font family and the fallbacks the browser tries after it (a generic family such as
    `sans-serif` last)."""

    family: FontFamily
    fallbacks: Annotated[list[FontFamily], msgspec.Meta(max_length=8)] = msgspec.field(
        default_factory=list)


class SupportLinks(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Where the tenant's customers get help."""

    email: Email | None = None
    url: HttpUrl | None = None
    terms_url: HttpUrl | None = None
    privacy_url: HttpUrl | None = None


class BrandAsset(msgspec.Struct, omit_defaults=True):
    """An uploaded brand image. `url` is the public path that serves it (relative to any of
    the platform's hosts; `v` changes with the content, so it may be cached long)."""

    url: str
    content_type: str
    bytes: int
    width: int
    height: int
    sha256: str
    updated_at: datetime


class BrandingIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Branding as the operator (`POST`/`PATCH /admin/v1/tenants`) and the tenant
    (`PATCH /v1/tenant`) set it. A PATCH replaces these fields as a whole; uploaded images
    are kept."""

    #: The name shown to customers (default: the tenant's `name`).
    display_name: DisplayName | None = None
    colors: BrandColors | None = None
    fonts: dict[FontRole, FontStack] = msgspec.field(default_factory=dict)
    #: CSS custom properties the portal sets on `:root`.
    css_variables: Annotated[dict[CssVariableName, CssVariableValue],
                             msgspec.Meta(max_length=64)] = msgspec.field(default_factory=dict)
    support: SupportLinks | None = None
    #: Whether customers see which upstream provider served them (default false:
    #: white-label, neutral names and no USD prices).
    show_provider_names: bool = False
    #: The From address of mail sent in the tenant's name (default: the platform's).
    sender_email: Email | None = None
    #: Whether anyone may sign up on the tenant's portal (`POST /v1/auth/signup`); default
    #: false: only invited staff, portal sessions its backend mints and existing users.
    open_signup: bool = False


class Branding(BrandingIn, omit_defaults=True):
    """Branding as stored and shown: `BrandingIn` plus the uploaded images."""

    logo: BrandAsset | None = None
    favicon: BrandAsset | None = None
    icon: BrandAsset | None = None


_FIELDS = tuple(f.name for f in msgspec.structs.fields(Branding))


def load_branding(raw: Any) -> Branding:
    """A stored branding object as `Branding`, however old the row: each field that fits its
    type is kept, anything else (unknown keys, values an older free-form version accepted)
    is dropped. Never raises."""
    if not isinstance(raw, dict):
        return Branding()
    try:
        return msgspec.convert(raw, Branding)
    except msgspec.ValidationError:
        pass
    kept: dict[str, Any] = {}
    for name in _FIELDS:
        if name not in raw:
            continue
        try:
            msgspec.convert({name: raw[name]}, Branding)
        except msgspec.ValidationError:
            continue
        kept[name] = raw[name]
    legacy = raw.get("primary_color")
    if isinstance(legacy, str) and "colors" not in kept:
        kept["colors"] = {"primary": legacy}
    try:
        return msgspec.convert(kept, Branding)
    except msgspec.ValidationError:
        kept.pop("colors", None)
        return msgspec.convert(kept, Branding)


def with_assets(new: BrandingIn, old: Branding) -> Branding:
    """`new` settings keeping `old`'s uploaded images: what a PATCH of `branding` stores."""
    values = msgspec.structs.asdict(new)
    return Branding(**values, logo=old.logo, favicon=old.favicon, icon=old.icon)


class BrandingJSON(StructJSON):
    """The `tenants.branding` column: reads with `load_branding` (old rows load)."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(Branding)

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        return None if value is None else load_branding(value)
