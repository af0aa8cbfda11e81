"""A plain folder of recordings: `DIR/NAME.wav` next to `DIR/NAME.txt`, listed as utterances.

This is the "custom directory" dataset of the course template, and the quickest way to score your
own recordings: put each audio file and its transcript side by side in one folder.

Rules:
- Audio is every file directly in the folder ending in .flac, .wav, .ogg or .mp3 (any case);
  subfolders are not read. The utterance id is the file's stem (`a.wav` -> `a`).
- Its transcript is `STEM.txt` in the same folder: UTF-8 text (a byte-order mark is allowed), the
  whole file is the transcript, with runs of whitespace (line breaks too) read as one space.
  Transcripts are returned as written; normalization is the ASR text module's job.
- Bad items are skipped and counted (`common.readers.bad_input`): audio without a transcript, a
  transcript without audio, a transcript that is empty or not UTF-8, a second audio file of the
  same stem (`a.wav` next to `a.flac`: the first of the suffix order above is read).
- A folder that does not exist always raises FileNotFoundError.

`is_plain_folder` tells such a folder from a LibriSpeech-layout one (SPEAKER/CHAPTER folders).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from common.readers.bad_input import BadInput

AUDIO_SUFFIXES = (".flac", ".wav", ".ogg", ".mp3")  # in order of preference when a stem has several
TRANSCRIPT_SUFFIX = ".txt"
LAYOUT = f"audio files ({', '.join(AUDIO_SUFFIXES)}) each with a same-named {TRANSCRIPT_SUFFIX} transcript"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderUtterance:
    """One utterance: `id` is the audio file's stem, `text` the transcript as written."""

    id: str
    path: Path
    text: str


def _files(folder: Path) -> list[Path]:
    """The visible plain files directly in `folder`, sorted by name."""
    with os.scandir(folder) as entries:
        return sorted(Path(e.path) for e in entries if e.is_file() and not e.name.startswith("."))


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES


def _is_transcript(path: Path) -> bool:
    # A LibriSpeech chapter's SPEAKER-CHAPTER.trans.txt is not a plain-folder transcript.
    return path.suffix.lower() == TRANSCRIPT_SUFFIX and not path.name.lower().endswith(".trans.txt")


def is_plain_folder(folder: str | os.PathLike) -> bool:
    """Whether `folder` is read by this module: it directly holds audio files, or it holds
    transcripts (`*.txt`) and no subfolder (so a folder of transcripts whose audio is missing is
    reported as such). A LibriSpeech split holds only SPEAKER folders; a missing folder is not plain.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return False
    files = _files(folder)
    if any(_is_audio(p) for p in files):
        return True
    with os.scandir(folder) as entries:
        has_subfolders = any(e.is_dir() and not e.name.startswith(".") for e in entries)
    return not has_subfolders and any(_is_transcript(p) for p in files)


def list_utterances(folder: str | os.PathLike, *, on_error: str = "skip") -> list[FolderUtterance]:
    """Every audio file of `folder` that has a readable transcript next to it, sorted by id.

    on_error: "skip" drops bad items (see the module docstring) and logs one summary warning;
    "raise" raises at the first one (FileNotFoundError for a transcript without audio, ValueError
    otherwise), naming the file. A missing folder always raises FileNotFoundError.
    """
    folder = Path(folder)
    if not folder.is_dir():
        problem = "not a folder" if folder.exists() else "no such folder"
        raise FileNotFoundError(f"{folder}: {problem} (expected {LAYOUT})")
    bad = BadInput(on_error, split=str(folder), unit="utterances")
    files = _files(folder)
    audio: dict[str, Path] = {}
    for path in sorted((p for p in files if _is_audio(p)), key=lambda p: AUDIO_SUFFIXES.index(p.suffix.lower())):
        if path.stem in audio:  # sorted by preference: the one already kept is the preferred one
            bad.found("second audio files of one name", path,
                      f"{audio[path.stem].name} is read for utterance {path.stem}; this file is not")
            continue
        audio[path.stem] = path
    transcripts = {p.stem: p for p in files if _is_transcript(p)}

    utterances = []
    for stem in sorted(audio):
        if stem not in transcripts:
            bad.found("audio files without transcript", audio[stem],
                      f"no transcript {folder / stem}{TRANSCRIPT_SUFFIX}")
            continue
        text = _read_transcript(transcripts[stem], bad)
        if text is not None:
            utterances.append(FolderUtterance(stem, audio[stem], text))
    for stem in sorted(transcripts.keys() - audio.keys()):
        bad.found("transcripts without audio", transcripts[stem],
                  f"no audio file {stem}.* ({', '.join(AUDIO_SUFFIXES)}) next to it", FileNotFoundError)
    bad.log_summary(len(utterances), log)
    return utterances


def _read_transcript(path: Path, bad: BadInput) -> str | None:
    """The transcript in `path` on one line, or None (recorded in `bad`) when it cannot be used."""
    try:
        data = path.read_bytes()
    except OSError as e:
        bad.found("unreadable transcripts", path, f"cannot read ({e.strerror or e})")
        return None
    try:
        text = data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError:
        bad.found("unreadable transcripts", path, "transcript is not UTF-8 text")
        return None
    text = " ".join(text.split())
    if not text:
        bad.found("empty transcripts", path, "transcript file holds no text")
        return None
    return text
