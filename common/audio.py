"""Reading and writing audio files as mono float32 tensors.

Files with a header (wav, flac, ogg, ...) go through soundfile; `.pcm` / `.raw` files are headerless
little-endian PCM (KsponSpeech ships 16-bit, 16 kHz mono). Every problem with a file raises
`AudioError` (a ValueError) naming the file, so dataset loaders can catch that one type and skip
the utterance.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

RAW_SUFFIXES = (".pcm", ".raw")
_RAW_DTYPES = {"int16": "<i2", "int32": "<i4", "float32": "<f4"}
# libsndfile reads a truncated WAV without complaint, returning the frames that are there; its
# header log is the only place that notes the shortfall, as "data : 64000 (should be 15942)".
_SHORT_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Streaming writers that do not know the length in advance put one of these in the header.
_UNKNOWN_LENGTH = (0, 0xFFFFFFFF)


class AudioError(ValueError):
    """A file that cannot be used as audio: missing, unreadable, truncated, empty or non-finite."""


def _read_raw(path: Path, dtype: str) -> np.ndarray:
    if dtype not in _RAW_DTYPES:
        raise ValueError(f"raw_dtype must be one of {sorted(_RAW_DTYPES)}, got {dtype!r}")
    data = path.read_bytes()
    itemsize = np.dtype(_RAW_DTYPES[dtype]).itemsize
    if len(data) % itemsize:
        raise AudioError(f"{path}: truncated raw PCM, {len(data)} bytes is not a multiple of "
                         f"{itemsize} ({dtype})")
    samples = np.frombuffer(data, dtype=_RAW_DTYPES[dtype])
    if dtype == "float32":
        return samples.astype(np.float32)
    # Same scaling soundfile applies to integer PCM: full scale maps to [-1, 1).
    return (samples / float(2 ** (8 * itemsize - 1))).astype(np.float32)


def _read_with_header(path: Path) -> tuple[np.ndarray, int]:
    try:
        with sf.SoundFile(path) as f:
            expected, log = f.frames, f.extra_info
            data = f.read(dtype="float32", always_2d=True)
            rate = f.samplerate
    except (sf.LibsndfileError, RuntimeError, EOFError) as e:
        raise AudioError(f"{path}: unreadable audio file ({e})") from None
    short = _SHORT_DATA_CHUNK.search(log)
    if short and int(short[1]) not in _UNKNOWN_LENGTH and int(short[2]) < int(short[1]):
        raise AudioError(f"{path}: truncated audio, header promises {short[1]} data bytes, "
                         f"file holds {short[2]}")
    if len(data) != expected:
        raise AudioError(f"{path}: truncated audio, header says {expected} frames, read {len(data)}")
    return data.mean(axis=1), rate


def load(path: str | os.PathLike, sample_rate: int, *, raw_sample_rate: int = 16000,
         raw_dtype: str = "int16") -> torch.Tensor:
    """Read an audio file as a mono float32 tensor `(samples,)` at `sample_rate`.

    Channels are averaged; a different file rate is resampled with torchaudio (windowed sinc).
    raw_sample_rate / raw_dtype describe headerless `.pcm` / `.raw` files and are ignored otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    if path.suffix.lower() in RAW_SUFFIXES:
        samples, rate = _read_raw(path, raw_dtype), raw_sample_rate
    else:
        samples, rate = _read_with_header(path)
    if samples.size == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: audio contains NaN or inf samples")
    wave = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    if rate != sample_rate:
        wave = AF.resample(wave, rate, sample_rate)
    return wave


def save(path: str | os.PathLike, wave: torch.Tensor | np.ndarray, sample_rate: int,
         subtype: str = "PCM_16") -> None:
    """Write `wave` `(samples,)` or `(channels, samples)` atomically (temp file + os.replace).

    The format follows the suffix; `.pcm` / `.raw` write headerless little-endian PCM.
    Integer subtypes clip to [-1, 1] first, since libsndfile would otherwise wrap around.
    """
    path = Path(path)
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().cpu().numpy()
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim not in (1, 2):
        raise ValueError(f"{path}: wave must be (samples,) or (channels, samples), got {wave.shape}")
    data = wave if wave.ndim == 1 else wave.T
    if subtype.startswith("PCM"):
        data = np.clip(data, -1.0, 1.0)
    raw = path.suffix.lower() in RAW_SUFFIXES
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if raw:
            sf.write(tmp, data, sample_rate, subtype=subtype, format="RAW", endian="LITTLE")
        else:
            sf.write(tmp, data, sample_rate, subtype=subtype, format=path.suffix[1:].upper())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
