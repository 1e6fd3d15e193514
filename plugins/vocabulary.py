"""The words the gateway and the providers share: media types and operations.

This is their one definition. The API's request schema, the job queues (one per media type),
the tenants' per-type prices and limits, and the provider contract check all take them from
here; the tuples are derived from the `Literal` types, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, get_args

#: What a generation makes (`GenerationCreate.type`, `Provider.media_types`).
MediaType = Literal["image", "audio", "video", "design", "model_3d"]

#: What a generation does (`GenerationCreate.operation`, `Provider.operations`).
Operation = Literal[
    "text_to_image", "image_edit", "image_variation", "text_to_speech", "list_voices",
    "voice_clone", "text_to_video", "image_to_video", "video_extend", "design_autofill",
    "text_to_3d", "image_to_3d",
]

MEDIA_TYPES: Final[tuple[MediaType, ...]] = get_args(MediaType)
OPERATIONS: Final[tuple[Operation, ...]] = get_args(Operation)

#: The operation of a request that names none, per media type.
DEFAULT_OPERATIONS: Final[Mapping[MediaType, Operation]] = MappingProxyType({
    "image": "text_to_image",
    "audio": "text_to_speech",
    "video": "text_to_video",
    "design": "design_autofill",
    "model_3d": "text_to_3d",
})
