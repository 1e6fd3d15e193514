"""Brand compliance of one image (issue #15): how much of it keeps to a brand kit's palette,
whether its text reads (WCAG contrast) and whether the kit's logo is on it.

Pure analysis: bytes in, a `ComplianceReport` out; no database, no HTTP. The route
`GET /v1/generations/{id}/brand_compliance?brand_kit_id=` loads the output (a video through
`video_frame`) and the kit, calls `assess` off the event loop (it is CPU-bound: 20 to 60 ms of
CPU for a 1024 px image, about 100 ms more with a logo to find; docs/brand-compliance.md) and
renders the report.

Method, thresholds and verdict rules are in docs/brand-compliance.md; the constants below are
the numbers it quotes. Colours are compared in CIELAB (D65) with CIEDE2000: coloraide for the
few dominant colours against the palette, a vectorised copy of the same formula (checked
against coloraide and Sharma et al.'s published pairs in the tests) for every pixel colour.
Bad input raises `InvalidRequest` with a stable code, so the route answers it as a 422.
"""

from __future__ import annotations

import io
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt
from coloraide import Color
from PIL import Image

from gateway.generations.derivatives import MAX_PIXELS, POSTER_AT_S, grab_frame
from tenants.kernel.errors import InvalidRequest

Box = tuple[int, int, int, int]
Floats = npt.NDArray[np.float64]

#: Long side, px, of the copy whose pixels are clustered and counted against the palette.
ANALYSIS_PX: Final = 128
#: Clusters sought for the dominant colours (fewer when the image has fewer colours).
DOMINANT_K: Final = 5
#: The k-means seed: the same image always gives the same report.
KMEANS_SEED: Final = 0
KMEANS_MAX_ITERATIONS: Final = 20
#: k-means stops once no centre moves further than this (Lab units, far below what shows).
KMEANS_SETTLED: Final = 0.05
#: A cluster whose most common exact colour has this share of it is that colour.
MODE_SHARE: Final = 0.25
#: A dominant colour at least this share of the image, outside tolerance, is named off-palette.
OFF_PALETTE_MIN_SHARE: Final = 0.05
#: Below this within-tolerance share the verdict is fail; below `WARN_BELOW_SHARE`, warn.
FAIL_BELOW_SHARE: Final = 0.4
WARN_BELOW_SHARE: Final = 0.7
#: WCAG 2.x AA for body text; below `FAIL_BELOW_RATIO` (AA for large text) even large text fails.
AA_RATIO: Final = 4.5
FAIL_BELOW_RATIO: Final = 3.0
#: Long side, px, of a text region's copy clustered for its two colours.
REGION_PX: Final = 256
#: Long side, px, of the greyscale copy the logo is searched in.
LOGO_SEARCH_PX: Final = 384
#: The smallest logo, px in that copy, still matched (long side, short side): smaller
#: templates match noise.
LOGO_MIN_PX: Final = (24, 6)
#: Logo sizes tried: its long side as a share of the image's long side, 6 % to 65 %, each
#: 1.12 times the last (a logo between two steps is at most 6 % off one of them).
LOGO_SCALES: Final = tuple(0.06 * 1.12 ** n for n in range(22))
#: Normalised cross-correlation at or above which the logo counts as found: the drawn logos of
#: the tests score 0.88 to 0.96 at any size, smooth photographs without it up to 0.72.
LOGO_THRESHOLD: Final = 0.8
#: Tolerance (ΔE2000) a caller may ask for; 10 is "clearly the same colour family".
MAX_TOLERANCE: Final = 100.0

_HEX = re.compile(r"#[0-9a-fA-F]{6}")
# sRGB (D65) to XYZ, and the D65 white from its chromaticity (0.3127, 0.3290): the values
# coloraide's "lab-d65" uses, so both ΔE paths agree.
_RGB_TO_XYZ = np.array([[0.4123907992659593, 0.357584339383878, 0.1804807884018343],
                        [0.21263900587151024, 0.715168678767756, 0.07219231536073371],
                        [0.01933081871559182, 0.11919477979462598, 0.9505321522496607]])
_WHITE = np.array([0.3127 / 0.3290, 1.0, (1 - 0.3127 - 0.3290) / 0.3290])
_EPSILON, _KAPPA = 216 / 24389, 24389 / 27


class PaletteColour(msgspec.Struct, frozen=True):
    name: str
    hex: str  # "#RRGGBB"


class TextRegion(msgspec.Struct, frozen=True):
    box: tuple[int, int, int, int]  # x, y, w, h in px of the image
    text: str = ""


class DominantColour(msgspec.Struct):
    hex: str
    share: float
    nearest: str | None
    nearest_hex: str | None
    delta_e: float | None


class ContrastCheck(msgspec.Struct):
    box: tuple[int, int, int, int]
    text: str
    foreground: str
    background: str
    ratio: float
    passes_aa: bool


class LogoCheck(msgspec.Struct):
    expected: bool
    found: bool
    score: float | None
    box: tuple[int, int, int, int] | None


class Reason(msgspec.Struct):
    code: str
    message: str


class ComplianceReport(msgspec.Struct):
    verdict: Literal["pass", "warn", "fail"]
    dominant_colours: list[DominantColour]
    within_tolerance_share: float
    tolerance: float
    contrast: list[ContrastCheck]
    logo: LogoCheck
    reasons: list[Reason]


Severity = Literal["warn", "fail"]


# --- colour maths -------------------------------------------------------------------------

def srgb_to_lab(rgb: npt.NDArray[np.uint8]) -> Floats:
    """CIELAB (D65) of 8-bit sRGB colours, shape (..., 3) in and out."""
    c = rgb.astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = (linear @ _RGB_TO_XYZ.T) / _WHITE
    f = np.where(t > _EPSILON, np.cbrt(t), (_KAPPA * t + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                     200 * (f[..., 1] - f[..., 2])], axis=-1)


def ciede2000(lab1: Floats, lab2: Floats) -> Floats:
    """CIEDE2000 (kL = kC = kH = 1) between every row of `lab1` (N, 3) and of `lab2` (M, 3):
    an (N, M) array. Sharma, Wu and Dalal (2005), equations 2 to 17."""
    l1, a1, b1 = (lab1[:, i, None] for i in range(3))
    l2, a2, b2 = (lab2[None, :, i] for i in range(3))
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    c7 = c_mean ** 7
    g = 0.5 * (1 - np.sqrt(c7 / (c7 + 25.0 ** 7)))
    ap1, ap2 = (1 + g) * a1, (1 + g) * a2
    cp1, cp2 = np.hypot(ap1, b1), np.hypot(ap2, b2)
    hp1 = np.degrees(np.arctan2(b1, ap1)) % 360
    hp2 = np.degrees(np.arctan2(b2, ap2)) % 360
    chroma_product = cp1 * cp2
    dh = hp2 - hp1
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chroma_product == 0, 0.0, dh)
    d_l, d_c = l2 - l1, cp2 - cp1
    d_h = 2 * np.sqrt(chroma_product) * np.sin(np.radians(dh / 2))
    l_mean, cp_mean = (l1 + l2) / 2, (cp1 + cp2) / 2
    h_sum = hp1 + hp2
    h_mean = np.where(chroma_product == 0, h_sum,
                      np.where(np.abs(hp1 - hp2) <= 180, h_sum / 2,
                               np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2)))
    t = (1 - 0.17 * np.cos(np.radians(h_mean - 30)) + 0.24 * np.cos(np.radians(2 * h_mean))
         + 0.32 * np.cos(np.radians(3 * h_mean + 6))
         - 0.20 * np.cos(np.radians(4 * h_mean - 63)))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c = 1 + 0.045 * cp_mean
    s_h = 1 + 0.015 * cp_mean * t
    cpm7 = cp_mean ** 7
    r_c = 2 * np.sqrt(cpm7 / (cpm7 + 25.0 ** 7))
    r_t = -np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2)))) * r_c
    result: Floats = np.sqrt((d_l / s_l) ** 2 + (d_c / s_c) ** 2 + (d_h / s_h) ** 2
                             + r_t * (d_c / s_c) * (d_h / s_h))
    return result


def _lab_to_hex(lab: Floats) -> str:
    srgb = Color("lab-d65", [float(v) for v in lab]).convert("srgb").clip()
    return srgb.to_string(hex=True).upper()


def _hex_to_rgb(value: str) -> tuple[int, int, int]:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def relative_luminance(hex_colour: str) -> float:
    """WCAG 2.x relative luminance of an sRGB "#RRGGBB" colour, 0 (black) to 1 (white)."""
    channels = [c / 255 for c in _hex_to_rgb(hex_colour)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.x contrast ratio of two "#RRGGBB" colours, 1 to 21, order-free."""
    high, low = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


# --- clustering ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Colours:
    """The distinct colours of some pixels, in Lab, each with how many pixels have it."""

    lab: Floats
    count: Floats


def _distinct(pixels: npt.NDArray[np.uint8]) -> _Colours:
    flat = pixels.reshape(-1, 3).astype(np.uint32)
    codes = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    unique, counts = np.unique(codes, return_counts=True)
    rgb = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255],
                   axis=-1).astype(np.uint8)
    return _Colours(lab=srgb_to_lab(rgb), count=counts.astype(np.float64))


def kmeans(points: Floats, weights: Floats, k: int, *,
           seed: int = KMEANS_SEED) -> tuple[Floats, npt.NDArray[np.intp]]:
    """Weighted k-means (k-means++ start, Lloyd steps, Euclidean in Lab) of `points` (N, 3):
    the centres (at most `k`; fewer when there are fewer distinct points) and each point's
    cluster. Deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    k = min(k, len(points))
    centres = [points[rng.choice(len(points), p=weights / weights.sum())]]
    nearest = ((points - centres[0]) ** 2).sum(axis=1)
    while len(centres) < k:
        mass = weights * nearest
        if mass.sum() <= 0:  # every point already sits on a centre
            break
        chosen = points[rng.choice(len(points), p=mass / mass.sum())]
        centres.append(chosen)
        nearest = np.minimum(nearest, ((points - chosen) ** 2).sum(axis=1))
    centre_array = np.array(centres)
    labels = np.zeros(len(points), dtype=np.intp)
    squared = (points ** 2).sum(axis=1)[:, None]
    for _ in range(KMEANS_MAX_ITERATIONS):
        distances = squared - 2 * points @ centre_array.T + (centre_array ** 2).sum(axis=1)
        labels = distances.argmin(axis=1)
        mass = np.bincount(labels, weights=weights, minlength=len(centre_array))
        moved = centre_array.copy()
        for axis in range(3):
            sums = np.bincount(labels, weights=weights * points[:, axis],
                               minlength=len(centre_array))
            # An emptied cluster keeps its centre (it is dropped below).
            moved[:, axis] = np.where(mass > 0, sums / np.maximum(mass, 1e-12),
                                      centre_array[:, axis])
        shift = float(np.abs(moved - centre_array).max())
        centre_array = moved
        if shift < KMEANS_SETTLED:
            break
    used = np.unique(labels)
    remap = np.full(len(centre_array), -1, dtype=np.intp)
    remap[used] = np.arange(len(used))
    return centre_array[used], remap[labels]


def _cluster_colour(lab: Floats, weights: Floats, centre: Floats) -> Floats:
    """A cluster's colour: its most common exact colour when at least `MODE_SHARE` of its
    pixels have it (a flat design colour, which anti-aliased edges would otherwise pull
    towards its neighbours), else its centre (a photograph's many near colours)."""
    top = int(np.argmax(weights))
    if weights[top] >= MODE_SHARE * weights.sum():
        mode: Floats = lab[top]
        return mode
    return centre


def _clusters(colours: _Colours, k: int) -> list[tuple[Floats, float]]:
    """Up to `k` (colour in Lab, pixel count) clusters of `colours`, largest first."""
    centres, labels = kmeans(colours.lab, colours.count, k)
    found = []
    for j, centre in enumerate(centres):
        member = labels == j
        found.append((_cluster_colour(colours.lab[member], colours.count[member], centre),
                      float(colours.count[member].sum())))
    return sorted(found, key=lambda item: -item[1])


# --- input ----------------------------------------------------------------------------------

def _open_rgb(data: bytes, param: str) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise InvalidRequest("the image is too large to assess",
                                     code="image_too_large", param=param)
            opened.load()
            image: Image.Image = opened.copy()
    except InvalidRequest:
        raise
    except Exception as exc:  # Pillow raises many kinds for a corrupt or foreign file
        raise InvalidRequest(f"{param} is not an image Pillow can read",
                             code="invalid_image", param=param) from exc
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels are judged as they show on a white page.
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flat.alpha_composite(rgba)
        return flat.convert("RGB")
    return image.convert("RGB")


def _palette_lab(palette: Sequence[PaletteColour]) -> Floats:
    for index, colour in enumerate(palette):
        if not _HEX.fullmatch(colour.hex):
            raise InvalidRequest(f"palette colour {colour.name!r} must be #RRGGBB",
                                 code="invalid_colour", param=f"palette[{index}].hex")
    rgb = np.array([_hex_to_rgb(c.hex) for c in palette], dtype=np.uint8).reshape(-1, 3)
    return srgb_to_lab(rgb)


def _check_regions(regions: Sequence[TextRegion], size: tuple[int, int]) -> None:
    width, height = size
    for index, region in enumerate(regions):
        x, y, w, h = region.box
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise InvalidRequest(f"text region {index} must lie inside the {width}x{height} "
                                 "image with a positive width and height",
                                 code="invalid_text_region", param=f"text_regions[{index}].box")


# --- the checks ---------------------------------------------------------------------------

def _downscale(image: Image.Image, long_side: int, resample: Image.Resampling) -> Image.Image:
    scale = long_side / max(image.size)
    if scale >= 1:
        return image
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        resample)


def _dominant(colours: _Colours, palette: Sequence[PaletteColour]) -> list[DominantColour]:
    total = float(colours.count.sum())
    dominant = []
    for lab, count in _clusters(colours, DOMINANT_K):
        nearest: tuple[float, PaletteColour] | None = None
        if palette:
            here = Color("lab-d65", [float(v) for v in lab])
            nearest = min(((here.delta_e(Color(c.hex), method="2000"), c) for c in palette),
                          key=lambda pair: pair[0])
        dominant.append(DominantColour(
            hex=_lab_to_hex(lab), share=count / total,
            nearest=nearest[1].name if nearest else None,
            nearest_hex=nearest[1].hex.upper() if nearest else None,
            delta_e=round(nearest[0], 2) if nearest else None))
    return dominant


def _contrast(pixels: npt.NDArray[np.uint8], region: TextRegion) -> ContrastCheck:
    x, y, w, h = region.box
    crop = Image.fromarray(pixels[y:y + h, x:x + w])
    # Nearest-neighbour: a resampled copy would invent colours between ink and ground.
    clusters = _clusters(_distinct(np.asarray(_downscale(crop, REGION_PX,
                                                         Image.Resampling.NEAREST))), 2)
    background = _lab_to_hex(clusters[0][0])
    foreground = _lab_to_hex(clusters[-1][0])
    ratio = contrast_ratio(foreground, background)
    return ContrastCheck(box=region.box, text=region.text, foreground=foreground,
                         background=background, ratio=round(ratio, 2),
                         passes_aa=ratio >= AA_RATIO)


def _correlate(image_spectrum: npt.NDArray[np.complex128],
               kernel_spectrum: npt.NDArray[np.complex128], shape: tuple[int, int]) -> Floats:
    # Circular correlation through the FFT; positions where the kernel fits inside the image
    # never wrap, and only those are read.
    result: Floats = np.fft.irfft2(image_spectrum * np.conj(kernel_spectrum), s=shape)
    return result


def _find_logo(image: Image.Image, logo_data: bytes) -> LogoCheck:
    """Masked normalised cross-correlation of the greyscale logo, at each of `LOGO_SCALES`,
    over a greyscale copy of the image; the best score and where it was."""
    try:
        with Image.open(io.BytesIO(logo_data)) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise ValueError("too large")
            opened.load()
            logo = opened.convert("RGBA")
    except Exception as exc:  # Pillow raises many kinds for a corrupt or foreign file
        raise InvalidRequest("the logo is not an image Pillow can read (or is too large)",
                             code="invalid_logo", param="logo") from exc
    bbox = logo.getchannel("A").getbbox()
    if bbox is None:
        raise InvalidRequest("the logo is fully transparent", code="invalid_logo", param="logo")
    logo = logo.crop(bbox)
    grey = _downscale(image, LOGO_SEARCH_PX, Image.Resampling.BOX).convert("L")
    factor = image.width / grey.width
    field = np.asarray(grey, dtype=np.float64)
    shape = (field.shape[0], field.shape[1])
    spectrum, spectrum_sq = np.fft.rfft2(field), np.fft.rfft2(field ** 2)
    best: tuple[float, Box] | None = None
    for scale in LOGO_SCALES:
        long_side = scale * max(grey.size)
        ratio = long_side / max(logo.size)
        tw, th = round(logo.width * ratio), round(logo.height * ratio)
        if (max(tw, th) < LOGO_MIN_PX[0] or min(tw, th) < LOGO_MIN_PX[1]
                or tw > grey.width or th > grey.height):
            continue
        sized = logo.resize((tw, th), Image.Resampling.BOX)
        mask = (np.asarray(sized.getchannel("A"), dtype=np.float64) >= 128).astype(np.float64)
        n = mask.sum()
        if n == 0:  # only faint (under half opaque) pixels left at this size
            continue
        template = np.asarray(sized.convert("L"), dtype=np.float64)
        template = (template - (template * mask).sum() / n) * mask
        energy = (template ** 2).sum()
        if energy <= 0:  # a plain logo (or what is left of it): nothing to correlate
            continue
        valid = (slice(0, shape[0] - th + 1), slice(0, shape[1] - tw + 1))
        template_spectrum = np.fft.rfft2(template, s=shape)
        mask_spectrum = np.fft.rfft2(mask, s=shape)
        numerator = _correlate(spectrum, template_spectrum, shape)[valid]
        local_sum = _correlate(spectrum, mask_spectrum, shape)[valid]
        local_sq = _correlate(spectrum_sq, mask_spectrum, shape)[valid]
        variance = local_sq - local_sum ** 2 / n
        # Under one grey level of spread the window is flat: no match, whatever the ratio.
        score = np.where(variance > n, numerator / np.sqrt(np.maximum(variance, 1) * energy), 0)
        at = np.unravel_index(int(np.argmax(score)), score.shape)
        value = float(score[at])
        if best is None or value > best[0]:
            best = (value, (round(int(at[1]) * factor), round(int(at[0]) * factor),
                            round(tw * factor), round(th * factor)))
    if best is None:
        return LogoCheck(expected=True, found=False, score=None, box=None)
    found = best[0] >= LOGO_THRESHOLD
    return LogoCheck(expected=True, found=found, score=round(min(best[0], 1.0), 3),
                     box=best[1] if found else None)


def assess(image: bytes, *, palette: Sequence[PaletteColour], logo: bytes | None = None,
           text_regions: Sequence[TextRegion] = (), tolerance: float = 10.0) -> ComplianceReport:
    """The brand compliance of `image` (PNG, JPEG, WebP, ... bytes) against a kit's palette,
    optional logo and the text regions to check for contrast. Called by the brand-compliance
    route, off the event loop. Raises `InvalidRequest` for an unreadable image or logo, a
    colour that is not #RRGGBB, a region outside the image or a tolerance outside 0..100."""
    if not (math.isfinite(tolerance) and 0 <= tolerance <= MAX_TOLERANCE):
        raise InvalidRequest(f"tolerance must be between 0 and {MAX_TOLERANCE:g}",
                             code="invalid_tolerance", param="tolerance")
    palette_lab = _palette_lab(palette)
    picture = _open_rgb(image, "image")
    _check_regions(text_regions, picture.size)

    # Nearest-neighbour sampling keeps each pixel's real colour: a filtered copy would count
    # blends of neighbouring colours the image does not contain.
    small = _downscale(picture, ANALYSIS_PX, Image.Resampling.NEAREST)
    colours = _distinct(np.asarray(small))
    dominant = _dominant(colours, palette)
    if palette:
        closest = ciede2000(colours.lab, palette_lab).min(axis=1)
        within = float(colours.count[closest <= tolerance].sum() / colours.count.sum())
    else:
        within = 0.0

    pixels = np.asarray(picture)
    contrast = [_contrast(pixels, region) for region in text_regions]
    logo_check = (_find_logo(picture, logo) if logo is not None
                  else LogoCheck(expected=False, found=False, score=None, box=None))

    graded = _reasons(palette, dominant, within, tolerance, contrast, logo_check)
    severities = {severity for severity, _ in graded}
    verdict: Literal["pass", "warn", "fail"] = (
        "fail" if "fail" in severities else "warn" if severities else "pass")
    return ComplianceReport(verdict=verdict, dominant_colours=dominant,
                            within_tolerance_share=within, tolerance=tolerance,
                            contrast=contrast, logo=logo_check,
                            reasons=[reason for _, reason in graded])


def _reasons(palette: Sequence[PaletteColour], dominant: list[DominantColour], within: float,
             tolerance: float, contrast: list[ContrastCheck],
             logo: LogoCheck) -> list[tuple[Severity, Reason]]:
    """Every finding short of a pass, each with how much it weighs (the verdict rules)."""
    found: list[tuple[Severity, Reason]] = []
    if not palette:
        found.append(("warn", Reason(code="no_palette", message=(
            "The brand kit has no colours, so the image's colours were not checked."))))
    else:
        for colour in dominant:
            if (colour.share >= OFF_PALETTE_MIN_SHARE and colour.delta_e is not None
                    and colour.delta_e > tolerance):
                found.append(("warn", Reason(code="off_palette", message=(
                    f"{colour.hex} covers {colour.share:.0%} of the image and is ΔE "
                    f"{colour.delta_e:.1f} from the nearest brand colour, {colour.nearest} "
                    f"({colour.nearest_hex}); the tolerance is {tolerance:g}."))))
        if within < WARN_BELOW_SHARE:
            found.append(("fail" if within < FAIL_BELOW_SHARE else "warn", Reason(
                code="low_palette_share", message=(
                    f"{within:.0%} of the image is within ΔE {tolerance:g} of a brand colour; "
                    f"{WARN_BELOW_SHARE:.0%} is needed to pass and {FAIL_BELOW_SHARE:.0%} "
                    "to avoid failing."))))
    for check in contrast:
        if not check.passes_aa:
            label = f" ({check.text!r})" if check.text else ""
            found.append(("fail" if check.ratio < FAIL_BELOW_RATIO else "warn", Reason(
                code="low_contrast", message=(
                    f"Text at {list(check.box)}{label}: {check.foreground} on "
                    f"{check.background} has a contrast ratio of {check.ratio:.2f}:1; WCAG AA "
                    f"needs {AA_RATIO:g}:1."))))
    if logo.expected and not logo.found:
        found.append(("warn", Reason(code="logo_missing", message=(
            "The brand logo was not found in the image"
            + (f" (best match {logo.score:.2f}; {LOGO_THRESHOLD:g} needed)."
               if logo.score is not None else " (it is too small, faint or plain to look for).")))))
    return found


def video_frame(video_path: str | os.PathLike[str], *, at_s: float | None = None) -> bytes:
    """PNG bytes of one frame of the video file at `video_path`, for `assess`: at `at_s`
    seconds, by default the moment the gallery's poster shows; a clip with no frame there
    gives its first. Called by the route for a video output. Raises FileNotFoundError for a
    missing file (or no ffmpeg) and `InvalidRequest` for a file ffmpeg cannot decode."""
    if at_s is not None and not (math.isfinite(at_s) and at_s >= 0):
        raise InvalidRequest("at_s must be a time in seconds, 0 or more", param="at_s")
    source = Path(video_path)
    if not source.is_file():
        raise FileNotFoundError(str(source))
    with tempfile.TemporaryDirectory(prefix="mh-frame-") as tmp:
        target = Path(tmp) / "frame.png"
        try:
            grabbed = grab_frame(source, target, at_s=POSTER_AT_S if at_s is None else at_s)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise InvalidRequest("the video could not be decoded", code="invalid_video",
                                 param="video") from exc
        if not grabbed:
            raise InvalidRequest("the video has no frame", code="invalid_video", param="video")
        return target.read_bytes()
