import pytest
import torch

from asr.decode import greedy
from asr.model import DeepSpeech2, FrameStack, ModelConfig, RecurrentLayer

CONV_SETUPS = [
    (0, [[41, 11]], [[2, 2]]),
    (1, [[41, 11]], [[2, 2]]),
    (2, [[41, 11], [21, 11]], [[2, 2], [2, 1]]),
    (3, [[41, 11], [21, 11], [21, 11]], [[2, 2], [2, 1], [2, 1]]),
    (2, [[21, 11], [11, 11]], [[2, 3], [2, 1]]),  # a lower frame rate
    (2, [[5, 4], [3, 3]], [[1, 2], [1, 2]]),      # even kernels
]


@pytest.mark.parametrize("layers, kernels, strides", CONV_SETUPS)
def test_output_length_arithmetic_equals_real_output(layers, kernels, strides):
    cfg = ModelConfig(num_conv_layers=layers, conv_channels=[4] * 3, conv_kernels=kernels, conv_strides=strides,
                      rnn_layers=1, rnn_hidden=8)
    model = DeepSpeech2(40, 5, cfg).eval()
    for frames in [1, 7, 12, 50, 101]:
        log_probs, lengths = model(torch.randn(1, 40, frames), torch.tensor([frames]))
        assert lengths.item() == log_probs.shape[1] == model.output_lengths(torch.tensor([frames])).item()


VARIANTS = {
    "gru-bi": ModelConfig(rnn_type="gru"),
    "lstm-bi": ModelConfig(rnn_type="lstm"),
    "rnn-bi": ModelConfig(rnn_type="rnn"),
    "gru-uni-lookahead": ModelConfig(rnn_type="gru", bidirectional=False, lookahead_context=3),
    "lstm-uni": ModelConfig(rnn_type="lstm", bidirectional=False, lookahead_context=0),
    "attention": ModelConfig(attention_heads=2, dropout=0.1),
    "rnn-only": ModelConfig(num_conv_layers=0),
    "rnn-only-stacked": ModelConfig(num_conv_layers=0, frame_stack=3),  # lengths not multiples of 3
    "three-conv": ModelConfig(num_conv_layers=3),
}


def small(cfg: ModelConfig) -> ModelConfig:
    cfg.conv_channels, cfg.rnn_layers, cfg.rnn_hidden = [4, 4, 4], 2, 16
    return cfg


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_runs_forward_and_backward(name):
    model = DeepSpeech2(40, 7, small(VARIANTS[name]))
    lengths = torch.tensor([60, 45])
    log_probs, out_lengths = model(torch.randn(2, 40, 60), lengths)
    assert log_probs.shape == (2, out_lengths.max().item(), 7)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(()), atol=1e-5)
    loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), torch.tensor([1, 2, 3, 4, 5]), out_lengths,
                                        torch.tensor([3, 2]))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", VARIANTS)
def test_padding_does_not_change_an_utterances_output(name):
    torch.manual_seed(0)
    model = DeepSpeech2(40, 7, small(VARIANTS[name])).eval()
    for block in model.attentions:  # a trained branch: at init it is zero and would prove nothing
        torch.nn.init.normal_(block.attention.out_proj.weight, std=0.3)
    lengths = torch.tensor([80, 53, 31])
    features = torch.randn(3, 40, 80)
    for i, n in enumerate(lengths):
        features[i, :, n:] = 0  # what the feature extractor gives for padding
    batch_out, batch_lengths = model(features, lengths)
    for i, n in enumerate(lengths):
        alone, alone_length = model(features[i:i + 1, :, :n], lengths[i:i + 1])
        assert alone_length.item() == batch_lengths[i].item()
        torch.testing.assert_close(alone[0], batch_out[i, :alone_length.item()], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["gru-bi", "lstm-bi", "attention"])
def test_bf16_autocast_on_the_cpu_stays_close_to_the_float32_network(name):
    """What `amp=bf16` trains on a CPU with bfloat16 instructions (asr.train.autocast_dtype): the same
    network, its log-probabilities within bfloat16's precision of float32, and a finite gradient."""
    torch.manual_seed(0)
    model = DeepSpeech2(40, 7, small(VARIANTS[name]))
    features, lengths = torch.randn(2, 40, 60), torch.tensor([60, 45])
    model.eval()
    reference, _ = model(features, lengths)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, out_lengths = model(features, lengths)
    difference = (low.float() - reference).abs().max().item()
    assert 0 < difference < 0.05  # bf16 keeps 8 bits of mantissa: about 0.4% of each value
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        log_probs, out_lengths = model(features, lengths)
    torch.nn.functional.ctc_loss(log_probs.float().transpose(0, 1), torch.tensor([1, 2, 3, 4, 5]), out_lengths,
                                 torch.tensor([3, 2])).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in model.parameters())


def test_frame_stack_puts_consecutive_frames_side_by_side_and_drops_the_tail():
    features = torch.arange(2 * 2 * 7, dtype=torch.float32).reshape(2, 2, 7)  # (batch, feat, time)
    x, lengths = FrameStack(2, 3)(features, torch.tensor([7, 5]))
    assert x.shape == (2, 2, 6) and lengths.tolist() == [2, 1]
    # Step 1 of utterance 0 holds frames 3, 4, 5, each frame's 2 features in turn.
    assert x[0, 1].tolist() == [features[0, f, t].item() for t in (3, 4, 5) for f in (0, 1)]
    with pytest.raises(ValueError, match="frame_stack"):
        DeepSpeech2(40, 5, ModelConfig(num_conv_layers=2, frame_stack=2))


def test_attention_variant_starts_as_plain_deepspeech2():
    torch.manual_seed(0)
    plain = DeepSpeech2(40, 7, small(ModelConfig())).eval()
    torch.manual_seed(0)
    attention = DeepSpeech2(40, 7, small(ModelConfig(attention_heads=2))).eval()
    attention.load_state_dict(plain.state_dict(), strict=False)  # same conv, RNN and head weights
    features, lengths = torch.randn(2, 40, 50), torch.tensor([50, 37])
    torch.testing.assert_close(attention(features, lengths)[0], plain(features, lengths)[0])
    # ... and the branch learns: its output projection gets a gradient at the zero init.
    attention.train()
    attention(features, lengths)[0][..., 1].sum().backward()
    assert attention.attentions[0].attention.out_proj.weight.grad.abs().sum() > 0


def test_greedy_collapses_repeats_and_drops_blanks():
    paths = torch.tensor([[1, 1, 0, 1, 2, 2, 0, 0, 3], [0, 0, 4, 4, 4, 0, 4, 0, 0]])
    log_probs = torch.nn.functional.one_hot(paths, 5).float().log()
    assert greedy(log_probs, torch.tensor([9, 6])) == [[1, 1, 2, 3], [4]]


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_bidirectional_layer_equals_torch_bidirectional_rnn_on_packed_input(rnn_type):
    torch.manual_seed(0)
    layer = RecurrentLayer(6, 5, rnn_type, bidirectional=True, batch_norm=False)
    reference = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[rnn_type](6, 5, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for name, value in layer.rnn.named_parameters():
            getattr(reference, name).copy_(value)
            getattr(reference, name + "_reverse").copy_(getattr(layer.rnn_reverse, name))
    lengths = torch.tensor([9, 4, 7])
    x = torch.randn(3, 9, 6)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = torch.nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True)
    torch.testing.assert_close(layer(x, lengths), expected[..., :5] + expected[..., 5:])
