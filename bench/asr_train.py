"""Training throughput and inference speed of ASR configs, side by side in one run.

    python bench/asr_train.py [CONFIG ...] [--steps 6] [--utterance-seconds 4]

Random waves stand in for speech (speed does not depend on content): each config trains on batches
of `max_batch_seconds` of audio and is timed over `--steps` steps after two warm-up steps.
Prints audio seconds trained per wall second, and the real-time factor (compute seconds per audio
second; lower is faster) of greedy inference on one 10 s utterance.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asr.config import TrainConfig  # noqa: E402
from asr.model import DeepSpeech2  # noqa: E402
from asr.train import ctc_loss, make_optimizer  # noqa: E402
from common.config import load_config  # noqa: E402
from common.features import make_features  # noqa: E402

CHARS_PER_SECOND = 15  # eSpeak at ~170 words per minute


def measure(cfg: TrainConfig, steps: int, utterance_seconds: float, device: torch.device) -> dict:
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
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.amp) if device.type == "cuda" else None
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", default=["configs/asr/clean.json", "configs/asr/paper_scale_clean.json"])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--utterance-seconds", type=float, default=4.0)
    parser.add_argument("--set", nargs="*", default=[], help="overrides applied to every config")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device {device}, torch threads {torch.get_num_threads()}, {args.utterance_seconds:g} s utterances")
    print("| config | params (M) | output frame (ms) | batch | train audio s/s | inference RTF |")
    print("|---|---|---|---|---|---|")
    for path in args.configs:
        cfg = load_config(TrainConfig, path, args.set)
        r = measure(cfg, args.steps, args.utterance_seconds, device)
        print(f"| {path} | {r['params_m']:.2f} | {r['frame_ms']:.0f} | {r['batch']} | {r['audio_s_per_s']:.1f} "
              f"| {r['rtf']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
