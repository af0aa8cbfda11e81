"""The KWS Python API: feed audio chunks, get keyword detections.

    from kws import Detector

    detector = Detector.from_checkpoint("logs/kws/detector.ts", threshold=0.5)  # or a kws.train best.pt
    for chunk in chunks:                      # float samples (n,) at detector.sample_rate, any n
        for detection in detector.push(chunk):
            print(f"keyword at {detection.time:.2f} s (p = {detection.probability:.2f})")

`python -m kws.demo` streams files, the microphone and its demo track through this class, so it
prints the same detections.

The detector loads either a training checkpoint (`kws.train`'s best.pt: the model runs through
`kws.stream.StreamingDetector`) or the TorchScript file `python -m kws.export` writes
(`logs/kws/detector.ts`: features, model and stream state in one file, needing only torch). Both
give the same probabilities (within 1e-5) at the same times.

The rule (`DetectionRule`): a detection fires at a conv frame whose keyword probability reaches
`threshold` when the probability has been below the threshold since the previous detection and
at least `refractory` seconds have passed since it; its probability is the peak of the run of
frames above the threshold. The attention window keeps a keyword in view for about a second, so
the probability stays high that long: the re-arming, not the refractory period alone, makes one
spoken keyword fire once. A detection's time is when its frame's probability was ready: the time,
in the stream, of the last sample the frame needs (seconds from the start or the last `reset()`).
"""
from __future__ import annotations

import math
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from common.checkpoint import CheckpointError
from kws.model import KwsCheckpoint, load_kws_checkpoint
from kws.stream import StreamingDetector


@dataclass(frozen=True)
class Detection:
    """One detected keyword: `time` in seconds (when it fired), `probability` the peak of its run."""

    time: float
    probability: float


@dataclass(frozen=True)
class StreamRun:
    """A whole wave streamed from a fresh state: per conv frame the time its probability was ready
    `times` `(m,)` (float64 seconds) and `probabilities` `(m,)`, and the detections."""

    times: torch.Tensor
    probabilities: torch.Tensor
    detections: list[Detection]


class DetectionRule:
    """Threshold, re-arming and refractory period over a stream of (time, probability) frames.

    `update(times, probs)` takes the next frames and returns the detections that fired among them;
    `detections` lists every detection since `reset()`, each with the peak of its run so far (a
    detection returned by `update` may see its peak rise with the next frames).
    """

    def __init__(self, threshold: float, refractory: float) -> None:
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
        if not 0 <= refractory < math.inf:
            raise ValueError(f"refractory must be a finite number of seconds >= 0, got {refractory}")
        self.threshold = threshold
        self.refractory = refractory
        self.reset()

    def reset(self) -> None:
        self.detections: list[Detection] = []
        self.last = -math.inf  # time of the last detection
        self.armed = True  # the probability has been below the threshold since the last detection

    def update(self, times: list[float] | torch.Tensor, probs: list[float] | torch.Tensor) -> list[Detection]:
        """Frames (times `(m,)` seconds, probabilities `(m,)`) in stream order -> the detections that
        fired among them (with their peak so far)."""
        times = times.tolist() if isinstance(times, torch.Tensor) else list(times)
        probs = probs.tolist() if isinstance(probs, torch.Tensor) else list(probs)
        fired = 0
        for t, p in zip(times, probs):
            if p < self.threshold:
                self.armed = True
            elif self.armed and t - self.last >= self.refractory:
                self.detections.append(Detection(t, p))
                self.last, self.armed = t, False
                fired += 1
            elif not self.armed:  # still in the run of frames of the last detection: track its peak
                last = self.detections[-1]
                if p > last.probability:
                    self.detections[-1] = Detection(last.time, p)
        return self.detections[len(self.detections) - fired:]


def is_exported(path: str | os.PathLike) -> bool:
    """Whether `path` is a TorchScript archive (what `kws.export` writes) rather than a checkpoint.

    Both are zip files; a TorchScript archive holds its compiled code (`*/code/`) and
    `*/constants.pkl`, a `torch.save` checkpoint neither.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(name.split("/")[1:2] == ["code"] or name.endswith("/constants.pkl") for name in names)


class Detector:
    """A streaming keyword detector: `push(chunk)` -> the detections that chunk completed.

    Build it with `from_checkpoint` (a kws.train checkpoint or a kws.export TorchScript file).
    Attributes: `sample_rate` (Hz, what chunks must be at), `keyword` (None for an exported file,
    which does not record it), `window` (conv frames the attention pools), `step`, `threshold`,
    `refractory`, `checkpoint` (the `KwsCheckpoint`, None for an exported file), `frames` (conv
    frames so far), `detections` (every detection since the last `reset()`), and `last_times` /
    `last_probabilities` `(m,)`: the frames the last `push` completed (for plots or another rule).
    """

    def __init__(self, stream: StreamingDetector | torch.jit.ScriptModule, *, threshold: float = 0.5,
                 refractory: float = 1.0, keyword: str | None = None, checkpoint: KwsCheckpoint | None = None
                 ) -> None:
        self.stream = stream
        self.rule = DetectionRule(threshold, refractory)
        self.keyword = keyword
        self.checkpoint = checkpoint
        if isinstance(stream, StreamingDetector):
            self.sample_rate: int = stream.features.cfg.sample_rate
            self.window, self.step = stream.max_window_length, stream.step_size
        else:  # kws.export.ScriptableDetector, scripted: runs the model at every conv frame
            self.sample_rate, self.window, self.step = int(stream.sample_rate), int(stream.window), 1
        self.reset()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, threshold: float = 0.5, refractory: float = 1.0, *,
                        window: int | None = None, step: int = 1) -> "Detector":
        """Load a `kws.train` checkpoint or a TorchScript file written by `kws.export` (told apart by
        content, not by name).

        threshold: keyword probability that fires a detection; refractory: seconds after a detection
        in which no other fires. window: conv frames the attention pools (default: one training
        clip; an exported file has its window built in); step: run the model once per this many conv
        frames (checkpoints only; see `kws.stream`). Raises `common.checkpoint.CheckpointError` for a
        file that is neither, ValueError for settings that cannot be used. An exported file is
        TorchScript code run by torch: load only files you trust (a checkpoint is read as data).
        """
        DetectionRule(threshold, refractory)  # the settings' errors before any loading
        if window is not None and window < 1:
            raise ValueError(f"window must be >= 1 conv frame, got {window}")
        if step < 1:
            raise ValueError(f"step must be >= 1 conv frame, got {step}")
        if not Path(path).is_file():
            raise CheckpointError(f"{path}: no such checkpoint or exported detector")
        if is_exported(path):
            try:
                with warnings.catch_warnings():  # torch >= 2.10 marks TorchScript deprecated; it works
                    warnings.simplefilter("ignore", FutureWarning)
                    stream = torch.jit.load(str(path), map_location="cpu")
            except (RuntimeError, ValueError, OSError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise CheckpointError(f"{path}: not a detector written by python -m kws.export ({first})") from None
            if not all(hasattr(stream, name) for name in ("push", "reset", "ready_seconds", "window")):
                raise CheckpointError(f"{path}: a TorchScript file, but not a detector written by python -m kws.export")
            if window is not None and window != stream.window:
                raise ValueError(f"{path}: an exported detector's window is fixed at export ({stream.window} "
                                 f"conv frames), got window {window}")
            if step != 1:
                raise ValueError(f"{path}: an exported detector runs the model at every conv frame (step 1), "
                                 f"got step {step}")
            return cls(stream, threshold=threshold, refractory=refractory)
        ckpt = load_kws_checkpoint(path)
        stream = StreamingDetector(ckpt.model, ckpt.features, window or ckpt.clip_window, step)
        return cls(stream, threshold=threshold, refractory=refractory, keyword=ckpt.keyword, checkpoint=ckpt)

    @property
    def threshold(self) -> float:
        return self.rule.threshold

    @property
    def refractory(self) -> float:
        return self.rule.refractory

    @property
    def detections(self) -> list[Detection]:
        return list(self.rule.detections)

    def reset(self) -> None:
        """Start a new stream: the next sample is time 0; detections are forgotten."""
        self.stream.reset()
        self.rule.reset()
        self.frames = 0
        self.last_times = torch.zeros(0, dtype=torch.float64)
        self.last_probabilities = torch.zeros(0)

    def ready_seconds(self, frame: int) -> float:
        """When conv frame `frame`'s probability is ready: its last sample's time in seconds."""
        if isinstance(self.stream, StreamingDetector):
            return self.stream.conv_frame_ready_at(frame) / self.sample_rate
        return float(self.stream.ready_seconds(frame))

    def push(self, chunk: torch.Tensor | np.ndarray) -> list[Detection]:
        """Audio `(n,)` (float samples at `sample_rate`, any n >= 0) -> the detections that fired in
        the conv frames it completed (see the module docstring for the rule)."""
        # A copy for arrays: sounddevice and soundfile hand out float64 or read-only buffers.
        chunk = torch.from_numpy(np.array(chunk, dtype=np.float32)) if isinstance(chunk, np.ndarray) \
            else chunk.detach().cpu()
        if chunk.dim() != 1:
            raise ValueError(f"a chunk must be mono samples (n,), got shape {tuple(chunk.shape)}")
        with torch.inference_mode():
            probs = self.stream.push(chunk.float()).float()
        times = torch.tensor([self.ready_seconds(self.frames + k) for k in range(probs.shape[0])],
                             dtype=torch.float64)
        self.frames += probs.shape[0]
        self.last_times, self.last_probabilities = times, probs
        return self.rule.update(times, probs)

    def run(self, wave: torch.Tensor | np.ndarray, chunk: int = 160) -> StreamRun:
        """Stream `wave` `(samples,)` from a fresh state in chunks of `chunk` samples (as a microphone
        delivers it): every frame's time and probability, and the detections (peaks final)."""
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1 sample, got {chunk}")
        wave = torch.from_numpy(np.array(wave, dtype=np.float32)) if isinstance(wave, np.ndarray) else wave
        self.reset()
        times, probs = [], []
        for start in range(0, wave.shape[0], chunk):
            self.push(wave[start:start + chunk])
            times.append(self.last_times)
            probs.append(self.last_probabilities)
        return StreamRun(torch.cat(times) if times else torch.zeros(0, dtype=torch.float64),
                         torch.cat(probs) if probs else torch.zeros(0), self.detections)
