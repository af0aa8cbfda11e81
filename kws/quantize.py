"""Smaller stored weights for a trained CRNN: fp16, dynamic int8 (torch.ao), weight-only int8.

Functions only: the compression report (`python -m kws.compress`, `./run.sh kws_quantize`) applies
every scheme to every float model it finds. Three schemes, all post-training:
- fp16: the state_dict in half precision (2 bytes per weight); loaded back into float32 modules
  (CPU kernels for half GRUs are slow or missing; the numbers are the fp16-rounded weights).
- dynamic int8 (`dynamic_int8`): `torch.ao.quantization.quantize_dynamic` on the GRU and Linear
  layers: int8 weights, activations quantized on the fly. The convolution stays float32.
  torch.ao.quantization is deprecated (its replacement, torchao, is not a dependency here); it is
  used in this function only, so removing it later touches one place. Its packed weights carry a
  fixed overhead per tensor, which on a model this small eats most of the saving.
- weight-only int8 with dequantize-on-load (`pack_int8` / `unpack_int8`): every weight matrix
  (conv included) is stored as int8 with one scale per output row (symmetric, scale = max|w| / 127,
  the scale itself in fp16), biases in fp16. Everything is written into ONE flat uint8 tensor:
  `torch.save` pays a few hundred bytes per tensor, which for a 2 k-parameter model is more than
  the weights. Loading rebuilds a float CRNN from the same architecture, so inference, streaming and
  MACs are those of the float model; only storage (file bytes) shrinks.
"""
from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from kws.model import CRNN

PACKED_KEY = "packed"


def fp16_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict in float16 (what is saved)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}


def load_fp16(model: CRNN, state: dict[str, torch.Tensor]) -> CRNN:
    """A float32 copy of `model` holding the fp16 weights of `state`."""
    out = copy.deepcopy(model).float()
    out.load_state_dict({k: v.float() for k, v in state.items()})
    return out.eval()


def dynamic_int8(model: nn.Module) -> nn.Module:
    """torch.ao dynamic quantization of the GRU/LSTM and Linear layers (a quantized copy).

    The only place that touches the deprecated torch.ao.quantization API; its deprecation warnings
    are silenced here because the module docstring says what they say.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.GRU, nn.LSTM, nn.Linear},
                                dtype=torch.qint8)


def _quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(rows, ...)` float -> (int8 `(rows, ...)`, fp16 scales `(rows,)`), symmetric per row."""
    flat = weight.detach().float().reshape(weight.shape[0], -1)
    # The scale is rounded to fp16 first, so the int8 values are computed against the stored scale.
    scale = (flat.abs().amax(dim=1) / 127).clamp(min=1e-7).half()
    q = (flat / scale.float()[:, None]).round().clamp(-127, 127).to(torch.int8)
    return q.reshape(weight.shape), scale


@torch.no_grad()
def pack_int8(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state_dict of a float model as `{"packed": uint8 (n,)}`: int8 weights, then fp16 scales and
    biases, in state_dict order. The layout follows from the architecture alone, so `unpack_int8`
    needs only a model of the same config."""
    q_bytes, half_values = [], []
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            raise ValueError(f"pack_int8: {key} is {value.dtype}, expected a float tensor")
        if value.dim() >= 2:
            q, scale = _quantize_rows(value)
            q_bytes.append(q.reshape(-1).view(torch.uint8))
            half_values.append(scale)
        else:
            half_values.append(value.detach().half().reshape(-1))
    halves = torch.cat(half_values).view(torch.uint8)
    return {PACKED_KEY: torch.cat(q_bytes + [halves]).cpu()}


@torch.no_grad()
def unpack_int8(template: CRNN, packed: dict[str, torch.Tensor]) -> CRNN:
    """A float copy of `template` with the dequantized weights of `pack_int8`'s output."""
    if set(packed) != {PACKED_KEY}:
        raise ValueError(f"unpack_int8: expected the single key {PACKED_KEY!r}, got {sorted(packed)}")
    buffer = packed[PACKED_KEY]
    own = template.state_dict()
    matrices = {k: v for k, v in own.items() if v.dim() >= 2}
    n_int8 = sum(v.numel() for v in matrices.values())
    n_half = sum(v.shape[0] for v in matrices.values()) + sum(v.numel() for v in own.values() if v.dim() < 2)
    if buffer.dtype != torch.uint8 or buffer.numel() != n_int8 + 2 * n_half:
        raise ValueError(f"unpack_int8: packed buffer of {buffer.numel()} {buffer.dtype} does not fit this "
                         f"model (expected {n_int8 + 2 * n_half} uint8)")
    ints = buffer[:n_int8].view(torch.int8).float()
    halves = buffer[n_int8:].clone().view(torch.float16).float()
    state, i, h = {}, 0, 0
    for key, value in own.items():
        if value.dim() >= 2:
            rows = value.shape[0]
            q = ints[i:i + value.numel()].reshape(rows, -1)
            state[key] = (q * halves[h:h + rows, None]).reshape(value.shape)
            i, h = i + value.numel(), h + rows
        else:
            state[key] = halves[h:h + value.numel()].reshape(value.shape)
            h += value.numel()
    out = copy.deepcopy(template).cpu().float()
    out.load_state_dict(state)
    return out.eval()
