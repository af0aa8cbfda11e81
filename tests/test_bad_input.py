"""Bad input to the training stages and run.sh: a one-line error before anything is written.

Each row goes through a real entry point (`main(argv)` of asr.train / kws.train / kws.distill, or
run.sh itself) from an empty working folder, and asserts: the command exits with `error: ...` on
one line naming the key or path, no traceback, and no run folder (nothing at all) was written.
The evaluation and corpus commands have their own matrices (test_bad_input_asr.py,
test_bad_input_kws.py, test_bad_input_corpora.py).
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

from asr import train as asr_train
from common.config import load_config
from common.runlog import read_metrics
from kws import distill as kws_distill
from kws import train as kws_train
from test_asr_train import TINY
from test_kws_data import write_speech_commands_tree

ROOT = Path(__file__).resolve().parent.parent


def refused(main, argv: list[str]) -> str:
    """The one-line message `main(argv)` exits with (it must exit with a message, not return)."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    message = exit_.value.code
    assert isinstance(message, str) and message.startswith("error: ") and "\n" not in message, message
    return message


# (config key=value rows for asr.train, the words the message must hold)
ASR_ROWS = [
    (["optim.lrr=1"], "optim.lrr"),  # misspelled key
    (["epochs=0"], "epochs"),
    (["epochs=-3"], "epochs"),
    (["optim.lr=-1"], "optim.lr"),
    (["data.max_batch_seconds=0"], "data.max_batch_seconds"),
    (["data.max_batch_seconds=-5"], "data.max_batch_seconds"),
    (["data.max_seconds=0.1", "data.min_seconds=0.3"], "data.max_seconds"),
    (["name=../../x"], "name"),
    (["name=a/b"], "name"),
    (["stage=.."], "stage"),
    (["augment.speed_p=2"], "augment.speed_p"),
    (["augment.gain_db=[8,-6]"], "augment.gain_db"),
    (["features.n_mels=0"], "features.n_mels"),
    (["model.rnn_layers=0"], "model.rnn_layers"),
    (["data.train_splits=[]"], "data.train_splits"),
    (["init_from=no/such.pt"], "no/such.pt"),
]


@pytest.mark.parametrize("overrides, named", ASR_ROWS, ids=[" ".join(r[0]) for r in ASR_ROWS])
@pytest.mark.parametrize("check", [True, False], ids=["--check", "train"])
def test_asr_config_values_are_refused_before_anything_is_written(tmp_path, monkeypatch, overrides, named,
                                                                  check):
    monkeypatch.chdir(tmp_path)
    argv = ["--check"] * check + [str(ROOT / "configs/asr/clean.json"), *overrides]
    assert named in refused(asr_train.main, argv)
    assert list(tmp_path.iterdir()) == []


def test_asr_data_problems_are_refused_before_the_run_folder(tmp_path, monkeypatch, tone_corpus):
    monkeypatch.chdir(tmp_path)
    config = [f"data.root={tone_corpus}", *TINY]
    # Nothing left after the duration limits (every tone utterance is longer than 0.2 s).
    message = refused(asr_train.main, [*config, "data.min_seconds=0.1", "data.max_seconds=0.2"])
    assert "data.train_splits" in message and "data.max_seconds" in message
    assert refused(asr_train.main, [*config, "data.root=missing"]).count("missing") >= 1
    assert "dev-nope" in refused(asr_train.main, [*config, "data.dev_split=dev-nope"])
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_logs_folder_is_one_line(tmp_path, monkeypatch, tone_corpus):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "logs").write_text("a file where the logs folder should be")
    message = refused(asr_train.main, [f"data.root={tone_corpus}", *TINY, "epochs=1"])
    assert "logs" in message


KWS_ROWS = [
    (["epochs=0"], "epochs"),
    (["batch_size=0"], "batch_size"),
    (["optim.lr=-1"], "optim.lr"),
    (["echo=0"], "echo"),
    (["name=../x"], "name"),
    (["data.positive_fraction=1.5"], "data.positive_fraction"),
    (["data.root=missing"], "missing"),
]


@pytest.mark.parametrize("overrides, named", KWS_ROWS, ids=[" ".join(r[0]) for r in KWS_ROWS])
def test_kws_config_values_are_refused_before_anything_is_written(tmp_path, monkeypatch, overrides, named):
    monkeypatch.chdir(tmp_path)
    assert named in refused(kws_train.main, [str(ROOT / "configs/kws/baseline.json"), *overrides])
    assert list(tmp_path.iterdir()) == []


def test_kws_data_problems_are_refused_before_the_run_folder(tmp_path, monkeypatch):
    root = write_speech_commands_tree(tmp_path / "sc")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    config = [str(ROOT / "configs/kws/baseline.json"), f"data.root={root}"]
    assert "'nope'" in refused(kws_train.main, [*config, "data.keyword=nope"])
    # A test list without keyword clips would only fail after training: refused up front.
    testing = root / "testing_list.txt"
    testing.write_text("".join(line + "\n" for line in testing.read_text().splitlines()
                               if not line.startswith("sheila/")))
    assert "testing" in refused(kws_train.main, config)
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("overrides, named", [(["alpha=2"], "alpha"), (["grid_temperature=[0]"], "grid_temperature"),
                                              (["prune_lr=0"], "prune_lr")])
def test_distillation_values_are_checked(tmp_path, monkeypatch, overrides, named):
    monkeypatch.chdir(tmp_path)
    argv = ["--check", str(ROOT / "configs/kws/distill.json"), *overrides]
    assert named in refused(kws_distill.main, argv)
    assert list(tmp_path.iterdir()) == []


def test_check_passes_a_good_config_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        asr_train.main(["--check", str(ROOT / "configs/asr/clean.json")])
    assert exit_.value.code == 0 and list(tmp_path.iterdir()) == []


def _steps_logged_twice(records: list[dict]) -> list:
    seen, twice = set(), []
    for r in records:
        key = (r.get("step"), r.get("split"), tuple(sorted(r)))
        if key in seen:
            twice.append(key)
        seen.add(key)
    return twice


def test_a_resumed_run_logs_each_step_once(tmp_path):
    root = write_speech_commands_tree(tmp_path / "sc")
    cfg = ["batch_size=8", "log_every=2", "model.hidden_size=16", f"data.root={root}"]
    run_dir = kws_train.train(load_config(kws_train.TrainConfig, None, [*cfg, "epochs=1"]),
                              log_root=tmp_path / "logs", quiet=True)
    metrics = run_dir / "metrics.jsonl"
    last_step = max(r["step"] for r in read_metrics(metrics))
    # A run killed after logging past its last checkpoint: these records are not in last.pt.
    with open(metrics, "a") as f:
        f.write(json.dumps({"step": last_step + 3, "epoch": 1, "train_loss": 9.0}) + "\n")
    kws_train.train(load_config(kws_train.TrainConfig, None, [*cfg, "epochs=2"]),
                    log_root=tmp_path / "logs", quiet=True)
    records = read_metrics(metrics)
    assert not _steps_logged_twice(records)
    assert all(r.get("train_loss") != 9.0 for r in records)
    assert sum(1 for r in records if r.get("split") == "testing") == 1  # the final results once


@pytest.mark.skipif(not (ROOT / ".venv/bin/python").exists(), reason="run.sh needs the project's .venv")
def test_run_sh_resolves_paths_against_the_callers_folder(tmp_path):
    (tmp_path / "here.wav").write_bytes(b"not audio")
    done = subprocess.run(["bash", str(ROOT / "run.sh"), "transcribe", "logs/x/best.pt", "here.wav"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode != 0
    assert f"{tmp_path}/logs/x/best.pt" in done.stderr, done.stderr  # not the repository's logs/
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(not (ROOT / ".venv/bin/python").exists(), reason="run.sh needs the project's .venv")
def test_run_sh_validates_the_config_before_making_data(tmp_path):
    data = ROOT / "data"
    before = sorted(data.iterdir()) if data.exists() else None
    done = subprocess.run(["bash", str(ROOT / "run.sh"), "asr_clean", "optim.lrr=1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "optim.lrr" in done.stderr and "Traceback" not in done.stderr
    assert (sorted(data.iterdir()) if data.exists() else None) == before
