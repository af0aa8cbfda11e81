"""KsponSpeech (AI Hub, Korean spontaneous speech): listing the utterances of one split.

Layout: split lists `ROOT/KsponSpeech_scripts/{train,dev,eval_clean,eval_other}.trn` with lines
`RELATIVE/PATH.pcm :: TRANSCRIPT`, the paths relative to ROOT (e.g.
`KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000001.pcm`, `KsponSpeech_eval/KsponSpeech_E00001.pcm`).
Audio is headerless 16-bit little-endian 16 kHz mono PCM. Next to each .pcm a .txt holds the same
transcript in CP949.

Transcripts are returned raw, with the corpus annotations (`(철자)/(발음)` pairs, noise tags such as
`b/`, `o/`); turning them into model targets is the ASR text module's job.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from common.readers.bad_input import BadInput

SPLITS = ("train", "dev", "eval_clean", "eval_other")
SCRIPTS_FOLDER = "KsponSpeech_scripts"
TRN_SEPARATOR = " :: "
SAMPLE_RATE = 16000
SAMPLE_WIDTH = 2  # bytes, int16 little-endian

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KsponUtterance:
    """One utterance: `id` is the .pcm file's stem, `text` the raw annotated transcript."""

    id: str
    path: Path
    text: str


def corpus_root(root: str | os.PathLike) -> Path:
    """The folder holding `KsponSpeech_scripts/`: `root`, or `root/KsponSpeech` when only that has it."""
    root = Path(root)
    nested = root / "KsponSpeech"
    if not (root / SCRIPTS_FOLDER).is_dir() and (nested / SCRIPTS_FOLDER).is_dir():
        return nested
    return root


def trn_path(root: str | os.PathLike, split: str) -> Path:
    """The .trn list of `split`; FileNotFoundError naming it and the lists that exist when missing."""
    scripts = corpus_root(root) / SCRIPTS_FOLDER
    path = scripts / f"{split}.trn"
    if path.is_file():
        return path
    if not scripts.is_dir():
        raise FileNotFoundError(f"{scripts}: no such folder (expected the KsponSpeech split lists "
                                f"{', '.join(s + '.trn' for s in SPLITS)} there)")
    existing = ", ".join(sorted(p.stem for p in scripts.glob("*.trn"))) or "no .trn files"
    raise FileNotFoundError(f"{path}: no such split list; {scripts} holds: {existing}")


def list_utterances(root: str | os.PathLike, split: str, *,
                    on_error: str = "skip") -> list[KsponUtterance]:
    """The utterances listed in `split`'s .trn whose audio exists, sorted by id.

    on_error: "skip" drops lines without `PATH :: TEXT`, lines whose audio is missing and duplicate
    ids, logging one summary warning; "raise" raises at the first one (FileNotFoundError for missing
    audio, ValueError otherwise), naming the file and line. A missing .trn always raises.
    """
    root = corpus_root(root)
    trn = trn_path(root, split)
    bad = BadInput(on_error, split=split, unit="utterances")
    first_seen: dict[str, str] = {}
    utterances = []
    for number, raw in enumerate(trn.read_bytes().splitlines(), start=1):
        where = f"{trn}:{number}"
        line = _decode_line(raw, first=number == 1)
        if line is None:
            bad.found("unreadable lines", where, "line is neither UTF-8 nor CP949 text")
            continue
        if not line.strip():
            continue
        relative, separator, text = line.partition(TRN_SEPARATOR)
        relative, text = relative.strip(), text.strip()
        if not separator or not relative or not text:
            bad.found("unreadable lines", where,
                      f"expected 'PATH.pcm{TRN_SEPARATOR}TRANSCRIPT', got {line.strip()!r}")
            continue
        path = root / relative
        utt_id = path.stem
        if utt_id in first_seen:
            bad.found("duplicate utterance ids", where,
                      f"utterance {utt_id} is already listed at {first_seen[utt_id]}")
            continue
        first_seen[utt_id] = where
        if not path.is_file():
            bad.found("lines without audio", where, f"no audio file {path}", FileNotFoundError)
            continue
        utterances.append(KsponUtterance(utt_id, path, text))
    bad.log_summary(len(utterances), log)
    return sorted(utterances, key=lambda u: u.id)


def _decode_line(raw: bytes, *, first: bool) -> str | None:
    # The published .trn files are UTF-8 (every known preparation script reads them so); a
    # re-saved copy may be CP949. Valid CP949 Hangul lines are almost never valid UTF-8, so trying
    # UTF-8 first cannot mistake one for the other in practice.
    for encoding in ("utf-8", "cp949"):
        try:
            line = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        return line.lstrip("\ufeff") if first else line
    return None


def read_transcript(txt_path: str | os.PathLike) -> str:
    """The transcript in one per-utterance .txt file, stripped of surrounding whitespace.

    The files are CP949; a file that is not (some copies were re-saved as UTF-8) is read as UTF-8
    with a logged warning. Raises ValueError naming the file when it is neither.
    """
    path = Path(txt_path)
    data = path.read_bytes()
    try:
        return data.decode("cp949").strip()
    except UnicodeDecodeError as cp949_error:
        try:
            text = data.decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            raise ValueError(f"{path}: transcript is neither CP949 nor UTF-8 (bad byte "
                             f"{data[cp949_error.start:cp949_error.start + 1].hex()} at offset "
                             f"{cp949_error.start})") from None
    log.warning("%s: transcript is not CP949, read it as UTF-8", path)
    return text
