"""Stream a file, the microphone or a demo track through a keyword spotter; plot and list detections.

    python -m kws.demo [--checkpoint CKPT]               # demo track: test clips glued together
    python -m kws.demo FILE.wav [--checkpoint CKPT] [--threshold 0.5]
    python -m kws.demo --mic [--checkpoint CKPT]         # needs `pip install sounddevice`

CKPT defaults to logs/kws_baseline/default/best.pt (`common.artifacts.KWS_BASELINE`, what
configs/kws/baseline.json trains). `./run.sh kws_stream` runs this command; the streaming itself is
`kws.stream`.

Without a file, test clips of other words and of the keyword are glued into one track (seeded), so
the plot can shade where the keyword really is. A detection fires when the probability reaches
the threshold after having been below it, and not within `refractory` seconds of the previous
detection, so one spoken keyword gives one detection. `--mic` streams from the microphone through
`sounddevice` (optional, not in requirements.txt).
"""
from __future__ import annotations

import argparse
import math
import queue
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common.artifacts import KWS_BASELINE
from common.audio import load
from common.checkpoint import CheckpointError
from kws.data import glue_track
from kws.model import load_kws_checkpoint
from kws.stream import StreamingDetector, stream_wave


def detect(times: torch.Tensor, probs: torch.Tensor, threshold: float, refractory: float
           ) -> list[tuple[float, float]]:
    """(time s, peak probability) per detection.

    A detection fires at a frame whose probability reaches `threshold` when the probability has
    been below the threshold since the previous detection and at least `refractory` seconds have
    passed; its peak is the highest probability of the run of frames above the threshold. The
    attention window keeps a keyword in view for a whole window, so the probability stays high
    for about that long: the re-arming, not the refractory period alone, makes one keyword fire once.
    """
    detections: list[tuple[float, float]] = []
    last, armed = -math.inf, True
    for t, p in zip(times.tolist(), probs.tolist()):
        if p < threshold:
            armed = True
        elif armed and t - last >= refractory:
            detections.append((t, p))
            last, armed = t, False
        elif not armed:  # still in the run of frames of the last detection
            detections[-1] = (last, max(detections[-1][1], p))
    return detections


def plot_stream(wave: torch.Tensor, sample_rate: int, times: torch.Tensor, probs: torch.Tensor,
                out_png: Path, *, threshold: float, spans: list[tuple[float, float]],
                detections: list[tuple[float, float]], title: str) -> Path:
    """Waveform and keyword probability over time; true keyword spans shaded, detections marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_wave, ax_prob) = plt.subplots(2, 1, figsize=(11, 5), dpi=110, sharex=True,
                                           gridspec_kw={"height_ratios": [1, 2]})
    seconds = torch.arange(wave.shape[0]) / sample_rate
    ax_wave.plot(seconds[::8], wave[::8], linewidth=0.4, color="0.3")
    ax_wave.set_ylabel("wave")
    for i, (start, end) in enumerate(spans):
        ax_wave.axvspan(start, end, color="tab:green", alpha=0.2)
        ax_prob.axvspan(start, end, color="tab:green", alpha=0.2, label="keyword clip" if i == 0 else None)
    ax_prob.plot(times, probs, color="tab:blue", label="p(keyword)")
    ax_prob.axhline(threshold, color="tab:red", linestyle="--", linewidth=0.8, label=f"threshold {threshold}")
    if detections:
        ax_prob.scatter([t for t, _ in detections], [p for _, p in detections], color="tab:red",
                        marker="v", zorder=3, label="detection")
    ax_prob.set_ylim(-0.02, 1.02)
    ax_prob.set_xlabel("time (s)")
    ax_prob.set_ylabel("probability")
    ax_prob.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4, fontsize=8, frameon=False)
    ax_wave.set_title(title)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def stream_microphone(detector: StreamingDetector, keyword: str, threshold: float, refractory: float,
                      chunk: int) -> int:
    """Print detections from the default input device until Ctrl-C; 1 when there is no microphone."""
    try:
        import sounddevice as sd
    except (ImportError, OSError):  # OSError: the module is there but PortAudio is not
        print("--mic needs sounddevice, which is not installed: pip install sounddevice "
              "(it also needs the PortAudio library, e.g. apt-get install libportaudio2)")
        return 1
    try:
        sd.query_devices(kind="input")
    except Exception:  # PortAudioError or ValueError, depending on the version
        print("--mic: no microphone found (sounddevice sees no input device)")
        return 1
    sample_rate = detector.features.cfg.sample_rate
    blocks: queue.Queue[np.ndarray] = queue.Queue()
    detector.reset()
    last, armed = -math.inf, True
    print(f"listening for {keyword!r} at {sample_rate} Hz; Ctrl-C stops")
    with sd.InputStream(samplerate=sample_rate, channels=1, dtype="float32", blocksize=chunk,
                        callback=lambda data, frames, when, status: blocks.put(data[:, 0].copy())):
        try:
            while True:
                first = detector.conv_frames
                for offset, p in enumerate(detector.push(torch.from_numpy(blocks.get())).tolist()):
                    t = detector.conv_frame_ready_at(first + offset) / sample_rate
                    if p < threshold:
                        armed = True
                    elif armed and t - last >= refractory:
                        print(f"{t:8.2f} s  {keyword}  p={p:.3f}", flush=True)
                        last, armed = t, False
        except KeyboardInterrupt:
            pass
    return 0


def run(args: argparse.Namespace) -> int:
    """Stream what `args` (from `main`'s parser) names; prints detections, writes the plot."""
    ckpt = load_kws_checkpoint(args.checkpoint)
    model, features = ckpt.model, ckpt.features
    sample_rate, hop = features.cfg.sample_rate, features.cfg.hop_length
    clip_frames = ckpt.clip_samples // hop + 1
    window = args.window or (clip_frames - model.kernel_time) // model.stride_time + 1
    detector = StreamingDetector(model, features, max_window_length=window, step_size=args.step)
    if args.mic:
        return stream_microphone(detector, ckpt.keyword, args.threshold, args.refractory, args.chunk)

    if args.file is not None:
        wave, spans, words = load(args.file, sample_rate), [], []
        title = f"{args.file.name}: p({ckpt.keyword!r})"
        out = args.out or args.checkpoint.parent / f"stream_{args.file.stem}.png"
    else:
        root = args.root or ckpt.config["data"]["root"]
        wave, spans, words = glue_track(root, ckpt.keyword, args.negatives, args.positives, sample_rate,
                                        ckpt.clip_samples, args.seed)
        title = f"{len(words)} test clips of {root}, keyword {ckpt.keyword!r} shaded"
        out = args.out or args.checkpoint.parent / "stream_demo.png"
    started = time.perf_counter()
    times, probs = stream_wave(detector, wave, args.chunk)
    elapsed = time.perf_counter() - started
    detections = detect(times, probs, args.threshold, args.refractory)
    seconds = wave.shape[0] / sample_rate
    title += f" (window {window} conv frames, step {args.step})"
    plot_stream(wave, sample_rate, times, probs, out, threshold=args.threshold, spans=spans,
                detections=detections, title=title)

    if words:
        print("track: " + " ".join(w.upper() if w == ckpt.keyword else w for w in words))
    print(f"streamed {seconds:.1f} s in chunks of {args.chunk} samples: {len(probs)} conv frames, "
          f"window {window}, step {args.step}, {elapsed:.2f} s on 1 thread (real-time factor "
          f"{elapsed / seconds:.3f})")
    print(f"detections (p >= {args.threshold}, refractory {args.refractory} s): {len(detections)}")
    for t, p in detections:
        hit = next((f"in keyword clip {start:.0f}-{end:.0f} s" for start, end in spans if start <= t <= end + 0.5), "")
        verdict = f"  {hit}" if hit else ("  false alarm" if spans else "")
        print(f"  {t:7.2f} s  p={p:.3f}{verdict}")
    if spans:
        missed = [s for s in spans if not any(s[0] <= t <= s[1] + 0.5 for t, _ in detections)]
        print(f"keyword clips: {len(spans)}, detected {len(spans) - len(missed)}, missed {len(missed)}")
    print(f"plot: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kws.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", type=Path, help="audio file to stream (default: a demo track)")
    parser.add_argument("--checkpoint", type=Path, default=Path(KWS_BASELINE),
                        help="a kws.train checkpoint (default: %(default)s)")
    parser.add_argument("--root", default=None, help="Speech Commands folder for the demo track "
                        "(default: the checkpoint's data.root)")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--refractory", type=float, default=1.0, help="seconds after a detection "
                        "in which the keyword cannot fire again")
    parser.add_argument("--window", type=int, default=None,
                        help="max_window_length in conv frames (default: one training clip)")
    parser.add_argument("--step", type=int, default=1, help="streaming_step_size in conv frames")
    parser.add_argument("--chunk", type=int, default=160, help="samples per pushed chunk")
    parser.add_argument("--negatives", type=int, default=10)
    parser.add_argument("--positives", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="PNG path (default: next to the checkpoint)")
    parser.add_argument("--mic", action="store_true", help="stream from the microphone (sounddevice)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if not args.checkpoint.is_file():
        sys.exit(f"error: {args.checkpoint}: no such checkpoint (train one with python -m kws.train "
                 f"configs/kws/baseline.json, or pass --checkpoint)")
    try:
        return run(args)
    except (CheckpointError, ValueError, FileNotFoundError) as e:  # AudioError is a ValueError
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    sys.exit(main())
