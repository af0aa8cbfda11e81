"""Audio lengths in seconds, read from file headers (no decoding), with an optional cache file.

Sorting or bucketing a 280k-utterance split by length needs every duration; `soundfile.info` reads
only the header (well under a millisecond per FLAC), and the cache makes later runs instant.
Headerless `.pcm` / `.raw` files (KsponSpeech) are measured by their size.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import soundfile as sf
from tqdm import tqdm

RAW_SUFFIXES = (".pcm", ".raw")
_PROGRESS_FROM = 2000  # files to read before a progress bar is worth showing


def audio_duration(path: str | os.PathLike, *, raw_sample_rate: int = 16000,
                   raw_sample_width: int = 2) -> float:
    """Length of one audio file in seconds.

    raw_sample_rate / raw_sample_width (bytes per sample, mono) describe headerless files only.
    Raises ValueError naming the file when it is missing or has no readable header.
    """
    path = Path(path)
    if path.suffix.lower() in RAW_SUFFIXES:
        try:
            size = path.stat().st_size
        except OSError as e:
            raise ValueError(f"{path}: cannot read audio file ({e.strerror or e})") from None
        return size / (raw_sample_width * raw_sample_rate)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise ValueError(f"{path}: cannot read audio header ({e})") from None
    return info.frames / info.samplerate


def audio_durations(paths: Sequence[str | os.PathLike], *, cache: str | os.PathLike | None = None,
                    raw_sample_rate: int = 16000, raw_sample_width: int = 2) -> list[float]:
    """Length in seconds of each file in `paths`, in the same order.

    cache: a tab-separated file of `size mtime_ns seconds path` lines. Entries are reused while the
    file's size and modification time are unchanged; it is rewritten (atomically) when anything new
    was measured. Raises ValueError naming the first unreadable file.
    """
    known = _read_cache(Path(cache)) if cache is not None else {}
    todo = [p for p in map(str, paths) if not _fresh(known.get(p), p)]
    for p in tqdm(todo, desc="reading durations", unit="file", disable=len(todo) < _PROGRESS_FROM):
        seconds = audio_duration(p, raw_sample_rate=raw_sample_rate, raw_sample_width=raw_sample_width)
        stat = os.stat(p)
        known[p] = (stat.st_size, stat.st_mtime_ns, seconds)
    if cache is not None and todo:
        _write_cache(Path(cache), known)
    return [known[str(p)][2] for p in paths]


def _fresh(entry: tuple[int, int, float] | None, path: str) -> bool:
    if entry is None:
        return False
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return (stat.st_size, stat.st_mtime_ns) == entry[:2]


def _read_cache(cache: Path) -> dict[str, tuple[int, int, float]]:
    if not cache.exists():
        return {}
    entries = {}
    for number, line in enumerate(cache.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split("\t", 3)
        try:
            size, mtime_ns, seconds, path = int(fields[0]), int(fields[1]), float(fields[2]), fields[3]
        except (ValueError, IndexError):
            raise ValueError(f"{cache}:{number}: expected 'SIZE<TAB>MTIME_NS<TAB>SECONDS<TAB>PATH'; "
                             f"delete the cache file to rebuild it") from None
        entries[path] = (size, mtime_ns, seconds)
    return entries


def _write_cache(cache: Path, entries: dict[str, tuple[int, int, float]]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for path, (size, mtime_ns, seconds) in sorted(entries.items()):
            f.write(f"{size}\t{mtime_ns}\t{seconds!r}\t{path}\n")
    os.replace(tmp, cache)
