"""The folder of one synthetic corpus: made fresh, marked complete last, checked against a spec.

    root/CORPUS_DIR/
        .synthetic    written first: only folders holding it are ever deleted, so a real corpus
                      unpacked under the same name is never overwritten
        .files        every file the synthesis wrote (relative paths, one a line), written by
                      `mark_complete` just before .complete
        .complete     JSON {"spec": the spec's fields, ...the corpus's counts}, written last
                      (atomically), so its presence means every other file is in place

Each corpus module (`librispeech`, `speech_commands`, `kspon`) starts `make_X` with
`fresh_corpus_folder`, ends it with `mark_complete`, and answers `is_complete` from the marker.

What synthesis may delete (`check_replaceable`): only a folder holding `.synthetic` and nothing but
the files its `.files` lists. A folder without `.synthetic` (a real corpus, a download, anything
else) is never touched; nor is a synthetic one holding a file synthesis did not write (e.g. a real
subset merged in by hand or by an older downloader). Two states have no `.files`: a synthesis
interrupted before it finished (no `.complete` either: it is replaced, since everything in it was
written by that run: `corpora.download` refuses to unpack into a folder holding `.synthetic`, and
a file older than `.synthetic` itself, e.g. one unpacked from an archive, is refused as foreign)
and a complete corpus made before `.files` existed (its own files cannot be told from others, so
the user is asked to delete it).
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
FILES = ".files"  # the files synthesis wrote, listed when it finishes
# File times may lag the clock a little (coarse timestamps, network file systems).
CLOCK_SLACK_NS = 2 * 10 ** 9
# Files about the corpus rather than of it: never listed in FILES, never "foreign".
BOOKKEEPING = frozenset({SYNTHETIC_MARKER, MARKER, MARKER + ".tmp", FILES, FILES + ".tmp"})


class NotOurs(ValueError):
    """The folder holds something corpora.synth did not write, so it is never deleted.

    The message is one line: the folder, why, and what the user can do.
    """


def _files_under(corpus: Path) -> list[str]:
    """Relative POSIX paths of everything under `corpus` but folders (links are not followed)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(corpus):
        here = Path(dirpath)
        # A link to a folder shows up in dirnames, but it is an entry of this folder, not a folder
        # synthesis made: list it, and os.walk does not descend into it (followlinks=False).
        names = filenames + [d for d in dirnames if (here / d).is_symlink()]
        found += [(here / name).relative_to(corpus).as_posix() for name in names]
    return sorted(found)


def _listed_files(corpus: Path) -> set[str] | None:
    """The files `.files` says synthesis wrote, or None where there is no readable `.files`."""
    try:
        return set((corpus / FILES).read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        return None


def holds_foreign_corpus(corpus: Path) -> bool:
    """True when `corpus` is a folder (or a link to one) with content but no `.synthetic` marker:
    a real corpus or anything else corpora.synth did not make."""
    corpus = Path(corpus)
    return (corpus.is_dir() and not (corpus / SYNTHETIC_MARKER).is_file()
            and any(corpus.iterdir()))


def check_replaceable(corpus: Path) -> None:
    """Raise NotOurs unless deleting `corpus` loses nothing but what corpora.synth wrote there.

    An absent folder passes. See the module docstring for the rules.
    """
    corpus = Path(corpus)
    if corpus.is_symlink():
        # Deleting through a link would delete its target, which may be anything anywhere.
        raise NotOurs(f"{corpus} is a symbolic link, and corpora.synth never replaces links: "
                      f"remove the link or pass another --root")
    if not corpus.exists():
        return
    if not corpus.is_dir():
        raise NotOurs(f"{corpus} is not a folder: move it away or pass another --root")
    if not (corpus / SYNTHETIC_MARKER).is_file():
        raise NotOurs(f"{corpus} exists and was not made by corpora.synth (no {SYNTHETIC_MARKER} "
                      f"file): refusing to overwrite it; move it away or pass another --root")
    listed = _listed_files(corpus)
    if listed is None:
        if (corpus / MARKER).is_file():
            raise NotOurs(f"{corpus} was made by an older corpora.synth that did not list its "
                          f"files ({FILES}), so they cannot be told from files added since: check "
                          f"it, delete it yourself (rm -r {corpus}) and run again")
        # An interrupted synthesis. It wrote .synthetic first, so a file older than that (say,
        # unpacked from an archive, which keeps the archive's times) was not written by it.
        made = (corpus / SYNTHETIC_MARKER).stat().st_mtime_ns - CLOCK_SLACK_NS
        older = [rel for rel in _files_under(corpus)
                 if rel not in BOOKKEEPING and (corpus / rel).lstat().st_mtime_ns < made]
        _refuse_foreign(corpus, older, "which is older than the unfinished synthesis that made "
                                       "the folder, so it did not write it")
        return
    _refuse_foreign(corpus, [rel for rel in _files_under(corpus)
                             if rel not in listed and rel not in BOOKKEEPING],
                    "which corpora.synth did not write")


def _refuse_foreign(corpus: Path, foreign: list[str], why: str) -> None:
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        raise NotOurs(f"{corpus} holds {foreign[0]}{more}, {why}: refusing to delete it; move "
                      f"such files out (or delete {corpus} yourself) and run again")


def fresh_corpus_folder(root: Path, corpus_dir: str) -> Path:
    """An empty root/corpus_dir holding only the `.synthetic` marker (an earlier one is deleted).

    Raises NotOurs (a ValueError) when the folder holds anything corpora.synth did not write
    (`check_replaceable`); an empty folder without the marker is refused too, since it was not
    made here either.
    """
    corpus = Path(root) / corpus_dir
    check_replaceable(corpus)
    if corpus.exists():
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


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def mark_complete(corpus: Path, spec: Any, record: dict) -> None:
    """List the corpus's files in `corpus`/.files, then write `corpus`/.complete: {"spec": spec's
    fields, **record} as indented UTF-8 JSON, without record's "path": identical specs give
    identical markers wherever the corpus lives.

    Both are written to a temporary file and renamed, so each is either whole or absent; .files
    comes first, so a .complete always has its list (the listing is sorted and relative, so equal
    corpora get equal files).
    """
    corpus = Path(corpus)
    files = [rel for rel in _files_under(corpus) if rel not in BOOKKEEPING]
    _write_atomically(corpus / FILES, "".join(f"{rel}\n" for rel in files))
    kept = {key: value for key, value in record.items() if key != "path"}
    _write_atomically(corpus / MARKER, json.dumps({"spec": spec_json(spec), **kept}, indent=1,
                                                  ensure_ascii=False) + "\n")
