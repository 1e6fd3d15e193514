"""Brand compliance analysis (issue #15) on images drawn to pass and to fail: palette share and
off-palette colours, WCAG text contrast, the logo at other sizes or absent, CIEDE2000 against
Sharma et al.'s published pairs, determinism, and a frame of a clip ffmpeg really encoded."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import msgspec
import numpy as np
import pytest
from coloraide import Color
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from gateway.generations import brand_compliance as compliance
from gateway.generations.brand_compliance import (
    ComplianceReport,
    PaletteColour,
    TextRegion,
    assess,
    ciede2000,
    contrast_ratio,
    kmeans,
    srgb_to_lab,
    video_frame,
)
from tenants.kernel.errors import InvalidRequest

NAVY, ORANGE, WHITE = "#1B2A4A", "#F97316", "#FFFFFF"
PALETTE = (PaletteColour("navy", NAVY), PaletteColour("orange", ORANGE),
           PaletteColour("white", WHITE))
HEADLINE_BOX = (80, 660, 860, 120)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _logo() -> Image.Image:
    """A two-part mark on a transparent ground: an orange disc and a navy chevron on white."""
    logo = Image.new("RGBA", (120, 60), (0, 0, 0, 0))
    draw = ImageDraw.Draw(logo)
    draw.ellipse((0, 0, 59, 59), fill=ORANGE)
    draw.rectangle((64, 6, 119, 54), fill=WHITE)
    draw.polygon([(70, 48), (92, 12), (114, 48)], fill=NAVY)
    return logo


def _design(*, ground: str = NAVY, panel: str = WHITE, ink: str = NAVY,
            logo_width: int | None = 240, logo_at: tuple[int, int] = (700, 80)) -> bytes:
    """A 1024 px post: a ground, a lower panel with a headline, and the logo pasted."""
    image = Image.new("RGB", (1024, 1024), ground)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 600, 1023, 1023), fill=panel)
    draw.text((100, 680), "Summer sale", fill=ink, font_size=72)
    draw.rectangle((100, 880, 420, 960), fill=ORANGE)
    if logo_width is not None:
        logo = _logo()
        sized = logo.resize((logo_width, logo_width // 2), Image.Resampling.LANCZOS)
        image.paste(sized, logo_at, sized)
    return _png(image)


def _codes(report: ComplianceReport) -> list[str]:
    return [reason.code for reason in report.reasons]


def test_a_design_in_the_palette_with_its_logo_and_readable_text_passes() -> None:
    report = assess(_design(), palette=PALETTE, logo=_png(_logo()),
                    text_regions=[TextRegion(HEADLINE_BOX, "Summer sale")])
    assert report.verdict == "pass", report.reasons
    assert report.reasons == []
    assert report.within_tolerance_share > 0.95
    top = report.dominant_colours[0]
    assert (top.hex, top.nearest, top.delta_e) == (NAVY, "navy", 0.0)
    assert {c.nearest for c in report.dominant_colours[:3]} == {"navy", "white", "orange"}
    [check] = report.contrast
    assert (check.foreground, check.background) == (NAVY, WHITE)
    assert check.ratio == pytest.approx(contrast_ratio(NAVY, WHITE), abs=0.01)
    assert check.ratio > 13
    assert check.passes_aa
    assert report.logo.found
    assert report.logo.score is not None
    assert report.logo.score >= compliance.LOGO_THRESHOLD
    # The report is a msgspec Struct the route can render as it is.
    assert msgspec.json.decode(msgspec.json.encode(report))["verdict"] == "pass"


def test_off_palette_colours_fail_and_are_named() -> None:
    # Teal and purple: nowhere near navy, orange or white.
    report = assess(_design(ground="#0F766E", panel="#7E22CE", ink=WHITE, logo_width=None),
                    palette=PALETTE)
    assert report.verdict == "fail"
    assert "off_palette" in _codes(report)
    assert "low_palette_share" in _codes(report)
    named = " ".join(r.message for r in report.reasons if r.code == "off_palette")
    assert "#0F766E" in named
    assert "#7E22CE" in named
    assert report.within_tolerance_share < 0.1
    teal = next(c for c in report.dominant_colours if c.hex == "#0F766E")
    assert teal.delta_e is not None
    assert teal.delta_e > 10


def test_a_partly_off_palette_design_only_warns() -> None:
    # The lower panel (41 % of the image) in an off-brand grey-green: between 40 % and 70 %.
    report = assess(_design(panel="#9DB5A0", logo_width=None), palette=PALETTE)
    assert 0.4 <= report.within_tolerance_share < 0.7
    assert report.verdict == "warn"
    assert "low_palette_share" in _codes(report)


@pytest.mark.parametrize(("ink", "verdict"), [("#8A8A8A", "warn"), ("#C8C8C8", "fail")])
def test_low_contrast_text_is_flagged(ink: str, verdict: str) -> None:
    # Grey ink on the white panel: 3.45:1 (under AA, over 3:1) warns; 1.7:1 fails.
    palette = (*PALETTE, PaletteColour("grey", ink))
    report = assess(_design(ink=ink, logo_width=None), palette=palette,
                    text_regions=[TextRegion(HEADLINE_BOX, "Summer sale")])
    [check] = report.contrast
    assert (check.foreground, check.background) == (ink, WHITE)
    assert not check.passes_aa
    assert check.ratio == pytest.approx(contrast_ratio(ink, WHITE), abs=0.01)
    assert _codes(report) == ["low_contrast"]
    assert report.verdict == verdict


def test_an_absent_logo_is_logo_missing() -> None:
    report = assess(_design(logo_width=None), palette=PALETTE, logo=_png(_logo()))
    assert report.logo.expected
    assert not report.logo.found
    assert report.logo.box is None
    assert report.logo.score is not None
    assert report.logo.score < compliance.LOGO_THRESHOLD
    assert _codes(report) == ["logo_missing"]
    assert report.verdict == "warn"


@pytest.mark.parametrize(("width", "at"), [(130, (40, 40)), (260, (600, 200)),
                                           (520, (300, 60))])
def test_the_logo_is_found_at_another_size(width: int, at: tuple[int, int]) -> None:
    # The kit's logo file is 120 px wide; the design shows it at about 1x, 2x and 4x.
    report = assess(_design(logo_width=width, logo_at=at), palette=PALETTE, logo=_png(_logo()))
    assert report.logo.found, report.logo
    assert report.logo.box is not None
    x, y, w, _h = report.logo.box
    # Where it was pasted, to within a tenth of its size (the alpha-trimmed logo is 116 px).
    expected_w = width * 116 / 120
    assert abs(w - expected_w) <= 0.12 * expected_w
    assert abs(x - at[0]) <= 0.1 * width
    assert abs(y - at[1]) <= 0.1 * width
    assert "logo_missing" not in _codes(report)


def test_no_logo_asked_for_is_not_looked_for() -> None:
    report = assess(_design(logo_width=None), palette=PALETTE)
    assert report.logo == compliance.LogoCheck(expected=False, found=False, score=None, box=None)
    assert report.verdict == "pass"


def test_a_kit_without_colours_warns_and_checks_the_rest() -> None:
    report = assess(_design(), palette=(), logo=_png(_logo()))
    assert _codes(report) == ["no_palette"]
    assert report.verdict == "warn"
    assert report.within_tolerance_share == 0.0
    assert all(c.nearest is None and c.delta_e is None for c in report.dominant_colours)
    assert report.logo.found


# Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula", table 1: rows 1, 7,
# 13, 15, 17, 21, 24, 29, 33 and 37.
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0009), 7.1792),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),
    ((50.0, -0.001, 2.49), (50.0, 0.0009, -2.49), 4.8045),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (58.0, 24.0, 15.0), 19.4535),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((22.7233, 20.0904, -46.694), (23.0331, 14.973, -42.5619), 2.0373),
    ((6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
]


@pytest.mark.parametrize(("first", "second", "expected"), SHARMA)
def test_ciede2000_matches_the_published_pairs(
    first: tuple[float, float, float], second: tuple[float, float, float], expected: float,
) -> None:
    by_coloraide = Color("lab-d65", list(first)).delta_e(Color("lab-d65", list(second)),
                                                         method="2000")
    assert by_coloraide == pytest.approx(expected, abs=5e-5)
    vectorised = ciede2000(np.array([first]), np.array([second]))[0, 0]
    assert vectorised == pytest.approx(expected, abs=5e-5)
    # Symmetric, as the formula is.
    assert ciede2000(np.array([second]), np.array([first]))[0, 0] == pytest.approx(expected,
                                                                                   abs=5e-5)


rgb = st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))


@settings(max_examples=200, deadline=None)
@given(first=rgb, second=rgb)
def test_the_per_pixel_difference_agrees_with_coloraide(
    first: tuple[int, int, int], second: tuple[int, int, int],
) -> None:
    # The same Lab conversion and the same formula as coloraide, which names the dominant
    # colours' differences: a pixel and its dominant colour are judged alike.
    labs = srgb_to_lab(np.array([first, second], dtype=np.uint8))
    hexes = ["#{:02x}{:02x}{:02x}".format(*c) for c in (first, second)]
    for lab, hex_colour in zip(labs, hexes, strict=True):
        assert lab == pytest.approx(Color(hex_colour).convert("lab-d65").coords(), abs=1e-6)
    expected = Color(hexes[0]).delta_e(Color(hexes[1]), method="2000")
    # Lab agrees to 1e-6; the formula's hue terms can magnify that a little.
    assert ciede2000(labs[:1], labs[1:])[0, 0] == pytest.approx(expected, abs=1e-4)


def test_wcag_contrast_ratios() -> None:
    assert contrast_ratio("#000000", "#FFFFFF") == pytest.approx(21.0)
    assert contrast_ratio("#FFFFFF", "#FFFFFF") == pytest.approx(1.0)
    # The lightest greys on white that do and do not reach AA.
    assert contrast_ratio("#767676", "#FFFFFF") == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio("#777777", "#FFFFFF") == pytest.approx(4.48, abs=0.01)


def test_kmeans_is_deterministic() -> None:
    rng = np.random.default_rng(7)
    photo = Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8))
    points = srgb_to_lab(np.asarray(photo).reshape(-1, 3))
    weights = np.ones(len(points))
    first_centres, first_labels = kmeans(points, weights, 5)
    again_centres, again_labels = kmeans(points, weights, 5)
    assert np.array_equal(first_centres, again_centres)
    assert np.array_equal(first_labels, again_labels)
    data = _png(photo)
    assert assess(data, palette=PALETTE) == assess(data, palette=PALETTE)


def test_kmeans_finds_no_more_clusters_than_colours() -> None:
    two = np.array([[0.0, 0.0, 0.0], [50.0, 10.0, 10.0]])
    centres, labels = kmeans(np.repeat(two, 10, axis=0), np.ones(20), 5)
    assert sorted(map(tuple, centres)) == sorted(map(tuple, two))
    assert list(labels) == [labels[0]] * 10 + [labels[10]] * 10


@st.composite
def blocky_images(draw: st.DrawFn) -> bytes:
    """A small image of a few random colours in random blocks (the shape of a design)."""
    colours = draw(st.lists(rgb, min_size=1, max_size=7))
    width, height = draw(st.integers(4, 60)), draw(st.integers(4, 60))
    cells = draw(st.lists(st.integers(0, len(colours) - 1), min_size=16, max_size=16))
    grid = np.array([colours[i] for i in cells], dtype=np.uint8).reshape(4, 4, 3)
    return _png(Image.fromarray(grid).resize((width, height), Image.Resampling.NEAREST))


@settings(max_examples=40, deadline=None)
@given(image=blocky_images(),
       palette=st.lists(rgb, min_size=1, max_size=4),
       tolerances=st.tuples(st.floats(0, 100), st.floats(0, 100)))
def test_shares_sum_to_one_and_tolerance_only_widens(
    image: bytes, palette: list[tuple[int, int, int]], tolerances: tuple[float, float],
) -> None:
    kit = [PaletteColour(f"c{i}", "#{:02X}{:02X}{:02X}".format(*c)) for i, c in enumerate(palette)]
    low, high = sorted(tolerances)
    narrow, wide = (assess(image, palette=kit, tolerance=t) for t in (low, high))
    assert sum(c.share for c in narrow.dominant_colours) == pytest.approx(1.0, abs=1e-9)
    assert 1 <= len(narrow.dominant_colours) <= compliance.DOMINANT_K
    assert 0.0 <= narrow.within_tolerance_share <= wide.within_tolerance_share <= 1.0
    # The colours found do not depend on the tolerance.
    assert narrow.dominant_colours == wide.dominant_colours


@pytest.mark.parametrize(("call", "code", "param"), [
    (lambda: assess(b"not an image", palette=PALETTE), "invalid_image", "image"),
    (lambda: assess(_design(), palette=[PaletteColour("x", "orange")]), "invalid_colour",
     "palette[0].hex"),
    (lambda: assess(_design(), palette=PALETTE, text_regions=[TextRegion((1000, 0, 50, 10))]),
     "invalid_text_region", "text_regions[0].box"),
    (lambda: assess(_design(), palette=PALETTE, tolerance=-1), "invalid_tolerance",
     "tolerance"),
    (lambda: assess(_design(), palette=PALETTE, logo=b"nope"), "invalid_logo", "logo"),
])
def test_bad_input_is_an_invalid_request(call: object, code: str, param: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        call()  # type: ignore[operator]
    assert (raised.value.code, raised.value.param) == (code, param)


def _clip(path: Path, colours: list[str], fps: int = 10) -> None:
    """Encode one second per colour with ffmpeg, frames piped in as raw RGB."""
    frames = b"".join(Image.new("RGB", (160, 120), colour).tobytes()
                      for colour in colours for _ in range(fps))
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "rawvideo",
                    "-pix_fmt", "rgb24", "-s", "160x120", "-r", str(fps), "-i", "pipe:0",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
                   input=frames, check=True, capture_output=True)


def test_a_frame_of_a_real_clip_is_assessed(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    _clip(clip, [NAVY, ORANGE])
    default = video_frame(clip)
    later = video_frame(str(clip), at_s=1.5)
    with Image.open(io.BytesIO(later)) as frame:
        assert frame.format == "PNG"
        assert frame.size == (160, 120)
    # At 0.5 s (the poster's moment) the clip is navy, at 1.5 s orange (within codec error).
    for data, name in ((default, "navy"), (later, "orange")):
        report = assess(data, palette=PALETTE, tolerance=5)
        assert report.dominant_colours[0].nearest == name
        assert report.within_tolerance_share > 0.95


def test_a_clip_shorter_than_the_time_gives_its_first_frame(tmp_path: Path) -> None:
    clip = tmp_path / "short.mp4"
    _clip(clip, [ORANGE], fps=3)  # one second
    report = assess(video_frame(clip, at_s=30), palette=PALETTE, tolerance=5)
    assert report.dominant_colours[0].nearest == "orange"


def test_a_file_that_is_not_a_video_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 512)
    with pytest.raises(InvalidRequest) as raised:
        video_frame(junk)
    assert raised.value.code == "invalid_video"
    with pytest.raises(FileNotFoundError):
        video_frame(tmp_path / "missing.mp4")
    with pytest.raises(InvalidRequest):
        video_frame(junk, at_s=-1)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_busy_photograph_without_the_logo_does_not_match_it(seed: int) -> None:
    # Smooth random blobs correlate with a simple logo more than a flat design does (up to
    # about 0.72): the threshold sits above them.
    rng = np.random.default_rng(seed)
    blobs = Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    photo = _png(blobs.resize((1024, 768), Image.Resampling.BICUBIC))
    report = assess(photo, palette=PALETTE, logo=_png(_logo()))
    assert not report.logo.found
    assert "logo_missing" in _codes(report)


def test_transparent_pixels_are_judged_on_white() -> None:
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((0, 0, 99, 99), fill=NAVY)
    report = assess(_png(image), palette=PALETTE)
    shares = {c.hex: c.share for c in report.dominant_colours}
    assert shares == pytest.approx({NAVY: 0.5, WHITE: 0.5})
    assert report.verdict == "pass"


@pytest.mark.parametrize("logo", [
    Image.new("RGBA", (120, 60), (249, 115, 22, 255)),  # plain: nothing to correlate
    Image.new("RGBA", (120, 60), (27, 42, 74, 60)),  # faint everywhere
], ids=["plain", "faint"])
def test_a_logo_that_cannot_be_searched_for_is_reported_missing(logo: Image.Image) -> None:
    report = assess(_design(), palette=PALETTE, logo=_png(logo))
    assert report.logo == compliance.LogoCheck(expected=True, found=False, score=None, box=None)
    [reason] = report.reasons
    assert reason.code == "logo_missing"
    assert "to look for" in reason.message
