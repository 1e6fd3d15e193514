"""espeak-ng's command line, as far as the local speech engine uses it, over the library and
voice data that the `espeakng-loader` package ships: for machines without the espeak-ng program.

Run as a script (`python espeak_library.py ARGS`, see `plugins.programs.espeak_ng`), never
imported by the gateway: the library keeps global state and cannot be stopped from outside, so
each synthesis gets a process of its own that `_media.run` can time out and kill, exactly like the
real program. It imports nothing from this project, so it starts in a few tens of milliseconds.

    --voices                                      the voice table, in espeak-ng's format
    -v VOICE -s WPM -p PITCH -w OUT.wav --stdin   UTF-8 text from stdin into a 16-bit mono WAV
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import wave

AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000
RATE, PITCH = 1, 3  # espeak_PARAMETER
CHARS_UTF8, END_PAUSE = 1, 0x1000  # espeak_Synth flags
GENDERS = "-MF"

SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                 ctypes.c_void_p)


class Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


def load() -> tuple[ctypes.CDLL, int]:
    """The initialised library and its sample rate; exits with a message when it is missing."""
    try:
        import espeakng_loader
        library = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path()
    except (ImportError, OSError, RuntimeError) as exc:
        sys.exit(f"espeak-ng library not available: {exc}")
    library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
    library.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(Voice))
    library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    library.espeak_SetSynthCallback.argtypes = [SynthCallback]
    library.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
    rate = library.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(),
                                     INITIALIZE_DONT_EXIT)
    if rate <= 0:
        sys.exit(f"espeak-ng could not load its data from {data}")
    return library, rate


def languages(voice: Voice) -> list[tuple[int, str]]:
    """(priority, language) pairs: the C field is a run of `<priority byte><name>\\0` entries
    ended by a zero byte."""
    found: list[tuple[int, str]] = []
    at = voice.languages
    while at and (priority := ctypes.string_at(at, 1)[0]) != 0:
        name = ctypes.string_at(at + 1)
        found.append((priority, name.decode()))
        at += len(name) + 2
    return found


def list_voices(library: ctypes.CDLL) -> str:
    """The table `espeak-ng --voices` prints (same columns, same order)."""
    lines = ["Pty Language       Age/Gender VoiceName          File                 "
             "Other Languages"]
    voices = library.espeak_ListVoices(None)
    index = 0
    while voices[index]:
        voice = voices[index].contents
        index += 1
        spoken = languages(voice)
        if not spoken:
            continue
        (priority, language), others = spoken[0], spoken[1:]
        age = f"{voice.age:3d}" if voice.age else " --"
        name = (voice.name or b"").decode().replace(" ", "_")
        gender = GENDERS[voice.gender] if voice.gender < len(GENDERS) else "-"
        line = (f"{priority:2d}  {language:<15s}{age}/{gender}      {name:<18s} "
                f"{(voice.identifier or b'').decode():<20s} ")
        lines.append(line + "".join(f"({lang} {pty})" for pty, lang in others))
    return "\n".join(lines) + "\n"


def synthesise(library: ctypes.CDLL, rate: int, text: str, *, voice: str, wpm: int,
               pitch: int, out: str) -> None:
    samples = bytearray()

    def collect(wav: ctypes._Pointer[ctypes.c_short], count: int, events: int) -> int:
        if count > 0:
            samples.extend(ctypes.string_at(wav, count * 2))
        return 0  # go on

    # Kept in a local so the C side's pointer stays valid while espeak_Synth runs.
    callback = SynthCallback(collect)
    library.espeak_SetSynthCallback(callback)
    if library.espeak_SetVoiceByName(voice.encode()) != 0:
        sys.exit(f"espeak-ng: unknown voice {voice!r}")
    library.espeak_SetParameter(RATE, wpm, 0)
    library.espeak_SetParameter(PITCH, pitch, 0)
    encoded = text.encode()
    if library.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, CHARS_UTF8 | END_PAUSE,
                            None, None) != 0:
        sys.exit("espeak-ng could not synthesise the text")
    library.espeak_Synchronize()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(samples))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="espeak-ng (library)")
    parser.add_argument("--voices", action="store_true")
    parser.add_argument("-v", dest="voice", default="en")
    parser.add_argument("-s", dest="wpm", type=int, default=175)
    parser.add_argument("-p", dest="pitch", type=int, default=50)
    parser.add_argument("-w", dest="out")
    parser.add_argument("--stdin", action="store_true")
    args = parser.parse_args(argv)
    library, rate = load()
    if args.voices:
        sys.stdout.write(list_voices(library))
        return
    if not (args.stdin and args.out):
        parser.error("give --voices, or -w OUT.wav --stdin")
    synthesise(library, rate, sys.stdin.buffer.read().decode(), voice=args.voice,
               wpm=args.wpm, pitch=args.pitch, out=args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
