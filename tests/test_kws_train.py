import json

import pytest
import torch

from common.checkpoint import load_checkpoint
from common.config import ConfigError, load_config
from common.runlog import read_metrics
from kws import demo, evaluate
from kws.train import OptimConfig, TrainConfig, learning_rate, train
from test_kws_data import write_speech_commands_tree


def tiny_config(root, *overrides) -> TrainConfig:
    return load_config(TrainConfig, None, [
        f"data.root={root}", "batch_size=8", "log_every=2", "optim.lr=0.003", "model.hidden_size=16",
        "augment.background_noise_p=0.5", *overrides])


def test_training_writes_checkpoints_metrics_and_plots_and_evaluate_reads_them(tmp_path, capsys):
    root = write_speech_commands_tree(tmp_path / "sc", heldout=2)
    run_dir = train(tiny_config(root, "epochs=2"), log_root=tmp_path / "logs", quiet=True)
    for name in ("best.pt", "last.pt", "metrics.jsonl", "loss.png", "au_fa_fr.png", "fa_fr.png", "results.md"):
        assert (run_dir / name).is_file(), name
    results = (run_dir / "results.md").read_text()
    assert "| testing | 8 | 2 |" in results and "| heldout | 8 | 2 |" in results
    records = read_metrics(run_dir / "metrics.jsonl")
    per_epoch = [r for r in records if "val_au_fa_fr" in r]
    assert [r["epoch"] for r in per_epoch] == [1, 2]
    assert all(0.0 <= r["val_au_fa_fr"] < 1.0 for r in per_epoch)
    assert any("train_loss" in r for r in records)
    best = load_checkpoint(run_dir / "best.pt")
    assert best["best_au_fa_fr"] == min(r["val_au_fa_fr"] for r in per_epoch)

    assert evaluate.main([str(run_dir / "best.pt"), "--root", str(root), "--runs", "3",
                          "--out", str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    assert "au-fa-fr" in printed and "MACs per clip" in printed
    result = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert (result["clips"], result["positives"], result["split"]) == (8, 2, "testing")
    assert evaluate.main([str(run_dir / "best.pt"), "--split", "heldout", "--runs", "3",
                          "--out", str(tmp_path / "eval_heldout")]) == 0
    heldout = json.loads((tmp_path / "eval_heldout" / "eval.json").read_text())
    assert (heldout["clips"], heldout["positives"], heldout["split"]) == (8, 2, "heldout")

    # The streaming demo runs end to end on the checkpoint (a track of 3 + 1 test clips).
    assert demo.main([str(run_dir / "best.pt"), "--negatives", "3", "--positives", "1",
                      "--out", str(tmp_path / "demo.png")]) == 0
    assert (tmp_path / "demo.png").is_file()
    assert "detections" in capsys.readouterr().out


def test_resuming_after_an_epoch_gives_the_uninterrupted_result(tmp_path):
    root = write_speech_commands_tree(tmp_path / "sc")
    straight = train(tiny_config(root, "epochs=2", "name=straight"), log_root=tmp_path / "logs", quiet=True)
    train(tiny_config(root, "epochs=1", "name=resumed"), log_root=tmp_path / "logs", quiet=True)
    resumed = train(tiny_config(root, "epochs=2", "name=resumed"), log_root=tmp_path / "logs", quiet=True)
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"]) == (2, 8)
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=0)


def test_cosine_schedule_decays_from_lr_to_zero_and_constant_keeps_lr():
    cosine, constant = OptimConfig(lr=0.01, schedule="cosine"), OptimConfig(lr=0.01)
    assert [round(learning_rate(cosine, s, 100), 6) for s in (0, 50, 100, 120)] == [0.01, 0.005, 0.0, 0.0]
    assert learning_rate(cosine, 25, 100) > learning_rate(cosine, 75, 100)
    assert [learning_rate(constant, s, 100) for s in (0, 50, 100)] == [0.01] * 3


def test_a_cosine_run_cannot_be_extended_with_more_epochs(tmp_path):
    root = write_speech_commands_tree(tmp_path / "sc")
    train(tiny_config(root, "epochs=1", "optim.schedule=cosine"), log_root=tmp_path / "logs", quiet=True)
    with pytest.raises(ConfigError, match="epochs"):
        train(tiny_config(root, "epochs=2", "optim.schedule=cosine"), log_root=tmp_path / "logs", quiet=True)


def test_select_last_keeps_the_final_epoch_as_best_pt(tmp_path):
    root = write_speech_commands_tree(tmp_path / "sc")
    run_dir = train(tiny_config(root, "epochs=3", "select=last"), log_root=tmp_path / "logs", quiet=True)
    best, last = load_checkpoint(run_dir / "best.pt"), load_checkpoint(run_dir / "last.pt")
    final = [r for r in read_metrics(run_dir / "metrics.jsonl") if "val_au_fa_fr" in r][-1]
    assert best["best_epoch"] == best["epoch"] == final["epoch"] == 3
    assert best["best_au_fa_fr"] == final["val_au_fa_fr"]
    for key in last["model"]:
        torch.testing.assert_close(best["model"][key], last["model"][key], rtol=0, atol=0)
    assert (run_dir / "train.log").read_text().count("kept as best.pt") == 1
    with pytest.raises(ConfigError, match="select"):
        load_config(TrainConfig, None, ["select=final"])


def test_echo_takes_that_many_steps_per_batch_and_resumes_exactly(tmp_path):
    root = write_speech_commands_tree(tmp_path / "sc")
    logs = tmp_path / "logs"
    once = load_checkpoint(train(tiny_config(root, "epochs=2", "name=once"), log_root=logs, quiet=True) / "last.pt")
    straight = train(tiny_config(root, "epochs=2", "echo=3", "name=straight"), log_root=logs, quiet=True)
    train(tiny_config(root, "epochs=1", "echo=3", "name=resumed"), log_root=logs, quiet=True)
    resumed = train(tiny_config(root, "epochs=2", "echo=3", "name=resumed"), log_root=logs, quiet=True)
    a, b = load_checkpoint(straight / "last.pt"), load_checkpoint(resumed / "last.pt")
    assert (a["step"], b["step"]) == (3 * once["step"], 3 * once["step"])
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=0, atol=0)
    assert not torch.equal(a["model"]["classifier.weight"], once["model"]["classifier.weight"])
    with pytest.raises(ConfigError, match="echo"):
        train(tiny_config(root, "echo=0", "name=zero"), log_root=logs, quiet=True)


def test_channel_randomization_trains_and_needs_logmel_features(tmp_path):
    root = write_speech_commands_tree(tmp_path / "sc")
    channel = ("augment.eq_p=0.5", "augment.filter_p=0.5", "augment.gain_transition_p=0.5")
    plain = train(tiny_config(root, "epochs=1", "name=plain"), log_root=tmp_path / "logs", quiet=True)
    shaped = train(tiny_config(root, "epochs=1", "name=channel", *channel), log_root=tmp_path / "logs", quiet=True)
    weights = [load_checkpoint(run / "last.pt")["model"] for run in (plain, shaped)]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    with pytest.raises(ConfigError, match="features.kind"):
        tiny_config(root, "features.kind=mfcc", *channel)
