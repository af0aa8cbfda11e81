"""Structured magnitude pruning of the CRNN: whole conv channels and RNN units are removed.

The result is a plain, smaller `CRNN` (a smaller `ModelConfig`), so it has truly fewer
parameters, bytes and MACs, and everything that takes a CRNN (training, streaming, quantization,
profiling) takes it unchanged. Unstructured pruning would only zero weights: the dense tensors and
their MACs stay the same, and only a sparse storage format would save bytes.

Which units go: a conv channel's importance is the L2 norm of every weight that touches it (its
filter and bias, and the columns of the first RNN layer that read it); an RNN unit's, the L2 norm of
its rows in every gate (input and recurrent weights, biases) and of the columns that read its output
(its own layer's recurrent weights, the next layer, or the attention and the classifier). The
attention's inner units (kind "mlp") are ranked by their row of the first Linear times their weight
in the second. The smallest go. Pruning is followed by fine-tuning (`kws.distill` fine-tunes with
the unpruned model as teacher).
"""
from __future__ import annotations

from dataclasses import replace

import torch

from kws.model import CRNN

GATES = {"gru": 3, "lstm": 4, "rnn": 1}


def _top(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices of the `keep` largest scores, in increasing index order (the kept units keep their order)."""
    return scores.topk(keep).indices.sort().values


def _gate_rows(units: torch.Tensor, hidden: int, gates: int) -> torch.Tensor:
    """Rows of a stacked-gate weight `(gates * hidden, ...)` that belong to `units`."""
    return torch.cat([g * hidden + units for g in range(gates)])


@torch.no_grad()
def prune_crnn(model: CRNN, channels: int, hidden: int) -> CRNN:
    """A new CRNN keeping the `channels` most important conv channels and `hidden` units per RNN
    layer of `model` (which is left unchanged); see the module docstring for the ranking."""
    cfg = model.cfg
    if not 1 <= channels <= cfg.cnn_out_channels or not 1 <= hidden <= cfg.hidden_size:
        raise ValueError(f"prune to 1..{cfg.cnn_out_channels} channels and 1..{cfg.hidden_size} units, "
                         f"got {channels} and {hidden}")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    gates, old_hidden, freq = GATES[cfg.rnn_type], cfg.hidden_size, model.conv_out_frequency
    layers = cfg.num_layers

    # Conv channels; the first RNN layer reads channel c at input columns c * F' .. c * F' + F' - 1.
    conv_w, conv_b, ih0 = state["conv.0.weight"], state["conv.0.bias"], state["rnn.weight_ih_l0"]
    readers = ih0.reshape(ih0.shape[0], cfg.cnn_out_channels, freq).transpose(0, 1).reshape(cfg.cnn_out_channels, -1)
    kept_channels = _top(torch.cat([conv_w.flatten(1), conv_b[:, None], readers], dim=1).norm(dim=1), channels)
    state["conv.0.weight"], state["conv.0.bias"] = conv_w[kept_channels], conv_b[kept_channels]
    columns = (kept_channels[:, None] * freq + torch.arange(freq)).reshape(-1)
    state["rnn.weight_ih_l0"] = ih0[:, columns]

    # RNN units, layer by layer: rows of every gate in this layer, columns in whoever reads it.
    head = ["attention.energy.0.weight", "classifier.weight"]
    for layer in range(layers):
        suffix = f"_l{layer}"
        row_keys = [f"rnn.weight_ih{suffix}", f"rnn.weight_hh{suffix}", f"rnn.bias_ih{suffix}",
                    f"rnn.bias_hh{suffix}"]
        readers = [f"rnn.weight_hh{suffix}"] + ([f"rnn.weight_ih_l{layer + 1}"] if layer + 1 < layers else head)
        pieces = [state[k].reshape(gates, old_hidden, -1).transpose(0, 1).reshape(old_hidden, -1) for k in row_keys]
        pieces += [state[k].T for k in readers]
        units = _top(torch.cat(pieces, dim=1).norm(dim=1), hidden)
        rows = _gate_rows(units, old_hidden, gates)
        for k in row_keys:
            state[k] = state[k][rows]
        for k in readers:
            state[k] = state[k][:, units]

    if cfg.attention == "mlp":  # inner units of energy = Linear(H, H) -> tanh -> Linear(H, 1)
        first_w, first_b, second_w = (state["attention.energy.0.weight"], state["attention.energy.0.bias"],
                                      state["attention.energy.2.weight"])
        inner = _top(torch.cat([first_w, first_b[:, None]], dim=1).norm(dim=1) * second_w[0].abs(), hidden)
        state["attention.energy.0.weight"], state["attention.energy.0.bias"] = first_w[inner], first_b[inner]
        state["attention.energy.2.weight"] = second_w[:, inner]

    pruned = CRNN(model.n_mels, replace(cfg, cnn_out_channels=channels, hidden_size=hidden))
    pruned.load_state_dict(state)
    return pruned.to(next(model.parameters()).device).train(model.training)

