"""Every key of an ASR run: the sections of `TrainConfig`, with their defaults and meanings.

A run's JSON config (`configs/asr/*.json`) is read into `TrainConfig` by `common.config`, which
checks every key and type against these dataclasses; the resolved config is saved with the run and
inside each checkpoint, so a checkpoint can be rebuilt and evaluated with the settings it was
trained with.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from asr.model import ModelConfig
from asr.text import TextConfig
from common.config import check, check_probabilities, check_range, is_folder_name
from common.features import FeatureConfig


@dataclass
class DataConfig:
    root: str = "data/LibriSpeech"  # the folder that holds the splits
    # split names (or folders) to train on
    train_splits: list[str] = field(default_factory=lambda: ["train-clean-100"])
    dev_split: str = "dev-clean"  # split scored during training; best.pt has its lowest WER
    # splits best.pt is scored on when training ends
    test_splits: list[str] = field(default_factory=lambda: ["test-clean"])
    # splits of speech that training never meets in kind (docs/heldout.md), scored beside
    # test_splits when the corpus holds them; skipped with a note otherwise (real corpora have none)
    heldout_splits: list[str] = field(default_factory=list)
    min_seconds: float = 0.3  # shorter training utterances are left out
    max_seconds: float = 16.7  # longer training utterances are left out
    max_batch_seconds: float = 60.0  # padded audio seconds per batch (per process under DDP)
    sortagrad: bool = True  # first epoch shortest-first, as in DeepSpeech2
    num_workers: int = 1  # loader processes (0: load in the training process)
    on_bad_input: Literal["skip", "raise"] = "skip"  # "skip" a bad utterance (counted) or "raise" at the first one

    def __post_init__(self) -> None:
        check(bool(self.train_splits), "train_splits", "at least one split", self.train_splits)
        check(self.min_seconds >= 0, "min_seconds", ">= 0", self.min_seconds)
        check(self.max_seconds > self.min_seconds, "max_seconds", f"> min_seconds ({self.min_seconds})",
              self.max_seconds)
        check(self.max_batch_seconds > 0, "max_batch_seconds", "> 0", self.max_batch_seconds)
        check(self.num_workers >= 0, "num_workers", ">= 0", self.num_workers)


@dataclass
class AugmentConfig:
    """Train-only augmentation; every transform has its own probability (0 turns it off)."""

    gain_p: float = 0.0  # probability of a random gain
    gain_db: list[float] = field(default_factory=lambda: [-6.0, 8.0])  # gain range in dB
    shift_p: float = 0.0  # probability of a time shift
    shift_fraction: float = 0.1  # largest shift, as a fraction of the utterance
    gaussian_noise_p: float = 0.0  # probability of added white noise
    gaussian_noise_amplitude: list[float] = field(default_factory=lambda: [0.001, 0.015])  # its amplitude range
    color_noise_p: float = 0.0  # probability of added colored noise
    color_noise_snr_db: list[float] = field(default_factory=lambda: [5.0, 30.0])  # its SNR range in dB
    background_noise_p: float = 0.0  # probability of added recorded noise
    background_noise_dir: str = "data/speech_commands/_background_noise_"  # folder of noise .wav files
    background_noise_snr_db: list[float] = field(default_factory=lambda: [3.0, 30.0])  # its SNR range in dB
    tempo_p: float = 0.0  # probability of a tempo change (pitch kept)
    tempo_range: list[float] = field(default_factory=lambda: [0.85, 1.15])  # tempo factor range
    # Speed perturbation (Ko et al. 2015, Kaldi's recipe): resampling changes tempo and pitch
    # together. Far cheaper than tempo (a polyphase resample vs. a phase vocoder).
    speed_p: float = 0.0
    # factors a speed perturbation picks from
    speed_factors: list[float] = field(default_factory=lambda: [0.9, 1.1])
    # Vocal tract length perturbation (Jaitly & Hinton 2013): each utterance's frequency axis under
    # the mel filters warped by a factor from vtlp_range; on the batch, nearly free. Mel kinds only.
    vtlp_p: float = 0.0  # probability of a VTLP warp per utterance
    vtlp_range: list[float] = field(default_factory=lambda: [0.9, 1.1])  # warp factor range (> 1: shorter tract)
    pitch_shift_p: float = 0.0  # probability of a pitch shift with the tempo kept (signalsmith stretch)
    pitch_shift_semitones: list[float] = field(default_factory=lambda: [-3.0, 3.0])  # its range
    # Channel randomization (docs/heldout.md: none of these is a held-out channel): what a
    # recording chain does to speech, so a synthesizer's exact spectrum stops being a cue.
    eq_p: float = 0.0  # probability of a random 7-band parametric EQ
    eq_gain_db: list[float] = field(default_factory=lambda: [-12.0, 12.0])  # each band's gain range
    filter_p: float = 0.0  # probability of one of a low-pass, high-pass or band-pass filter
    distortion_p: float = 0.0  # probability of tanh or clipping distortion
    gain_transition_p: float = 0.0  # probability of a gain ramp inside the utterance
    freq_mask_p: float = 0.0  # SpecAugment, on features
    freq_mask_param: int = 15  # widest frequency mask, in feature bins
    time_mask_p: float = 0.0  # probability of each SpecAugment time mask
    time_mask_param: int = 35  # widest time mask, in frames
    num_masks: int = 2  # frequency and time masks drawn per batch

    def __post_init__(self) -> None:
        check_probabilities(self)
        for key in ("gain_db", "gaussian_noise_amplitude", "color_noise_snr_db", "background_noise_snr_db",
                    "tempo_range", "eq_gain_db", "pitch_shift_semitones", "vtlp_range"):
            check_range(key, getattr(self, key))
        check(0 <= self.shift_fraction <= 1, "shift_fraction", "in [0, 1]", self.shift_fraction)
        check(0.5 <= self.vtlp_range[0] <= self.vtlp_range[1] <= 2.0, "vtlp_range", "[lo, hi] within [0.5, 2]",
              self.vtlp_range)
        check(all(0.5 <= f <= 2.0 for f in self.speed_factors), "speed_factors", "factors within [0.5, 2]",
              self.speed_factors)
        for key in ("freq_mask_param", "time_mask_param", "num_masks"):
            check(getattr(self, key) >= 0, key, ">= 0", getattr(self, key))


@dataclass
class OptimConfig:
    name: Literal["adam", "adamw", "sgd"] = "adamw"  # optimizer
    lr: float = 2e-3  # peak learning rate
    weight_decay: float = 1e-2  # decoupled (AdamW) or L2 weight decay
    momentum: float = 0.9  # sgd only
    # learning-rate schedule, stepped per optimizer step
    scheduler: Literal["onecycle", "cyclic", "cosine", "constant"] = "onecycle"
    warmup_fraction: float = 0.1  # onecycle / cosine: share of the steps spent warming up
    min_lr_ratio: float = 0.01  # cyclic base lr and cosine floor, relative to lr
    cyclic_step_size: int = 500  # cyclic: steps per half cycle (triangular2)
    grad_clip: float = 5.0  # max global gradient norm
    # Self-attention at the full Adam rate kept DeepSpeech2 on the CTC blank plateau: its
    # unbounded output outgrew the GRU output it is added to (docs/experiments.md).
    attention_lr_scale: float = 0.1

    def __post_init__(self) -> None:
        check(self.lr > 0, "lr", "> 0", self.lr)
        check(self.weight_decay >= 0, "weight_decay", ">= 0", self.weight_decay)
        check(0 <= self.momentum < 1, "momentum", "in [0, 1)", self.momentum)
        check(0 <= self.warmup_fraction < 1, "warmup_fraction", "in [0, 1)", self.warmup_fraction)
        check(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "in [0, 1]", self.min_lr_ratio)
        check(self.cyclic_step_size >= 1, "cyclic_step_size", ">= 1", self.cyclic_step_size)
        check(self.grad_clip > 0, "grad_clip", "> 0", self.grad_clip)
        check(self.attention_lr_scale > 0, "attention_lr_scale", "> 0", self.attention_lr_scale)


@dataclass
class TrainConfig:
    stage: str = "asr_clean"  # runs go to logs/<stage>/<name>
    name: str = "default"  # run name: the run folder under logs/<stage>/
    seed: int = 0  # fixes init, data order and augmentation
    deterministic: bool = False  # deterministic kernels where torch has them (slower; for reruns on a GPU)
    corpus: Literal["librispeech", "kspon"] = "librispeech"  # layout of data.root (which reader)
    epochs: int = 10  # passes over the training data
    max_steps: int = 0  # stop after this many optimizer steps (0: run all epochs); sets the schedule length
    eval_every: int = 0  # steps between dev evaluations, besides every epoch end (0: epoch ends only)
    log_every: int = 25  # optimizer steps between train-loss records
    max_dev_utterances: int = 0  # 0: the whole dev split
    amp: Literal["off", "bf16", "fp16"] = "bf16"  # autocast: CUDA, and bf16 on a CPU with bf16 instructions
    init_from: str = ""  # checkpoint whose weights and tokenizer start this run (fine-tuning)
    resume: bool = True  # continue from last.pt when the run folder has one
    features: FeatureConfig = field(default_factory=lambda: FeatureConfig(normalize="utterance"))
    text: TextConfig = field(default_factory=TextConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        for key in ("stage", "name"):
            check(is_folder_name(getattr(self, key)), key, "a single folder name (no '/', not '.' or '..')",
                  getattr(self, key))
        check(self.epochs >= 1, "epochs", ">= 1", self.epochs)
        for key in ("max_steps", "eval_every", "max_dev_utterances"):
            check(getattr(self, key) >= 0, key, ">= 0", getattr(self, key))
        check(self.log_every >= 1, "log_every", ">= 1", self.log_every)
        check(self.augment.vtlp_p == 0 or self.features.kind != "spectrogram", "augment.vtlp_p",
              "0 with features.kind spectrogram (VTLP warps the mel filters)", self.augment.vtlp_p)
