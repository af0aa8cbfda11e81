"""A run directory `logs/<stage>/<run-name>/` and what goes in it.

- `config.json`: the resolved config (every default filled in),
- `env.json`: seed, library versions, git commit and dirty flag, device,
- `train.log`: the human-readable log (also echoed to the console),
- `metrics.jsonl`: one JSON object per logged step or evaluation,
- `*.png`: curves drawn from `metrics.jsonl` by `plot_curves`,
- `events.out.tfevents.*`: the same numbers, plots and texts for TensorBoard
  (`tensorboard --logdir logs` shows every run; each file is one process's session of the run).

What goes to TensorBoard, and under which tag:

- Scalars: every number of a `metrics()` record, at the record's step. A metric named after a split
  (`train_`, `dev_`, `val_`, `test_` first) is filed under that split: `train_loss` -> `train/loss`,
  `dev_cer` -> `dev/cer`, `dev_wer` -> `dev/wer`, `val_au_fa_fr` -> `val/au_fa_fr`,
  `train_seconds` -> `train/seconds`. Any other name is a quantity of the training loop and goes
  under `train/` as it is: `lr` -> `train/lr`, `epoch_train_loss` -> `train/epoch_train_loss`,
  `audio_seconds_per_second` -> `train/audio_seconds_per_second`.
  `step`, `epoch` and `split` say where a record belongs and are not plotted: the step is
  TensorBoard's x axis (an epoch would be plotted twice at an epoch's last step, by the step record
  and by the epoch-end record), and a `split` names a level of the record's tags instead (a split
  given as a folder path by its last component). Other strings are not plotted either.
- Final results (records at step -1: test scores, model costs) have no training step. They are
  plotted at the final step, one past the last step logged, under `<group>/<split>/<metric>` with
  `final` for a metric named after no split: ASR `test_cer` of test-clean -> `test/test-clean/cer`,
  KWS `best_au_fa_fr` of testing -> `final/testing/best_au_fa_fr`, `macs` -> `final/macs`.
  One past the last step, and not at it, so that resuming a finished run (which keeps its last
  step, see below) drops them as metrics.jsonl does, instead of showing them twice.
- Text: `text(tag, text, step)` (the ASR example transcripts: `dev/examples`,
  `test/<split>/examples`), shown as written.
- Images: `image(png, step)` under `plots/<file stem>` (`plots/loss`, `plots/error_rates`, ...),
  logged each time the PNG is redrawn, so TensorBoard's step slider shows how the curves grew.

A resumed run continues from a checkpoint at step S and writes steps after S again.
`resume_metrics(S)` drops them from metrics.jsonl and from the event files of earlier sessions
(rewritten without their events after S), and the new session's event file starts with a restart
marker at step S + 1 (SummaryWriter's `purge_step`). The marker alone is not enough: TensorBoard's
Python loader (`--load_fast=false`) hides every earlier event from that step on, but its default
loader (the Rust data server, tensorboard 2.21) only drops a tag's points when the tag is written
again at an earlier or equal step, so the final results of a KWS run extended by more epochs stayed
on screen. With the rewritten files each step shows once whichever loader reads them; a TensorBoard
already open during the resume may keep what it had read until it is restarted.
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
from PIL import Image  # noqa: E402
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader  # noqa: E402
from tensorboard.compat.proto.event_pb2 import Event  # noqa: E402
from tensorboard.summary.writer.record_writer import RecordWriter  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from common.out_folder import write_text_atomic  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Metric name prefixes that name a split: `dev_cer` is filed under `dev/` in TensorBoard.
SPLIT_PREFIXES = ("train", "dev", "val", "test")
# Record fields that say where a record belongs rather than measure something: not plotted.
COORDINATES = ("step", "epoch", "split")


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


def cpu_description() -> str:
    """The processor's model name and the vector instructions torch uses on it, e.g. "AMD EPYC (AVX2)".

    The project's hosts are not all one processor: the same epoch has taken twice as long on one
    as on another, and bfloat16 is fast only where the processor has it (AVX-512 BF16, AMX).
    """
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name} ({torch.backends.cpu.get_cpu_capability()})"


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
        "cpu": cpu_description(),
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

        # TensorBoard: the writer opens on first use, so that a RunLog that records nothing leaves
        # no event file, and a resumed one opens with the purge step `resume_metrics` sets.
        self._writer: SummaryWriter | None = None
        self._purge_step: int | None = None
        self._last_step = -1  # the highest step logged; final results go one past it

    def info(self, message: str) -> None:
        self.logger.info(message)

    def metrics(self, **record: Any) -> None:
        """Append one record (e.g. step=..., loss=...) to metrics.jsonl, and its numbers to TensorBoard
        (tags in the module docstring). A record without `step` reaches metrics.jsonl only."""
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if "step" not in record:
            return
        step = self._tensorboard_step(record["step"])
        split = record.get("split")
        writer = self._tensorboard()
        for name, value in record.items():
            if name not in COORDINATES and isinstance(value, (int, float)) and not isinstance(value, bool):
                writer.add_scalar(tensorboard_tag(name, split, final=record["step"] < 0), value, step)
        writer.flush()  # a live TensorBoard sees each record, and a crash loses none

    def text(self, tag: str, text: str, step: int) -> None:
        """Show `text` in TensorBoard's text tab at `step` (-1: the final step), line for line:
        TensorBoard renders Markdown, so the text goes in a fenced code block."""
        writer = self._tensorboard()
        writer.add_text(tag, f"```\n{text.rstrip()}\n```", self._tensorboard_step(step))
        writer.flush()

    def image(self, png: str | Path, step: int) -> None:
        """Show the plot `png` in TensorBoard's images tab as `plots/<file stem>` at `step` (-1: the
        final step); call it each time the plot is redrawn."""
        with Image.open(png) as picture:
            pixels = np.asarray(picture.convert("RGB"))  # matplotlib writes RGBA; TensorBoard wants RGB
        writer = self._tensorboard()
        writer.add_image(f"plots/{Path(png).stem}", pixels, self._tensorboard_step(step), dataformats="HWC")
        writer.flush()

    def resume_metrics(self, step: int) -> None:
        """Forget the records a resumed run will write again: those after `step` (the checkpoint it
        resumes from) and the final results (`step` -1), so every reader sees each step once.

        The same goes for TensorBoard: the event files of earlier sessions lose their events after
        `step`, and this session's file starts with a restart marker at `step` + 1 (module docstring).
        """
        self._close_writer()  # anything written before this call belongs to the old session
        self._purge_step, self._last_step = step + 1, step
        for path in sorted(self.dir.glob("events.out.tfevents.*")):
            drop_events_after(path, step)
        if not self.metrics_path.exists():
            return
        kept = [r for r in read_metrics(self.metrics_path) if 0 <= r.get("step", 0) <= step]
        write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

    def close(self) -> None:
        self._close_writer()
        for handler in list(self.logger.handlers):
            self.logger.removeHandler(handler)
            handler.close()

    def _tensorboard(self) -> SummaryWriter:
        """The run's TensorBoard writer (an event file in the run folder), opened on first use."""
        if self._writer is None:
            self._writer = SummaryWriter(str(self.dir), purge_step=self._purge_step)
        return self._writer

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _tensorboard_step(self, step: int) -> int:
        """The TensorBoard step of a record at `step`: itself, or for the final results (-1) the
        final step, one past the highest step logged (see the module docstring)."""
        if step < 0:
            return self._last_step + 1
        self._last_step = max(self._last_step, step)
        return step


def drop_events_after(path: Path, step: int) -> None:
    """Rewrite the TensorBoard event file `path` without its events after `step` (its file-version
    records stay: a reader needs them). Untouched when nothing is to go; atomic otherwise."""
    records = list(RawEventFileLoader(str(path)).Load())  # serialized events; a cut-off last one is skipped
    kept = [r for r in records if (event := Event.FromString(r)).file_version or event.step <= step]
    if len(kept) == len(records):
        return
    tmp = path.with_name("rewrite.tmp")  # no "tfevents" in the name, or TensorBoard would read it as a run's file
    with open(tmp, "wb") as f:
        writer = RecordWriter(f)
        for record in kept:
            writer.write(record)
    os.replace(tmp, path)


def tensorboard_tag(name: str, split: str | None = None, *, final: bool = False) -> str:
    """The TensorBoard tag of metric `name` (of `split`, if the record names one); `final` for the
    results of a finished run (step -1). The mapping is in the module docstring."""
    prefix, _, rest = name.partition("_")
    if prefix in SPLIT_PREFIXES and rest:
        group, metric = prefix, rest
    else:
        group, metric = ("final" if final else "train"), name
    if split:
        return f"{group}/{Path(split).name}/{metric}"
    return f"{group}/{metric}"


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
