import pytest
import torch
from kws.model import CRNN, ModelConfig, keyword_probability
from kws.costs import count_parameters


def test_course_crnn_shapes_and_parameter_count():
    model = CRNN(40, ModelConfig())
    feats = torch.randn(3, 40, 101)  # 1 s of log-mel at hop 160
    assert model.conv_frames(feats).shape == (3, 11, 8 * 18)  # (101 - 20) // 8 + 1, (40 - 5) // 2 + 1
    assert model(feats).shape == (3, 2)
    assert count_parameters(model) == 25_387  # the course's number for hidden 32


@pytest.mark.parametrize("rnn_type", ["gru", "lstm", "rnn"])
def test_student_variants_build_from_the_config(rnn_type):
    cfg = ModelConfig(cnn_out_channels=3, kernel_size=[7, 10], stride=[3, 5], rnn_type=rnn_type,
                      hidden_size=12, num_layers=1)
    model = CRNN(40, cfg)
    assert model.conv_frames(torch.randn(2, 40, 101)).shape == (2, 19, 3 * 12)
    assert model(torch.randn(2, 40, 101)).shape == (2, 2)


def test_attention_is_a_softmax_weighted_mean_over_time():
    model = CRNN(40, ModelConfig()).eval()
    x = torch.randn(2, 7, 32)
    energies = model.attention.energy[2](torch.tanh(model.attention.energy[0](x)))[..., 0]  # (2, 7)
    expected = (torch.softmax(energies, dim=1)[..., None] * x).sum(1)
    torch.testing.assert_close(model.attention(x), expected)
    logits = torch.tensor([[0.0, 0.0], [0.0, 100.0]])
    torch.testing.assert_close(keyword_probability(logits), torch.tensor([0.5, 1.0]))


def test_bad_inputs_and_configs_are_named():
    model = CRNN(40, ModelConfig())
    with pytest.raises(ValueError, match="at least 20 feature frames"):
        model(torch.randn(1, 40, 19))
    with pytest.raises(ValueError, match=r"\(batch, 40, time\)"):
        model(torch.randn(1, 64, 101))
    with pytest.raises(ValueError, match="rnn_type"):
        CRNN(40, ModelConfig(rnn_type="transformer"))
