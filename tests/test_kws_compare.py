import numpy as np
import torch

from common.checkpoint import load_checkpoint, save_checkpoint
from common.metrics import au_fa_fr
from kws import compare
from kws.evaluate import eval_loader, predict
from kws.model import load_kws_checkpoint
from kws.train import train
from test_kws_data import write_speech_commands_tree
from test_kws_train import tiny_config


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def noisy_scores(seed: int = 0, clips: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Keyword probabilities `(clips,)` that rank most keyword clips first, and their labels."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(clips) < 0.1).astype(int)
    return sigmoid(4 * labels - 2 + rng.normal(0.0, 1.5, clips)), labels


def test_bootstrap_is_paired_a_reordering_model_is_one_and_a_perfect_one_zero():
    reference, labels = noisy_scores()
    same_ranking = reference ** 3  # a monotone map: every pair ranked alike
    perfect = 0.25 + 0.5 * labels + 0.01 * np.arange(len(labels)) / len(labels)
    ratios = compare.bootstrap_ratios(np.stack([reference, same_ranking, perfect]), labels, resamples=50)
    assert ratios.shape == (50, 3)
    np.testing.assert_allclose(ratios[:, :2], 1.0)  # unpaired draws would scatter around 1
    assert (ratios[:, 2] == 0.0).all()


def test_bootstrap_interval_brackets_the_full_ratio_of_a_worse_model():
    reference, labels = noisy_scores()
    logit = np.log(reference / (1 - reference))
    worse = sigmoid(logit + np.random.default_rng(1).normal(0.0, 1.5, len(labels)))
    ratios = compare.bootstrap_ratios(np.stack([reference, worse]), labels, resamples=200)
    full = au_fa_fr(worse, labels) / au_fa_fr(reference, labels)
    low, high = np.quantile(ratios[:, 1], [0.05, 0.95])
    assert 1.0 < low < full < high


def test_a_perfect_reference_makes_the_ratio_undefined_not_zero():
    _, labels = noisy_scores()
    perfect = 0.25 + 0.5 * labels
    # The same ranking twice: a ratio of 1 if it were defined; 0 / tiny used to read as 0.
    ratios = compare.bootstrap_ratios(np.stack([perfect, perfect ** 2]), labels, resamples=10)
    assert np.isnan(ratios).all()
    assert np.isnan(compare.ratios_to_first(np.array([0.0, 0.0, 0.1]))).all()
    np.testing.assert_allclose(compare.ratios_to_first(np.array([0.2, 0.1, 0.0])), [1.0, 0.5, 0.0])


def test_the_interval_leaves_out_undefined_resamples_and_counts_them():
    ratios = np.array([[1.0, 2.0], [np.nan, np.nan], [1.0, 4.0]])
    low, high, left_out = compare.interval(ratios, level=1.0)
    assert left_out == 1
    np.testing.assert_allclose(low, [1.0, 2.0])
    np.testing.assert_allclose(high, [1.0, 4.0])
    low, high, left_out = compare.interval(ratios[1:2])
    assert left_out == 1 and np.isnan(low).all() and np.isnan(high).all()


def test_compare_scores_like_evaluate_and_prints_the_table(tmp_path, capsys):
    root = write_speech_commands_tree(tmp_path / "sc")
    run_dir = train(tiny_config(root, "epochs=1"), log_root=tmp_path / "logs", quiet=True)
    state = load_checkpoint(run_dir / "best.pt")
    torch.manual_seed(0)
    state["model"] = {k: v + 0.3 * torch.randn_like(v) for k, v in state["model"].items()}
    save_checkpoint(tmp_path / "other.pt", state)

    ckpts = [load_kws_checkpoint(run_dir / "best.pt"), load_kws_checkpoint(tmp_path / "other.pt")]
    scores, labels = compare.score_splits(ckpts, root, ["testing", "validation"])
    for ckpt, model_scores in zip(ckpts, scores):
        expected = np.concatenate([predict(ckpt.model, ckpt.features, eval_loader(str(root), split, "sheila", 16000,
                                                                                  16000))[0]
                                   for split in ("testing", "validation")])
        np.testing.assert_allclose(model_scores, expected, atol=1e-6)
    assert labels.sum() > 0 and not np.allclose(scores[0], scores[1])

    assert compare.main([str(run_dir / "best.pt"), str(tmp_path / "other.pt"), "--root", str(root),
                         "--resamples", "20"]) == 0
    table = capsys.readouterr().out
    assert f"| {run_dir / 'best.pt'} | " in table and "| 1.00 | 1.00-1.00 |" in table
