"""Acoustic features of padded waveform batches, with exact per-utterance frame counts.

Kinds (`FeatureConfig.kind`):
- "spectrogram": log power spectrogram, n_fft // 2 + 1 bins.
- "logmel": log mel spectrogram (HTK mel scale, no filter normalization), the same numbers as
  torchaudio's MelSpectrogram(center=True, pad_mode="reflect", power=2) followed by the log.
- "mfcc": the first n_mfcc coefficients of an orthonormal DCT-II of that log mel spectrogram.
- "fbank": Kaldi-style log mel filterbank (torchaudio.compliance.kaldi.fbank: povey window,
  pre-emphasis 0.97, DC removal, FFT size rounded up to a power of two so n_fft is unused,
  snip_edges, no dither). Waves are used as given (no rescaling to the int16 range).
Every log is log(clamp(x, log_floor)), as in the KWS course, so silence gives log(log_floor).

Vocal tract length perturbation (`forward(..., warp=alpha)`, Jaitly & Hinton 2013) warps the
frequency axis under the mel filters per utterance: f -> alpha * f up to a boundary, then the line
that keeps Nyquist in place (`vtlp_warp`); fbank uses Kaldi's own VTLN warp.

Each utterance in a batch gets exactly the features it would get alone: the STFT kinds reflect-pad
every utterance at its own end (not at the end of the padded batch), and fbank runs per utterance.
Frames past an utterance's length are zero, also after normalization.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torchaudio.functional as AF
from torch import nn
from torchaudio.compliance import kaldi

from common.config import check

KINDS = ("logmel", "mfcc", "spectrogram", "fbank")
NORMALIZATIONS = ("none", "utterance")


@dataclass
class FeatureConfig:
    """Feature extraction settings; sizes in samples, frequencies in Hz."""

    # log-mel, MFCC, log power spectrogram or Kaldi fbank
    kind: Literal["logmel", "mfcc", "spectrogram", "fbank"] = "logmel"
    sample_rate: int = 16000  # Hz; audio is resampled to it
    n_fft: int = 400  # FFT size in samples
    win_length: int = 400  # window in samples (400: 25 ms at 16 kHz)
    hop_length: int = 160  # hop in samples (160: 10 ms at 16 kHz)
    n_mels: int = 80  # mel bands
    n_mfcc: int = 40  # MFCC coefficients (kind mfcc)
    f_min: float = 0.0  # lowest mel frequency in Hz
    f_max: float | None = None  # None: sample_rate / 2
    log_floor: float = 1e-9  # added before the log
    normalize: Literal["none", "utterance"] = "none"  # "utterance": per-utterance, per-feature mean / std over valid frames

    def __post_init__(self) -> None:
        check(self.kind in KINDS, "kind", f"one of {KINDS}", self.kind)
        check(self.normalize in NORMALIZATIONS, "normalize", f"one of {NORMALIZATIONS}", self.normalize)
        for key in ("sample_rate", "hop_length", "n_mels", "n_mfcc"):
            check(getattr(self, key) >= 1, key, ">= 1", getattr(self, key))
        check(self.win_length >= 2, "win_length", ">= 2", self.win_length)
        if self.kind != "fbank":
            check(self.win_length <= self.n_fft, "win_length", f"<= n_fft ({self.n_fft})", self.win_length)
        check(self.n_mfcc <= self.n_mels, "n_mfcc", f"<= n_mels ({self.n_mels})", self.n_mfcc)
        check(self.log_floor > 0, "log_floor", "> 0", self.log_floor)
        check(self.f_min >= 0, "f_min", ">= 0", self.f_min)
        check(self.f_max is None or self.f_min < self.f_max <= self.sample_rate / 2, "f_max",
              "null or in (f_min, sample_rate / 2]", self.f_max)
        if self.kind == "fbank":
            # kaldi.fbank takes milliseconds and truncates back to samples; make sure that round trip
            # lands on our sizes, or frame_lengths would be wrong.
            for key in ("win_length", "hop_length"):
                size = getattr(self, key)
                check(int(self.sample_rate * (size * 1000 / self.sample_rate) * 0.001) == size, key,
                      f"representable in Kaldi's milliseconds at {self.sample_rate} Hz", size)


class Features(nn.Module):
    """Waves `(batch, samples)` + lengths `(batch,)` -> features `(batch, feat, time)` + frames `(batch,)`.

    A single wave `(samples,)` gives `(feat, time)` and a 0-d frame count.
    """

    def __init__(self, cfg: FeatureConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.hann_window(cfg.win_length), persistent=False)
        f_max = cfg.sample_rate / 2 if cfg.f_max is None else cfg.f_max
        mel = AF.melscale_fbanks(cfg.n_fft // 2 + 1, cfg.f_min, f_max, cfg.n_mels, cfg.sample_rate)
        self.register_buffer("mel", mel, persistent=False)  # (freq, n_mels)
        dct = AF.create_dct(cfg.n_mfcc, cfg.n_mels, norm="ortho")
        self.register_buffer("dct", dct, persistent=False)  # (n_mels, n_mfcc)

    @property
    def num_features(self) -> int:
        cfg = self.cfg
        return {"logmel": cfg.n_mels, "fbank": cfg.n_mels, "mfcc": cfg.n_mfcc,
                "spectrogram": cfg.n_fft // 2 + 1}[cfg.kind]

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Number of frames `(batch,)` of utterances with `lengths` `(batch,)` samples."""
        cfg = self.cfg
        if cfg.kind == "fbank":  # snip_edges: only frames that fit entirely
            return torch.where(lengths >= cfg.win_length,
                               1 + (lengths - cfg.win_length) // cfg.hop_length, 0)
        # Centered STFT: n_fft // 2 samples of padding on each side.
        return 1 + (lengths + 2 * (cfg.n_fft // 2) - cfg.n_fft) // cfg.hop_length

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor | None = None,
                warp: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """warp: `(batch,)` VTLP factors (1: none) for the mel kinds, or None."""
        if waves.dim() == 1:
            feats, frames = self.forward(waves[None], None if lengths is None else lengths.reshape(1),
                                         None if warp is None else warp.reshape(1))
            return feats[0], frames[0]
        if waves.dim() != 2:
            raise ValueError(f"waves must be (batch, samples) or (samples,), got {tuple(waves.shape)}")
        if lengths is None:
            lengths = torch.full((waves.shape[0],), waves.shape[1], device=waves.device)
        lengths = lengths.to(device=waves.device, dtype=torch.long)
        if lengths.shape != waves.shape[:1] or (lengths < 1).any() or (lengths > waves.shape[1]).any():
            raise ValueError(f"lengths must be (batch,) in [1, {waves.shape[1]}], got {lengths.tolist()}")
        frames = self.frame_lengths(lengths)
        if warp is not None and (self.cfg.kind == "spectrogram" or warp.shape != lengths.shape):
            raise ValueError(f"warp must be (batch,) = {tuple(lengths.shape)} factors for a mel kind, got "
                             f"{tuple(warp.shape)} for {self.cfg.kind!r}")
        if self.cfg.kind == "fbank":
            feats = self._fbank(waves, lengths, frames, warp)
        else:
            feats = self._stft_features(waves, lengths, warp)
        valid = torch.arange(feats.shape[-1], device=waves.device) < frames[:, None]  # (batch, time)
        if self.cfg.normalize == "utterance":
            feats = _normalize(feats, valid)
        return feats * valid[:, None, :], frames

    def _stft_features(self, waves: torch.Tensor, lengths: torch.Tensor,
                       warp: torch.Tensor | None) -> torch.Tensor:
        cfg, pad = self.cfg, self.cfg.n_fft // 2
        # Reflect-pad each utterance at its own edges, as torch.stft(center=True) does to one
        # utterance alone; clamping covers utterances shorter than the padding.
        if bool((lengths == waves.shape[1]).all()) and waves.shape[1] > pad:
            # No padding inside the batch (e.g. fixed 1 s KWS clips): the plain reflect pad is
            # the same thing and several times faster than building the index below.
            padded = torch.nn.functional.pad(waves[:, None], (pad, pad), mode="reflect")[:, 0]
        else:
            width = int(lengths.max()) + 2 * pad
            positions = torch.arange(width, device=waves.device)[None, :]
            index = (positions - pad).abs()
            last = (lengths - 1)[:, None]
            index = torch.where(index > last, 2 * last - index, index).clamp(min=0)
            index = torch.minimum(index, last)
            padded = waves.gather(1, index) * (positions < (lengths[:, None] + 2 * pad))
        window = self.window.to(waves.dtype)
        spec = torch.stft(padded, cfg.n_fft, cfg.hop_length, cfg.win_length, window,
                          center=False, return_complex=True).abs().pow(2)  # (batch, freq, time)
        if cfg.kind == "spectrogram":
            return spec.clamp(min=cfg.log_floor).log()
        mel = self.mel if warp is None else self._warped_mel(warp.to(spec.device))
        logmel = (spec.transpose(1, 2) @ mel.to(spec.dtype)).clamp(min=cfg.log_floor).log()
        if cfg.kind == "logmel":
            return logmel.transpose(1, 2)
        return (logmel @ self.dct.to(spec.dtype)).transpose(1, 2)

    def _warped_mel(self, warp: torch.Tensor) -> torch.Tensor:
        """Mel filters `(batch, freq, n_mels)` over each utterance's warped frequency axis."""
        cfg = self.cfg
        bins = torch.linspace(0, cfg.sample_rate // 2, cfg.n_fft // 2 + 1, device=warp.device,
                              dtype=torch.float64)
        f_max = cfg.sample_rate / 2 if cfg.f_max is None else cfg.f_max
        return mel_filters(vtlp_warp(bins, warp.double(), cfg.sample_rate), cfg.f_min, f_max,
                           cfg.n_mels).float()

    def _fbank(self, waves: torch.Tensor, lengths: torch.Tensor, frames: torch.Tensor,
               warp: torch.Tensor | None) -> torch.Tensor:
        cfg = self.cfg
        feats = waves.new_zeros(waves.shape[0], cfg.n_mels, int(frames.max()))
        for i, (length, n) in enumerate(zip(lengths.tolist(), frames.tolist())):
            if n == 0:
                continue
            energies = kaldi.fbank(
                waves[i:i + 1, :length], frame_length=cfg.win_length * 1000 / cfg.sample_rate,
                frame_shift=cfg.hop_length * 1000 / cfg.sample_rate, num_mel_bins=cfg.n_mels,
                low_freq=cfg.f_min, high_freq=cfg.f_max or 0.0, sample_frequency=cfg.sample_rate,
                dither=0.0, use_log_fbank=False,
                vtln_warp=1.0 if warp is None else float(warp[i]))  # (time, n_mels)
            feats[i, :, :n] = energies.clamp(min=cfg.log_floor).log().T
        return feats


def vtlp_warp(freqs: torch.Tensor, alpha: torch.Tensor, sample_rate: int,
              boundary_hz: float = 4800.0) -> torch.Tensor:
    """Frequencies `(freq,)` warped per factor `alpha` `(batch,)` -> `(batch, freq)`.

    f -> alpha * f below boundary_hz * min(alpha, 1) / alpha, then the straight line that ends at
    Nyquist, so the warped axis still spans 0 to Nyquist (Jaitly & Hinton 2013).
    """
    nyquist = sample_rate / 2
    a = alpha[:, None]
    knee = boundary_hz * torch.clamp(a, max=1.0)  # where the knee lands after warping
    cut = knee / a
    upper = nyquist - (nyquist - knee) / (nyquist - cut) * (nyquist - freqs[None])
    return torch.where(freqs[None] <= cut, a * freqs[None], upper)


def mel_points_hz(f_min: float, f_max: float, n_mels: int, dtype: torch.dtype = torch.float64,
                  device: torch.device | None = None) -> torch.Tensor:
    """`(n_mels + 2,)` corner frequencies (Hz) of `n_mels` HTK-mel triangles between f_min and
    f_max: filter i rises from point i, peaks at point i + 1 (its center) and ends at point i + 2."""
    def mel(hz: float) -> float:
        return 2595.0 * math.log10(1.0 + hz / 700.0)
    m_pts = torch.linspace(mel(f_min), mel(f_max), n_mels + 2, dtype=dtype, device=device)
    return 700.0 * (10 ** (m_pts / 2595.0) - 1.0)


def mel_filters(freqs: torch.Tensor, f_min: float, f_max: float, n_mels: int) -> torch.Tensor:
    """HTK-mel triangular filters (no normalization) evaluated at `freqs` `(..., freq)` ->
    `(..., freq, n_mels)`; at the FFT bin frequencies this is `torchaudio.functional.melscale_fbanks`."""
    f_pts = mel_points_hz(f_min, f_max, n_mels, freqs.dtype, freqs.device)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts - freqs[..., None]  # (..., freq, n_mels + 2)
    down = -slopes[..., :-2] / f_diff[:-1]
    up = slopes[..., 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0)


def _normalize(feats: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-utterance, per-feature standardization over the valid frames of `(batch, feat, time)`."""
    # float64: log features sit around -20 while a nearly constant bin of a short utterance can have
    # a std near 1e-4, so float32 cancellation would dominate the result.
    x = feats.double()
    mask = valid[:, None, :].double()
    count = mask.sum(-1, keepdim=True).clamp(min=1)
    mean = (x * mask).sum(-1, keepdim=True) / count
    var = ((x - mean).pow(2) * mask).sum(-1, keepdim=True) / count
    return ((x - mean) / var.sqrt().clamp(min=1e-5)).to(feats.dtype)


def make_features(cfg: FeatureConfig) -> Features:
    """The feature extractor described by `cfg`."""
    return Features(cfg)
