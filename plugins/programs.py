"""Where the external programs for media work come from: ffmpeg (the local video engine, video
posters and waveforms, speech format conversion) and espeak-ng (the local speech engine).

Each is the system's when it is on PATH (a distribution's build, which the operator chose), else
the one a Python dependency ships: imageio-ffmpeg's static ffmpeg, and espeak-ng's library and
voice data from espeakng-loader driven by `plugins/builtin/local/espeak_library.py`. So a machine
with nothing but uv makes every media type. Every caller resolves them here, never with
`shutil.which` of its own.
"""

from __future__ import annotations

import functools
import importlib.util
import shutil
import sys
from pathlib import Path

FFMPEG = "ffmpeg"
ESPEAK_NG = "espeak-ng"
_ESPEAK_LIBRARY_SCRIPT = Path(__file__).parent / "builtin" / "local" / "espeak_library.py"


def ffmpeg() -> str | None:
    """Called before each ffmpeg run: the executable's path, or None when neither the system
    nor the imageio-ffmpeg package has one."""
    return shutil.which(FFMPEG) or packaged_ffmpeg()


def espeak_ng() -> list[str] | None:
    """Called before each espeak-ng run: the command to start it with (the program's path,
    or this Python running the library script), or None when neither is installed. Both
    take the same arguments (`--voices`; `-v -s -p -w --stdin`)."""
    system = shutil.which(ESPEAK_NG)
    if system is not None:
        return [system]
    if packaged_espeak_ng():
        return [sys.executable, str(_ESPEAK_LIBRARY_SCRIPT)]
    return None


@functools.cache
def packaged_ffmpeg() -> str | None:
    """imageio-ffmpeg's bundled binary, or None when the package or its binary is missing."""
    try:
        import imageio_ffmpeg
        exe: str = imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None
    return exe


@functools.cache
def packaged_espeak_ng() -> bool:
    """Whether espeakng-loader (library and voice data) is installed."""
    spec = importlib.util.find_spec("espeakng_loader")
    if spec is None or spec.origin is None:
        return False
    return (Path(spec.origin).parent / "espeak-ng-data").is_dir()
