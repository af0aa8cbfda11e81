"""Training speed of ASR levers on real corpus batches, side by side in one process.

    python bench/asr_train.py [--config configs/asr/clean.json] [--utterances 240] [--rounds 3] [--rows NAME ...]
    python bench/asr_train.py --random [CONFIG ...] [--steps 6] [--utterance-seconds 4]

Lever table (default): every row trains a fresh model (seed 0) on the same `--utterances` utterances
drawn from the config's training splits, loaded and augmented as in training, grouped into batches
by the row's `data.max_batch_seconds`. One warm-up step (a compiled row: until every batch shape has
compiled, timed apart), then every batch once; `--rounds` repeats that over all rows in turn and
keeps each row's median. Prints audio seconds trained per wall second and the ratio to the first
row measured in the same process, so a slow period of the host shifts every row alike. `--set`
applies overrides to every row (e.g. `data.root=...`).

`--random`: the older table, config by config on random waves of `--utterance-seconds` (speed does
not depend on content, but batch shapes do: on the real corpus the 30 ms model's epoch took 1.25x
what random 4 s utterances predicted), with the real-time factor of greedy inference on 10 s.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asr.config import TrainConfig  # noqa: E402
from asr.data import DurationBatchSampler, collate, make_spec_augment  # noqa: E402
from asr.model import DeepSpeech2  # noqa: E402
from asr.text import build_tokenizer  # noqa: E402
from asr.train import autocast_dtype, build_data, ctc_loss, make_optimizer, select_train_utterances  # noqa: E402
from common.cli import error_line  # noqa: E402
from common.config import load_config  # noqa: E402
from common.features import make_features  # noqa: E402
from common.runlog import cpu_description  # noqa: E402
from common.seed import seed_worker  # noqa: E402

CHARS_PER_SECOND = 15  # eSpeak at ~170 words per minute


@dataclass
class Lever:
    """One row: config overrides, and how the step runs."""
    overrides: list[str] = field(default_factory=list)
    autocast: torch.dtype | None = None  # CPU autocast of the model's forward (CTC stays float32)
    compile: bool = False  # torch.compile(model, dynamic=True)
    # Where the timed steps get their batches: "preloaded" (loaded before timing: the model's cost
    # alone), "worker" (a DataLoader process, as training does: num_workers=1) or "inline" (loaded
    # in the training process, num_workers=0).
    loading: Literal["preloaded", "worker", "inline"] = "preloaded"


NO_CHANNEL_RANDOMIZATION = ["augment.eq_p=0", "augment.filter_p=0", "augment.distortion_p=0",
                            "augment.gain_transition_p=0"]
LEVERS = {  # every row names its layer type: the first row stays the GRU default that #21 started from
    "GRU (the default before #21)": Lever(["model.rnn_type=gru"]),
    "LSTM (the default now)": Lever(["model.rnn_type=lstm"]),
    "LSTM, hidden 160 (GRU's parameter count)": Lever(["model.rnn_type=lstm", "model.rnn_hidden=160"]),
    "GRU, 120 s batches": Lever(["model.rnn_type=gru", "data.max_batch_seconds=120"]),
    "LSTM, 120 s batches": Lever(["model.rnn_type=lstm", "data.max_batch_seconds=120"]),
    "GRU, bf16 autocast": Lever(["model.rnn_type=gru"], autocast=torch.bfloat16),
    "LSTM, bf16 autocast": Lever(["model.rnn_type=lstm"], autocast=torch.bfloat16),
    "LSTM, hidden 160, bf16 autocast": Lever(["model.rnn_type=lstm", "model.rnn_hidden=160"], autocast=torch.bfloat16),
    "GRU, torch.compile": Lever(["model.rnn_type=gru"], compile=True),
    "LSTM, bf16, loading in a worker (as training)": Lever(["model.rnn_type=lstm"], torch.bfloat16, loading="worker"),
    "LSTM, bf16, loading inline": Lever(["model.rnn_type=lstm"], torch.bfloat16, loading="inline"),
    # #18 moved the channel randomization into clean.json: this row is the default without it
    "LSTM, bf16, inline, no channel randomization": Lever(
        ["model.rnn_type=lstm", *NO_CHANNEL_RANDOMIZATION], torch.bfloat16, loading="inline"),
}


@dataclass
class RealBatches:
    """Training utterances as the bench steps through them."""
    dataset: torch.utils.data.Dataset  # loads and augments one utterance, as in training
    indices: list[list[int]]  # dataset indices of each batch, duration-grouped
    batches: list[dict]  # the same batches, collated ahead of time
    vocab_size: int
    audio_seconds: float  # the audio in `batches`, padding excluded
    load_seconds: float  # what loading, augmenting and collating `batches` took in this process


def real_batches(cfg: TrainConfig, count: int, seed: int = 0) -> RealBatches:
    """`count` training utterances (the same ones for any `max_batch_seconds`), loaded and augmented
    as in training, grouped into the config's duration-bounded batches."""
    utterances, seconds, _ = select_train_utterances(cfg)
    tokenizer = build_tokenizer(cfg.text, [u.text for u in utterances])
    dataset, _ = build_data(cfg, tokenizer, utterances, seconds, 0, 1)
    chosen = random.Random(seed).sample(range(len(utterances)), min(count, len(utterances)))
    sampler = DurationBatchSampler([seconds[i] for i in chosen], cfg.data.max_batch_seconds, shuffle=False)
    indices = [[chosen[i] for i in batch] for batch in sampler.batches]
    started = time.perf_counter()
    batches = [collate([dataset[i] for i in batch]) for batch in indices]
    load_seconds = time.perf_counter() - started
    audio_seconds = sum(b["wave_lengths"].sum().item() for b in batches) / cfg.features.sample_rate
    return RealBatches(dataset, indices, batches, len(tokenizer.vocab), audio_seconds, load_seconds)


def timed_batches(data: RealBatches, loading: str) -> Iterable[dict]:
    """The batches of `data` as a lever's `loading` delivers them."""
    if loading == "preloaded":
        return data.batches
    if loading == "inline":
        return (collate([data.dataset[i] for i in batch]) for batch in data.indices)
    return torch.utils.data.DataLoader(data.dataset, batch_sampler=data.indices, collate_fn=collate, num_workers=1,
                                       worker_init_fn=seed_worker)


def train_speed(cfg: TrainConfig, lever: Lever, data: RealBatches) -> dict:
    """Audio seconds per wall second over the batches of `data` (one optimizer step each), after warm-up."""
    torch.manual_seed(0)
    device = torch.device("cpu")
    features = make_features(cfg.features)
    model = DeepSpeech2(features.num_features, data.vocab_size, cfg.model)
    optimizer = make_optimizer(cfg.optim, model)
    spec_augment = make_spec_augment(cfg.augment)
    step_model = torch.compile(model, dynamic=True) if lever.compile else model
    model.train()

    def step(batch: dict) -> None:
        loss = ctc_loss(step_model, features, batch, device, spec_augment, lever.autocast)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        optimizer.step()

    started = time.perf_counter()
    for batch in (data.batches if lever.compile else data.batches[-1:]):  # the longest batch last: warm-up
        step(batch)
    warm_up = time.perf_counter() - started
    started = time.perf_counter()
    for batch in timed_batches(data, lever.loading):
        step(batch)
    seconds = time.perf_counter() - started
    steps = len(data.batches)
    return {"params_m": sum(p.numel() for p in model.parameters()) / 1e6, "steps": steps,
            "audio_s_per_s": data.audio_seconds / seconds, "ms_per_step": 1000 * seconds / steps, "warm_up_s": warm_up}


def lever_table(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = args.rows or list(LEVERS)
    unknown = [name for name in rows if name not in LEVERS]
    if unknown:
        sys.exit(f"error: --rows {unknown[0]!r}: expected one of {', '.join(repr(n) for n in LEVERS)}")
    data_by_size: dict[float, RealBatches] = {}
    setups = {}
    for name in rows:
        cfg = load_config(TrainConfig, args.config, [*args.set, *LEVERS[name].overrides])
        if cfg.data.max_batch_seconds not in data_by_size:
            data_by_size[cfg.data.max_batch_seconds] = real_batches(cfg, args.utterances)
        setups[name] = cfg, data_by_size[cfg.data.max_batch_seconds]
    # Rounds over all rows, not one row at a time: the host's speed drifts, and the median of
    # interleaved rounds keeps a slow minute from landing on one row.
    results: dict[str, list[dict]] = {name: [] for name in rows}
    failed: dict[str, str] = {}
    for _ in tqdm(range(args.rounds), desc="rounds", disable=args.rounds == 1):
        for name in rows:
            if name not in failed:
                try:
                    results[name].append(train_speed(setups[name][0], LEVERS[name], setups[name][1]))
                except Exception as e:  # noqa: BLE001  a lever this host cannot run (torch.compile's tracer)
                    failed[name] = error_line(e)
    print(f"{cpu_description()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.utterances} utterances of {args.config}, median of {args.rounds} interleaved rounds")
    print("| lever | params (M) | steps | ms per step | train audio s/s | ratio to first row | warm-up s |")
    print("|---|---|---|---|---|---|---|")
    first = None
    for name in rows:
        if name in failed:
            print(f"| {name} | failed: {failed[name]} | | | | | |")
            continue
        r = sorted(results[name], key=lambda r: r["audio_s_per_s"])[len(results[name]) // 2]
        first = first or r["audio_s_per_s"]
        print(f"| {name} | {r['params_m']:.2f} | {r['steps']} | {r['ms_per_step']:.0f} | {r['audio_s_per_s']:.1f} "
              f"| {r['audio_s_per_s'] / first:.2f} | {r['warm_up_s']:.1f} |")
    data = next(iter(data_by_size.values()))
    print(f"\nThe data worker's share: reading, augmenting and collating ran at "
          f"{data.audio_seconds / data.load_seconds:.0f} audio s/s in one process.")


def random_wave_speed(cfg: TrainConfig, steps: int, utterance_seconds: float, device: torch.device) -> dict:
    torch.manual_seed(0)
    features = make_features(cfg.features).to(device)
    model = DeepSpeech2(features.num_features, 29, cfg.model).to(device)
    optimizer = make_optimizer(cfg.optim, model)
    batch_size = max(1, int(cfg.data.max_batch_seconds // utterance_seconds))
    samples = int(utterance_seconds * cfg.features.sample_rate)
    target_length = int(utterance_seconds * CHARS_PER_SECOND)
    batch = {"waves": 0.1 * torch.randn(batch_size, samples), "wave_lengths": torch.full((batch_size,), samples),
             "targets": torch.randint(1, 29, (batch_size * target_length,)),
             "target_lengths": torch.full((batch_size,), target_length)}
    amp = autocast_dtype(cfg.amp, device)
    model.train()
    for i in range(steps + 2):
        if i == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        loss = ctc_loss(model, features, batch, device, amp_dtype=amp)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_seconds = time.perf_counter() - started
    model.eval()
    wave = 0.1 * torch.randn(1, 10 * cfg.features.sample_rate, device=device)
    with torch.no_grad():
        model(*features(wave, torch.tensor([wave.shape[1]], device=device)))  # warm-up
        started = time.perf_counter()
        for _ in range(3):
            model(*features(wave, torch.tensor([wave.shape[1]], device=device)))
        if device.type == "cuda":
            torch.cuda.synchronize()
    rtf = (time.perf_counter() - started) / 3 / 10
    frames = model.output_lengths(torch.tensor([100])).item()
    return {"params_m": sum(p.numel() for p in model.parameters()) / 1e6, "batch": batch_size,
            "audio_s_per_s": steps * batch_size * utterance_seconds / train_seconds, "rtf": rtf,
            "frame_ms": 1000 / frames}


def random_wave_table(args: argparse.Namespace) -> None:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {device}, torch threads {torch.get_num_threads()}, {args.utterance_seconds:g} s utterances")
    print("| config | params (M) | output frame (ms) | batch | train audio s/s | inference RTF |")
    print("|---|---|---|---|---|---|")
    for path in args.configs or ["configs/asr/clean.json", "configs/asr/paper_scale_clean.json"]:
        cfg = load_config(TrainConfig, path, args.set)
        r = random_wave_speed(cfg, args.steps, args.utterance_seconds, device)
        print(f"| {path} | {r['params_m']:.2f} | {r['frame_ms']:.0f} | {r['batch']} | {r['audio_s_per_s']:.1f} "
              f"| {r['rtf']:.4f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", help="with --random: configs to compare")
    parser.add_argument("--config", default="configs/asr/clean.json", help="the lever table's base config")
    parser.add_argument("--rows", nargs="*", help=f"lever rows to measure (default: all): {', '.join(LEVERS)}")
    parser.add_argument("--utterances", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds over the rows; the table shows each row's median")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument("--random", action="store_true", help="random waves instead of the corpus")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--utterance-seconds", type=float, default=4.0)
    parser.add_argument("--set", nargs="*", default=[], help="overrides applied to every row / config")
    args = parser.parse_args()
    if args.random:
        random_wave_table(args)
    elif args.configs:
        parser.error("configs are compared with --random; the lever table takes --config")
    else:
        lever_table(args)


if __name__ == "__main__":
    main()
