"""ASR data: a corpus split as utterances, tensors and length-grouped batches; augmentation.

Features are computed on the batch, on the training device (`common.features`), not here: the
dataset returns waves and token ids; the collate function pads them.
"""
from __future__ import annotations

import logging
import math
import os
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torchaudio
from torch.utils.data import Dataset, Sampler

from asr.config import AugmentConfig, TrainConfig
from asr.text import clean, dropped_characters, kept_characters, normalize
from common.audio import AudioError, load
from common.readers import kspon, librispeech, plain_folder
from common.readers.durations import audio_duration
from common.readers.librispeech import Utterance

log = logging.getLogger(__name__)


def speed_perturb(wave: np.ndarray, factor: float) -> np.ndarray:
    """`wave` (samples,) played `factor` times faster: about len / factor samples, pitch scaled too.

    The factor is rounded to a hundredth so the polyphase resampler stays small (e.g. 110 -> 100).
    """
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed factor must be within [0.5, 2], got {factor}")
    old = round(100 * factor)
    if old == 100:
        return wave
    return torchaudio.functional.resample(torch.from_numpy(wave), old, 100).numpy()


def make_wave_augment(cfg: AugmentConfig, sample_rate: int):
    """A function over a float32 wave (samples,) for the enabled wave transforms, or None when all
    are off: speed perturbation first, then an audiomentations chain."""
    import audiomentations as A  # imported lazily: it pulls in librosa/numba (slow to import)

    transforms = []  # the config's values were checked when it was read (AugmentConfig.__post_init__)
    if cfg.gain_p > 0:
        transforms.append(A.Gain(min_gain_db=cfg.gain_db[0], max_gain_db=cfg.gain_db[1], p=cfg.gain_p))
    if cfg.shift_p > 0:
        transforms.append(A.Shift(min_shift=-cfg.shift_fraction, max_shift=cfg.shift_fraction,
                                  rollover=False, p=cfg.shift_p))
    if cfg.tempo_p > 0:
        transforms.append(A.TimeStretch(min_rate=cfg.tempo_range[0], max_rate=cfg.tempo_range[1],
                                        leave_length_unchanged=False, p=cfg.tempo_p))
    if cfg.gaussian_noise_p > 0:
        transforms.append(A.AddGaussianNoise(min_amplitude=cfg.gaussian_noise_amplitude[0],
                                             max_amplitude=cfg.gaussian_noise_amplitude[1], p=cfg.gaussian_noise_p))
    if cfg.color_noise_p > 0:
        transforms.append(A.AddColorNoise(min_snr_db=cfg.color_noise_snr_db[0], max_snr_db=cfg.color_noise_snr_db[1],
                                          p=cfg.color_noise_p))
    if cfg.background_noise_p > 0:
        noise_dir = Path(cfg.background_noise_dir)
        if not noise_dir.is_dir() or not any(noise_dir.glob("*.wav")):
            raise FileNotFoundError(f"augment.background_noise_dir: no .wav files in {noise_dir} "
                                    f"(make them with ./run.sh data, or set augment.background_noise_p=0)")
        transforms.append(A.AddBackgroundNoise(sounds_path=str(noise_dir), min_snr_db=cfg.background_noise_snr_db[0],
                                               max_snr_db=cfg.background_noise_snr_db[1], p=cfg.background_noise_p))
    if cfg.pitch_shift_p > 0:
        transforms.append(A.PitchShift(min_semitones=cfg.pitch_shift_semitones[0],
                                       max_semitones=cfg.pitch_shift_semitones[1], p=cfg.pitch_shift_p))
    if cfg.eq_p > 0:
        transforms.append(A.SevenBandParametricEQ(min_gain_db=cfg.eq_gain_db[0], max_gain_db=cfg.eq_gain_db[1],
                                                  p=cfg.eq_p))
    if cfg.filter_p > 0:  # cutoffs that thin speech out without removing a band it needs
        transforms.append(A.OneOf([A.LowPassFilter(min_cutoff_freq=2500.0, max_cutoff_freq=7500.0, p=1.0),
                                   A.HighPassFilter(min_cutoff_freq=50.0, max_cutoff_freq=500.0, p=1.0),
                                   A.BandPassFilter(min_center_freq=800.0, max_center_freq=2500.0,
                                                    min_bandwidth_fraction=1.2, max_bandwidth_fraction=1.99,
                                                    p=1.0)], p=cfg.filter_p))
    if cfg.distortion_p > 0:
        transforms.append(A.OneOf([A.TanhDistortion(min_distortion=0.05, max_distortion=0.6, p=1.0),
                                   A.ClippingDistortion(min_percentile_threshold=0, max_percentile_threshold=20,
                                                        p=1.0)], p=cfg.distortion_p))
    if cfg.gain_transition_p > 0:
        transforms.append(A.GainTransition(min_gain_db=-18.0, max_gain_db=6.0, min_duration=0.2, max_duration=2.0,
                                           p=cfg.gain_transition_p))
    compose = A.Compose(transforms) if transforms else None
    speed = cfg.speed_p > 0 and bool(cfg.speed_factors)
    if compose is None and not speed:
        return None

    def augment(wave: np.ndarray) -> np.ndarray:
        # np.random: the dataset seeds it per (seed, epoch, item), as it does for audiomentations.
        if speed and np.random.random() < cfg.speed_p:
            wave = speed_perturb(wave, float(np.random.choice(cfg.speed_factors)))
        return wave if compose is None else compose(samples=wave, sample_rate=sample_rate)

    return augment


def draw_vtlp(cfg: AugmentConfig, batch_size: int) -> torch.Tensor | None:
    """VTLP factors `(batch,)`: uniform in `vtlp_range` with probability `vtlp_p`, else 1; None when
    off. Drawn from torch's generator, as SpecAugment is, so a seed (and a resume) repeats them."""
    if cfg.vtlp_p <= 0:
        return None
    low, high = cfg.vtlp_range
    factors = low + (high - low) * torch.rand(batch_size)
    return torch.where(torch.rand(batch_size) < cfg.vtlp_p, factors, torch.ones(batch_size))


def make_spec_augment(cfg: AugmentConfig) -> torch.nn.Module | None:
    """SpecAugment masks over `(batch, feat, time)` features, or None when off."""
    if cfg.freq_mask_p <= 0 and cfg.time_mask_p <= 0:
        return None
    return SpecAugment(cfg)


class SpecAugment(torch.nn.Module):
    """`num_masks` frequency and time masks, each applied to a batch with its own probability."""

    def __init__(self, cfg: AugmentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.freq_mask = torchaudio.transforms.FrequencyMasking(cfg.freq_mask_param, iid_masks=True)
        self.time_mask = torchaudio.transforms.TimeMasking(cfg.time_mask_param, iid_masks=True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = features.unsqueeze(1)  # iid masks need a channel dim: (batch, 1, feat, time)
        for _ in range(self.cfg.num_masks):
            if torch.rand(()) < self.cfg.freq_mask_p:
                x = self.freq_mask(x)
            if torch.rand(()) < self.cfg.time_mask_p:
                x = self.time_mask(x)
        return x.squeeze(1)


def durations(utterances: list[Utterance]) -> list[float]:
    """Seconds of audio per utterance from the file headers; NaN for an unreadable header."""
    out = []
    for u in utterances:
        try:
            out.append(audio_duration(u.path))
        except ValueError as e:
            log.warning("skipping utterance %s: %s", u.id, e)
            out.append(float("nan"))  # dropped by `select`
    return out


def select(utterances: list[Utterance], seconds: list[float], min_seconds: float,
           max_seconds: float) -> tuple[list[Utterance], list[float], int]:
    """Keep utterances within the duration limits; also returns how many were dropped."""
    keep = [i for i, s in enumerate(seconds) if min_seconds <= s <= max_seconds]
    return [utterances[i] for i in keep], [seconds[i] for i in keep], len(utterances) - len(keep)


class SpeechDataset(Dataset):
    """Item i -> dict(wave (samples,), tokens (n,), text, index), or None for unreadable audio.

    Augmentation draws from a generator seeded by (seed, epoch, index), so an item gets the same
    augmentation whatever worker loads it and after a resume.
    """

    def __init__(self, utterances: list[Utterance], tokenizer, alphabet: str, sample_rate: int,
                 *, wave_augment=None, seed: int = 0) -> None:
        self.utterances = utterances
        self.tokenizer = tokenizer
        self.texts = [normalize(u.text, alphabet) for u in utterances]
        self.sample_rate = sample_rate
        self.wave_augment = wave_augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> dict | None:
        utterance = self.utterances[index]
        try:
            wave = load(utterance.path, self.sample_rate)
        except AudioError as e:
            log.warning("skipping utterance %s: %s", utterance.id, e)
            return None
        if self.wave_augment is not None:
            item_seed = [self.seed, self.epoch, index]
            random.seed(str(item_seed))  # audiomentations draws from the global generators
            np.random.seed(np.random.SeedSequence(item_seed).generate_state(1))
            wave = torch.from_numpy(self.wave_augment(wave.numpy()))
        tokens = torch.tensor(self.tokenizer.encode(self.texts[index]), dtype=torch.long)
        return {"wave": wave, "tokens": tokens, "text": self.texts[index], "index": index}


def collate(items: list[dict | None]) -> dict:
    """Pad a list of items into a batch; unreadable items (None) are dropped and counted.

    Returns waves (batch, samples), wave_lengths (batch,), targets (sum of token counts,),
    target_lengths (batch,), texts, indices, skipped.
    """
    good = [item for item in items if item is not None]
    waves = torch.nn.utils.rnn.pad_sequence([item["wave"] for item in good], batch_first=True) if good \
        else torch.zeros(0, 0)
    return {
        "waves": waves,
        "wave_lengths": torch.tensor([len(item["wave"]) for item in good], dtype=torch.long),
        "targets": torch.cat([item["tokens"] for item in good]) if good else torch.zeros(0, dtype=torch.long),
        "target_lengths": torch.tensor([len(item["tokens"]) for item in good], dtype=torch.long),
        "texts": [item["text"] for item in good],
        "indices": [item["index"] for item in good],
        "skipped": len(items) - len(good),
    }


class DurationBatchSampler(Sampler[list[int]]):
    """Batches of similar-length utterances holding at most `max_batch_seconds` of padded audio.

    Batches are formed once from the sorted durations; each epoch shuffles their order (seeded by
    seed + epoch), except the first epoch under SortaGrad, which goes shortest-first. Under DDP each
    of `num_replicas` processes takes every num_replicas-th batch (the list is padded by repeating
    batches so all processes step the same number of times), the job DistributedSampler does for
    plain samplers.
    """

    def __init__(self, seconds: list[float], max_batch_seconds: float, *, shuffle: bool, seed: int = 0,
                 sortagrad: bool = False, num_replicas: int = 1, rank: int = 0) -> None:
        order = sorted(range(len(seconds)), key=lambda i: (seconds[i], i))
        self.batches: list[list[int]] = []
        batch: list[int] = []
        for i in order:
            # Sorted ascending, so the newest item is the longest: padded cost = count * its length.
            if batch and (len(batch) + 1) * seconds[i] > max_batch_seconds:
                self.batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            self.batches.append(batch)
        self.shuffle, self.seed, self.sortagrad = shuffle, seed, sortagrad
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch = 0
        self.start_batch = 0  # batches of this epoch already done (resume)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def _epoch_batches(self) -> list[list[int]]:
        batches = self.batches
        if self.shuffle and not (self.sortagrad and self.epoch == 0):
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]
        per_replica = math.ceil(len(batches) / self.num_replicas)
        batches = (batches * self.num_replicas)[: per_replica * self.num_replicas]
        return batches[self.rank:: self.num_replicas]

    def __iter__(self):
        return iter(self._epoch_batches()[self.start_batch:])

    def __len__(self) -> int:
        return math.ceil(len(self.batches) / self.num_replicas)


class _WarningLines(logging.Handler):
    """Collects the messages of the warnings a logger emits while this handler is attached."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def plain_split_folder(cfg: TrainConfig, split: str | Path) -> Path | None:
    """The folder of `split` when it is a plain folder of audio files with same-named .txt
    transcripts (`common.readers.plain_folder`), else None (the corpus's own reader takes it).

    For LibriSpeech a split name under the data root may be such a folder too; for KsponSpeech,
    whose split names are list files, only a split given as a path can be.
    """
    if cfg.corpus == "kspon":
        if not (isinstance(split, Path) or "/" in split or os.sep in split):
            return None
        folder = Path(split)
    else:
        try:
            folder = librispeech.split_folder(cfg.data.root, split)
        except (FileNotFoundError, ValueError):  # the LibriSpeech reader says what is missing
            return None
    return folder if plain_folder.is_plain_folder(folder) else None


def split_source(cfg: TrainConfig, split: str) -> Path:
    """The folder (LibriSpeech layout or a plain folder) or list file (KsponSpeech) of `split`;
    FileNotFoundError naming it and what the data root holds when it is missing."""
    folder = plain_split_folder(cfg, split)
    if folder is not None:
        return folder
    if cfg.corpus == "kspon":
        return kspon.trn_path(kspon.corpus_root(cfg.data.root), split)
    return librispeech.split_folder(cfg.data.root, split)


def scored_splits(cfg: TrainConfig) -> tuple[list[str], list[str]]:
    """(splits to score at the end, held-out splits this corpus lacks): `data.test_splits`, then
    each of `data.heldout_splits` whose folder exists (the synthetic corpus's test-heldout; a
    real LibriSpeech download has none)."""
    present, missing = [], []
    for split in cfg.data.heldout_splits:
        try:
            split_source(cfg, split)
            present.append(split)
        except FileNotFoundError:
            missing.append(split)
    return list(cfg.data.test_splits) + present, missing


def load_split(cfg: TrainConfig, split: str) -> list[Utterance]:
    """Utterances of `split` read with the corpus's reader, transcripts cleaned as `cfg.text` says.

    A split that is a plain folder of audio files with same-named .txt transcripts is read with
    `common.readers.plain_folder` whatever the corpus (ids: the file stems).
    A split with no utterance left raises ValueError naming its folder (or list file) and what the
    reader skipped: nothing read must not pass for a split scored perfectly. English transcripts
    that lose characters to normalization are reported in one warning per split.
    """
    folder = plain_split_folder(cfg, split)
    reader = plain_folder if folder is not None else kspon if cfg.corpus == "kspon" else librispeech
    # The reader logs its skip summary ("skipped 2 of 2 utterances ...: 2 unreadable transcript
    # lines (first: FILE:LINE)"); kept here, it tells why a split came out empty.
    skipped = _WarningLines()
    reader.log.addHandler(skipped)
    try:
        if folder is not None:
            utterances = plain_folder.list_utterances(folder, on_error=cfg.data.on_bad_input)
        else:
            utterances = reader.list_utterances(cfg.data.root, split, on_error=cfg.data.on_bad_input)
    finally:
        reader.log.removeHandler(skipped)
    if not utterances:
        why = "; ".join(skipped.lines) or (
            "no transcript line with audio found" if cfg.corpus == "kspon" else
            f"no transcript line with audio found; expected SPEAKER/CHAPTER/*{librispeech.TRANSCRIPT_SUFFIX} "
            f"transcripts with their audio, or {plain_folder.LAYOUT}")
        raise ValueError(f"{split_source(cfg, split)}: 0 utterances read ({why})")
    if cfg.text.language == "en":
        report_dropped_characters(utterances, cfg.text.alphabet, str(split))
    return [replace(u, text=clean(u.text, cfg.text)) for u in utterances]


def report_dropped_characters(utterances: list[Utterance], alphabet: str, split: str) -> None:
    """Log one warning when transcripts hold characters outside `alphabet`, which `normalize` drops.

    The reference then differs from the transcript ("café" -> "caf", "3 o'clock" -> "o'clock") in
    training and scoring alike; the warning counts the transcripts and characters and shows the
    first such utterance.
    """
    counts: Counter = Counter()
    losing, emptied, first = 0, 0, None
    for utterance in utterances:
        dropped = dropped_characters(utterance.text, alphabet)
        if dropped:
            losing += 1
            emptied += not normalize(utterance.text, alphabet)
            counts.update(dropped)
            first = first or utterance
    if losing:
        chars = ", ".join(f"{c!r} x{n}" for c, n in counts.most_common())
        empty = f"{emptied} left empty; " if emptied else ""
        log.warning('%s: %d of %d transcripts lose characters outside the alphabet %r: %s (%sfirst: %s "%s")',
                    split, losing, len(utterances), alphabet, chars, empty, first.id, first.text)


def load_train_utterances(cfg: TrainConfig) -> list[Utterance]:
    """Every utterance of `cfg.data.train_splits`, transcripts cleaned (before duration limits)."""
    return [u for split in cfg.data.train_splits for u in load_split(cfg, split)]


def eval_loader(cfg: TrainConfig, tokenizer, split: str) -> torch.utils.data.DataLoader:
    """Evaluation batches of `split`, shortest first, no augmentation."""
    utterances = load_split(cfg, split)
    if cfg.max_dev_utterances and split == cfg.data.dev_split:
        utterances = utterances[: cfg.max_dev_utterances]
    seconds = [s if math.isfinite(s) else 0.0 for s in durations(utterances)]
    dataset = SpeechDataset(utterances, tokenizer, kept_characters(cfg.text, [u.text for u in utterances]),
                            cfg.features.sample_rate)
    sampler = DurationBatchSampler(seconds, cfg.data.max_batch_seconds * 2, shuffle=False)
    return torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                       num_workers=cfg.data.num_workers)
