"""The `python -m kws.stream` demo: build or read a track, stream it, plot and list detections.

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
import time
from pathlib import Path

import numpy as np
import torch

from common.audio import load
from kws.data import DataConfig, pad_or_crop, split_clips
from kws.evaluate import load_kws_checkpoint
from kws.stream import StreamingDetector, stream_wave


def glue_track(root: str, keyword: str, negatives: int, positives: int, sample_rate: int,
               clip_samples: int, seed: int) -> tuple[torch.Tensor, list[tuple[float, float]], list[str]]:
    """Random test clips, `negatives` of other words and `positives` of `keyword`, end to end,
    then one clip of silence so that a keyword in the last clip is fully heard.

    Returns (wave (samples,), keyword spans [(start s, end s)], the words in track order).
    """
    clips = split_clips(DataConfig(root=root, keyword=keyword), "testing")
    pos = [c for c in clips if c.word == keyword]
    neg = [c for c in clips if c.word != keyword]
    if len(pos) < positives or len(neg) < negatives:
        raise ValueError(f"{root}: the testing split has {len(pos)} {keyword!r} and {len(neg)} other clips, "
                         f"the track needs {positives} and {negatives}")
    rng = np.random.default_rng(seed)
    chosen = ([pos[i] for i in rng.choice(len(pos), positives, replace=False)]
              + [neg[i] for i in rng.choice(len(neg), negatives, replace=False)])
    chosen = [chosen[i] for i in rng.permutation(len(chosen))]
    waves, spans = [], []
    for k, clip in enumerate(chosen):
        waves.append(pad_or_crop(load(clip.path, sample_rate), clip_samples))
        if clip.word == keyword:
            spans.append((k * clip_samples / sample_rate, (k + 1) * clip_samples / sample_rate))
    waves.append(torch.zeros(clip_samples))
    return torch.cat(waves), spans, [c.word for c in chosen]


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
    """The CLI of `python -m kws.stream` (arguments defined there)."""
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
