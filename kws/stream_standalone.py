"""Stream a wav file through an exported keyword detector; needs only torch (no project code).

    python kws/stream_standalone.py DETECTOR.ts FILE.wav [--threshold 0.5] [--chunk 160]

DETECTOR.ts is what `python -m kws.export` writes (features, model and streaming state in one
TorchScript file). FILE.wav: 16-bit PCM, mono, at the detector's sample rate (16 kHz). The audio
is pushed in chunks of `--chunk` samples, as a microphone would deliver it; a detection fires
when the keyword probability reaches the threshold after having been below it, at most once per
`--refractory` seconds (the rule of `kws.Detector` and `python -m kws.demo`, which print the same
detections).
"""
from __future__ import annotations

import argparse
import sys
import warnings
import wave

import torch


def read_wav(path: str, sample_rate: int) -> torch.Tensor:
    """16-bit PCM mono wav -> float waveform `(samples,)` in [-1, 1)."""
    with wave.open(path, "rb") as f:
        if f.getsampwidth() != 2 or f.getnchannels() != 1 or f.getframerate() != sample_rate:
            raise ValueError(f"{path}: expected 16-bit mono PCM at {sample_rate} Hz, got "
                             f"{8 * f.getsampwidth()}-bit, {f.getnchannels()} channel(s), {f.getframerate()} Hz")
        data = f.readframes(f.getnframes())
    return torch.frombuffer(bytearray(data), dtype=torch.int16).float() / 32768


def stream(detector: torch.jit.ScriptModule, samples: torch.Tensor, chunk: int) -> tuple[list[float], torch.Tensor]:
    """(ready times in seconds, probabilities) of every conv frame, pushing `chunk` samples at a time."""
    detector.reset()
    probs = [detector.push(samples[i:i + chunk]) for i in range(0, samples.shape[0], chunk)]
    probs = torch.cat(probs) if probs else torch.zeros(0)
    return [detector.ready_seconds(t) for t in range(probs.shape[0])], probs


def detections(times: list[float], probs: torch.Tensor, threshold: float, refractory: float) -> list[tuple[float, float]]:
    """(time s, peak probability) per detection: the rule of `kws.Detector` (`kws.detector.DetectionRule`),
    restated here so this script needs no project code. A detection fires when the probability reaches the threshold,
    has been below it since the last detection, and `refractory` seconds have passed."""
    found: list[tuple[float, float]] = []
    last, armed = -float("inf"), True
    for t, p in zip(times, probs.tolist()):
        if p < threshold:
            armed = True
        elif armed and t - last >= refractory:
            found.append((t, p))
            last, armed = t, False
        elif not armed:  # still in the run of frames of the last detection
            found[-1] = (last, max(found[-1][1], p))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("detector")
    parser.add_argument("wav")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--refractory", type=float, default=1.0)
    parser.add_argument("--chunk", type=int, default=160, help="samples per push")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():  # torch >= 2.10 warns that TorchScript is deprecated; it works
            warnings.simplefilter("ignore", FutureWarning)
            detector = torch.jit.load(args.detector)
    except (RuntimeError, ValueError, OSError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        sys.exit(f"error: {args.detector}: not a detector written by python -m kws.export ({first})")
    try:
        samples = read_wav(args.wav, detector.sample_rate)
    except (ValueError, OSError, EOFError, wave.Error) as e:
        sys.exit(f"error: {e}")
    with torch.inference_mode():
        times, probs = stream(detector, samples, args.chunk)
    found = detections(times, probs, args.threshold, args.refractory)
    print(f"{args.wav}: {samples.shape[0] / detector.sample_rate:.2f} s, {probs.shape[0]} frames, "
          f"max probability {probs.max().item() if probs.numel() else 0.0:.3f}, {len(found)} detections")
    for t, p in found:
        print(f"  keyword at {t:.2f} s (p = {p:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
