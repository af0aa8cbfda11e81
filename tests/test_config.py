import json
from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from common.config import ConfigError, apply_overrides, load_config, parse_override, to_dict


@dataclass
class Optim:
    name: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])


@dataclass
class Experiment:
    name: str = "base"
    epochs: int = 10
    amp: bool = False
    max_seconds: Optional[float] = None
    optim: Optim = field(default_factory=Optim)


def write(path, tree):
    path.write_text(json.dumps(tree))
    return path


def test_defaults_without_file():
    cfg = load_config(Experiment)
    assert cfg == Experiment()


def test_extends_chain_deep_merges(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path / "base.json", {"epochs": 3, "optim": {"lr": 0.1, "name": "sgd"}})
    write(tmp_path / "sub" / "mid.json", {"extends": "../base.json", "optim": {"lr": 0.01}})
    child = write(tmp_path / "sub" / "child.json", {"extends": "mid.json", "name": "child"})
    cfg = load_config(Experiment, child)
    assert cfg.name == "child" and cfg.epochs == 3
    assert cfg.optim.name == "sgd" and cfg.optim.lr == 0.01  # merged, not replaced
    assert cfg.optim.betas == [0.9, 0.98]


def test_keys_starting_with_hash_are_comments_at_any_depth(tmp_path):
    cfg = write(tmp_path / "a.json", {"#": "why these values", "epochs": 3,
                                      "optim": {"#": "measured in docs/", "lr": 0.5, "#why lr": "a table"}})
    assert load_config(Experiment, cfg) == Experiment(epochs=3, optim=Optim(lr=0.5))
    with pytest.raises(ConfigError, match="unknown key 'optim.why'"):
        load_config(Experiment, write(tmp_path / "b.json", {"optim": {"why": "not a comment"}}))


def test_extends_cycle_rejected(tmp_path):
    write(tmp_path / "a.json", {"extends": "b.json"})
    write(tmp_path / "b.json", {"extends": "a.json"})
    with pytest.raises(ConfigError, match="cycle"):
        load_config(Experiment, tmp_path / "a.json")


def test_missing_base_names_the_file(tmp_path):
    cfg = write(tmp_path / "a.json", {"extends": "nope.json"})
    with pytest.raises(ConfigError, match=r"nope\.json: config file not found \(named by .*a\.json\)"):
        load_config(Experiment, cfg)


@pytest.mark.parametrize("text, keys, value", [
    ("optim.lr=0.5", ["optim", "lr"], 0.5),
    ("epochs=3", ["epochs"], 3),
    ("amp=true", ["amp"], True),
    ("max_seconds=null", ["max_seconds"], None),
    ("optim.betas=[0.5, 0.6]", ["optim", "betas"], [0.5, 0.6]),
    ("name=run-7", ["name"], "run-7"),        # not JSON: kept as a string
    ("name=a=b", ["name"], "a=b"),            # only the first '=' splits
])
def test_override_parsing(text, keys, value):
    assert parse_override(text) == (keys, value)


@pytest.mark.parametrize("bad", ["lr", "=3", "optim..lr=1"])
def test_malformed_override(bad):
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override(bad)


def test_overrides_win_over_file(tmp_path):
    cfg_file = write(tmp_path / "a.json", {"optim": {"lr": 0.1}})
    cfg = load_config(Experiment, cfg_file, ["optim.lr=0.002", "optim.name=sgd", "epochs=4"])
    assert (cfg.optim.lr, cfg.optim.name, cfg.epochs) == (0.002, "sgd", 4)


def test_override_into_value_is_an_error():
    with pytest.raises(ConfigError, match="'epochs' is a value, not a section"):
        apply_overrides({"epochs": 3}, ["epochs.x=1"])


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError) as e:
        load_config(Experiment, None, ["optim.lrr=0.1"])
    assert "unknown key 'optim.lrr' — did you mean 'optim.lr'?" in str(e.value)


def test_unknown_key_without_close_match_lists_known(tmp_path):
    cfg_file = write(tmp_path / "a.json", {"zzzz": 1})
    with pytest.raises(ConfigError, match=r"a\.json: unknown key 'zzzz'; known keys: name, epochs"):
        load_config(Experiment, cfg_file)


@pytest.mark.parametrize("override, message", [
    ("epochs=2.5", "key 'epochs' expects int, got float 2.5"),
    ("epochs=true", "key 'epochs' expects int, got bool True"),
    ("amp=1", "key 'amp' expects bool, got int 1"),
    ("optim.lr=fast", "key 'optim.lr' expects float, got str 'fast'"),
    ("optim.betas=0.9", "key 'optim.betas' expects list[float], got float 0.9"),
    ("optim.betas=[0.9, \"x\"]", "key 'optim.betas[1]' expects float, got str 'x'"),
    ("optim.name=rmsprop", "key 'optim.name' must be one of 'adam', 'adamw', 'sgd', got 'rmsprop'"),
    ("optim=3", "'optim.' must be an object, got 3"),
    ("max_seconds=abc", "key 'max_seconds' expects float or null, got str 'abc'"),
])
def test_wrong_type_names_key_type_and_value(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(Experiment, None, [override])
    assert message in str(e.value)


def test_int_accepted_for_float_and_resolved_config_is_plain_data(tmp_path):
    cfg = load_config(Experiment, None, ["optim.lr=1", "max_seconds=30"])
    assert isinstance(cfg.optim.lr, float) and cfg.max_seconds == 30.0
    assert json.loads(json.dumps(to_dict(cfg)))["optim"]["lr"] == 1.0


def test_invalid_json_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "epochs": 3,\n}')
    with pytest.raises(ConfigError, match=r"bad\.json:3:1: invalid JSON"):
        load_config(Experiment, bad)


def test_resuming_a_folder_with_another_config_names_the_changes():
    from common.config import require_resumable

    saved = to_dict(Experiment())
    require_resumable(saved, to_dict(Experiment()), "logs/x")  # same config: fine
    changed = to_dict(load_config(Experiment, None, ["optim.lr=0.5", "epochs=3"]))
    with pytest.raises(ConfigError) as e:
        require_resumable(saved, changed, "logs/x")
    assert "logs/x holds a run with another config (epochs: 10 -> 3; optim.lr: 0.001 -> 0.5)" in str(e.value)


@dataclass
class Tuned:
    optim: Optim = field(default_factory=lambda: Optim(name="sgd", lr=0.5))


def test_a_partial_section_keeps_the_parents_default_for_the_rest(tmp_path):
    # Setting one key of a section must not reset its other keys to the section class's defaults.
    cfg = load_config(Tuned, write(tmp_path / "c.json", {"optim": {"lr": 0.1}}), ["optim.betas=[0.5, 0.6]"])
    assert cfg.optim == Optim(name="sgd", lr=0.1, betas=[0.5, 0.6])
    assert load_config(Tuned).optim == Optim(name="sgd", lr=0.5)
