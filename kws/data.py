"""Keyword-spotting data: Speech Commands clips as (1 s wave, keyword-or-not label) pairs.

Any Speech Commands layout works (real v0.01 / v0.02 or the synthetic corpus): the splits come from
`validation_list.txt` / `testing_list.txt` (`common.readers.speech_commands`), label 1 is the
keyword's folder and 0 every other word. Clips are padded with zeros or cropped to exactly one
clip length. Features are computed on the batch by `common.features`, not here.

Training draws positives more often (a seeded `WeightedRandomSampler`) and augments (every
transform with its own probability): background noise from `_background_noise_` at a random SNR,
Gaussian noise, volume on the wave; on the log-mel features a random channel (`LogMelChannel`: EQ,
filters, gain ramps; off by default), then SpecAugment frequency / time masks.

`glue_track` lays test clips end to end: the track that the streaming demo and the compression
report stream.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torchaudio
from torch.utils.data import Dataset, RandomSampler, Sampler, WeightedRandomSampler

from common.audio import AudioError, load
from common.config import check, check_probabilities, check_range
from common.features import mel_points_hz
from common.readers.speech_commands import LAYOUT, Clip, SplitListing, background_noises, list_words, read_split

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    root: str = "data/speech_commands"  # a Speech Commands layout folder
    keyword: str = "sheila"  # the word to detect: a folder name of the corpus
    clip_seconds: float = 1.0  # clips are padded or cropped to this length
    positive_fraction: float | None = 0.5  # share of positives the sampler draws; null: no oversampling
    num_workers: int = 0  # loader processes; 0 loads in the training process (one core)
    on_bad_input: Literal["skip", "raise"] = "skip"  # for list files; unreadable audio is always skipped

    def __post_init__(self) -> None:
        check(self.clip_seconds > 0, "clip_seconds", "> 0", self.clip_seconds)
        fraction = self.positive_fraction
        check(fraction is None or 0 < fraction < 1, "positive_fraction", "null or in (0, 1)", fraction)
        check(self.num_workers >= 0, "num_workers", ">= 0", self.num_workers)


@dataclass
class AugmentConfig:
    """Train-only augmentation; every transform has its own probability (0 turns it off)."""

    background_noise_p: float = 0.3  # probability of noise from _background_noise_
    background_snr_db: list[float] = field(default_factory=lambda: [0.0, 20.0])  # its SNR range in dB
    gaussian_noise_p: float = 0.2  # probability of added white noise
    gaussian_noise_std: float = 0.01  # its standard deviation
    volume_p: float = 0.2  # probability of a volume change
    volume_gain: list[float] = field(default_factory=lambda: [0.25, 1.5])  # linear factor range
    # Channel randomization on the log-mel features (`LogMelChannel`; docs/heldout.md: none is a
    # held-out channel): a filter or gain on the wave is an offset per mel band in the log domain.
    eq_p: float = 0.0  # probability of a random 7-band EQ curve
    eq_gain_db: list[float] = field(default_factory=lambda: [-12.0, 12.0])  # each band's gain range
    filter_p: float = 0.0  # probability of one of a low-pass, high-pass or band-pass roll-off
    gain_transition_p: float = 0.0  # probability of a gain ramp inside the clip
    freq_mask_p: float = 0.5  # SpecAugment, on the log-mel features
    freq_mask_param: int = 15  # widest mask, in mel bins
    time_mask_p: float = 0.5  # probability of a SpecAugment time mask
    time_mask_param: int = 35  # widest mask, in frames

    @property
    def channel_on(self) -> bool:
        """True when any `LogMelChannel` effect has a probability > 0."""
        return max(self.eq_p, self.filter_p, self.gain_transition_p) > 0

    def __post_init__(self) -> None:
        check_probabilities(self)
        check_range("background_snr_db", self.background_snr_db)
        check_range("volume_gain", self.volume_gain)
        check_range("eq_gain_db", self.eq_gain_db)
        check(self.volume_gain[0] > 0, "volume_gain", "positive factors", self.volume_gain)
        for key in ("gaussian_noise_std", "freq_mask_param", "time_mask_param"):
            check(getattr(self, key) >= 0, key, ">= 0", getattr(self, key))


def keyword_labels(clips: list[Clip], keyword: str) -> torch.Tensor:
    """`(len(clips),)` int64: 1 where the clip's word is `keyword`, else 0."""
    return torch.tensor([int(c.word == keyword) for c in clips], dtype=torch.long)


def split_clips(cfg: DataConfig, split: str) -> list[Clip]:
    """The clips of `split` ("train", "validation", "testing") under `cfg.root`, keyword checked."""
    return split_listing(cfg, split).clips


def split_listing(cfg: DataConfig, split: str) -> SplitListing:
    """`split_clips` with the count of list entries skipped (`read_split`).

    Raises FileNotFoundError when `cfg.root` is not a Speech Commands folder or lacks the list
    file, ValueError when it has no folder for the keyword (named, with the words it has).
    """
    words = list_words(cfg.root)
    if cfg.keyword not in words:
        raise ValueError(f"{cfg.root}: no folder for keyword {cfg.keyword!r} (words: {', '.join(words)}; "
                         f"expected {LAYOUT})")
    return read_split(cfg.root, split, on_error=cfg.on_bad_input)


def pad_or_crop(wave: torch.Tensor, length: int, rng: np.random.Generator | None = None) -> torch.Tensor:
    """`(samples,)` -> `(length,)`: zeros appended, or a crop (centered; at random with `rng`)."""
    n = wave.shape[0]
    if n < length:
        return torch.nn.functional.pad(wave, (0, length - n))
    start = (n - length) // 2 if rng is None else int(rng.integers(n - length + 1))
    return wave[start:start + length]


def mix_at_snr(wave: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """`wave + noise` `(samples,)` with the noise scaled to `snr_db` below the wave's RMS.

    A silent wave or noise is returned unchanged (no SNR is defined).
    """
    wave_rms, noise_rms = wave.pow(2).mean().sqrt(), noise.pow(2).mean().sqrt()
    if wave_rms == 0 or noise_rms == 0:
        return wave
    return wave + noise * (wave_rms / (noise_rms * 10 ** (snr_db / 20)))


class WaveAugment:
    """Wave `(samples,)` + numpy Generator -> augmented wave `(samples,)`; see `AugmentConfig`."""

    def __init__(self, cfg: AugmentConfig, noises: list[torch.Tensor]) -> None:
        if cfg.background_noise_p > 0 and not noises:
            raise ValueError("augment.background_noise_p > 0 but no background noise recordings "
                             "were given (set it to 0 or provide _background_noise_/*.wav)")
        self.cfg = cfg
        self.noises = noises

    def __call__(self, wave: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        cfg = self.cfg
        if rng.random() < cfg.background_noise_p:
            noise = self.noises[int(rng.integers(len(self.noises)))]
            if noise.shape[0] < wave.shape[0]:  # loop a short recording
                noise = noise.repeat(wave.shape[0] // noise.shape[0] + 1)
            start = int(rng.integers(noise.shape[0] - wave.shape[0] + 1))
            wave = mix_at_snr(wave, noise[start:start + wave.shape[0]], rng.uniform(*cfg.background_snr_db))
        if rng.random() < cfg.gaussian_noise_p:
            wave = wave + cfg.gaussian_noise_std * torch.from_numpy(
                rng.standard_normal(wave.shape[0]).astype(np.float32))
        if rng.random() < cfg.volume_p:
            wave = wave * float(rng.uniform(*cfg.volume_gain))
        return wave.clamp(-1.0, 1.0)


def load_background_noises(root: str, sample_rate: int) -> list[torch.Tensor]:
    """Every readable `_background_noise_/*.wav` under `root` as `(samples,)` waves."""
    waves = []
    for path in background_noises(root):
        try:
            waves.append(load(path, sample_rate))
        except AudioError as e:
            log.warning("skipping background noise: %s", e)
    return waves


def make_wave_augment(cfg: AugmentConfig, root: str, sample_rate: int) -> WaveAugment:
    """The wave augmentation of `cfg`, with noises from `root` when background noise is on."""
    noises = load_background_noises(root, sample_rate) if cfg.background_noise_p > 0 else []
    return WaveAugment(cfg, noises)


class LogMelChannel(torch.nn.Module):
    """Channel randomization on log-mel features `(batch, n_mels, time)`, each clip on its own.

    A filter or a gain on the wave multiplies each mel band's power, which the log turns into an
    offset per band: a random 7-point EQ curve (`eq_gain_db`, interpolated over the bands), a
    low-, high- or band-pass roll-off of 12-24 dB per octave (the cut-offs of ASR's filter lever),
    and a gain ramp between two times (-18 to +6 dB at either end). On the batch it costs next
    to nothing, where the same effects on waves (audiomentations) cost ~1.5 ms a clip, more than
    a student's training step. Values never fall below log(log_floor), the features' own floor.
    Draws come from torch's generator, as SpecAugment's do.
    """

    def __init__(self, cfg: AugmentConfig, n_mels: int, sample_rate: int, log_floor: float,
                 f_min: float = 0.0, f_max: float | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.floor = math.log(log_floor)
        centers = mel_points_hz(f_min, f_max or sample_rate / 2, n_mels)[1:-1].float()
        self.register_buffer("octaves", torch.log2(centers), persistent=False)

    @property
    def active(self) -> bool:
        return self.cfg.channel_on

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        batch, n_mels, frames = feats.shape
        db = torch.zeros(batch, n_mels, 1)
        if cfg.eq_p > 0:
            low, high = cfg.eq_gain_db
            points = low + (high - low) * torch.rand(batch, 1, 7)
            curve = torch.nn.functional.interpolate(points, size=n_mels, mode="linear", align_corners=True)
            db += (torch.rand(batch, 1, 1) < cfg.eq_p) * curve.transpose(1, 2)
        if cfg.filter_p > 0:
            db += (torch.rand(batch, 1, 1) < cfg.filter_p) * self._roll_off(batch)[:, :, None]
        ramp = torch.zeros(batch, 1, frames)
        if cfg.gain_transition_p > 0:
            start, end = (-18.0 + 24.0 * torch.rand(batch, 1, 1) for _ in range(2))
            t0 = torch.rand(batch, 1, 1) * frames
            t1 = t0 + (0.2 + 0.8 * torch.rand(batch, 1, 1)) * frames
            position = ((torch.arange(frames) - t0) / (t1 - t0)).clamp(0.0, 1.0)
            ramp = (torch.rand(batch, 1, 1) < cfg.gain_transition_p) * (start + (end - start) * position)
        offset = (db + ramp).to(feats.device) * (math.log(10.0) / 10.0)  # dB of power -> natural log
        return (feats + offset).clamp(min=self.floor)

    def _roll_off(self, batch: int) -> torch.Tensor:
        """`(batch, n_mels)` attenuation in dB (<= 0): a low-, high- or band-pass per clip."""
        octaves = self.octaves[None]
        slope = 12.0 + 12.0 * torch.rand(batch, 1)  # dB per octave
        uniform = lambda lo, hi: lo + (hi - lo) * torch.rand(batch, 1)  # noqa: E731
        kind = torch.randint(3, (batch, 1))
        low_pass = -(octaves - torch.log2(uniform(2500.0, 7500.0))).clamp(min=0)
        high_pass = -(torch.log2(uniform(50.0, 500.0)) - octaves).clamp(min=0)
        center, width = uniform(800.0, 2500.0), uniform(1.2, 1.99)
        edges = torch.log2((center - center * width / 2).clamp(min=20.0)), torch.log2(center + center * width / 2)
        band = -(edges[0] - octaves).clamp(min=0) - (octaves - edges[1]).clamp(min=0)
        chosen = torch.where(kind == 0, low_pass, torch.where(kind == 1, high_pass, band))
        return slope * chosen


class SpecAugment(torch.nn.Module):
    """One frequency mask and one time mask on `(batch, n_mels, time)`, each per clip (iid) with its
    own probability per batch; masked values become 0 (torchaudio's masking)."""

    def __init__(self, cfg: AugmentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.freq_mask = torchaudio.transforms.FrequencyMasking(cfg.freq_mask_param, iid_masks=True)
        self.time_mask = torchaudio.transforms.TimeMasking(cfg.time_mask_param, iid_masks=True)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = feats.unsqueeze(1)  # iid masks need a channel dim
        if self.cfg.freq_mask_p > 0 and torch.rand(()) < self.cfg.freq_mask_p:
            x = self.freq_mask(x)
        if self.cfg.time_mask_p > 0 and torch.rand(()) < self.cfg.time_mask_p:
            x = self.time_mask(x)
        return x.squeeze(1)


class KeywordDataset(Dataset):
    """Item i -> {"wave": (clip_samples,), "label": int, "index": i}, or None for unreadable audio.

    Augmentation draws from a generator seeded by (seed, epoch, index): an item gets the same
    augmentation in whatever worker loads it and after a resume.
    """

    def __init__(self, clips: list[Clip], keyword: str, sample_rate: int, clip_samples: int, *,
                 augment: WaveAugment | None = None, seed: int = 0) -> None:
        self.clips = clips
        self.labels = keyword_labels(clips, keyword)
        self.sample_rate = sample_rate
        self.clip_samples = clip_samples
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict | None:
        try:
            wave = load(self.clips[index].path, self.sample_rate)
        except AudioError as e:
            log.warning("skipping clip: %s", e)
            return None
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.augment else None
        wave = pad_or_crop(wave, self.clip_samples, rng)
        if self.augment is not None:
            wave = self.augment(wave, rng)
        return {"wave": wave, "label": int(self.labels[index]), "index": index}


def collate(items: list[dict | None]) -> dict:
    """Stack items; unreadable ones (None) are dropped and counted.

    Returns waves (batch, clip_samples), labels (batch,), indices (batch,), skipped (int).
    """
    good = [item for item in items if item is not None]
    return {
        "waves": torch.stack([item["wave"] for item in good]) if good else torch.zeros(0, 0),
        "labels": torch.tensor([item["label"] for item in good], dtype=torch.long),
        "indices": torch.tensor([item["index"] for item in good], dtype=torch.long),
        "skipped": len(items) - len(good),
    }


def epoch_sampler(labels: torch.Tensor, positive_fraction: float | None, seed: int, epoch: int
                  ) -> Sampler[int]:
    """`len(labels)` draws per epoch, seeded by (seed, epoch).

    With `positive_fraction` f, draws are with replacement and a draw is a positive with
    probability f (each positive weighs f / n_pos, each negative (1 - f) / n_neg); with None, a
    plain shuffle.
    """
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    if positive_fraction is None:
        return RandomSampler(range(len(labels)), generator=generator)
    if not 0.0 < positive_fraction < 1.0:
        raise ValueError(f"data.positive_fraction must be in (0, 1) or null, got {positive_fraction}")
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"cannot oversample: the training split has {n_pos} positive and {n_neg} "
                         f"negative clips")
    weights = torch.where(labels == 1, positive_fraction / n_pos, (1 - positive_fraction) / n_neg)
    return WeightedRandomSampler(weights.double(), num_samples=len(labels), replacement=True,
                                 generator=generator)


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
