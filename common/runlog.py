"""A run directory `logs/<stage>/<run-name>/` and what goes in it.

- `config.json`: the resolved config (every default filled in),
- `env.json`: seed, library versions, git commit and dirty flag, device,
- `train.log`: the human-readable log (also echoed to the console),
- `metrics.jsonl`: one JSON object per logged step or evaluation,
- `*.png`: curves drawn from `metrics.jsonl` by `plot_curves`.
"""
from __future__ import annotations

import json
import os
import logging
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

import matplotlib

matplotlib.use("Agg")  # no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402
import tqdm  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _TqdmHandler(logging.StreamHandler):
    """Console output that does not break running tqdm bars."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.tqdm.write(self.format(record), file=sys.stdout)


def git_state(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The commit checked out at `root` and whether tracked files differ from it."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def environment(seed: int, device: str) -> dict[str, Any]:
    """What `env.json` records: enough to rerun and to explain a different result."""
    return {
        "seed": seed,
        "device": device,
        "cuda_device": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        "argv": sys.argv,
        "git": git_state(),
    }


class RunLog:
    """Owns one run directory: writes config/env once, then log lines and metric records."""

    def __init__(self, stage: str, name: str, config: dict, *, seed: int, device: str,
                 root: str | Path = PROJECT_ROOT / "logs", quiet: bool = False) -> None:
        self.dir = Path(root) / stage / name
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        (self.dir / "env.json").write_text(json.dumps(environment(seed, device), indent=2) + "\n")
        self.metrics_path = self.dir / "metrics.jsonl"

        self.logger = logging.getLogger(f"run.{stage}.{name}")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        for handler in list(self.logger.handlers):  # a second RunLog on the same dir in one process
            self.logger.removeHandler(handler)
            handler.close()
        file_handler = logging.FileHandler(self.dir / "train.log")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        self.logger.addHandler(file_handler)
        if not quiet:
            self.logger.addHandler(_TqdmHandler())

    def info(self, message: str) -> None:
        self.logger.info(message)

    def metrics(self, **record: Any) -> None:
        """Append one record (e.g. step=..., loss=...) to metrics.jsonl."""
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def resume_metrics(self, step: int) -> None:
        """Forget the records a resumed run will write again: those after `step` (the checkpoint it
        resumes from) and the final results (`step` -1), so every reader sees each step once."""
        if not self.metrics_path.exists():
            return
        kept = [r for r in read_metrics(self.metrics_path) if 0 <= r.get("step", 0) <= step]
        tmp = self.metrics_path.with_name(self.metrics_path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        os.replace(tmp, self.metrics_path)

    def close(self) -> None:
        for handler in list(self.logger.handlers):
            self.logger.removeHandler(handler)
            handler.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file, skipping a last line cut short by a crash."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_curves(records: Iterable[dict[str, Any]], keys: list[str], out_png: str | Path, *,
                x: str = "step", title: str | None = None, log_y: bool = False) -> Path:
    """One PNG with a curve per key, drawn from the records that have both `x` and that key."""
    records = list(records)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    any_positive = False
    for key in keys:
        points = [(r[x], r[key]) for r in records if x in r and r.get(key) is not None]
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o" if len(points) < 30 else None, markersize=3, label=key)
            any_positive = any_positive or max(ys) > 0
    ax.set_xlabel(x)
    if log_y and any_positive:  # a perfect score (all zeros) has no log scale; keep it linear
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    return save_figure(fig, ax, out_png)


def save_figure(fig: plt.Figure, ax: plt.Axes, out_png: str | Path) -> Path:
    """Finish a one-axes figure in the project's style (grid, legend) and write it as PNG."""
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
