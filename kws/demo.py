"""Stream a file, the microphone or a demo track through a keyword spotter; plot and list detections.

    python -m kws.demo [CHECKPOINT]                      # demo track: test clips glued together
    python -m kws.demo [CHECKPOINT] --wav FILE.wav [--threshold 0.5] [--out PNG]
    python -m kws.demo [CHECKPOINT] --mic                # needs `pip install sounddevice`

CHECKPOINT is a kws.train checkpoint, by default logs/kws_baseline/default/best.pt
(`common.artifacts.KWS_BASELINE`, what configs/kws/baseline.json trains), or the TorchScript file
`python -m kws.export` writes (logs/kws/detector.ts; with --wav or --mic: the demo track needs a
checkpoint's keyword and data). `./run.sh kws_stream` runs this command; the detector is
`kws.Detector` (`kws.detector`), the streaming itself `kws.stream`.

Without --wav or --mic, test clips of other words and of the keyword are glued into one track
(seeded; --root DIR: the Speech Commands folder, default the checkpoint's data.root), so the plot
can shade where the keyword really is. A detection fires when the probability reaches the
threshold after having been below it, and not within `refractory` seconds of the previous
detection, so one spoken keyword gives one detection. The plot goes to --out PNG, by default next
to the checkpoint. `--mic` streams from the microphone through `sounddevice` (optional, not in
requirements.txt).
"""
from __future__ import annotations

import argparse
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
from kws.detector import DetectionRule, Detector

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".pcm", ".raw")  # to catch `kws.demo FILE.wav` (old usage)


def detect(times: torch.Tensor, probs: torch.Tensor, threshold: float, refractory: float
           ) -> list[tuple[float, float]]:
    """(time s, peak probability) per detection of a whole track: `kws.detector.DetectionRule`.

    A detection fires at a frame whose probability reaches `threshold` when the probability has
    been below the threshold since the previous detection and at least `refractory` seconds have
    passed; its peak is the highest probability of the run of frames above the threshold.
    """
    rule = DetectionRule(threshold, refractory)
    rule.update(times, probs)
    return [(d.time, d.probability) for d in rule.detections]


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


def stream_microphone(detector: Detector, keyword: str, chunk: int) -> int:
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
    blocks: queue.Queue[np.ndarray] = queue.Queue()
    detector.reset()
    print(f"listening for {keyword!r} at {detector.sample_rate} Hz; Ctrl-C stops")
    with sd.InputStream(samplerate=detector.sample_rate, channels=1, dtype="float32", blocksize=chunk,
                        callback=lambda data, frames, when, status: blocks.put(data[:, 0].copy())):
        try:
            while True:
                for detection in detector.push(blocks.get()):
                    print(f"{detection.time:8.2f} s  {keyword}  p={detection.probability:.3f}", flush=True)
        except KeyboardInterrupt:
            pass
    return 0


def run(args: argparse.Namespace) -> int:
    """Stream what `args` (from `main`'s parser) names; prints detections, writes the plot."""
    detector = Detector.from_checkpoint(args.checkpoint, args.threshold, args.refractory, window=args.window,
                                        step=args.step)
    ckpt = detector.checkpoint  # None for an exported detector, which records no keyword or data
    keyword = detector.keyword or "keyword"
    if args.mic:
        return stream_microphone(detector, keyword, args.chunk)

    sample_rate = detector.sample_rate
    if args.wav is not None:
        wave, spans, words = load(args.wav, sample_rate), [], []
        title = f"{args.wav.name}: p({keyword!r})"
        out = args.out or args.checkpoint.parent / f"stream_{args.wav.stem}.png"
    elif ckpt is None:
        raise ValueError(f"{args.checkpoint}: an exported detector records no keyword or data, so it cannot "
                         f"make the demo track: give --wav FILE or --mic, or a kws.train checkpoint")
    else:
        root = args.root or ckpt.config["data"]["root"]
        wave, spans, words = glue_track(root, ckpt.keyword, args.negatives, args.positives, sample_rate,
                                        ckpt.clip_samples, args.seed)
        title = f"{len(words)} test clips of {root}, keyword {ckpt.keyword!r} shaded"
        out = args.out or args.checkpoint.parent / "stream_demo.png"
    started = time.perf_counter()
    result = detector.run(wave, args.chunk)
    elapsed = time.perf_counter() - started
    times, probs, detections = result.times, result.probabilities, result.detections
    seconds = wave.shape[0] / sample_rate
    title += f" (window {detector.window} conv frames, step {detector.step})"
    plot_stream(wave, sample_rate, times, probs, out, threshold=args.threshold, spans=spans,
                detections=[(d.time, d.probability) for d in detections], title=title)

    if words:
        print("track: " + " ".join(w.upper() if w == ckpt.keyword else w for w in words))
    print(f"streamed {seconds:.1f} s in chunks of {args.chunk} samples: {len(probs)} conv frames, "
          f"window {detector.window}, step {detector.step}, {elapsed:.2f} s on 1 thread (real-time factor "
          f"{elapsed / seconds:.3f})")
    print(f"detections (p >= {args.threshold}, refractory {args.refractory} s): {len(detections)}")
    for d in detections:
        hit = next((f"in keyword clip {start:.0f}-{end:.0f} s" for start, end in spans
                    if start <= d.time <= end + 0.5), "")
        verdict = f"  {hit}" if hit else ("  false alarm" if spans else "")
        print(f"  {d.time:7.2f} s  p={d.probability:.3f}{verdict}")
    if spans:
        missed = [s for s in spans if not any(s[0] <= d.time <= s[1] + 0.5 for d in detections)]
        print(f"keyword clips: {len(spans)}, detected {len(spans) - len(missed)}, missed {len(missed)}")
    print(f"plot: {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kws.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", nargs="?", type=Path, default=Path(KWS_BASELINE), metavar="CHECKPOINT",
                        help="a kws.train checkpoint or a kws.export detector.ts (default: %(default)s)")
    parser.add_argument("--wav", type=Path, default=None, metavar="FILE",
                        help="audio file to stream (any format and rate; default: the demo track)")
    parser.add_argument("--mic", action="store_true", help="stream from the microphone (sounddevice)")
    parser.add_argument("--root", default=None, metavar="DIR", help="Speech Commands folder of the demo "
                        "track (default: the checkpoint's data.root)")
    parser.add_argument("--out", type=Path, default=None, metavar="PNG",
                        help="plot path (default: next to the checkpoint)")
    parser.add_argument("--threshold", type=float, default=0.5, metavar="T",
                        help="keyword probability that fires a detection (default: %(default)s)")
    parser.add_argument("--refractory", type=float, default=1.0, metavar="S", help="seconds after a detection "
                        "in which the keyword cannot fire again")
    parser.add_argument("--window", type=int, default=None, metavar="N",
                        help="max_window_length in conv frames (default: one training clip)")
    parser.add_argument("--step", type=int, default=1, metavar="N", help="streaming_step_size in conv frames")
    parser.add_argument("--chunk", type=int, default=160, metavar="N", help="samples per pushed chunk")
    parser.add_argument("--negatives", type=int, default=10, metavar="N", help="demo track: clips of other words")
    parser.add_argument("--positives", type=int, default=2, metavar="N", help="demo track: clips of the keyword")
    parser.add_argument("--seed", type=int, default=0, metavar="N", help="demo track: which clips, in which order")
    args = parser.parse_args(argv)
    if args.wav is not None and args.mic:
        parser.error("--wav and --mic name two sources: give one")
    if args.root is not None and (args.wav is not None or args.mic):
        parser.error("--root is the data of the demo track; --wav and --mic stream something else")
    if args.checkpoint.suffix.lower() in AUDIO_SUFFIXES:
        parser.error(f"{args.checkpoint}: the first argument is the CHECKPOINT; stream an audio file with "
                     f"--wav {args.checkpoint}")
    torch.set_num_threads(1)
    if not args.checkpoint.is_file():
        sys.exit(f"error: {args.checkpoint}: no such checkpoint (train one with python -m kws.train "
                 f"configs/kws/baseline.json, or give CHECKPOINT)")
    try:
        return run(args)
    except (CheckpointError, ValueError, FileNotFoundError) as e:  # AudioError is a ValueError
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    sys.exit(main())
