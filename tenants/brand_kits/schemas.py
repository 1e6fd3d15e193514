"""The brand kit API's structs (docs/brand-kits.md) and the typed JSON of its columns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

OwnerType = Literal["tenant", "team", "customer"]
Hex = Annotated[str, msgspec.Meta(pattern=r"^#[0-9A-Fa-f]{6}$",
                                  description="#rrggbb", examples=["#0A7C66"])]
Word = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
#: Each word list holds at most this many entries.
MAX_WORDS = 32
Words = Annotated[list[Word], msgspec.Meta(max_length=MAX_WORDS)]
MAX_COLORS = 16
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Voice = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Color(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    hex: Hex


Colors = Annotated[list[Color], msgspec.Meta(min_length=1, max_length=MAX_COLORS)]


class Owner(msgspec.Struct, forbid_unknown_fields=True):
    """Whose kit it is. `id`: the team's id for `team`; ignored for `tenant` (the caller's
    tenant) and `customer` (the calling customer: one cannot make a kit for another)."""

    type: OwnerType
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None


class KitContent(msgspec.Struct, kw_only=True):
    """A kit's fields but its files: the `content` column and part of each snapshot."""

    name: str
    colors: list[Color]
    default_voice: str | None = None
    tone_words: list[str] = msgspec.field(default_factory=list)
    style_words: list[str] = msgspec.field(default_factory=list)
    do_words: list[str] = msgspec.field(default_factory=list)
    dont_words: list[str] = msgspec.field(default_factory=list)


class AssetOut(msgspec.Struct, kw_only=True):
    id: str
    kind: Literal["font", "logo"]
    filename: str
    content_type: str
    bytes: int
    sha256: str
    #: Logos: pixels; fonts: null.
    width: int | None
    height: int | None
    #: Fonts: the family name read from the file (null when it could not be read).
    family: str | None
    #: Where the file is served (`GET`, with the caller's credentials).
    url: str
    created_at: datetime
    object: str = "brand_asset"


class KitSnapshot(msgspec.Struct, kw_only=True):
    """A kit at one version: the `brand_kit_versions.snapshot` column."""

    version: int
    content: KitContent
    fonts: list[AssetOut] = msgspec.field(default_factory=list)
    logos: list[AssetOut] = msgspec.field(default_factory=list)


class BrandKitCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    colors: Colors
    #: Default: the calling customer's own kit for a customer, the tenant's otherwise.
    owner: Owner | None = None
    default_voice: Voice | None = None
    tone_words: Words = msgspec.field(default_factory=list)
    style_words: Words = msgspec.field(default_factory=list)
    do_words: Words = msgspec.field(default_factory=list)
    dont_words: Words = msgspec.field(default_factory=list)


class BrandKitUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Fields left out stay; `default_voice: null` clears it. The owner cannot change."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    colors: Colors | msgspec.UnsetType = msgspec.UNSET
    default_voice: Voice | msgspec.UnsetType | None = msgspec.UNSET
    tone_words: Words | msgspec.UnsetType = msgspec.UNSET
    style_words: Words | msgspec.UnsetType = msgspec.UNSET
    do_words: Words | msgspec.UnsetType = msgspec.UNSET
    dont_words: Words | msgspec.UnsetType = msgspec.UNSET


class OwnerOut(msgspec.Struct):
    type: str
    id: str


class BrandKitOut(msgspec.Struct, kw_only=True):
    id: str
    owner: OwnerOut
    version: int
    name: str
    colors: list[Color]
    fonts: list[AssetOut]
    logos: list[AssetOut]
    default_voice: str | None
    tone_words: list[str]
    style_words: list[str]
    do_words: list[str]
    dont_words: list[str]
    created_at: datetime
    updated_at: datetime
    object: str = "brand_kit"


class BrandKitList(msgspec.Struct):
    data: list[BrandKitOut]
    next_cursor: str | None
    object: str = "list"


class VersionOut(msgspec.Struct, kw_only=True):
    """A kit as it was at `version`: its fields and the files it had then."""

    kit_id: str
    version: int
    name: str
    colors: list[Color]
    fonts: list[AssetOut]
    logos: list[AssetOut]
    default_voice: str | None
    tone_words: list[str]
    style_words: list[str]
    do_words: list[str]
    dont_words: list[str]
    #: Who made this version (`user:<id>`, `key:<id>`).
    created_by: str
    created_at: datetime
    object: str = "brand_kit_version"


class VersionList(msgspec.Struct):
    data: list[VersionOut]
    #: The `after` for the next (older) page: a version number; null at the end.
    next_cursor: int | None
    object: str = "list"


class BrandKitDeleted(msgspec.Struct):
    id: str
    deleted: bool = True
    object: str = "brand_kit"


class AssetDeleted(msgspec.Struct):
    id: str
    deleted: bool = True
    object: str = "brand_asset"
