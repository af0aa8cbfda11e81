"""Check the ASR code's GPU path (autocast, GradScaler, cuDNN RNNs, torchrun/DDP, decoding) on
whatever device is here, and write what it finds as one report, OUT_DIR/gpu_check.md.

    python -m bench.gpu_check OUT_DIR [--data DIR] [--utterances 1000] [--dev-utterances 100]
                              [--steps 30] [--ddp-steps 10] [--nproc N] [--tiny] [--set KEY=VALUE ...]

On a GPU machine (CUDA is used when present; the defaults are sized to finish in a few minutes on
one H100/H200, well under 8):

    .venv/bin/python -m bench.gpu_check /tmp/gpu_check

CPU dry run (tiny corpus and models: it shows that every part runs, its speeds mean nothing):

    .venv/bin/python -m bench.gpu_check /tmp/gpu_check_cpu --tiny --utterances 16 --dev-utterances 4 \\
        --steps 3 --ddp-steps 2 --rnn-seconds 2 --rnn-repeats 2

`python bench/gpu_check.py OUT_DIR ...` works too. The parts, one table each:

1. Corpus: a synthetic LibriSpeech-layout corpus (train-clean-100, dev-clean, test-clean, spoken by
   eSpeak on all cores) under OUT_DIR/data, or under --data; kept when it is already complete for
   the same sizes. A --data folder holding a corpus not made by corpora.synth (the real
   LibriSpeech) is used as it is.
2. Training: configs/asr/paper_scale_clean.json and configs/asr/clean.json, --steps optimizer
   steps each in fp32, bf16 autocast and fp16 autocast + GradScaler (fp16 on CUDA only), taken as
   asr.train takes them (its ctc_loss, optimizer, schedule, gradient clipping and batches of its
   DurationBatchSampler over the corpus). Audio seconds per second over the steps after the first
   (a warm-up), peak GPU memory, the first and last loss, and the dtype the GRUs compute in under
   autocast (PyTorch's autocast wrapper for cuDNN RNNs has long cast them to fp16 whatever the
   autocast dtype; the column says what this torch does).
3. RNN: asr.model.RecurrentLayer (two one-direction GRUs on padded tensors, the backward one
   reading each utterance reversed within its length, directions summed) against
   nn.GRU(bidirectional=True) over a PackedSequence (cuDNN on a GPU) holding the same weights:
   outputs and gradients must agree; forward + backward of both timed at each config's size.
4. DDP: `torchrun --standalone --nproc_per_node 2 -m asr.train CONFIG` (NCCL) when there are 2 or
   more GPUs, else 1 process (world size 1: the launch path runs, but asr.train joins no process
   group and wraps no DDP), for --ddp-steps steps on the corpus; the run folder is
   OUT_DIR/ddp/logs/<stage>/gpu_check (replaced on each run of this script).
5. Decoding: greedy decoding of dev-clean with the model of part 4 (asr.evaluate.evaluate), or
   with the clean.json fp32 model of part 2 when part 4 left no checkpoint: CER, WER, utterances/s.

A part that fails puts its one-line error in its table and the script goes on to the next, so one
GPU run shows everything that breaks; the exit status is 1 when anything failed. The report is
rewritten after each part, so a run that dies midway still leaves the parts done.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asr.config import TrainConfig  # noqa: E402
from asr.data import collate, eval_loader, make_spec_augment  # noqa: E402
from asr.evaluate import evaluate  # noqa: E402
from asr.model import DeepSpeech2, RecurrentLayer, load_asr_checkpoint  # noqa: E402
from asr.text import TextTokenizer, build_tokenizer  # noqa: E402
from asr.train import (build_data, ctc_loss, make_optimizer, make_scheduler, optimizer_step,  # noqa: E402
                       select_train_utterances)
from common.cli import error_line  # noqa: E402
from common.config import from_dict, load_config  # noqa: E402
from common.features import Features, make_features  # noqa: E402
from common.runlog import read_metrics  # noqa: E402
from corpora.synth import corpus_folder  # noqa: E402
from corpora.synth.librispeech import CORPUS_DIR, LibriSpeechSpec, is_complete, make_librispeech  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAPER_CONFIG, CLEAN_CONFIG = "configs/asr/paper_scale_clean.json", "configs/asr/clean.json"
CONFIGS = (PAPER_CONFIG, CLEAN_CONFIG)
AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# --tiny: models small enough for a CPU dry run; everything else stays as the configs say.
TINY = ["model.rnn_hidden=32", "model.rnn_layers=2", "model.conv_channels=[4,4,4]", "data.max_batch_seconds=8",
        "data.num_workers=0"]
# Outputs within [-2, 2] (two GRU directions summed). On a GPU cuDNN may compute fp32 RNNs with TF32
# (torch.backends.cudnn.allow_tf32 is on by default), about 1e-3 relative per product; a reversal
# or weight mix-up gives differences of order 0.1-1 either way.
TOLERANCE = {"cpu": 1e-4, "cuda": 1e-2}
RUN_NAME = "gpu_check"


# ---------------------------------------------------------------------------------------------
# The report

@dataclass
class Table:
    """One part of the report: a markdown table whose last column is each row's status."""

    title: str
    columns: list[str]
    notes: list[str] = field(default_factory=list)  # lines under the table
    rows: list[list[str]] = field(default_factory=list)
    failures: int = 0

    def add(self, cells: list[object], error: BaseException | str | None = None, status: str = "ok") -> None:
        """A row of `cells` (all columns but the status); `error` makes it a failed row."""
        if error is not None:
            self.failures += 1
            status = "FAILED: " + (error if isinstance(error, str) else f"{type(error).__name__}: "
                                   f"{error_line(error)}")
        cells = [str(c) for c in cells]
        self.rows.append(cells + [""] * (len(self.columns) - 1 - len(cells)) + [status])

    def markdown(self) -> str:
        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")
        lines = [f"## {self.title}", "", "| " + " | ".join(cell(c) for c in self.columns) + " |",
                 "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines + ([""] + self.notes if self.notes else []))


def device_description(device: torch.device) -> str:
    """The accelerator's name (or the CPU's model from /proc/cpuinfo) and how many there are."""
    if device.type == "cuda":
        count = torch.cuda.device_count()
        return f"{torch.cuda.get_device_name(device)} ({count} GPU{'s' if count > 1 else ''})"
    model = "unknown CPU"
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU: {model} ({os.cpu_count()} cores, torch threads {torch.get_num_threads()}), no CUDA device"


def write_report(path: Path, header: list[str], tables: list[Table]) -> str:
    text = "\n".join(header) + "\n\n" + "\n\n".join(t.markdown() for t in tables) + "\n"
    path.write_text(text, encoding="utf-8")
    return text


def progress(message: str) -> None:
    print(f"[gpu_check] {message}", flush=True)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so wall-clock timings cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------
# 1. Corpus

def corpus_spec(train: int, dev: int) -> LibriSpeechSpec:
    """A clean-only corpus: `train` utterances in train-clean-100, `dev` each in dev-clean and test-clean
    (asr.train scores the test split when it ends), no train-other/other splits and no LM text."""
    return LibriSpeechSpec(train_clean_100=train, train_other_500=0, dev_clean=dev, test_clean=dev, dev_other=0,
                           test_other=0, lm_sentences=0)


def make_corpus(root: Path, spec: LibriSpeechSpec, table: Table) -> Path:
    """The LibriSpeech folder under `root`: kept when complete for `spec` (or not made by corpora.synth),
    else made on every core. One row per split in `table`."""
    folder = root / CORPUS_DIR
    started = time.time()
    if corpus_folder.holds_foreign_corpus(folder):
        table.add([str(folder), "?", "?", "kept: not made by corpora.synth, used as it is"])
        return folder
    if is_complete(root, spec):
        how = "kept (complete for these sizes)"
    else:
        # Chunks of 50 utterances, each in a fresh worker that first re-imports this script (the
        # forkserver's way, corpora/synth/pool.py): a few seconds per chunk on top of eSpeak.
        make_librispeech(root, spec, processes=os.cpu_count())
        how = f"made with up to {os.cpu_count()} processes in {time.time() - started:.1f} s"
    splits = json.loads((folder / corpus_folder.MARKER).read_text(encoding="utf-8"))["splits"]
    for split in ("train-clean-100", "dev-clean", "test-clean"):
        table.add([split, splits[split]["utterances"], f"{splits[split]['hours']:.3f}", how])
    return folder


# ---------------------------------------------------------------------------------------------
# 2. Training steps

@dataclass
class TrainedModel:
    """A model trained by `train_steps`, with what decoding it needs."""

    model: DeepSpeech2
    features: Features
    tokenizer: TextTokenizer
    cfg: TrainConfig


@dataclass
class StepsResult:
    losses: list[float]  # one per step, in order
    audio_seconds_per_second: float  # over the steps after the first
    peak_gib: float | None  # torch.cuda.max_memory_allocated; None on the CPU
    rnn_dtype: str  # the dtype of the last recurrent layer's forward GRU output
    params_m: float
    trained: TrainedModel | None  # with keep_model only


def train_steps(cfg: TrainConfig, tokenizer: TextTokenizer, batches: list[dict], steps: int, device: torch.device,
                amp_dtype: torch.dtype | None, keep_model: bool = False) -> StepsResult:
    """`steps` optimizer steps of a fresh model on `batches` (collated, cycled), as asr.train takes them.

    The first step is the warm-up (cuDNN plans, allocator growth): timing starts after it, its loss
    is the first loss. A non-finite loss skips the update, as in asr.train. The model is returned
    only with `keep_model`: one left alive would count in the next row's peak memory.
    """
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    features = make_features(cfg.features).to(device)
    model = DeepSpeech2(features.num_features, len(tokenizer.vocab), cfg.model).to(device)
    optimizer = make_optimizer(cfg.optim, model)
    scheduler = make_scheduler(cfg.optim, optimizer, steps)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype is torch.float16)
    spec_augment = make_spec_augment(cfg.augment)
    rnn_dtypes: list[torch.dtype] = []
    hook = model.rnns[-1].rnn.register_forward_hook(lambda module, inputs, output: rnn_dtypes.append(output[0].dtype))
    losses, audio_seconds, started = [], 0.0, time.perf_counter()
    model.train()
    for step in range(steps):
        if step == 1:
            synchronize(device)
            started = time.perf_counter()
        batch = batches[step % len(batches)]
        loss = ctc_loss(model, features, batch, device, spec_augment, amp_dtype)
        losses.append(loss.item())
        if math.isfinite(losses[-1]):
            optimizer_step(loss, model, optimizer, scaler, cfg.optim.grad_clip)
        scheduler.step()
        if step >= 1:
            audio_seconds += batch["wave_lengths"].sum().item() / cfg.features.sample_rate
    synchronize(device)
    elapsed = time.perf_counter() - started
    hook.remove()
    model.zero_grad(set_to_none=True)
    return StepsResult(
        losses=losses, audio_seconds_per_second=audio_seconds / max(elapsed, 1e-9),
        peak_gib=torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        rnn_dtype=str(rnn_dtypes[-1]).removeprefix("torch.") if rnn_dtypes else "?",
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        trained=TrainedModel(model, features, tokenizer, cfg) if keep_model else None)


def load_batches(cfg: TrainConfig, count: int) -> tuple[TextTokenizer, list[dict]]:
    """The tokenizer and the first `count` training batches asr.train would make from `cfg`'s data.

    Loaded once, before any timing: what is timed is the device, not the data pipeline. Epoch 1's
    order, shuffled: epoch 0 under SortaGrad would hold only the shortest utterances.
    """
    utterances, seconds, _ = select_train_utterances(cfg)
    tokenizer = build_tokenizer(cfg.text, [u.text for u in utterances])
    dataset, sampler = build_data(cfg, tokenizer, utterances, seconds, rank=0, world=1)
    sampler.set_epoch(1)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=cfg.data.num_workers)
    return tokenizer, list(itertools.islice(loader, min(count, len(sampler))))


def training_rows(table: Table, config: str, cfg: TrainConfig, steps: int, device: torch.device,
                  keep_fp32: bool = False) -> TrainedModel | None:
    """Rows of `table` for one config in each dtype; with `keep_fp32`, returns the fp32 model (None
    when that row failed)."""
    try:
        tokenizer, batches = load_batches(cfg, steps)
    except Exception as e:  # any failure is a finding: recorded in the table, and the script goes on
        table.add([config, "", "all"], error=e)
        return None
    utterances = sum(len(b["texts"]) for b in batches) / len(batches)
    seconds = sum(b["wave_lengths"].sum().item() for b in batches) / len(batches) / cfg.features.sample_rate
    kept = None
    for name, amp_dtype in AMP_DTYPES.items():
        if amp_dtype is torch.float16 and device.type != "cuda":
            table.add([config, "", name], status="skipped (CUDA only)")
            continue
        progress(f"2. training {config} {name}: {steps} steps")
        try:
            result = train_steps(cfg, tokenizer, batches, steps, device, amp_dtype,
                                 keep_model=keep_fp32 and amp_dtype is None)
        except Exception as e:  # recorded; the script goes on
            table.add([config, "", name], error=e)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        first, last = result.losses[0], result.losses[-1]
        bad = [i for i, loss in enumerate(result.losses) if not math.isfinite(loss)]
        table.add([config, f"{result.params_m:.2f}", name, f"{len(batches)} × ~{utterances:.0f} utt / {seconds:.0f} s",
                   steps, f"{result.audio_seconds_per_second:.1f}",
                   "n/a" if result.peak_gib is None else f"{result.peak_gib:.2f}", result.rnn_dtype,
                   f"{first:.3f}", f"{last:.3f}", "yes" if last < first else "no"],
                  error=f"non-finite loss at steps {bad}" if bad else None)
        kept = result.trained or kept  # alive in the next rows: a few MB for clean.json, in their peak memory
    return kept


# ---------------------------------------------------------------------------------------------
# 3. Padded two-direction layer vs torch's packed bidirectional GRU

def packed_twin(layer: RecurrentLayer) -> nn.GRU:
    """torch's own bidirectional GRU holding `layer`'s weights: direction 0 from `layer.rnn`,
    direction 1 (`*_reverse`) from `layer.rnn_reverse`; on `layer`'s device.

    `layer` must be a bidirectional GRU layer built with batch_norm=False: its BatchNorm comes
    before the recurrence and is not what this comparison is about.
    """
    if not isinstance(layer.rnn, nn.GRU) or layer.rnn_reverse is None:
        raise ValueError("packed_twin: needs a bidirectional GRU RecurrentLayer")
    if layer.batch_norm is not None:
        raise ValueError("packed_twin: build the layer with batch_norm=False (the comparison is of the recurrence)")
    rnn = layer.rnn
    twin = nn.GRU(rnn.input_size, rnn.hidden_size, batch_first=True, bidirectional=True).to(rnn.weight_ih_l0.device)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(twin, f"{name}_l0").copy_(getattr(rnn, f"{name}_l0"))
            getattr(twin, f"{name}_l0_reverse").copy_(getattr(layer.rnn_reverse, f"{name}_l0"))
    return twin


def packed_forward(twin: nn.GRU, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """`x` (batch, time, input) with `lengths` (batch,) through `twin` as a PackedSequence ->
    (batch, time, hidden): the two directions summed, as RecurrentLayer does; zero past each length."""
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = pad_packed_sequence(twin(packed)[0], batch_first=True, total_length=x.shape[1])
    forward, backward = out.chunk(2, dim=-1)
    return forward + backward


@dataclass
class Agreement:
    """How far RecurrentLayer and its packed twin are apart on one input."""

    output: float  # max |difference| of the outputs over valid frames
    input_grad: float  # max |difference| of the input gradients / their largest magnitude
    weight_grad: float  # the same over every weight and bias gradient

    def within(self, tolerance: float) -> bool:
        return max(self.output, self.input_grad, self.weight_grad) <= tolerance


def compare_with_packed(layer: RecurrentLayer, x: torch.Tensor, lengths: torch.Tensor) -> Agreement:
    """Run `layer` and its `packed_twin` on `x` (batch, time, input) with `lengths` (batch,), both
    backward from the same random output gradient (zero on padding, as the model's masking makes it),
    and compare outputs, input gradients and weight gradients."""
    twin = packed_twin(layer)
    x_ours, x_twin = x.detach().clone().requires_grad_(), x.detach().clone().requires_grad_()
    ours = layer(x_ours, lengths)
    theirs = packed_forward(twin, x_twin, lengths)
    valid = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None])[..., None]
    upstream = torch.randn(ours.shape, generator=torch.Generator().manual_seed(0)).to(x.device) * valid
    (ours * upstream).sum().backward()
    (theirs * upstream).sum().backward()

    def relative(a: torch.Tensor, b: torch.Tensor) -> float:
        return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()

    pairs = [(getattr(mine, f"{name}_l0"), getattr(twin, f"{name}_l0{suffix}"))
             for mine, suffix in ((layer.rnn, ""), (layer.rnn_reverse, "_reverse"))
             for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    return Agreement(output=((ours - theirs).abs() * valid).max().item(), input_grad=relative(x_ours.grad, x_twin.grad),
                     weight_grad=max(relative(a.grad, b.grad) for a, b in pairs))


def seconds_per_call(run: Callable[[], None], repeats: int, device: torch.device) -> float:
    """Mean wall seconds of `run()` over `repeats` calls after one warm-up call."""
    run()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        run()
    synchronize(device)
    return (time.perf_counter() - started) / repeats


def rnn_shape(cfg: TrainConfig, longest_seconds: float) -> tuple[int, int, int]:
    """(batch, frames, hidden) of a batch of the config: `max_batch_seconds` of utterances up to
    `longest_seconds` long, at the model's output frame rate, for layers 2.. (input = hidden)."""
    features = make_features(cfg.features)
    frontend_only = DeepSpeech2(features.num_features, 2, replace(cfg.model, rnn_layers=1, rnn_hidden=1))
    samples = torch.tensor([int(longest_seconds * cfg.features.sample_rate)])
    frames = int(frontend_only.output_lengths(features.frame_lengths(samples)).item())
    return max(1, int(cfg.data.max_batch_seconds // longest_seconds)), frames, cfg.model.rnn_hidden


def rnn_rows(table: Table, config: str, cfg: TrainConfig, longest_seconds: float, repeats: int,
             device: torch.device) -> None:
    """One row of `table`: agreement of RecurrentLayer and its packed twin at `cfg`'s size, and the
    forward + backward time of each."""
    try:
        batch, frames, hidden = rnn_shape(cfg, longest_seconds)
        generator = torch.Generator().manual_seed(0)
        # Lengths spread over half to all of the longest, so the packed call really has ragged rows.
        lengths = torch.linspace(frames, max(1, frames // 2), batch).round().long()
        x = torch.randn(batch, frames, hidden, generator=generator).to(device)
        torch.manual_seed(cfg.seed)
        layer = RecurrentLayer(hidden, hidden, "gru", bidirectional=True, batch_norm=False).to(device)
        agreement = compare_with_packed(layer, x, lengths)
        twin = packed_twin(layer)
        x_grad = x.clone().requires_grad_()
        lengths_device = lengths.to(device)

        def padded() -> None:
            layer(x_grad, lengths_device).sum().backward()

        def packed() -> None:
            packed_forward(twin, x_grad, lengths).sum().backward()

        padded_s, packed_s = seconds_per_call(padded, repeats, device), seconds_per_call(packed, repeats, device)
    except Exception as e:  # recorded; the script goes on
        table.add([config], error=e)
        return
    tolerance = TOLERANCE[device.type]
    table.add([config, f"{batch} × {frames} × {hidden}", f"{agreement.output:.2e}", f"{agreement.input_grad:.2e}",
               f"{agreement.weight_grad:.2e}", f"{1000 * padded_s:.1f}", f"{1000 * packed_s:.1f}",
               f"{padded_s / packed_s:.2f}"],
              error=None if agreement.within(tolerance) else f"differences above the tolerance {tolerance:g}")


# ---------------------------------------------------------------------------------------------
# 4. torchrun launch of asr.train

@dataclass
class LaunchResult:
    returncode: int | None  # None: killed at the timeout
    seconds: float
    run_dir: Path
    log: Path


def launch_training(work_dir: Path, config: str, overrides: list[str], nproc: int, timeout: float) -> LaunchResult:
    """`torchrun --standalone --nproc_per_node NPROC -m asr.train CONFIG OVERRIDES` in `work_dir`
    (asr.train writes its run under ./logs), the project on PYTHONPATH; output in work_dir/torchrun.log."""
    work_dir.mkdir(parents=True, exist_ok=True)
    cfg = load_config(TrainConfig, ROOT / config, overrides)
    run_dir = work_dir / "logs" / cfg.stage / cfg.name
    if run_dir.exists():
        shutil.rmtree(run_dir)  # this script's own run from before: resuming it would train nothing
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
               "-m", "asr.train", str(ROOT / config), *overrides]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    log = work_dir / "torchrun.log"
    started = time.time()
    with open(log, "w") as out:
        out.write(shlex.join(command) + "\n")
        out.flush()
        process = subprocess.Popen(command, cwd=work_dir, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # SIGTERM: torchrun then stops its workers, which run in sessions of their own (a kill
            # of the launcher alone, or of its process group, would leave them training).
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            returncode = None
    return LaunchResult(returncode, time.time() - started, run_dir, log)


def last_error(log: Path) -> str:
    """The line of a failed run's log that says why: the last `error: ...` or `...Error: ...` line,
    else the last non-empty line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:") or "Error:" in line]
    return (errors or lines or ["(empty log)"])[-1]


def ddp_row(table: Table, out_dir: Path, config: str, overrides: list[str], nproc: int, timeout: float,
            device: torch.device) -> Path | None:
    """Launch the training run and add its row; returns its best.pt when there is one."""
    backend = ("nccl" if device.type == "cuda" else "gloo") if nproc > 1 else "none (world size 1)"
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the memory parts 2-3 cached here is the training processes' to use
    try:
        result = launch_training(out_dir / "ddp", config, overrides, nproc, timeout)
    except Exception as e:  # recorded; the script goes on
        table.add([config, nproc, backend], error=e)
        return None
    metrics = result.run_dir / "metrics.jsonl"
    records = read_metrics(metrics) if metrics.exists() else []
    train = [r for r in records if "train_loss" in r]
    dev = [r for r in records if "dev_cer" in r]
    cells = [config, nproc, backend, "timeout" if result.returncode is None else result.returncode,
             f"{result.seconds:.1f}"]
    cells += [train[-1]["step"], f"{train[-1]['train_loss']:.3f}", f"{train[-1]['audio_seconds_per_second']:.1f}"] \
        if train else ["", "", ""]
    cells.append(f"{dev[-1]['dev_cer']:.2%}" if dev else "")
    error = None
    if result.returncode is None:
        error = f"timed out after {timeout:g} s and stopped (see {result.log})"
    elif result.returncode != 0:
        error = f"exit {result.returncode}: {last_error(result.log)} (see {result.log})"
    elif not train or not all(math.isfinite(r["train_loss"]) for r in train):
        error = f"no finite train_loss in {metrics}"
    table.add(cells, error=error)
    best = result.run_dir / "best.pt"
    return best if best.is_file() else None


# ---------------------------------------------------------------------------------------------
# 5. Greedy decoding

def decode_row(table: Table, checkpoint: Path | None, fallback: TrainedModel | None, corpus: Path,
               device: torch.device) -> None:
    """Greedy-decode the dev split with `checkpoint` (else `fallback`) and add the row."""
    try:
        if checkpoint is not None:
            ckpt = load_asr_checkpoint(checkpoint, device)
            trained = TrainedModel(ckpt.model, ckpt.features, ckpt.tokenizer,
                                   from_dict(TrainConfig, ckpt.config, source=str(checkpoint)))
            source = f"part 4: {checkpoint.name}"
        elif fallback is not None:
            trained, source = fallback, "part 2: clean.json fp32"
        else:
            raise RuntimeError("no model: part 4 left no checkpoint and part 2 trained no clean.json fp32 model")
        cfg = trained.cfg
        cfg.data.root, cfg.max_dev_utterances = str(corpus), 0
        loader = eval_loader(cfg, trained.tokenizer, cfg.data.dev_split)
        synchronize(device)
        started = time.perf_counter()
        result = evaluate(trained.model, trained.features, loader, trained.tokenizer, device)
        synchronize(device)
        seconds = time.perf_counter() - started
    except Exception as e:  # recorded; the script goes on
        table.add(["", ""], error=e)
        return
    table.add([source, cfg.data.dev_split, len(result["refs"]), f"{result['cer']:.2%}", f"{result['wer']:.2%}",
               f"{len(result['refs']) / seconds:.1f}"])


# ---------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="where gpu_check.md, the corpus and the run go")
    parser.add_argument("--data", type=Path, metavar="DIR",
                        help="corpus root holding LibriSpeech/ (default OUT_DIR/data); made there when missing")
    parser.add_argument("--utterances", type=int, default=1000, metavar="N", help="train-clean-100 utterances")
    parser.add_argument("--dev-utterances", type=int, default=100, metavar="N",
                        help="utterances in each of dev-clean and test-clean")
    parser.add_argument("--steps", type=int, default=30, metavar="N",
                        help="training steps per config and dtype (the first is the warm-up)")
    parser.add_argument("--rnn-seconds", type=float, default=10.0, metavar="S",
                        help="part 3: longest utterance of the timed RNN batch")
    parser.add_argument("--rnn-repeats", type=int, default=10, metavar="N", help="part 3: timed calls of each RNN")
    parser.add_argument("--ddp-config", default=PAPER_CONFIG, metavar="CONFIG",
                        help="part 4's config, relative to the repository")
    parser.add_argument("--ddp-steps", type=int, default=10, metavar="N", help="part 4: asr.train max_steps")
    parser.add_argument("--nproc", type=int, metavar="N",
                        help="part 4: processes (default 2 with 2+ GPUs, else 1; 2 on a CPU runs gloo DDP)")
    parser.add_argument("--ddp-timeout", type=float, default=400.0, metavar="S", help="part 4: kill the run after S s")
    parser.add_argument("--tiny", action="store_true", help="shrink the models for a CPU dry run: " + " ".join(TINY))
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides for every part (after --tiny's)")
    args = parser.parse_args(argv)
    for key in ("utterances", "dev_utterances", "rnn_repeats", "ddp_steps"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be >= 1, got {getattr(args, key)}")
    if args.steps < 2:
        parser.error(f"--steps must be >= 2 (the first step is the untimed warm-up), got {args.steps}")
    if args.rnn_seconds <= 0:
        parser.error(f"--rnn-seconds must be > 0, got {args.rnn_seconds}")
    if args.nproc is not None and args.nproc < 1:
        parser.error(f"--nproc must be >= 1, got {args.nproc}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.time()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out_dir = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    report = out_dir / "gpu_check.md"
    data_root = args.data or out_dir / "data"
    overrides = (TINY if args.tiny else []) + args.set
    nproc = args.nproc or (2 if torch.cuda.device_count() >= 2 else 1)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    header = ["# GPU check: ASR training, RNN kernels, torchrun, decoding", "",
              f"- device: {device_description(device)}",
              f"- torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}, cuDNN {cudnn or 'none'}",
              f"- command: `{shlex.join(['python', '-m', 'bench.gpu_check', *argv])}`",
              f"- started {time.strftime('%Y-%m-%d %H:%M:%S')}"
              + (f"; models shrunk by --tiny ({' '.join(TINY)})" if args.tiny else "")]
    tables: list[Table] = []

    def finish_part(table: Table) -> None:
        tables.append(table)
        write_report(report, header, tables)

    corpus_table = Table("1. Corpus", ["split", "utterances", "hours", "how", "status"])
    corpus = None
    progress(f"1. corpus under {data_root}")
    try:
        corpus = make_corpus(data_root, corpus_spec(args.utterances, args.dev_utterances), corpus_table)
    except Exception as e:  # recorded; the script goes on
        corpus_table.add([str(data_root / CORPUS_DIR)], error=e)
    finish_part(corpus_table)

    training = Table(f"2. Training steps ({args.steps} per row; speed after the first)",
                     ["config", "params (M)", "dtype", "batches", "steps", "audio s/s", "peak GPU memory (GiB)",
                      "GRU output dtype", "first loss", "last loss", "fell", "status"])
    rnn = Table("3. RecurrentLayer (padded, two one-direction GRUs) vs nn.GRU(bidirectional) on a PackedSequence",
                ["config", "batch × frames × hidden", "max abs Δ output", "max rel. Δ input grad",
                 "max rel. Δ weight grads", "padded fwd+bwd ms", "packed fwd+bwd ms", "padded / packed", "status"],
                notes=[f"Same weights; fp32; tolerance {TOLERANCE[device.type]:g}. Lengths spread from the longest "
                       f"({args.rnn_seconds:g} s) down to half of it; batch = the config's max_batch_seconds of "
                       f"such utterances; mean of {args.rnn_repeats} timed call(s) after a warm-up."])
    fallback = None
    configs = {}
    for config in CONFIGS:
        try:
            configs[config] = load_config(TrainConfig, ROOT / config, [f"data.root={corpus}", *overrides])
        except Exception as e:  # recorded; the script goes on
            training.add([config], error=e)
            rnn.add([config], error=e)
    for config, cfg in configs.items():
        if corpus is None:
            training.add([config], error="no corpus (part 1 failed)")
            continue
        # Part 5 decodes with clean.json's fp32 model when part 4 leaves no checkpoint.
        trained = training_rows(training, config, cfg, args.steps, device, keep_fp32=config == CLEAN_CONFIG)
        fallback = trained or fallback
    finish_part(training)
    for config, cfg in configs.items():
        progress(f"3. RNN comparison at {config}'s size")
        rnn_rows(rnn, config, cfg, args.rnn_seconds, args.rnn_repeats, device)
    finish_part(rnn)

    ddp_overrides = [f"data.root={corpus}", f"max_steps={args.ddp_steps}", f"name={RUN_NAME}", "log_every=1",
                     *overrides]
    ddp = Table("4. torchrun -m asr.train", ["config", "processes", "backend", "exit", "wall s", "steps",
                                              "last train loss", "audio s/s", "dev CER", "status"])
    checkpoint = None
    if corpus is None:
        ddp.add([args.ddp_config, nproc, ""], error="no corpus (part 1 failed)")
    else:
        ddp.notes.append(f"`torchrun --standalone --nproc_per_node {nproc} -m asr.train {args.ddp_config} "
                         f"{' '.join(ddp_overrides)}` (as `python -m torch.distributed.run`, torchrun's module), "
                         f"run in {out_dir / 'ddp'}; its output is in torchrun.log there. The last train loss, "
                         f"audio s/s and dev CER are the run's last metrics.jsonl records.")
        progress(f"4. torchrun --nproc_per_node {nproc} -m asr.train {args.ddp_config} ({args.ddp_steps} steps)")
        checkpoint = ddp_row(ddp, out_dir, args.ddp_config, ddp_overrides, nproc, args.ddp_timeout, device)
    finish_part(ddp)

    decoding = Table("5. Greedy decoding (asr.evaluate.evaluate)",
                     ["model", "split", "utterances", "CER", "WER", "utterances/s", "status"])
    if corpus is None:
        decoding.add(["", ""], error="no corpus (part 1 failed)")
    else:
        progress("5. greedy decoding of the dev split")
        decode_row(decoding, checkpoint, fallback, corpus, device)
    finish_part(decoding)

    failures = sum(t.failures for t in tables)
    header.append(f"- {time.time() - started:.0f} s in all; "
                  + ("every part passed" if not failures else f"{failures} row(s) FAILED"))
    print(write_report(report, header, tables), flush=True)
    progress(f"wrote {report}")
    return 1 if failures else 0


if __name__ == "__main__":  # the guard corpora.synth's worker pool needs (see corpora/synth/pool.py)
    sys.exit(main(sys.argv[1:]))
