"""A local 3D engine: builds a binary glTF 2.0 (GLB) mesh in pure Python, with no key and no
network.

It is not a 3D model generator: it makes a UV sphere or a box whose size and colour come from
the prompt (or `params.seed`), so the whole path works offline. Any glTF viewer opens it.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import struct
import sys
from array import array
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import httpx
import msgspec

from plugins.builtin.local import _media
from plugins.errors import InvalidParams
from plugins.hookspecs import hookimpl
from plugins.provider import (
    Credentials,
    Provider,
    ProviderOutput,
    ProviderRequest,
    ProviderResult,
)
from plugins.vocabulary import ParamSpec, common, declare

SHAPES = ("sphere", "box")
SIZE_M = (0.1, 10.0)
DETAIL = (4, 256)
DEFAULT_DETAIL = 24
# The compute price of this local engine (not a vendor's bill): USD micros per model.
PRICES: Final[Mapping[str, int]] = {"usd_micros_per_model": 5000}

GLB_MAGIC = 0x46546C67  # "glTF"
GLB_VERSION = 2
CHUNK_JSON = 0x4E4F534A  # "JSON"
CHUNK_BIN = 0x004E4942  # "BIN\0"
FLOAT, UNSIGNED_SHORT, UNSIGNED_INT = 5126, 5123, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
TRIANGLES = 4

_SPHERE_WORDS = {"sphere", "ball", "orb", "planet", "globe", "moon", "bubble", "pearl"}
_BOX_WORDS = {"box", "cube", "crate", "block", "brick", "dice", "die", "chest", "building"}


class Options(msgspec.Struct, frozen=True, kw_only=True):
    shape: str
    size_m: tuple[float, float, float]
    color: tuple[int, int, int]
    detail: int
    name: str


@dataclass(slots=True)
class Mesh:
    positions: array[float]  # float32, x y z per vertex
    normals: array[float]  # float32, x y z per vertex
    indices: list[int]  # three per triangle, counter-clockwise seen from outside


def options(request: ProviderRequest) -> Options:
    """The request's checked options; raises `InvalidParams` naming the bad parameter."""
    params = request.params
    rng = random.Random(_media.seed_of(params, request.prompt))
    shape = params.get("shape", "auto")
    if shape == "auto":
        words = set(request.prompt.lower().replace(",", " ").replace(".", " ").split())
        if words & _BOX_WORDS:
            shape = "box"
        elif words & _SPHERE_WORDS:
            shape = "sphere"
        else:
            shape = rng.choice(SHAPES)
    if shape not in SHAPES:
        raise InvalidParams("shape must be sphere, box or auto", param="params.shape")
    if "size" in params:
        side = _media.number_param(params, "size", default=1.0, low=SIZE_M[0], high=SIZE_M[1])
        size = (float(side),) * 3
    else:
        size = (round(rng.uniform(0.5, 1.5), 3), round(rng.uniform(0.5, 1.5), 3),
                round(rng.uniform(0.5, 1.5), 3))
        if shape == "sphere":
            size = (size[0],) * 3
    if "color" in params:
        color = _media.parse_hex_color(params["color"], "params.color")
    else:
        color = (rng.randrange(40, 256), rng.randrange(40, 256), rng.randrange(40, 256))
    detail = int(_media.number_param(params, "detail", default=DEFAULT_DETAIL, low=DETAIL[0],
                                     high=DETAIL[1], integer=True))
    return Options(shape=shape, size_m=size, color=color, detail=detail,
                   name=request.prompt.strip()[:64] or shape)


def sphere(diameter_m: float, rings: int, segments: int) -> Mesh:
    """A UV sphere centred on the origin, y up; no degenerate triangles at the poles."""
    radius = diameter_m / 2
    positions, normals = array("f"), array("f")
    for i in range(rings + 1):
        theta = math.pi * i / rings
        sin_t, cos_t = math.sin(theta), math.cos(theta)
        for j in range(segments + 1):
            phi = 2 * math.pi * j / segments
            n = (sin_t * math.cos(phi), cos_t, sin_t * math.sin(phi))
            normals.extend(n)
            positions.extend(radius * c for c in n)
    indices: list[int] = []
    row = segments + 1
    for i in range(rings):
        for j in range(segments):
            a = i * row + j
            b, c, d = a + row, a + row + 1, a + 1
            if i != 0:
                indices += (a, d, b)
            if i != rings - 1:
                indices += (d, c, b)
    return Mesh(positions=positions, normals=normals, indices=indices)


def box(size_m: tuple[float, float, float]) -> Mesh:
    """A box centred on the origin, four vertices per face so each face has a flat normal."""
    half = [s / 2 for s in size_m]
    positions, normals = array("f"), array("f")
    indices: list[int] = []
    for axis in range(3):
        u_axis, v_axis = (axis + 1) % 3, (axis + 2) % 3
        for sign in (1.0, -1.0):
            base = len(positions) // 3
            # u x v = sign * axis, so (-u-v, +u-v, +u+v, -u+v) runs counter-clockwise outside.
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                point = [0.0, 0.0, 0.0]
                point[axis] = sign * half[axis]
                point[u_axis] = du * half[u_axis]
                point[v_axis] = dv * sign * half[v_axis]
                normal = [0.0, 0.0, 0.0]
                normal[axis] = sign
                positions.extend(point)
                normals.extend(normal)
            indices += (base, base + 1, base + 2, base, base + 2, base + 3)
    return Mesh(positions=positions, normals=normals, indices=indices)


def _linear(channel: int) -> float:
    """sRGB 0-255 → linear 0-1, as glTF's baseColorFactor wants."""
    c = channel / 255
    return round(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4, 6)


def _le(values: array[Any]) -> bytes:
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _pad(data: bytes, filler: bytes) -> bytes:
    return data + filler * (-len(data) % 4)


def to_glb(mesh: Mesh, *, color: tuple[int, int, int], name: str) -> bytes:
    """Pack `mesh` as a GLB: a 12-byte header, a JSON chunk (space-padded) and a BIN chunk
    (zero-padded), every chunk 4-byte aligned."""
    count = len(mesh.positions) // 3
    wide = count > 0xFFFF  # 65535 is the primitive-restart value of UNSIGNED_SHORT
    index_type = UNSIGNED_INT if wide else UNSIGNED_SHORT
    position_bytes, normal_bytes = _le(mesh.positions), _le(mesh.normals)
    index_bytes = _le(array("I" if wide else "H", mesh.indices))
    views, offset = [], 0
    for data, target in ((position_bytes, ARRAY_BUFFER), (normal_bytes, ARRAY_BUFFER),
                         (index_bytes, ELEMENT_ARRAY_BUFFER)):
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(data),
                      "target": target})
        offset += len(_pad(data, b"\0"))
    binary = b"".join(_pad(d, b"\0") for d in (position_bytes, normal_bytes, index_bytes))
    axes = [mesh.positions[k::3] for k in range(3)]
    gltf: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": "mediahub local-3d (offline engine)"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": name}],
        "meshes": [{"name": name, "primitives": [{
            "attributes": {"POSITION": 0, "NORMAL": 1}, "indices": 2, "material": 0,
            "mode": TRIANGLES}]}],
        "materials": [{"name": "base", "pbrMetallicRoughness": {
            "baseColorFactor": [*(_linear(c) for c in color), 1.0],
            "metallicFactor": 0.0, "roughnessFactor": 0.6}}],
        "accessors": [
            {"bufferView": 0, "componentType": FLOAT, "count": count, "type": "VEC3",
             "min": [min(a) for a in axes], "max": [max(a) for a in axes]},
            {"bufferView": 1, "componentType": FLOAT, "count": count, "type": "VEC3"},
            {"bufferView": 2, "componentType": index_type, "count": len(mesh.indices),
             "type": "SCALAR"},
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": len(binary)}],
    }
    json_chunk = _pad(json.dumps(gltf, separators=(",", ":")).encode(), b" ")
    total = 12 + 8 + len(json_chunk) + 8 + len(binary)
    return b"".join((struct.pack("<III", GLB_MAGIC, GLB_VERSION, total),
                     struct.pack("<II", len(json_chunk), CHUNK_JSON), json_chunk,
                     struct.pack("<II", len(binary), CHUNK_BIN), binary))


def build(opts: Options) -> bytes:
    """The model as GLB bytes (CPU-bound: run it off the event loop)."""
    if opts.shape == "sphere":
        mesh = sphere(opts.size_m[0], opts.detail, opts.detail * 2)
    else:
        mesh = box(opts.size_m)
    return to_glb(mesh, color=opts.color, name=opts.name)


class Local3D(Provider):
    name = "local-3d"
    #: Drawn here, billed by no one: a call cut off by a crash is simply made again.
    idempotency_keys = True
    description = ("Local engine (pure Python): a GLB sphere or box sized and coloured from the "
                   "prompt, made offline; not a 3D generation model.")
    media_types = frozenset({"model_3d"})
    operations = frozenset({"text_to_3d"})
    params: ClassVar[Mapping[str, ParamSpec] | None] = {
        **common("seed"),
        "size": declare("size", minimum=SIZE_M[0], maximum=SIZE_M[1],
                        description="The model's side in metres (random when left out)"),
        "shape": ParamSpec(kind="string", max_length=16, choices=("auto", *SHAPES),
                           default="auto", description="auto picks one from the prompt"),
        "color": ParamSpec(kind="string", max_length=16,
                           description="A hex colour such as #f97316 (random when left out)"),
        "detail": ParamSpec(kind="integer", minimum=DETAIL[0], maximum=DETAIL[1],
                            default=DEFAULT_DETAIL, description="Mesh segments: more is smoother"),
    }
    local = True
    prices = PRICES
    needs_api_key = False


    def estimate_cost(self, request: ProviderRequest) -> int:
        options(request)
        return self.prices["usd_micros_per_model"]

    async def generate(self, request: ProviderRequest, credentials: Credentials,
                       client: httpx.AsyncClient) -> ProviderResult:
        data = await asyncio.to_thread(build, options(request))
        return ProviderResult(
            outputs=[ProviderOutput(data=data, content_type="model/gltf-binary")],
            cost_usd_micros=self.prices["usd_micros_per_model"],
        )

    def pricing(self) -> dict[str, Any]:
        return {**self.prices, "local": True, "shapes": list(SHAPES)}


@hookimpl
def register_providers(register: Callable[[Provider], None]) -> None:
    register(Local3D())
