"""DeepSpeech2 (Amodei et al., 2015) for CTC, with its RNN-only and self-attention variants.

features (batch, feat, time)
  -> 1-3 x [Conv2d over (freq, time) -> BatchNorm2d -> clipped ReLU min(max(x, 0), 20) -> mask]
     (RNN-only: no conv; `frame_stack` frames side by side per step instead)
  -> N x [BatchNorm1d on the layer input -> GRU/LSTM/RNN (bi: directions summed)
          -> optional self-attention (pre-LayerNorm residual branch, zero at init; key padding mask)]
  -> lookahead (row) convolution when unidirectional
  -> LayerNorm -> Linear -> log-softmax over the vocabulary (blank = 0)

Padding never changes an utterance's output: conv outputs past each length are zeroed (so the next
conv sees the same zeros as the utterance alone would), BatchNorm statistics are taken over valid
frames only, and the backward direction of a bidirectional layer reads each utterance reversed
within its own length, so padding only ever follows the frames that matter.

The recurrent layers run on padded tensors, not PackedSequence: on the CPU, autograd through a packed
RNN allocates a zero tensor the size of the whole batch for every time step, which made the backward
pass ~1.4x (4 s utterances) to ~1.8x (16 s) slower than two padded one-direction calls.

`load_asr_checkpoint` rebuilds the model, its features and its tokenizer from a training checkpoint
(`asr.train` saves the resolved config and the tokenizer beside the weights).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from asr.text import TextTokenizer, tokenizer_from_dict
from common.checkpoint import CheckpointError, load_checkpoint, load_model_state
from common.config import check, from_dict
from common.features import FeatureConfig, Features, make_features


@dataclass
class ModelConfig:
    num_conv_layers: int = 2  # 0 gives the RNN-only model
    frame_stack: int = 1  # RNN-only: feature frames stacked into one step (a lower frame rate)
    conv_channels: list[int] = field(default_factory=lambda: [32, 32, 96])  # output channels of each conv layer
    conv_kernels: list[list[int]] = field(default_factory=lambda: [[41, 11], [21, 11], [21, 11]])  # (freq, time)
    # (freq, time) stride of each conv layer
    conv_strides: list[list[int]] = field(default_factory=lambda: [[2, 2], [2, 1], [2, 1]])
    rnn_type: Literal["gru", "lstm", "rnn"] = "gru"  # recurrent cell
    rnn_layers: int = 5  # recurrent layers
    rnn_hidden: int = 512  # units per direction
    bidirectional: bool = True  # read each utterance both ways (directions summed)
    lookahead_context: int = 20  # future frames seen by the row convolution (unidirectional only)
    attention_heads: int = 0  # > 0 adds self-attention after every recurrent layer
    dropout: float = 0.0  # between recurrent layers and in self-attention

    def __post_init__(self) -> None:
        for key in ("rnn_layers", "rnn_hidden", "frame_stack"):
            check(getattr(self, key) >= 1, key, ">= 1", getattr(self, key))
        for key in ("num_conv_layers", "lookahead_context", "attention_heads"):
            check(getattr(self, key) >= 0, key, ">= 0", getattr(self, key))
        if self.attention_heads:
            check(self.rnn_hidden % self.attention_heads == 0, "attention_heads",
                  f"a divisor of rnn_hidden ({self.rnn_hidden})", self.attention_heads)
        check(0 <= self.dropout < 1, "dropout", "in [0, 1)", self.dropout)


def conv_output_length(lengths: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """Frames out of a Conv over time with the given arithmetic; `lengths` (batch,) in frames."""
    return torch.div(lengths + 2 * padding - kernel, stride, rounding_mode="floor") + 1


class ConvFrontEnd(nn.Module):
    """2D convolutions over (freq, time) with BatchNorm and clipped ReLU, masked to each length.

    Input `(batch, feat, time)`, lengths `(batch,)`; output `(batch, time', channels * feat')`.
    """

    def __init__(self, num_features: int, channels: list[int], kernels: list[list[int]],
                 strides: list[list[int]]) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        self.time_arithmetic = []  # (kernel, stride, padding) per layer, for the exact lengths
        in_channels, freq = 1, num_features
        for out_channels, (k_f, k_t), (s_f, s_t) in zip(channels, kernels, strides):
            padding = (k_f // 2, k_t // 2)
            self.layers.append(nn.Sequential(
                nn.Conv2d(in_channels, out_channels, (k_f, k_t), (s_f, s_t), padding, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.Hardtanh(0, 20, inplace=True),
            ))
            self.time_arithmetic.append((k_t, s_t, padding[1]))
            freq = (freq + 2 * padding[0] - k_f) // s_f + 1  # >= 1: 'same' padding keeps a bin
            in_channels = out_channels
        self.output_size = in_channels * freq

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        for kernel, stride, padding in self.time_arithmetic:
            lengths = conv_output_length(lengths, kernel, stride, padding)
        return lengths

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = features.unsqueeze(1)  # (batch, 1, feat, time)
        for layer, (kernel, stride, padding) in zip(self.layers, self.time_arithmetic):
            x = layer(x)
            lengths = conv_output_length(lengths, kernel, stride, padding)
            valid = torch.arange(x.shape[-1], device=x.device)[None, :] < lengths[:, None]
            x = x * valid[:, None, None, :]
        batch, channels, freq, time = x.shape
        return x.reshape(batch, channels * freq, time).transpose(1, 2), lengths


class FrameStack(nn.Module):
    """The RNN-only model's front-end: `stack` consecutive frames side by side, one step per
    `stack` frames, so the RNNs run at the frame rate the conv strides give DeepSpeech2
    (Sak et al., 2015, stack and skip frames the same way).

    Input `(batch, feat, time)`, lengths `(batch,)`; output `(batch, time // stack, stack * feat)`
    and lengths // stack: a tail shorter than `stack` frames is dropped, so a step never mixes an
    utterance's frames with padding.
    """

    def __init__(self, num_features: int, stack: int) -> None:
        super().__init__()
        if stack < 1:
            raise ValueError(f"model.frame_stack must be >= 1, got {stack}")
        self.stack = stack
        self.output_size = num_features * stack

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths, self.stack, rounding_mode="floor")

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, feat, time = features.shape
        steps = time // self.stack
        x = features[:, :, :steps * self.stack].transpose(1, 2)  # (batch, steps * stack, feat)
        return x.reshape(batch, steps, self.stack * feat), self.output_lengths(lengths)


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of `x` (batch, time, dim) over its first `lengths[b]` frames only.

    Padding stays where it is, so applying this twice gives `x` back.
    """
    time = torch.arange(x.shape[1], device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(time < lengths, lengths - 1 - time, time)  # (batch, time)
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[2]))


class RecurrentLayer(nn.Module):
    """BatchNorm on the valid input frames, then one GRU/LSTM/RNN layer over time.

    (batch, time, input_size) and lengths (batch,) -> (batch, time, hidden), zero past each length.
    Bidirectional outputs are summed (as in deepspeech.pytorch) so every layer keeps width `hidden`;
    the two directions are separate one-direction modules (`rnn`, `rnn_reverse`) so the backward one
    can read each utterance reversed within its length.
    """

    def __init__(self, input_size: int, hidden: int, rnn_type: str, bidirectional: bool,
                 batch_norm: bool) -> None:
        super().__init__()
        self.batch_norm = nn.BatchNorm1d(input_size) if batch_norm else None
        rnn_class = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}[rnn_type]
        self.rnn = rnn_class(input_size, hidden, batch_first=True)
        self.rnn_reverse = rnn_class(input_size, hidden, batch_first=True) if bidirectional else None

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
        if self.batch_norm is not None:
            normalized = torch.zeros_like(x)
            # Statistics over valid frames only; under autocast BatchNorm may return another dtype.
            normalized[valid] = self.batch_norm(x[valid]).to(x.dtype)
            x = normalized
        out, _ = self.rnn(x)
        if self.rnn_reverse is not None:
            backward, _ = self.rnn_reverse(reverse_within_lengths(x, lengths))
            out = out + reverse_within_lengths(backward, lengths)
        return out * valid[..., None]


class SelfAttentionBlock(nn.Module):
    """`x + SelfAttention(LayerNorm(x))`, multi-head; `(batch, time, dim)` -> the same.

    The branch is pre-LayerNorm and its output projection starts at zero, so at init the block is
    the identity and the model starts as plain DeepSpeech2. It needs a lower learning rate than
    the recurrent layers (`optim.attention_lr_scale`, 0.1 by default): at the full rate its
    unbounded output outgrew the GRU output it is added to and the model stayed on the CTC blank
    plateau (docs/experiments.md).
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        nn.init.zeros_(self.attention.out_proj.weight)
        nn.init.zeros_(self.attention.out_proj.bias)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """`padding_mask` (batch, time) is True on padded frames, which no query attends to."""
        normed = self.norm(x)
        attended, _ = self.attention(normed, normed, normed, key_padding_mask=padding_mask, need_weights=False)
        return x + attended


class Lookahead(nn.Module):
    """Row convolution: each frame mixes the next `context` frames, per channel; `(batch, time, dim)`."""

    def __init__(self, dim: int, context: int) -> None:
        super().__init__()
        self.context = context
        self.conv = nn.Conv1d(dim, dim, context + 1, groups=dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x.transpose(1, 2), (0, self.context))
        return self.conv(x).transpose(1, 2)


class DeepSpeech2(nn.Module):
    """Features `(batch, feat, time)` and lengths `(batch,)` -> log-probs `(batch, time', vocab)`."""

    def __init__(self, num_features: int, vocab_size: int, cfg: ModelConfig) -> None:
        super().__init__()
        n = cfg.num_conv_layers
        if not 0 <= n <= min(len(cfg.conv_channels), len(cfg.conv_kernels), len(cfg.conv_strides)):
            raise ValueError(f"model.num_conv_layers={n} needs that many entries in conv_channels, "
                             f"conv_kernels and conv_strides")
        if n > 0 and cfg.frame_stack != 1:
            raise ValueError(f"model.frame_stack={cfg.frame_stack} is for the RNN-only model "
                             f"(num_conv_layers=0); the conv strides set the frame rate otherwise")
        self.frontend = (ConvFrontEnd(num_features, cfg.conv_channels[:n], cfg.conv_kernels[:n], cfg.conv_strides[:n])
                         if n > 0 else FrameStack(num_features, cfg.frame_stack))
        input_size = self.frontend.output_size
        self.rnns = nn.ModuleList()
        self.attentions = nn.ModuleList()
        for i in range(cfg.rnn_layers):
            # The first layer's input is the front-end output: the paper normalizes only
            # layer-to-layer inputs, and the RNN-only model gets raw features (normalized upstream).
            self.rnns.append(RecurrentLayer(input_size if i == 0 else cfg.rnn_hidden, cfg.rnn_hidden,
                                            cfg.rnn_type, cfg.bidirectional, batch_norm=i > 0))
            if cfg.attention_heads > 0:
                self.attentions.append(SelfAttentionBlock(cfg.rnn_hidden, cfg.attention_heads, cfg.dropout))
        self.lookahead = (Lookahead(cfg.rnn_hidden, cfg.lookahead_context)
                          if not cfg.bidirectional and cfg.lookahead_context > 0 else None)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Sequential(nn.LayerNorm(cfg.rnn_hidden), nn.Linear(cfg.rnn_hidden, vocab_size))

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Exact output frames for input frames `lengths` (batch,)."""
        return self.frontend.output_lengths(lengths)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, lengths = self.frontend(features, lengths)
        for i, rnn in enumerate(self.rnns):
            x = rnn(x, lengths)
            if self.attentions:
                padding = torch.arange(x.shape[1], device=x.device)[None, :] >= lengths[:, None]
                x = self.attentions[i](x, padding).masked_fill(padding[..., None], 0.0)  # lookahead reads zeros
            if i < len(self.rnns) - 1:
                x = self.dropout(x)
        if self.lookahead is not None:
            x = self.lookahead(x)
        return self.head(x).log_softmax(dim=-1), lengths


@dataclass
class AsrCheckpoint:
    """What a training checkpoint rebuilds: the network (eval mode) and everything it needs."""

    model: DeepSpeech2
    features: Features
    tokenizer: TextTokenizer
    config: dict  # the training run's resolved config (`asr.config.TrainConfig` as a dict)
    path: Path


def load_asr_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> AsrCheckpoint:
    """The model, feature module and tokenizer of an `asr.train` checkpoint, on `device`."""
    state = load_checkpoint(path)
    missing = [k for k in ("model", "tokenizer", "config") if k not in state]
    if not missing and isinstance(state["config"], dict):
        missing = [f"config.{k}" for k in ("features", "model") if k not in state["config"]]
    if missing:
        raise CheckpointError(f"{path}: not an ASR training checkpoint (missing {', '.join(missing)})")
    config = state["config"]
    try:
        tokenizer = tokenizer_from_dict(state["tokenizer"])
        features = make_features(from_dict(FeatureConfig, config["features"], source=f"{path} features"))
        model_cfg = from_dict(ModelConfig, config["model"], source=f"{path} model")
    except (ValueError, KeyError, TypeError) as e:  # ConfigError included: a config this code cannot read
        raise CheckpointError(f"{path}: checkpoint config does not fit this code ({e})") from None
    features = features.to(device)
    model = DeepSpeech2(features.num_features, len(tokenizer.vocab), model_cfg)
    load_model_state(model, state["model"], str(path))
    return AsrCheckpoint(model.to(device).eval(), features, tokenizer, config, Path(path))
