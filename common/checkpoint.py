"""Checkpoints written atomically and read without running code.

A checkpoint is a dict of state dicts, tensors and plain Python values (numbers, strings, lists,
dicts). `torch.load(weights_only=True)` then reads it without unpickling arbitrary objects, so a
checkpoint from an untrusted source cannot run code on load.
"""
from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit; the message is one line."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` so that a crash at any moment leaves the old file or the new one.

    The bytes go to a temp file in the same folder (same filesystem, so the rename is atomic),
    are fsynced, then `os.replace`d over the target.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would make logs/ unreadable to the rest of a team
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    # Make the rename itself durable.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (tensors and plain values only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message suggests weights_only=False, i.e. running the file's code: never that.
        raise CheckpointError(f"{path}: not a checkpoint of this project (it holds Python objects other "
                              f"than tensors and plain values; refused without loading them)") from None
    except Exception as e:  # torch raises several types for truncated or foreign files
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({first_line})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, got {type(state).__name__}")
    return state


def load_model_state(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """`model.load_state_dict` that names every missing, unexpected or reshaped key on mismatch."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    reshaped = [
        f"{k} {tuple(state_dict[k].shape)} in checkpoint vs {tuple(own[k].shape)} in model"
        for k in own
        if k in state_dict and state_dict[k].shape != own[k].shape
    ]
    problems = []
    if reshaped:
        problems.append("shape differs: " + "; ".join(reshaped[:3]) + (" ..." if len(reshaped) > 3 else ""))
    if missing:
        problems.append(f"{len(missing)} key(s) missing from checkpoint: " + ", ".join(missing[:3]))
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): " + ", ".join(unexpected[:3]))
    if problems:
        raise CheckpointError(f"{source}: checkpoint does not fit the model: " + " | ".join(problems))
    model.load_state_dict(state_dict)


def require_same(what: str, expected: Any, found: Any, source: str) -> None:
    """Fail naming the first difference when a checkpoint's `what` (e.g. vocabulary) differs."""
    if expected == found:
        return
    if isinstance(expected, (list, tuple)) and isinstance(found, (list, tuple)):
        if len(expected) != len(found):
            detail = f"{len(found)} entries in checkpoint vs {len(expected)} expected"
        else:
            i = next(i for i, (a, b) in enumerate(zip(expected, found)) if a != b)
            detail = f"entry {i} is {found[i]!r} in checkpoint vs {expected[i]!r} expected"
    else:
        detail = f"{found!r} in checkpoint vs {expected!r} expected"
    raise CheckpointError(f"{source}: {what} differs: {detail}")
