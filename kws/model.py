"""The keyword-spotting CRNN of the "Deep Learning in Audio" course, every size from a config.

    log-mel (batch, n_mels, time)
      -> Conv2d(1 -> C, kernel (kf, kt), stride (sf, st)) over (freq, time), no padding
      -> flatten channels x freq: (batch, T', C * F')     F' = (n_mels - kf) // sf + 1
      -> RNN (GRU / LSTM / vanilla; unidirectional, batch_first): (batch, T', H)
      -> attention: energy = Linear(H, H) -> tanh -> Linear(H, 1), softmax over time, weighted sum
         (attention "linear": energy = Linear(H, 1), the one-layer attention of small students)
      -> Linear(H, num_classes) logits

Like the course model there is no non-linearity between the convolution and the RNN. Everything is
causal except the attention, which looks at the whole clip; `kws.stream` makes it causal by
attending over a sliding window of the last RNN outputs.
The compression experiments build smaller students from the same class by changing the config.
`load_kws_checkpoint` rebuilds the model and its features from a `kws.train` checkpoint.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from common.checkpoint import CheckpointError, load_checkpoint, load_model_state
from common.config import ConfigError, from_dict
from common.features import FeatureConfig, Features, make_features
from kws.data import DataConfig

RNN_TYPES = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


@dataclass
class ModelConfig:
    """CRNN sizes; kernel and stride are (freq, time)."""

    cnn_out_channels: int = 8  # conv output channels
    kernel_size: list[int] = field(default_factory=lambda: [5, 20])  # conv kernel (freq, time)
    stride: list[int] = field(default_factory=lambda: [2, 8])  # conv stride (freq, time)
    rnn_type: Literal["gru", "lstm", "rnn"] = "gru"  # recurrent cell
    hidden_size: int = 32  # recurrent units
    num_layers: int = 2  # recurrent layers
    dropout: float = 0.1  # between RNN layers (PyTorch ignores it for one layer)
    num_classes: int = 2  # 2: keyword or not
    attention: Literal["mlp", "linear"] = "mlp"  # energy Linear-tanh-Linear, or one Linear(H, 1)


class Attention(nn.Module):
    """Additive self-attention pooling: `(batch, time, hidden)` -> `(batch, hidden)`.

    kind "mlp" scores each frame with Linear(H, H) -> tanh -> Linear(H, 1) (the course model);
    "linear" with a single Linear(H, 1): H + 1 parameters and H MACs per frame instead of H^2 + 2H.
    """

    def __init__(self, hidden_size: int, kind: str = "mlp") -> None:
        super().__init__()
        if kind == "mlp":
            self.energy = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.Tanh(),
                                        nn.Linear(hidden_size, 1))
        else:
            self.energy = nn.Sequential(nn.Linear(hidden_size, 1))

    def log_weights(self, x: torch.Tensor) -> torch.Tensor:
        """`(batch, time, hidden)` -> log attention weights `(batch, time)` (log-softmax over time)."""
        return torch.log_softmax(self.energy(x)[..., 0], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.energy(x), dim=-2)  # (batch, time, 1)
        return (weights * x).sum(dim=-2)


class CRNN(nn.Module):
    """Log-mel `(batch, n_mels, time)` -> logits `(batch, num_classes)`.

    The clip must have at least kernel_size[1] frames (20 frames = 0.2 s for the course setup).
    """

    def __init__(self, n_mels: int, cfg: ModelConfig) -> None:
        super().__init__()
        _validate(n_mels, cfg)
        self.cfg = cfg
        self.n_mels = n_mels
        self.conv = nn.Sequential(
            nn.Conv2d(1, cfg.cnn_out_channels, kernel_size=tuple(cfg.kernel_size),
                      stride=tuple(cfg.stride)),
            nn.Flatten(start_dim=1, end_dim=2),  # (batch, C * F', T'), channel-major
        )
        self.conv_out_frequency = (n_mels - cfg.kernel_size[0]) // cfg.stride[0] + 1
        self.rnn = RNN_TYPES[cfg.rnn_type](
            input_size=self.conv_out_frequency * cfg.cnn_out_channels, hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers, dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
            batch_first=True)
        self.attention = Attention(cfg.hidden_size, cfg.attention)
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_classes)

    @property
    def kernel_time(self) -> int:
        return self.cfg.kernel_size[1]

    @property
    def stride_time(self) -> int:
        return self.cfg.stride[1]

    def output_frames(self, feature_frames: int) -> int:
        """T': the conv (and RNN) frames of `feature_frames` log-mel frames."""
        return (feature_frames - self.kernel_time) // self.stride_time + 1

    def conv_frames(self, feats: torch.Tensor) -> torch.Tensor:
        """Log-mel `(batch, n_mels, time)` -> RNN inputs `(batch, T', C * F')`,
        T' = (time - kernel_time) // stride_time + 1."""
        if feats.dim() != 3 or feats.shape[1] != self.n_mels:
            raise ValueError(f"expected log-mel features (batch, {self.n_mels}, time), "
                             f"got {tuple(feats.shape)}")
        if feats.shape[2] < self.kernel_time:
            raise ValueError(f"need at least {self.kernel_time} feature frames, got {feats.shape[2]}")
        return self.conv(feats.unsqueeze(1)).transpose(1, 2)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(self.conv_frames(feats))  # (batch, T', hidden)
        return self.classifier(self.attention(outputs))

    def forward_with_attention(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel `(batch, n_mels, time)` -> (logits `(batch, num_classes)`, log attention weights
        `(batch, T')`); the logits equal `forward`'s (attention distillation needs both)."""
        outputs, _ = self.rnn(self.conv_frames(feats))
        log_weights = self.attention.log_weights(outputs)
        pooled = (log_weights.exp().unsqueeze(-1) * outputs).sum(dim=-2)
        return self.classifier(pooled), log_weights

    def frame_centers(self, frames: int) -> torch.Tensor:
        """Centers of the first `frames` RNN frames, in feature frames: `(frames,)`."""
        return torch.arange(frames) * self.stride_time + (self.kernel_time - 1) / 2


def _validate(n_mels: int, cfg: ModelConfig) -> None:
    if cfg.rnn_type not in RNN_TYPES:
        raise ValueError(f"model.rnn_type must be one of {sorted(RNN_TYPES)}, got {cfg.rnn_type!r}")
    if cfg.attention not in ("mlp", "linear"):
        raise ValueError(f"model.attention must be 'mlp' or 'linear', got {cfg.attention!r}")
    for name in ("kernel_size", "stride"):
        value = getattr(cfg, name)
        if len(value) != 2 or min(value) < 1:
            raise ValueError(f"model.{name} must be two positive ints (freq, time), got {value}")
    if cfg.kernel_size[0] > n_mels:
        raise ValueError(f"model.kernel_size[0] ({cfg.kernel_size[0]}) exceeds the {n_mels} mel bins")
    if min(cfg.cnn_out_channels, cfg.hidden_size, cfg.num_layers) < 1 or cfg.num_classes < 2:
        raise ValueError("model.cnn_out_channels, hidden_size, num_layers must be >= 1 and "
                         "num_classes >= 2")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"model.dropout must be in [0, 1), got {cfg.dropout}")


def keyword_probability(logits: torch.Tensor) -> torch.Tensor:
    """Logits `(batch, num_classes)` -> keyword score `(batch,)`: softmax probability of class 1."""
    return torch.softmax(logits, dim=-1)[:, 1]


@dataclass
class KwsCheckpoint:
    """What a training checkpoint rebuilds: the network (eval mode), its features and its task."""

    model: CRNN
    features: Features
    keyword: str
    clip_samples: int
    config: dict  # the training run's resolved config
    path: Path

    @property
    def clip_window(self) -> int:
        """Conv frames of one training clip: the attention window the model was trained with."""
        clip_frames = self.clip_samples // self.features.cfg.hop_length + 1  # centred STFT frames
        return self.model.output_frames(clip_frames)


def load_kws_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> KwsCheckpoint:
    """The model (eval mode), feature module and keyword of a `kws.train` checkpoint."""
    state = load_checkpoint(path, map_location=device)
    for key in ("model", "config"):
        if key not in state:
            raise CheckpointError(f"{path}: not a KWS checkpoint (no {key!r} entry)")
    try:
        model_cfg = from_dict(ModelConfig, state["config"]["model"], source=str(path), prefix="model.")
        feature_cfg = from_dict(FeatureConfig, state["config"]["features"], source=str(path), prefix="features.")
        data_cfg = from_dict(DataConfig, state["config"]["data"], source=str(path), prefix="data.")
    except (ConfigError, KeyError) as e:
        raise CheckpointError(f"{path}: checkpoint config does not fit this code ({e})") from None
    features = make_features(feature_cfg).to(device)
    model = CRNN(features.num_features, model_cfg).to(device)
    load_model_state(model, state["model"], str(path))
    clip_samples = round(data_cfg.clip_seconds * feature_cfg.sample_rate)
    return KwsCheckpoint(model.eval(), features, data_cfg.keyword, clip_samples, state["config"], Path(path))
