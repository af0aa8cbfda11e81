"""What a keyword-spotting model costs: parameters, saved bytes, MACs per clip, CPU latency.

One place for these numbers, so every variant (baseline, distilled, pruned, quantized) is measured
the same way:
- params: elements of `model.parameters()` (packed weights of quantized modules are not
  parameters and are not counted; their cost shows in the bytes);
- bytes: size of the file `torch.save(model.state_dict())` writes (what the course compares; the
  sum of numel x element_size misses the format's overhead and misreads packed weights);
- MACs: thop's count for one input (GRU/LSTM/RNN counted by thop's recurrent hooks: per cell and
  time step 3H(I+H) + 13H for a GRU, i.e. the gate matmuls plus bias and element-wise terms);
- latency: median wall time of a batch-1 forward pass with a fixed number of torch threads.

Quantized models are counted like their float equivalent: thop counts zero MACs for torch.ao's
quantized modules, but an int8 matmul still does every multiply-accumulate (cheaper ones), so
`count_macs` maps dynamically quantized Linear/GRU/LSTM to thop's float counters.
"""
from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ModelCost:
    params: int
    state_dict_bytes: int
    macs: int
    latency_ms: float  # median, batch 1
    latency_p90_ms: float
    threads: int

    def as_dict(self) -> dict:
        return asdict(self)


def count_parameters(model: nn.Module) -> int:
    """Number of parameter elements (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def saved_bytes(obj: object) -> int:
    """Bytes of the file `torch.save(obj, f)` writes (e.g. a packed or fp16 state_dict)."""
    fd, name = tempfile.mkstemp(suffix=".pt")
    os.close(fd)
    try:
        torch.save(obj, name)
        return os.path.getsize(name)
    finally:
        os.unlink(name)


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of the file `torch.save(model.state_dict(), f)` writes."""
    return saved_bytes(model.state_dict())


def float_equivalent_ops() -> dict:
    """thop counters for torch.ao's dynamically quantized modules: those of the float modules.

    The quantized modules expose the float modules' sizes (in_features, input_size, hidden_size,
    num_layers, ...), which is all thop's counters read.
    """
    from thop.rnn_hooks import count_gru, count_lstm
    from thop.vision.basic_hooks import count_linear
    from torch.ao.nn.quantized import dynamic as qd

    return {qd.Linear: count_linear, qd.GRU: count_gru, qd.LSTM: count_lstm}


def count_macs(model: nn.Module, example: torch.Tensor, custom_ops: dict | None = None) -> int:
    """Multiply-accumulates of `model(example)` as counted by thop.

    The model is profiled on a copy (thop attaches hooks and buffers); `custom_ops` maps module
    types to thop counting functions `fn(module, inputs, output)` for modules thop does not know.
    """
    from thop import profile  # imported lazily: only profiling needs it

    ops = {**float_equivalent_ops(), **(custom_ops or {})}
    macs, _ = profile(copy.deepcopy(model).eval(), inputs=(example,), custom_ops=ops, verbose=False)
    return int(macs)


def cpu_latency_ms(model: nn.Module, example: torch.Tensor, *, runs: int = 200, warmup: int = 20,
                   threads: int = 1) -> tuple[float, float]:
    """(median, 90th percentile) milliseconds of `model(example)` on the CPU with `threads` threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    model = model.eval()
    times = []
    try:
        with torch.inference_mode():
            for i in range(warmup + runs):
                start = time.perf_counter()
                model(example)
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1000)
    finally:
        torch.set_num_threads(previous)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


def measure(model: nn.Module, example: torch.Tensor, *, runs: int = 200, threads: int = 1,
            custom_ops: dict | None = None) -> ModelCost:
    """All costs of `model` for one input `example` (e.g. a (1, n_mels, 101) log-mel clip)."""
    model = copy.deepcopy(model).cpu().eval()  # the caller's model keeps its device and mode
    example = example.cpu()
    median, p90 = cpu_latency_ms(model, example, runs=runs, threads=threads)
    return ModelCost(params=count_parameters(model), state_dict_bytes=state_dict_bytes(model),
                     macs=count_macs(model, example, custom_ops), latency_ms=median,
                     latency_p90_ms=p90, threads=threads)
