"""eSpeak NG speech synthesis through ctypes, returning 16 kHz float32 waves.

The library keeps global state, so there is one engine per process: every `Espeak()` in a process
shares the same initialized library. Its output is not a pure function of (text, voice,
parameters): consecutive calls in one process give slightly different samples, yet the same
sequence of calls gives the same samples in any fresh process (once the noise generator of breathy
voices, seeded from the clock by espeak_Initialize, is given a fixed seed; done here).
Reproducible corpora therefore synthesize fixed chunks of utterances, each in a fresh process
(see `corpora.synth.pool`).
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import espeakng_loader
import numpy as np
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
ENGINE_SAMPLE_RATE = 22050  # what espeak-ng produces; 22050 * 320 / 441 = 16000

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_RATE, _PITCH, _RANGE = 1, 3, 4  # espeak_PARAMETER values
_ERRORS = {-1: "EE_INTERNAL_ERROR", 1: "EE_BUFFER_FULL", 2: "EE_NOT_FOUND"}
_RAND_SEED = 1
# espeak clamps the rate to this range (words per minute); reject values it would silently change.
RATE_RANGE = (80, 450)

_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.c_void_p)


class EspeakError(RuntimeError):
    """eSpeak NG refused a call (bad voice, failed initialization, synthesis error)."""


def packaged_data_path() -> str:
    """The espeak-ng-data folder that espeakng-loader ships."""
    return espeakng_loader.get_data_path()


def variants_dir(data_path: str | None = None) -> Path:
    """The folder of voice variant files (`m1`, `f3`, `klatt`, `whisper`, ...) in `data_path`
    (default: the packaged data)."""
    return Path(data_path or packaged_data_path()) / "voices" / "!v"


def available_variants() -> list[str]:
    """Names usable after `+` in a voice name, e.g. `en-us+f3`; sorted."""
    return sorted(p.name for p in variants_dir().iterdir() if p.is_file())


def variant_sex(variant: str, data_path: str | None = None) -> str:
    """"F" or "M" from the variant file's `gender` line (variants without one are male voices)."""
    path = variants_dir(data_path) / variant
    if not path.is_file():
        raise ValueError(f"unknown eSpeak variant {variant!r}: no file {path}")
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "gender":
            return "F" if fields[1].lower() == "female" else "M"
    return "M"


def check_voice_name(voice: str, data_path: str | None = None) -> None:
    """Raise ValueError when the `+variant` part of `voice` names no variant file.

    eSpeak silently ignores an unknown variant and speaks with the base voice, so this check is
    the only way to notice a typo. The base voice is checked by `espeak_SetVoiceByName` itself.
    """
    base, plus, variant = voice.partition("+")
    if not base:
        raise ValueError(f"eSpeak voice {voice!r} has no base language (expected e.g. 'en-us+f3')")
    if plus and not (variants_dir(data_path) / variant).is_file():
        raise ValueError(f"eSpeak voice {voice!r}: unknown variant {variant!r} "
                         f"(no file in {variants_dir(data_path)})")


class _Library:
    """The process-wide, initialized libespeak-ng handle and its sample collector."""

    def __init__(self, data_path: str) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint,
                                     ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, os.fsencode(data_path), 0)
        if rate != ENGINE_SAMPLE_RATE:
            raise EspeakError(f"espeak_Initialize with data {data_path} returned {rate}, "
                              f"expected the sample rate {ENGINE_SAMPLE_RATE}")
        # Initialize seeds the noise generator behind breathy voices (f3, f5, whisper, ...) from
        # the clock; a fixed seed makes those voices repeatable across processes too.
        lib.espeak_ng_SetRandSeed(_RAND_SEED)
        self.lib = lib
        self.chunks: list[bytes] = []
        # The library keeps only a C pointer: this reference keeps the callback alive.
        self.callback = _SynthCallback(self._collect)
        lib.espeak_SetSynthCallback(self.callback)
        self.voice: str | None = None
        self.data_path = data_path

    def _collect(self, samples, n_samples, events) -> int:
        # The library reuses its buffer, so copy now; the final call passes NULL and 0 samples.
        if n_samples > 0 and samples:
            self.chunks.append(ctypes.string_at(samples, 2 * n_samples))
        return 0


_library: _Library | None = None
_library_pid: int | None = None


def _process_library(data_path: str) -> _Library:
    global _library, _library_pid
    if _library is None or _library_pid != os.getpid():
        _library, _library_pid = _Library(data_path), os.getpid()
    elif _library.data_path != data_path:
        # espeak_Initialize reads the data folder once per process; a second one would be ignored.
        raise EspeakError(f"this process's eSpeak already reads {_library.data_path}; "
                          f"{data_path} needs a fresh process")
    return _library


def _check(code: int, what: str) -> None:
    if code != 0:
        raise EspeakError(f"{what} failed with code {code} ({_ERRORS.get(code, 'unknown')})")


class Espeak:
    """The process's eSpeak NG engine: `synth(text, voice, rate, pitch, pitch_range)`.

    data_path: the espeak-ng-data folder (default: the packaged one); a folder made by
    `corpora.synth.voices.voice_data_folder` adds generated variants. One folder per process.
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, data_path: str | None = None) -> None:
        self._lib = _process_library(str(data_path or packaged_data_path()))

    def synth(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int) -> np.ndarray:
        """Speak `text` and return the wave `(samples,)`, float32 in [-1, 1] at 16 kHz.

        voice: eSpeak voice name with an optional variant, e.g. "en-us+f3"; rate: words per
        minute (80-450); pitch and pitch_range: 0-99 (50 is the voice's default).
        """
        if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
            raise ValueError(f"rate {rate} wpm outside eSpeak's range {RATE_RANGE}")
        for name, value in (("pitch", pitch), ("pitch_range", pitch_range)):
            if not 0 <= value <= 99:
                raise ValueError(f"{name} {value} outside 0-99")
        state, lib = self._lib, self._lib.lib
        if voice != state.voice:
            check_voice_name(voice, state.data_path)
            state.voice = None  # a failed switch may leave the library between voices
            code = lib.espeak_SetVoiceByName(voice.encode())
            if code != 0:
                raise EspeakError(f"eSpeak voice {voice!r} not found (espeak_SetVoiceByName "
                                  f"returned {code}); English bases that exist include en, en-us, "
                                  f"en-gb-x-rp, en-gb-scotland, en-029 (not en-gb or en-sc)")
            state.voice = voice
        _check(lib.espeak_SetParameter(_RATE, int(rate), 0), f"setting rate {rate}")
        _check(lib.espeak_SetParameter(_PITCH, int(pitch), 0), f"setting pitch {pitch}")
        _check(lib.espeak_SetParameter(_RANGE, int(pitch_range), 0),
               f"setting pitch range {pitch_range}")
        data = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(data)
        state.chunks = []
        _check(lib.espeak_Synth(buffer, len(data) + 1, 0, 0, 0, _CHARS_UTF8, None, None),
               f"espeak_Synth of {text[:40]!r} with voice {voice!r}")
        _check(lib.espeak_Synchronize(), "espeak_Synchronize")
        pcm = np.frombuffer(b"".join(state.chunks), dtype=np.int16)
        state.chunks = []
        if pcm.size == 0:
            return np.zeros(0, dtype=np.float32)
        wave = resample_poly(pcm.astype(np.float32) / 32768.0, 320, 441)
        return np.clip(wave, -1.0, 1.0).astype(np.float32)

    @staticmethod
    def available_variants() -> list[str]:
        """Variant names usable after `+` in a voice name; sorted."""
        return available_variants()
