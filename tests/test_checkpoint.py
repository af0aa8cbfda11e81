import pickle

import pytest
import torch

from common.checkpoint import (CheckpointError, load_checkpoint, load_model_state, require_same,
                               save_checkpoint)


def test_round_trip_of_state_dicts_and_plain_values(tmp_path):
    model = torch.nn.Linear(3, 2)
    state = {"model": model.state_dict(), "step": 7, "vocab": ["_", "a", "b"], "config": {"lr": 0.1}}
    save_checkpoint(tmp_path / "ck.pt", state)
    loaded = load_checkpoint(tmp_path / "ck.pt")
    assert loaded["step"] == 7 and loaded["vocab"] == ["_", "a", "b"] and loaded["config"] == {"lr": 0.1}
    assert torch.equal(loaded["model"]["weight"], model.weight)
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temp file left behind


def test_interrupted_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(4)})

    real_save = torch.save

    def save_half_then_crash(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(10)  # half-written bytes on disk...
        raise KeyboardInterrupt("killed mid-write")  # ...and then the process dies

    monkeypatch.setattr(torch, "save", save_half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(4)})
    monkeypatch.undo()

    loaded = load_checkpoint(path)
    assert loaded["step"] == 1 and torch.equal(loaded["w"], torch.ones(4))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        torch.save({"x": Evil()}, f, pickle_module=pickle)
    with pytest.raises(CheckpointError, match=r"evil\.pt: not a checkpoint of this project") as refused:
        load_checkpoint(path)
    # One line, and no hint to load it unsafely (torch's own message suggests weights_only=False).
    assert "\n" not in str(refused.value) and "weights_only" not in str(refused.value)


def test_truncated_and_missing_files(tmp_path):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"w": torch.ones(100)})
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match=r"ck\.pt: not a readable checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_mismatched_model_names_what_differs():
    source = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 3))
    other = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 5))
    with pytest.raises(CheckpointError) as e:
        load_model_state(other, source.state_dict(), "ck.pt")
    assert "ck.pt: checkpoint does not fit the model" in str(e.value)
    assert "1.weight (3, 8) in checkpoint vs (5, 8) in model" in str(e.value)

    smaller = torch.nn.Sequential(torch.nn.Linear(4, 8))
    with pytest.raises(CheckpointError, match=r"2 unexpected key\(s\): 1\.weight, 1\.bias"):
        load_model_state(smaller, source.state_dict(), "ck.pt")
    load_model_state(source, source.state_dict(), "ck.pt")  # a fitting one loads


def test_vocabulary_mismatch_names_first_difference():
    require_same("vocabulary", ["_", "a", "b"], ["_", "a", "b"], "ck.pt")
    with pytest.raises(CheckpointError, match=r"ck\.pt: vocabulary differs: entry 2 is 'c' in checkpoint vs 'b' expected"):
        require_same("vocabulary", ["_", "a", "b"], ["_", "a", "c"], "ck.pt")
    with pytest.raises(CheckpointError, match="2 entries in checkpoint vs 3 expected"):
        require_same("vocabulary", ["_", "a", "b"], ["_", "a"], "ck.pt")
