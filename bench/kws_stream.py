"""CPU cost of streaming keyword detection per step, over window lengths and step sizes.

    python bench/kws_stream.py [--checkpoint CKPT] [--seconds 30] [--windows 8 16 32 64 128]
                               [--steps 1 2 4 8] [--chunk 1280] [--threads 1] [--repeats 3]

Streams `--seconds` of noise through `kws.stream.StreamingDetector` in chunks of `--chunk` samples
(default 1280 = 80 ms, one conv frame of the course setup), timing every push on `--threads` torch
threads; each row is the fastest of `--repeats` passes. Without a checkpoint the baseline
architecture with random weights is used (the cost does not depend on the weights). One table row
per (window, step):
- ms/push: median time of one push (one chunk of audio);
- ms/model step: total time / model steps (a model step runs conv + RNN on `step` new conv frames);
- ms/frame: total time / conv frames, i.e. the amortized cost of one 80 ms frame;
- RTF: real-time factor, processing time / audio time;
- recompute ms: for contrast, one stateless forward pass over a whole window of features (what a
  streaming loop that recomputes the window would pay per step); it grows with the window, the
  incremental columns should not.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common.features import FeatureConfig, make_features  # noqa: E402
from kws.model import CRNN, ModelConfig, load_kws_checkpoint  # noqa: E402
from kws.costs import cpu_latency_ms  # noqa: E402
from kws.stream import StreamingDetector  # noqa: E402


def bench_one(detector: StreamingDetector, wave: torch.Tensor, chunk: int, repeats: int = 1) -> dict:
    """Stream `wave` `repeats` times in `chunk`-sample pushes; timings of the fastest pass (the
    passes differ only by what else the machine was doing)."""
    best: list[float] | None = None
    for _ in range(repeats):
        detector.reset()
        push_ms = []
        for i in range(0, wave.shape[0], chunk):
            start = time.perf_counter()
            detector.push(wave[i:i + chunk])
            push_ms.append((time.perf_counter() - start) * 1000)
        if best is None or sum(push_ms) < sum(best):
            best = push_ms
    push_ms = best
    total_s = sum(push_ms) / 1000
    frames = detector.conv_frames
    audio_s = wave.shape[0] / detector.features.cfg.sample_rate
    return {"push_ms": statistics.median(push_ms),
            "step_ms": total_s * 1000 / max(1, frames // detector.step_size),
            "frame_ms": total_s * 1000 / max(1, frames), "rtf": total_s / audio_s,
            "recomputations": detector.attention.recomputations}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--windows", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--chunk", type=int, default=1280)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="passes per row; the fastest is reported")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.checkpoint is not None:
        ckpt = load_kws_checkpoint(args.checkpoint)
        model, features, source = ckpt.model, ckpt.features, str(args.checkpoint)
    else:
        features = make_features(FeatureConfig(kind="logmel", n_mels=40))
        model, source = CRNN(40, ModelConfig()).eval(), "baseline architecture, random weights"
    generator = torch.Generator().manual_seed(0)
    wave = 0.05 * torch.randn(int(args.seconds * features.cfg.sample_rate), generator=generator)
    # Warm up the kernels (and the CPU clock) so the first row is not charged for it.
    bench_one(StreamingDetector(model, features, args.windows[0], 1), wave, args.chunk)

    print(f"model: {source}; {args.seconds:.0f} s of audio in chunks of {args.chunk} samples, "
          f"{args.threads} thread(s)")
    header = "| window | step | ms/push | ms/model step | ms/frame | RTF | window recomputations | recompute ms |"
    print(header)
    print("|---:" * (header.count("|") - 1) + "|")
    for window in args.windows:
        frames = (window - 1) * model.stride_time + model.kernel_time
        recompute_ms, _ = cpu_latency_ms(model, torch.randn(1, model.n_mels, frames), runs=50, warmup=5,
                                         threads=args.threads)
        for step in args.steps:
            r = bench_one(StreamingDetector(model, features, window, step), wave, args.chunk, args.repeats)
            print(f"| {window} | {step} | {r['push_ms']:.3f} | {r['step_ms']:.3f} | {r['frame_ms']:.3f} | "
                  f"{r['rtf']:.4f} | {r['recomputations']} | {recompute_ms:.3f} |", flush=True)


if __name__ == "__main__":
    main()
