import math

import numpy as np
import pytest
import torch

from common.metrics import au_fa_fr, cer, cer_without_spaces, error_rates, fa_fr_curve, wer


def seminar_au_fa_fr(probs: np.ndarray, labels: np.ndarray) -> float:
    """Direct transcription of the KWS seminar's O(N^2) loop (in float64)."""
    thresholds = np.concatenate(([0.0], np.sort(probs), [1.0]))
    fas, frs = [], []
    for t in thresholds:
        preds = (probs >= t).astype(np.int64)
        fas.append(np.sum(preds[labels == 0]) / len(labels))
        frs.append(np.sum(labels[preds == 0]) / len(labels))
    return -np.trapezoid(frs, x=fas)


def test_cer_known_values():
    assert cer("abc", "abd") == pytest.approx(1 / 3)
    assert cer("a b", "ab") == pytest.approx(1 / 3)  # the space is a character
    assert cer("안녕하세요", "안녕하세오") == pytest.approx(1 / 5)
    assert cer(["abc", "de"], ["abc", "de"]) == 0.0


def test_cer_without_spaces_ignores_spacing_only():
    assert cer_without_spaces("안녕 하세요", "안녕하세요") == 0.0  # spacing differs, letters agree
    assert cer("안녕 하세요", "안녕하세요") == pytest.approx(1 / 6)
    assert cer_without_spaces(["a b", "cd"], ["a  c", "c d"]) == pytest.approx(1 / 4)


def test_wer_counts_insertions_above_one():
    assert wer("a b", "x y z w") == pytest.approx(2.0)
    assert wer("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert wer("  a   b ", "a b") == 0.0  # whitespace runs split like str.split()


def test_corpus_rate_weighs_by_reference_length():
    result = error_rates(["a", "a b c d"], ["b", "a b c d"], unit="word")
    assert result.per_utterance == [1.0, 0.0]
    assert result.edits == 1 and result.ref_units == 5
    assert result.rate == pytest.approx(0.2)
    assert result.rate != pytest.approx(np.mean(result.per_utterance))


def test_empty_reference():
    assert error_rates("", "").per_utterance == [0.0]
    assert error_rates("", "xy").per_utterance == [math.inf]
    assert cer("", "xy") == math.inf
    result = error_rates(["", "ab"], ["x", "ab"])
    assert result.per_utterance == [math.inf, 0.0]
    assert result.rate == pytest.approx(0.5)  # 1 edit over 2 reference characters


def test_error_rate_input_errors():
    with pytest.raises(ValueError, match="2 references but 1"):
        cer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="both be strings"):
        wer("a", ["a"])
    with pytest.raises(ValueError, match="unit"):
        error_rates("a", "a", unit="phone")


def test_au_fa_fr_hand_cases():
    assert au_fa_fr(np.array([0.1, 0.9]), np.array([0, 1])) == 0.0
    # Inverted ranking: the worst possible area, positive rate x negative rate.
    assert au_fa_fr(np.array([0.1, 0.9]), np.array([1, 0])) == pytest.approx(0.25)
    # A tie flips both clips at once: a diagonal segment, half of the worst area.
    assert au_fa_fr(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.125)


def test_au_fa_fr_perfect_classifier_is_zero():
    rng = np.random.default_rng(0)
    labels = rng.random(300) < 0.1
    probs = np.where(labels, rng.uniform(0.6, 1.0, 300), rng.uniform(0.0, 0.5, 300))
    assert au_fa_fr(probs, labels.astype(np.int64)) == 0.0


@pytest.mark.parametrize("decimals", [None, 2, 1, 0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_au_fa_fr_matches_seminar_loop(seed, decimals):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 400))
    labels = (rng.random(n) < 0.2).astype(np.int64)
    probs = np.clip(rng.normal(0.3 + 0.3 * labels, 0.25), 0.0, 1.0)
    if decimals is not None:  # rounded scores: many ties, including exact 0 and 1
        probs = np.round(probs, decimals)
    expected = seminar_au_fa_fr(probs, labels)
    assert expected > 0
    assert au_fa_fr(probs, labels) == pytest.approx(expected, rel=1e-12, abs=0)


def test_au_fa_fr_accepts_torch_float32():
    g = torch.Generator().manual_seed(3)
    labels = (torch.rand(200, generator=g) < 0.3).long()
    probs = torch.softmax(torch.randn(200, 2, generator=g) + labels[:, None] * torch.tensor([0, 1.5]),
                          dim=1)[:, 1]
    expected = seminar_au_fa_fr(probs.double().numpy(), labels.numpy())
    assert au_fa_fr(probs, labels) == pytest.approx(expected, rel=1e-12, abs=0)
    assert au_fa_fr(probs, labels.bool()) == pytest.approx(expected, rel=1e-12, abs=0)


def test_fa_fr_curve_shape_and_ends():
    probs = np.array([0.2, 0.7, 0.4, 0.9])
    labels = np.array([0, 1, 0, 1])
    thresholds, fa, fr = fa_fr_curve(probs, labels)
    np.testing.assert_array_equal(thresholds, [0.0, 0.2, 0.4, 0.7, 0.9, 1.0])
    np.testing.assert_allclose(fa, [0.5, 0.5, 0.25, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(fr, [0.0, 0.0, 0.0, 0.0, 0.25, 0.5])


def test_fa_fr_curve_input_errors():
    with pytest.raises(ValueError, match="0/1"):
        fa_fr_curve(np.array([0.1, 0.2]), np.array([0, 2]))
    with pytest.raises(ValueError, match="equally long"):
        fa_fr_curve(np.array([0.1, 0.2]), np.array([0]))
    with pytest.raises(ValueError, match="NaN"):
        fa_fr_curve(np.array([0.1, np.nan]), np.array([0, 1]))


@pytest.mark.parametrize("labels, counts", [([0, 0, 0], "3 clips, 0 positive"), ([1, 1], "2 clips, 2 positive")])
def test_au_fa_fr_without_both_classes_is_an_error_not_a_number(labels, counts):
    # One class only: FA or FR is 0 at every threshold, so the area is 0 whatever the scores.
    probs = np.linspace(0.1, 0.9, len(labels))
    with pytest.raises(ValueError, match=f"undefined.*{counts}"):
        au_fa_fr(probs, np.array(labels))


def test_error_rates_of_nothing_is_an_error_not_zero():
    for score in (cer, wer):
        with pytest.raises(ValueError, match="nothing to score: 0 references"):
            score([], [])
    with pytest.raises(ValueError, match="nothing to score: 0 references"):
        error_rates([], [], unit="word")
