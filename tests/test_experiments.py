"""The experiment runner: one run per (row, seed), finished runs skipped, shared runs reused, tables."""
import json

import pytest

from asr import experiments
from common.config import ConfigError

CER = {"mfcc": 0.50, "logmel": 0.40}  # a fake trainer's test CER per feature kind (seed 1 adds 0.02)


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def files(tmp_path):
    _write(tmp_path / "base.json", {"corpus": "kspon", "features": {"kind": "logmel", "normalize": "utterance"},
                                    "data": {"dev_split": "dev", "test_splits": ["eval_clean"]}})
    rows = [{"name": "mfcc", "overrides": ["features.kind=mfcc"]}, {"name": "logmel", "overrides": []}]
    features = _write(tmp_path / "features.json", {"name": "features", "base": "base.json", "rows": rows,
                                                   "seeds": [0, 1], "max_steps": 7})
    # a second table sharing the logmel runs, decoded with an LM as well
    lm_rows = [{"name": "ds2", "overrides": ["features.kind=logmel"]}]
    with_lm = _write(tmp_path / "lm.json", {"name": "with_lm", "base": "base.json", "rows": lm_rows,
                                            "seeds": [0, 1], "max_steps": 7, "lm": "x.arpa"})
    return tmp_path, features, with_lm


class FakeTrainer:
    """Stands in for train_and_score: records calls, returns error rates from the config."""

    def __init__(self):
        self.calls, self.run_dirs = [], []

    def __call__(self, cfg, test_splits, run_dir, exp):
        assert cfg.max_steps == exp.max_steps and cfg.data.test_splits == []  # the runner's budget
        assert (cfg.stage, cfg.name) == ("runs", run_dir.name)  # asr.train writes into run_dir
        self.calls.append((cfg.features.kind, cfg.seed))
        self.run_dirs.append(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        cer = CER[cfg.features.kind] + 0.02 * cfg.seed
        greedy = {"greedy": {"cer": cer, "wer": 2 * cer}}
        return {"params": 1_500_000, "train_seconds": 60.0 * (1 + cfg.seed), "steps": cfg.max_steps,
                "splits": {cfg.data.dev_split: dict(greedy), test_splits[0]: dict(greedy)}}


def fake_rescore(cfg, test_splits, run_dir, exp, result):
    for scored in result["splits"].values():
        scored[experiments.decoder_key(exp)] = {"cer": scored["greedy"]["cer"] / 2, "wer": 0.1}
    return result


def test_runs_once_per_row_and_seed_then_skips(files):
    root, features, _ = files
    exp = experiments.load_experiment(features)
    trainer = FakeTrainer()
    table = experiments.run_experiment(exp, root / "logs", runner=trainer)
    assert sorted(trainer.calls) == [("logmel", 0), ("logmel", 1), ("mfcc", 0), ("mfcc", 1)]
    # mean ± half the range over the two seeds: mfcc 50 and 52 -> 51.0 ± 1.0; WER twice that
    assert "| mfcc | 2/2 | 51.0 ± 1.0 | 102.0 ± 2.0 | 51.0 ± 1.0 | 102.0 ± 2.0 | 1.50 M | 1.5 |" in table
    assert "| logmel | 2/2 | 41.0 ± 1.0 |" in table
    assert (root / "logs" / "features" / "results.md").read_text().strip() == table
    assert (root / "logs" / "features" / "bars.png").stat().st_size > 0

    again = FakeTrainer()
    assert experiments.run_experiment(exp, root / "logs", runner=again) == table
    assert again.calls == []  # every run finished: nothing trains

    # a lost result reruns only that run; a changed budget is a new run, not a stale reuse
    (result,) = [p for p in (root / "logs" / "runs").glob("*/result.json")
                 if json.loads(p.read_text())["row"] == "mfcc" and json.loads(p.read_text())["seed"] == 1]
    result.unlink()
    experiments.run_experiment(exp, root / "logs", runner=again)
    assert again.calls == [("mfcc", 1)]
    exp.max_steps = 8
    bigger = FakeTrainer()
    experiments.run_experiment(exp, root / "logs", runner=bigger)
    assert len(bigger.calls) == 4


def key_of(exp, row_name, seed):
    (row,) = [r for r in exp.rows if r.name == row_name]
    return experiments.run_key(*experiments.row_config(exp, row, seed))


def test_run_folders_are_named_experiment_row_seed_hash(files):
    root, features, _ = files
    exp = experiments.load_experiment(features)
    experiments.run_experiment(exp, root / "logs", runner=FakeTrainer())
    assert sorted(p.name for p in (root / "logs" / "runs").iterdir()) == sorted(
        f"features-{row}-s{seed}-{key_of(exp, row, seed)[:8]}" for row in ("mfcc", "logmel") for seed in (0, 1))
    assert experiments.run_name(exp, experiments.RowConfig(name="a/b"), 2, "0123456789ab") == "features-a_b-s2-01234567"


def test_runs_in_bare_hash_folders_of_before_are_reused_where_they_are(files):
    root, features, _ = files
    exp = experiments.load_experiment(features)
    runs = root / "logs" / "runs"
    finished, unfinished = key_of(exp, "mfcc", 0), key_of(exp, "mfcc", 1)
    result = {"params": 1_000_000, "train_seconds": 60.0, "steps": 7, "row": "mfcc", "seed": 0, "key": finished,
              "splits": {"dev": {"greedy": {"cer": 0.7, "wer": 0.9}},
                         "eval_clean": {"greedy": {"cer": 0.6, "wer": 0.8}}}}
    (runs / finished).mkdir(parents=True)
    _write(runs / finished / "result.json", result)
    (runs / unfinished).mkdir()  # interrupted: resumes in its folder, under its name (last.pt holds it)

    trainer = FakeTrainer()
    table = experiments.run_experiment(exp, root / "logs", runner=trainer)
    assert ("mfcc", 0) not in trainer.calls and len(trainer.calls) == 3
    assert runs / unfinished in trainer.run_dirs
    assert "| mfcc | 2/2 | 61.0 ± 9.0 |" in table  # dev CER of the finished old run (70%) and the other (52%)
    assert (runs / finished / "result.json").is_file() and (runs / unfinished / "result.json").is_file()
    assert len(list(runs.iterdir())) == 4  # no second folder for either old run


def test_shared_runs_and_lm_decoding(files):
    root, features, with_lm = files
    trainer = FakeTrainer()
    experiments.run_experiment(experiments.load_experiment(features), root / "logs", runner=trainer)
    lm_exp = experiments.load_experiment(with_lm)
    table = experiments.run_experiment(lm_exp, root / "logs", runner=trainer, rescore=fake_rescore)
    assert len(trainer.calls) == 4  # ds2 is the logmel run of the features table: not trained again
    assert not list((root / "logs" / "runs").glob("with_lm-*"))  # found by its hash, under the first name
    assert "| ds2 | 2/2 | 41.0 ± 1.0 |" in table
    assert "| ds2 + LM | 2/2 | 20.5 ± 0.5 | 10.0 ± 0.0 |" in table


def test_no_train_lists_missing_rows(files):
    root, features, _ = files
    table = experiments.run_experiment(experiments.load_experiment(features), root / "logs",
                                       runner=FakeTrainer(), train=False)
    assert "| mfcc | 0/2 | — | — | — | — | — | — |" in table


def test_bad_experiment_files(tmp_path):
    bad = _write(tmp_path / "bad.json", {"rows": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ConfigError, match="distinct"):
        experiments.load_experiment(bad)
    typo = _write(tmp_path / "typo.json", {"rows": [{"name": "a"}], "max_step": 3})
    with pytest.raises(ConfigError, match="max_steps"):
        experiments.load_experiment(typo)


TRANSCRIPTS = ["o/ (3시)/(세 시)에 봐", "음/ 그래 b/", "(70%)/(칠십 퍼센트)야", "내+ 내일 가 l/"]


def _tiny_kspon(root):
    """Four tone 'utterances' per split in KsponSpeech layout, with annotated transcripts."""
    import numpy as np

    scripts = root / "KsponSpeech_scripts"
    scripts.mkdir(parents=True)
    for s, split in enumerate(("train", "dev", "eval_clean")):
        lines = []
        for i, text in enumerate(TRANSCRIPTS):
            relative = f"KsponSpeech_01/KsponSpeech_0001/KsponSpeech_{10 * s + i:06d}.pcm"
            t = np.arange(8000 + 800 * i) / 16000
            wave = 0.3 * np.sin(2 * np.pi * (300 + 100 * i) * t)
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_bytes((wave * 32767).astype("<i2").tobytes())
            lines.append(f"{relative} :: {text}")
        (scripts / f"{split}.trn").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_real_trainer_on_a_tiny_korean_corpus_stops_at_max_steps(tmp_path):
    from common.checkpoint import load_checkpoint

    _tiny_kspon(tmp_path / "kspon")
    _write(tmp_path / "base.json", {
        "corpus": "kspon", "epochs": 50, "log_every": 1,
        "features": {"kind": "logmel", "n_mels": 40, "normalize": "utterance"},
        "text": {"language": "ko", "unit": "char"},
        "model": {"num_conv_layers": 1, "conv_channels": [4], "conv_kernels": [[11, 5]],
                  "conv_strides": [[2, 2]], "rnn_layers": 1, "rnn_hidden": 16},
        "data": {"root": str(tmp_path / "kspon"), "train_splits": ["train"], "dev_split": "dev",
                 "test_splits": ["eval_clean"], "max_batch_seconds": 1.5, "num_workers": 0}})
    exp = experiments.load_experiment(_write(tmp_path / "exp.json", {
        "name": "tiny", "base": "base.json", "rows": [{"name": "ds2"}], "seeds": [0], "max_steps": 3}))
    table = experiments.run_experiment(exp, tmp_path / "logs")
    (run_dir,) = (tmp_path / "logs" / "runs").iterdir()
    assert run_dir.name.startswith("tiny-ds2-s0-") and list(run_dir.glob("events.out.tfevents.*"))
    state = load_checkpoint(run_dir / "last.pt")
    assert state["step"] == 3  # 4 batches per epoch, 50 epochs: max_steps decides
    # the vocabulary: the cleaned transcripts' characters (세 시에 봐 ...), no annotation left
    assert state["tokenizer"]["unit"] == "char_vocab"
    assert not set("()/+%ob") & set(state["tokenizer"]["chars"]) and "퍼" in state["tokenizer"]["chars"]
    result = json.loads((run_dir / "result.json").read_text())
    assert list(result["splits"]) == ["dev", "eval_clean"] and result["splits"]["eval_clean"]["greedy"]["utterances"] == 4
    assert "| ds2 | 1/1 |" in table


def test_an_option_added_later_keeps_finished_runs_keys():
    # The key of units.json's char row, seed 0, as hashed before model.frame_stack existed: at its
    # default a later option must not move finished runs to a new folder; set, it must.
    exp = experiments.load_experiment("configs/asr/experiments/units.json")
    cfg, test_splits = experiments.row_config(exp, exp.rows[0], 0)
    assert experiments.run_key(cfg, test_splits) == "b5ebd92ef773"
    cfg.model.frame_stack = 2
    assert experiments.run_key(cfg, test_splits) != "b5ebd92ef773"
