"""Streaming keyword detection with explicit state, in the style of google-research kws_streaming.

A library: `python -m kws.demo` (`./run.sh kws_stream`) is the command that streams a file, the
microphone or a demo track through it.

A `StreamingDetector` wraps a trained `kws.model.CRNN` and takes audio in chunks of any size. Three
clocks are involved, and every index below says which one it counts:
- samples (16 kHz);
- feature frames (one per hop, 10 ms): `IncrementalLogMel` emits frame j as soon as the samples
  it covers have arrived, with exactly the numbers the offline transform (`common.features`,
  center=True, reflect padding) gives for frame j of the whole track. The reflection at the start
  only needs samples 1..n_fft//2, so even the first frames match; frames that the offline transform
  builds by reflecting the *end* of a track are never emitted (a stream has no end);
- conv frames (one per `stride_time` feature frames, 80 ms): conv frame t reads feature frames
  [t * stride_time, t * stride_time + kernel_time). Only the frames this needs are buffered, and
  each conv frame is computed once.

The RNN state is carried from conv frame to conv frame over the whole stream. The attention pools
the last `max_window_length` RNN outputs; `SlidingAttention` updates its softmax sums in O(hidden)
per frame (add the new frame, subtract the dropped one) instead of recomputing the window.

With `step_size` k the model runs once per k conv frames, on the k new frames in one call; the
frames in between report the probability cached at the end of the previous group (0 before the
first group), trading up to (k - 1) conv frames of latency for less per-frame overhead.

What "offline" means here (`offline_reference`): the offline features of the whole track, the
convolution over all of them, the RNN over the whole sequence from a zero state (the stream's
RNN has seen exactly that history), then for every conv frame t the unchanged attention module
over RNN outputs [max(0, t - W + 1), t] and the classifier. The stream equals it frame for frame
(tests/test_kws_stream.py). Note that training sees only 1 s clips from a zero state, so a stream
hours long runs the RNN far outside what it was trained on; `reset()` starts over.
"""
from __future__ import annotations

import math

import torch

from common.features import Features
from kws.model import CRNN, keyword_probability


def feature_frame_ready_at(frame: int, features: Features) -> int:
    """Samples that must have arrived before feature frame `frame` can be computed."""
    cfg = features.cfg
    pad = cfg.n_fft // 2
    # The frame covers samples [frame * hop - pad, frame * hop + n_fft - pad); the start reflection
    # needs samples 1..pad.
    return max(frame * cfg.hop_length + cfg.n_fft - pad, pad + 1)


class IncrementalLogMel:
    """Audio chunks `(n,)` -> the new log-mel frames `(n_mels, new_frames)` they complete.

    Frame j is exactly frame j of `features(whole_track)` (same window, FFT, mel matrix and log);
    see the module docstring for what happens at the start and the end.
    """

    def __init__(self, features: Features) -> None:
        cfg = features.cfg
        if cfg.kind != "logmel" or cfg.normalize != "none":
            raise ValueError(f"streaming needs features.kind 'logmel' without normalization, got kind "
                             f"{cfg.kind!r}, normalize {cfg.normalize!r}")
        self.cfg = cfg
        self.window = features.window
        self.mel = features.mel  # (freq, n_mels)
        self.pad = cfg.n_fft // 2
        self.no_frames = torch.zeros(cfg.n_mels, 0)
        self.reset()

    def reset(self) -> None:
        self.buffer = torch.zeros(0)  # samples from the start of the next frame on (padded clock)
        self.pending: list[torch.Tensor] = []  # chunks not yet appended to the buffer
        self.pending_samples = 0
        self.started = False  # start reflection prepended
        self.frames_emitted = 0

    def push(self, samples: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        samples = samples.reshape(-1)
        if samples.dtype != torch.float32:
            samples = samples.float()
        self.pending.append(samples)
        self.pending_samples += samples.shape[0]
        # Small chunks are only collected until the next frame is complete (cheaper than a cat each).
        have = self.buffer.shape[0] + self.pending_samples
        if have < (cfg.n_fft if self.started else self.pad + 1):
            return self.no_frames
        self.buffer = torch.cat([self.buffer, *self.pending])
        self.pending, self.pending_samples = [], 0
        if not self.started:
            if self.buffer.shape[0] <= self.pad:
                return self.no_frames
            # torch.stft(center=True) reflects: padded[p] = x[pad - p] for p < pad.
            self.buffer = torch.cat([self.buffer[1:self.pad + 1].flip(0), self.buffer])
            self.started = True
        if self.buffer.shape[0] < cfg.n_fft:
            return self.no_frames
        n_frames = 1 + (self.buffer.shape[0] - cfg.n_fft) // cfg.hop_length
        used = (n_frames - 1) * cfg.hop_length + cfg.n_fft
        # The same operations as Features._stft_features, on just the samples these frames need.
        spec = torch.stft(self.buffer[None, :used], cfg.n_fft, cfg.hop_length, cfg.win_length,
                          self.window, center=False, return_complex=True).abs().pow(2)
        logmel = (spec.transpose(1, 2) @ self.mel).clamp(min=cfg.log_floor).log()  # (1, frames, n_mels)
        self.buffer = self.buffer[n_frames * cfg.hop_length:]
        self.frames_emitted += n_frames
        return logmel[0].T


class SlidingAttention:
    """Softmax-weighted mean of the last `window` values, updated in O(hidden) per new value.

    For the (energy e_i, value v_i) pairs in the window it keeps, relative to a reference energy
    m >= every e_i in the window,
        S = sum_i exp(e_i - m)        V = sum_i exp(e_i - m) v_i        context = V / S,
    in float64. A new pair is added (if its energy exceeds m, S and V are first rescaled by
    exp(m - e_new) and m = e_new, so no weight ever exceeds 1 and nothing overflows); the pair
    that leaves the window is subtracted. Subtraction loses precision when the leaving pairs carried
    most of the weight, so S and V are recomputed exactly from the ring buffer (with m = the
    window's max) when S falls below exp(-margin), and anyway every `window` updates, which bounds
    the rounding error accumulated between recomputations (relative error below about
    2 window^2 eps exp(margin), 2e-8 for a window of 128).

    Cost: O(hidden) per update, plus a recomputation, O(window * hidden), every `window` updates
    (O(hidden) on average) and whenever the window's max energy has fallen more than `margin`
    below the reference. That second kind needs a frame whose energy towers `margin` nats over
    the rest of the window to leave it; the model's energies are bounded (|e| <= |w|_1 + |b| of
    its last Linear, after a tanh) and change smoothly in practice, so it is rare (the benchmark
    counts them), but energies falling by more than `margin` at every frame would make every
    update a recomputation. A two-stack sliding-window aggregation would avoid both the
    subtraction and that worst case, at the price of a less direct update.
    """

    def __init__(self, window: int, hidden_size: int, *, margin: float = 8.0) -> None:
        if window < 1:
            raise ValueError(f"max_window_length must be >= 1, got {window}")
        self.window = window
        self.hidden_size = hidden_size
        self.margin = margin
        self.reset()

    def reset(self) -> None:
        self.energies = torch.zeros(self.window, dtype=torch.float64)
        self.values = torch.zeros(self.window, self.hidden_size, dtype=torch.float64)
        self.count = 0  # pairs in the window
        self.head = 0  # ring position of the next write (= the oldest pair when full)
        self.reference = -math.inf  # m
        self.total = 0.0  # S
        self.weighted = torch.zeros(self.hidden_size, dtype=torch.float64)  # V
        self.since_recompute = 0
        self.recomputations = 0

    def push(self, energy: float, value: torch.Tensor) -> None:
        """Add one pair (`value` `(hidden,)`); the oldest leaves when the window is full."""
        if not math.isfinite(energy):
            raise ValueError(f"attention energy must be finite, got {energy}")
        if self.count == self.window:
            weight = math.exp(self.energies[self.head].item() - self.reference)
            self.total -= weight
            self.weighted.sub_(self.values[self.head], alpha=weight)
            self.count -= 1
        if energy > self.reference:
            scale = math.exp(self.reference - energy)  # 0 for the first pair
            self.total *= scale
            self.weighted.mul_(scale)
            self.reference = energy
        weight = math.exp(energy - self.reference)
        self.energies[self.head] = energy
        self.values[self.head] = value
        self.total += weight
        self.weighted.add_(self.values[self.head], alpha=weight)
        self.head = (self.head + 1) % self.window
        self.count += 1
        self.since_recompute += 1
        if self.total < math.exp(-self.margin) or self.since_recompute >= self.window:
            self.recompute()

    def recompute(self) -> None:
        """S, V and m from scratch over the pairs in the window."""
        if self.count < self.window:  # the pairs sit at ring positions 0..count-1
            energies, values = self.energies[:self.count], self.values[:self.count]
        else:
            energies, values = self.energies, self.values
        self.reference = energies.max().item()
        weights = (energies - self.reference).exp()
        self.total = weights.sum().item()
        self.weighted = weights @ values
        self.since_recompute = 0
        self.recomputations += 1

    def context(self) -> torch.Tensor:
        """The attention-pooled value `(hidden,)` (float64) of the window."""
        if self.count == 0:
            raise ValueError("SlidingAttention.context() before any push")
        return self.weighted / self.total


class StreamingDetector:
    """Keyword probability over a stream: `push(chunk)` -> one probability per completed conv frame.

    model: a trained CRNN (put in eval mode); features: the offline feature module it was trained
    with; max_window_length: RNN outputs the attention pools (conv frames; 11 = one second for the
    course setup); step_size: run the model once per this many conv frames.
    """

    def __init__(self, model: CRNN, features: Features, max_window_length: int, step_size: int = 1) -> None:
        if step_size < 1:
            raise ValueError(f"streaming_step_size must be >= 1, got {step_size}")
        if features.num_features != model.n_mels:
            raise ValueError(f"features give {features.num_features} mel bins, the model expects {model.n_mels}")
        self.model = model.eval()
        self.features = features
        self.logmel = IncrementalLogMel(features)
        self.attention = SlidingAttention(max_window_length, model.cfg.hidden_size)
        self.max_window_length = max_window_length
        self.step_size = step_size
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next sample is the start of a new stream."""
        self.logmel.reset()
        self.attention.reset()
        self.feats = torch.zeros(self.model.n_mels, 0)  # buffered feature frames
        self.feats_start = 0  # feature-frame index of self.feats[:, 0]
        self.conv_announced = 0  # conv frames a probability was returned for
        self.conv_done = 0  # conv frames run through the RNN and the attention window
        self.rnn_state = None  # h (GRU/RNN) or (h, c) (LSTM), (layers, 1, hidden)
        self.probability = 0.0  # cached at the end of the last group

    @property
    def conv_frames(self) -> int:
        """Conv frames reported so far."""
        return self.conv_announced

    def conv_frame_ready_at(self, frame: int) -> int:
        """Samples that must have arrived before conv frame `frame` gets its probability."""
        last_feature = frame * self.model.stride_time + self.model.kernel_time - 1
        return feature_frame_ready_at(last_feature, self.features)

    @torch.inference_mode()
    def push(self, samples: torch.Tensor) -> torch.Tensor:
        """Audio `(n,)` (any n >= 0) -> probabilities `(m,)` float32 for the m conv frames it completes."""
        new = self.logmel.push(samples)
        if new.shape[1]:
            self.feats = torch.cat([self.feats, new], dim=1)
        kernel, stride = self.model.kernel_time, self.model.stride_time
        total = self.feats_start + self.feats.shape[1]
        available = (total - kernel) // stride + 1 if total >= kernel else 0
        out: list[float] = []
        group_end = available // self.step_size * self.step_size
        if group_end > self.conv_done:
            outputs = self._run_rnn(self.conv_done, group_end)  # (frames, hidden)
            energies = self.model.attention.energy(outputs)[:, 0].tolist()
            for t, (energy, output) in enumerate(zip(energies, outputs), start=self.conv_done):
                self.attention.push(energy, output)
                if (t + 1) % self.step_size == 0:
                    self.probability = self._read_out()
                if t >= self.conv_announced:
                    out.append(self.probability)
            self.conv_done = group_end
        out += [self.probability] * (available - max(self.conv_announced, group_end))
        self.conv_announced = available
        return torch.tensor(out, dtype=torch.float32)

    def _run_rnn(self, first: int, end: int) -> torch.Tensor:
        """RNN outputs `(end - first, hidden)` of conv frames [first, end); frees spent features."""
        kernel, stride = self.model.kernel_time, self.model.stride_time
        lo = first * stride - self.feats_start
        hi = (end - 1) * stride + kernel - self.feats_start
        conv = self.model.conv_frames(self.feats[None, :, lo:hi])  # (1, end - first, C * F')
        outputs, self.rnn_state = self.model.rnn(conv, self.rnn_state)
        drop = min(end * stride - self.feats_start, self.feats.shape[1])
        self.feats = self.feats[:, drop:]
        self.feats_start += drop
        return outputs[0]

    def _read_out(self) -> float:
        # The conv's dtype is the model's float dtype (torch.ao's int8 Linear has no weight tensor).
        context = self.attention.context().to(self.model.conv[0].weight.dtype)
        return keyword_probability(self.model.classifier(context[None])).item()


@torch.inference_mode()
def offline_reference(model: CRNN, features: Features, wave: torch.Tensor, max_window_length: int
                      ) -> torch.Tensor:
    """What the stream must report, computed offline with the model's own modules.

    wave: the whole track `(samples,)`. Returns `(T',)`: for conv frame t, the probability of the
    attention over RNN outputs [max(0, t - W + 1), t], where the RNN ran over the whole track from a
    zero state. Frames near the end that need the end reflection are included; a stream reports a
    prefix of this.
    """
    model = model.eval()
    feats, _ = features(wave)  # (n_mels, frames)
    outputs, _ = model.rnn(model.conv_frames(feats[None]))  # (1, T', hidden)
    probs = []
    for t in range(outputs.shape[1]):
        window = outputs[:, max(0, t - max_window_length + 1):t + 1]
        probs.append(keyword_probability(model.classifier(model.attention(window))))
    return torch.cat(probs)


def stream_wave(detector: StreamingDetector, wave: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Feed `wave` `(samples,)` in chunks of `chunk` samples from a fresh state.

    Returns (times (m,) in seconds at which each conv frame's probability was ready, probs (m,)).
    """
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1 sample, got {chunk}")
    detector.reset()
    probs = torch.cat([detector.push(wave[i:i + chunk]) for i in range(0, wave.shape[0], chunk)]
                      or [torch.zeros(0)])
    rate = detector.features.cfg.sample_rate
    times = torch.tensor([detector.conv_frame_ready_at(t) / rate for t in range(probs.shape[0])])
    return times, probs
