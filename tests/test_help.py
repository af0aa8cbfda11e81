"""`--help` is free and complete: every config key is listed with its type, value and meaning,
generated from the dataclasses, and `./run.sh STAGE --help` runs nothing but setup."""
import dataclasses
import os
import subprocess
import sys
import time
import typing
from pathlib import Path

import pytest

from asr.config import TrainConfig as AsrTrainConfig
from asr.experiments import ExperimentConfig
from common.config import config_from_argv, describe_config, field_meanings, load_config
from kws.distill import DistillConfig
from kws.train import TrainConfig as KwsTrainConfig

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = [AsrTrainConfig, KwsTrainConfig, DistillConfig, ExperimentConfig]


def leaf_keys(schema: type, prefix: str = "") -> list[tuple[str, type, str]]:
    """(dotted key, the dataclass that declares it, field name) for every non-section field."""
    hints = typing.get_type_hints(schema)
    keys = []
    for field in dataclasses.fields(schema):
        if dataclasses.is_dataclass(hints[field.name]):
            keys += leaf_keys(hints[field.name], prefix + field.name + ".")
        else:
            keys.append((prefix + field.name, schema, field.name))
    return keys


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: f"{s.__module__}.{s.__name__}")
def test_every_config_key_has_a_meaning(schema):
    missing = [key for key, owner, name in leaf_keys(schema) if not field_meanings(owner).get(name)]
    assert not missing, f"keys without a comment in their dataclass (what --help shows): {missing}"


def test_field_meanings_read_trailing_and_preceding_comments():
    @dataclasses.dataclass
    class Example:
        a: int = 1  # the trailing one
        # The block above. A second sentence.
        b: str = "#not a comment"
        c: float = 0.0

    assert field_meanings(Example) == {"a": "the trailing one", "b": "The block above.", "c": ""}


def test_describe_lists_every_key_with_the_config_files_value():
    cfg = load_config(AsrTrainConfig, ROOT / "configs/asr/clean.json")
    lines = describe_config(AsrTrainConfig, cfg)
    keys = {line.split()[0] for line in lines if line.startswith("  ")}
    assert keys == {key for key, _, _ in leaf_keys(AsrTrainConfig)}
    row = next(line for line in lines if line.split()[0] == "model.rnn_hidden")
    assert row.split()[1:3] == ["int", str(cfg.model.rnn_hidden)] and "units per direction" in row


def test_help_unknown_options_and_no_arguments(capsys):
    with pytest.raises(SystemExit) as exit_:
        config_from_argv(KwsTrainConfig, [str(ROOT / "configs/kws/baseline.json"), "--help"], "usage line")
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("usage line") and "optim.lr" in printed and "configs/kws/baseline.json" in printed
    with pytest.raises(SystemExit) as exit_:
        config_from_argv(KwsTrainConfig, ["--hepl"], "usage line")
    assert "unknown option '--hepl'" in exit_.value.code and "did you mean --help" in exit_.value.code
    with pytest.raises(SystemExit) as exit_:
        config_from_argv(KwsTrainConfig, [], "usage line")
    assert exit_.value.code == 2 and capsys.readouterr().out.startswith("usage line")


@pytest.mark.skipif(not (ROOT / ".venv/bin/python").exists(), reason="run.sh needs the project's .venv")
@pytest.mark.parametrize("argv, shows", [
    (["asr_clean", "--help"], "model.rnn_hidden"),
    (["kws_distill", "-h"], "attention_weight"),
    (["asr_lm_tune", "--help"], "--alphas"),
    (["kws_quantize", "--runs", "3", "--help"], "NAME=CHECKPOINT"),
    (["data", "--help"], "--only"),
])
def test_run_sh_stage_help_is_quick_and_writes_nothing(tmp_path, argv, shows):
    def outputs() -> dict:  # the folders a stage writes into
        return {name: sorted(p.name for p in (ROOT / name).iterdir()) if (ROOT / name).is_dir() else None
                for name in ("logs", "data")}

    before = outputs()
    started = time.time()
    done = subprocess.run(["bash", str(ROOT / "run.sh"), *argv], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert time.time() - started < 20  # the issue asks < 10 s; slack for a loaded CI machine
    assert shows in done.stdout and done.stdout.startswith(f"./run.sh {argv[0]}: ")
    assert list(tmp_path.iterdir()) == [] and outputs() == before



def test_help_into_a_closed_pipe_ends_quietly():
    """`python -m asr.train --help | head -1`, where head has gone: exit 0 and no traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line
    try:
        helper = subprocess.run([sys.executable, "-m", "asr.train", "--help"], stdout=write_end,
                                stderr=subprocess.PIPE, cwd=ROOT, timeout=60, text=True)
    finally:
        os.close(write_end)
    assert helper.returncode == 0 and "Traceback" not in helper.stderr, helper.stderr
