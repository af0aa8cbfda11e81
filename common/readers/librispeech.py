"""LibriSpeech as published on openslr.org/12: listing the utterances of one split.

Layout: `ROOT/SPLIT/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac`, and per chapter a
`SPEAKER-CHAPTER.trans.txt` of lines `UTTERANCE-ID TRANSCRIPT` (upper case). ROOT is the
`LibriSpeech` folder the archives unpack into; a data root holding `LibriSpeech/` works too.

A split is a name under ROOT ("dev-clean") or a path to any folder in the same
SPEAKER/CHAPTER layout, which is how users evaluate their own recordings (`.wav` files are accepted
next to `.flac` for that reason). Transcripts are returned as written; normalization is the ASR text
module's job.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from common.readers.bad_input import BadInput

AUDIO_SUFFIXES = (".flac", ".wav")  # in order of preference when both exist
TRANSCRIPT_SUFFIX = ".trans.txt"
SPLITS = ("train-clean-100", "train-clean-360", "train-other-500",
          "dev-clean", "dev-other", "test-clean", "test-other")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """One utterance: `id` is SPEAKER-CHAPTER-UTT, `text` the transcript as written."""

    id: str
    path: Path
    text: str
    speaker: str
    chapter: str


def corpus_root(root: str | os.PathLike) -> Path:
    """The `LibriSpeech` folder: `root` itself, or `root/LibriSpeech` when that exists."""
    root = Path(root)
    nested = root / "LibriSpeech"
    return nested if nested.is_dir() else root


def _is_path(split: str | os.PathLike) -> bool:
    return not isinstance(split, str) or "/" in split or os.sep in split


def split_folder(root: str | os.PathLike | None, split: str | os.PathLike) -> Path:
    """The folder of `split`: ROOT/SPLIT for a name, the folder itself for a path.

    A split given as a `Path` (or a string containing a path separator) ignores `root`.
    Raises FileNotFoundError naming the missing folder and, for a name, the splits that exist.
    """
    if _is_path(split):
        folder = Path(split)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder (expected SPEAKER/CHAPTER/ folders "
                                    f"with *{TRANSCRIPT_SUFFIX} transcripts)")
        return folder
    if root is None:
        raise ValueError(f"split {split!r} is a name, so a LibriSpeech root folder is needed")
    base = corpus_root(root)
    folder = base / split
    if folder.is_dir():
        return folder
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: no such folder (expected the LibriSpeech folder)")
    existing = ", ".join(_subfolders(base)) or "no splits at all"
    hint = f"; to read the folder ./{split}, pass it as a path" if Path(split).is_dir() else ""
    raise FileNotFoundError(f"{folder}: no such split folder; {base} holds: {existing}{hint}")


def _subfolders(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def list_utterances(root: str | os.PathLike | None, split: str | os.PathLike, *,
                    on_error: str = "skip") -> list[Utterance]:
    """All utterances of `split` that have both audio and a transcript line, sorted by id.

    on_error: "skip" drops bad items and logs one summary warning (transcript lines without audio,
    audio without a transcript line, unreadable lines, duplicate ids); "raise" raises at the first
    one (FileNotFoundError for missing audio, ValueError otherwise), naming the file.
    A missing split folder always raises FileNotFoundError.
    """
    folder = split_folder(root, split)
    bad = BadInput(on_error, split=str(split), unit="utterances")
    first_seen: dict[str, str] = {}  # id -> "FILE:LINE" where it was first listed
    utterances: list[Utterance] = []
    for speaker in _subfolders(folder):
        for chapter in _subfolders(folder / speaker):
            chapter_dir = folder / speaker / chapter
            utterances += _chapter_utterances(chapter_dir, speaker, chapter, bad, first_seen)
    bad.log_summary(len(utterances), log)
    return sorted(utterances, key=lambda u: u.id)


def _chapter_utterances(chapter_dir: Path, speaker: str, chapter: str, bad: BadInput,
                        first_seen: dict[str, str]) -> list[Utterance]:
    audio: dict[str, Path] = {}
    transcript_files: list[Path] = []
    with os.scandir(chapter_dir) as entries:
        for entry in entries:
            if not entry.is_file():
                continue
            if entry.name.endswith(TRANSCRIPT_SUFFIX):
                transcript_files.append(Path(entry.path))
                continue
            stem, suffix = os.path.splitext(entry.name)
            suffix = suffix.lower()
            if suffix not in AUDIO_SUFFIXES:
                continue
            known = audio.get(stem)
            rank = AUDIO_SUFFIXES.index(suffix)
            if known is None or rank < AUDIO_SUFFIXES.index(known.suffix.lower()):
                audio[stem] = Path(entry.path)

    lines: dict[str, tuple[str, str]] = {}  # id -> (text, "FILE:LINE")
    for transcript in sorted(transcript_files):
        for utt_id, text, where in _transcript_lines(transcript, bad):
            if utt_id in first_seen:
                bad.found("duplicate utterance ids", where,
                          f"utterance {utt_id} is already listed at {first_seen[utt_id]}")
                continue
            first_seen[utt_id] = where
            lines[utt_id] = (text, where)

    utterances = []
    for utt_id, (text, where) in sorted(lines.items()):
        path = audio.get(utt_id)
        if path is None:
            bad.found("transcript lines without audio", where,
                      f"no audio file {chapter_dir / utt_id}.flac for utterance {utt_id}",
                      FileNotFoundError)
            continue
        utterances.append(Utterance(utt_id, path, text, speaker, chapter))
    for stem in sorted(audio.keys() - lines.keys()):
        bad.found("audio files without transcript line", audio[stem],
                  f"no line for {stem} in {chapter_dir}/*{TRANSCRIPT_SUFFIX}")
    return utterances


def _transcript_lines(path: Path, bad: BadInput) -> list[tuple[str, str, str]]:
    """(id, text, "FILE:LINE") for each well-formed line of one .trans.txt file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        bad.found("unreadable transcript files", path, f"cannot read ({e.strerror or e})")
        return []
    parsed = []
    for number, raw in enumerate(data.splitlines(), start=1):
        where = f"{path}:{number}"
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            bad.found("unreadable transcript lines", where, "line is not UTF-8 text")
            continue
        if not line:
            continue
        utt_id, _, text = line.partition(" ")
        text = text.strip()
        if not text:
            bad.found("unreadable transcript lines", where,
                      f"expected 'UTTERANCE-ID TRANSCRIPT', got {line!r}")
            continue
        parsed.append((utt_id, text, where))
    return parsed
