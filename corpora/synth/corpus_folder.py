"""The folder of one synthetic corpus: made fresh, marked complete last, checked against a spec.

    root/CORPUS_DIR/
        .synthetic    written first: only folders holding it are ever deleted, so a real corpus
                      unpacked under the same name is never overwritten
        .complete     JSON {"spec": the spec's fields, ...the corpus's counts}, written last
                      (atomically), so its presence means every other file is in place

Each corpus module (`librispeech`, `speech_commands`, `kspon`) starts `make_X` with
`fresh_corpus_folder`, ends it with `mark_complete`, and answers `is_complete` from the marker.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

MARKER = ".complete"
SYNTHETIC_MARKER = ".synthetic"  # written first: only folders holding it are ever deleted


def fresh_corpus_folder(root: Path, corpus_dir: str) -> Path:
    """An empty root/corpus_dir holding only the `.synthetic` marker (an earlier one is deleted).

    Raises ValueError when the folder exists without the marker: it was not made here.
    """
    corpus = Path(root) / corpus_dir
    if corpus.exists():
        if not (corpus / SYNTHETIC_MARKER).is_file():
            raise ValueError(f"{corpus} exists and was not made by corpora.synth (no "
                             f"{SYNTHETIC_MARKER} file): refusing to overwrite it")
        shutil.rmtree(corpus)
    corpus.mkdir(parents=True)
    (corpus / SYNTHETIC_MARKER).write_text("made by python -m corpora.synth\n")
    return corpus


def spec_json(spec: Any) -> dict:
    """A dataclass spec's fields as they read back from JSON (tuples become lists)."""
    return json.loads(json.dumps(asdict(spec)))


def is_complete(corpus: Path, spec: Any, **recorded: Any) -> bool:
    """True when `corpus` holds a completion marker for this spec and these `recorded` values.

    recorded: further marker keys that must match too, e.g. text_sha256="..." (None matches a
    marker without the key).
    """
    marker = Path(corpus) / MARKER
    if not marker.is_file():
        return False
    try:
        done = json.loads(marker.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return (done.get("spec") == spec_json(spec)
            and all(done.get(key) == value for key, value in recorded.items()))


def mark_complete(corpus: Path, spec: Any, record: dict) -> None:
    """Write `corpus`/.complete: {"spec": spec's fields, **record} as indented UTF-8 JSON.

    Written to a temporary file and renamed, so a marker is either whole or absent.
    """
    tmp = Path(corpus) / (MARKER + ".tmp")
    tmp.write_text(json.dumps({"spec": spec_json(spec), **record}, indent=1, ensure_ascii=False)
                   + "\n", encoding="utf-8")
    os.replace(tmp, Path(corpus) / MARKER)
