"""The `--out DIR` folder of the scoring commands: checked before the work, written after it.

A long evaluation must not end in a failed write, and an evaluation that fails must not leave a
half-written folder behind: so commands call `check_out_folder` before they score anything, and
create and fill the folder only once every result is known.
"""
from __future__ import annotations

import os
from pathlib import Path


def check_out_folder(path: str | os.PathLike, flag: str = "--out") -> None:
    """OSError naming `path` (given as option `flag`) unless it is, or can be made as, a writable folder.

    Nothing is created here: an error run leaves no empty folder behind.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"{path}: {flag} is not a folder (a file of that name exists)")
        existing = path
    else:  # the nearest existing folder above is where mkdir would start
        existing = next(parent for parent in path.absolute().parents if parent.exists())
        if not existing.is_dir():
            raise NotADirectoryError(f"{path}: cannot create the {flag} folder, {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: cannot write the {flag} folder, {existing} is not writable")


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` through a temporary file and a rename: a reader (or a crash) never
    sees half a file. Returns `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
