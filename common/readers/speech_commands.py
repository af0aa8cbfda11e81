"""Google Speech Commands (v0.01: 30 words, v0.02: 35): listing the clips of one split.

Layout: `ROOT/WORD/SPEAKER_nohash_N.wav` (1 s, 16 kHz), `ROOT/validation_list.txt` and
`ROOT/testing_list.txt` (paths relative to ROOT, one per line), `ROOT/_background_noise_/*.wav`.
The training split is every clip in a word folder (name not starting with `_`) that is in neither
list. The words are whatever folders exist, so both versions read the same way.

The synthetic corpus adds a held-out split, `ROOT/_heldout_/WORD/SPEAKER_nohash_N.wav`: voices and
channels no other split holds (docs/heldout.md). A real download has none; asking for it then
raises FileNotFoundError.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from common.readers.bad_input import BadInput

SPLITS = ("train", "validation", "testing", "heldout")
LIST_FILES = {"validation": "validation_list.txt", "testing": "testing_list.txt"}
BACKGROUND_NOISE = "_background_noise_"
HELDOUT_DIR = "_heldout_"
HASH_DIVIDER = "_nohash_"
# What a Speech Commands folder holds, for every "this is not one" error.
LAYOUT = f"a Speech Commands layout: WORD/*.wav, {', '.join(LIST_FILES.values())}"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clip:
    """One clip: `word` is its folder, `speaker` the hash before `_nohash_` in its name."""

    path: Path
    word: str
    speaker: str


@dataclass(frozen=True)
class SplitListing:
    """The clips of one split and what was dropped while listing them: {kind: count}, e.g.
    {"list entries without audio": 2} (empty when nothing was; see `list_clips`)."""

    clips: list[Clip]
    skipped: dict[str, int]


def corpus_root(root: str | os.PathLike) -> Path:
    """The folder holding the word folders: `root`, or `root/speech_commands` when only that has
    the list files (the downloader unpacks there)."""
    root = Path(root)
    nested = root / "speech_commands"
    if not (root / LIST_FILES["validation"]).exists() and (nested / LIST_FILES["validation"]).exists():
        return nested
    return root


def list_words(root: str | os.PathLike) -> list[str]:
    """The word folders of the corpus, sorted (folders starting with `_` or `.` are not words).

    Raises FileNotFoundError, naming the path and the expected layout, when `root` is missing,
    is a file or holds no word folder: every split of such a folder would be empty.
    """
    root = corpus_root(root)
    if not root.is_dir():
        problem = "not a folder" if root.exists() else "no such folder"
        raise FileNotFoundError(f"{root}: {problem} (expected {LAYOUT})")
    with os.scandir(root) as entries:
        words = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith(("_", ".")))
    if not words:
        raise FileNotFoundError(f"{root}: no word folders (expected {LAYOUT})")
    return words


def background_noises(root: str | os.PathLike) -> list[Path]:
    """The long noise recordings in `_background_noise_/`, sorted."""
    folder = corpus_root(root) / BACKGROUND_NOISE
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (Speech Commands ships its noise "
                                f"recordings there)")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav" and p.is_file())


def has_heldout(root: str | os.PathLike) -> bool:
    """True when the corpus has the synthetic corpus's held-out split (`_heldout_/`)."""
    return (corpus_root(root) / HELDOUT_DIR).is_dir()


def list_clips(root: str | os.PathLike, split: str, *, on_error: str = "skip") -> list[Clip]:
    """The clips of `split` ("train", "validation", "testing" or "heldout"), sorted by path.

    on_error: "skip" drops list entries whose file is missing, malformed list lines and clips not
    named SPEAKER_nohash_N.wav, logging one summary warning; "raise" raises at the first one
    (FileNotFoundError for a missing file, ValueError otherwise), naming the file.
    A missing list file always raises FileNotFoundError.
    """
    return read_split(root, split, on_error=on_error).clips


def read_split(root: str | os.PathLike, split: str, *, on_error: str = "skip") -> SplitListing:
    """`list_clips` with the count of what was skipped, for callers that report it (an
    evaluation whose clip count silently shrank would misstate what it scored)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = corpus_root(root)
    bad = BadInput(on_error, split=split, unit="clips")
    if split == "train":
        held_out = {entry for name in LIST_FILES for entry, _, ok in _list_entries(root, name) if ok}
        clips = _unlisted_clips(root, held_out, bad)
    elif split == "heldout":
        if not has_heldout(root):
            raise FileNotFoundError(f"{root / HELDOUT_DIR}: no held-out split (./run.sh data makes "
                                    f"one in the synthetic corpus; a real download has none)")
        clips = _unlisted_clips(root / HELDOUT_DIR, set(), bad)
    else:
        clips = _listed_clips(root, split, bad)
    bad.log_summary(len(clips), log)
    return SplitListing(sorted(clips, key=lambda c: c.path), bad.counts())


def _list_entries(root: Path, split: str) -> list[tuple[str, str, bool]]:
    """(entry, "FILE:LINE", well formed) per non-empty line of a list file."""
    list_file = root / LIST_FILES[split]
    if not list_file.is_file():
        raise FileNotFoundError(f"{list_file}: missing list file (expected {LAYOUT})")
    entries = []
    text = list_file.read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry:
            continue
        parts = entry.split("/")
        well_formed = (len(parts) == 2 and all(parts) and ".." not in parts
                       and not parts[0].startswith(("_", ".")))
        entries.append((entry, f"{list_file}:{number}", well_formed))
    return entries


def _clip(path: Path, word: str, where: str | Path, bad: BadInput) -> Clip | None:
    speaker, divider, _ = path.name.partition(HASH_DIVIDER)
    if not divider or not speaker:
        bad.found("clips not named SPEAKER_nohash_N.wav", where,
                  f"expected a name like SPEAKER{HASH_DIVIDER}0.wav, got {path.name!r}")
        return None
    return Clip(path, word, speaker)


def _listed_clips(root: Path, split: str, bad: BadInput) -> list[Clip]:
    clips, seen = [], set()
    for entry, where, well_formed in _list_entries(root, split):
        if not well_formed:
            bad.found("malformed list lines", where, f"expected WORD/FILE.wav, got {entry!r}")
            continue
        if entry in seen:  # listed twice: one clip, silently
            continue
        seen.add(entry)
        path = root / entry
        if not path.is_file():
            bad.found("list entries without audio", where, f"no audio file {path}", FileNotFoundError)
            continue
        clip = _clip(path, entry.split("/")[0], where, bad)
        if clip is not None:
            clips.append(clip)
    return clips


def _unlisted_clips(root: Path, held_out: set[str], bad: BadInput) -> list[Clip]:
    clips = []
    for word in list_words(root):
        with os.scandir(root / word) as entries:
            names = sorted(e.name for e in entries if e.is_file() and e.name.lower().endswith(".wav"))
        for name in names:
            if f"{word}/{name}" in held_out:
                continue
            path = root / word / name
            clip = _clip(path, word, path, bad)
            if clip is not None:
                clips.append(clip)
    return clips
