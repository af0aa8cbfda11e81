import torch
from torch import nn

from kws.model import CRNN, ModelConfig
from kws.costs import count_macs, cpu_latency_ms, measure, state_dict_bytes


def test_mac_counter_matches_the_formulas():
    assert count_macs(nn.Linear(10, 7), torch.randn(5, 10)) == 5 * 10 * 7
    batch, steps, inputs, hidden = 2, 5, 6, 4
    # thop per GRU cell and step: three gates' matmuls 3H(I+H) plus 13H bias / element-wise terms.
    gru = nn.GRU(inputs, hidden, batch_first=True)
    per_cell = 3 * hidden * (inputs + hidden) + 13 * hidden
    assert count_macs(gru, torch.randn(batch, steps, inputs)) == batch * steps * per_cell
    conv_macs = 8 * 18 * 11 * 5 * 20
    gru_macs = 11 * ((3 * 32 * (144 + 32) + 13 * 32) + (3 * 32 * (32 + 32) + 13 * 32))
    head_macs = 11 * (32 * 32 + 32) + 32 * 2
    assert count_macs(CRNN(40, ModelConfig()), torch.randn(1, 40, 101)) == conv_macs + gru_macs + head_macs == 432_672


def test_saved_bytes_and_latency():
    model = nn.Linear(100, 100)
    size = state_dict_bytes(model)
    assert 101 * 100 * 4 < size < 101 * 100 * 4 + 4096  # the weights plus the zip container's overhead
    threads = torch.get_num_threads()
    median, p90 = cpu_latency_ms(model, torch.randn(1, 100), runs=20, warmup=2, threads=1)
    assert 0 < median <= p90
    assert torch.get_num_threads() == threads


def test_measure_profiles_a_copy_and_leaves_the_model_usable():
    model = CRNN(40, ModelConfig())
    cost = measure(model, torch.randn(1, 40, 101), runs=5)
    assert (cost.params, cost.macs, cost.threads) == (25_387, 432_672, 1)
    assert cost.state_dict_bytes == state_dict_bytes(model)
    assert not any(hasattr(m, "total_ops") for m in model.modules())  # no thop buffers left behind
