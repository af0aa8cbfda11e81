import json

import numpy as np
import torch

from common.runlog import RunLog, plot_curves, read_metrics
from common.seed import seed_everything


def test_run_directory_holds_config_env_log_and_metrics(tmp_path):
    run = RunLog("asr_clean", "demo", {"optim": {"lr": 0.1}}, seed=3, device="cpu", root=tmp_path, quiet=True)
    run.info("hello log")
    run.metrics(step=1, loss=2.0)
    run.metrics(step=2, loss=1.0, wer=0.5)
    run.close()

    folder = tmp_path / "asr_clean" / "demo"
    assert json.loads((folder / "config.json").read_text()) == {"optim": {"lr": 0.1}}
    env = json.loads((folder / "env.json").read_text())
    assert env["seed"] == 3 and env["torch"] == torch.__version__ and env["device"] == "cpu"
    assert set(env["git"]) == {"commit", "dirty"}
    assert "hello log" in (folder / "train.log").read_text()
    assert read_metrics(folder / "metrics.jsonl") == [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0, "wer": 0.5}]


def test_metrics_reader_skips_a_line_cut_by_a_crash(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    assert read_metrics(path) == [{"step": 1, "loss": 2.0}]


def test_plot_curves_writes_a_png(tmp_path):
    records = [{"step": s, "loss": 1 / s, "wer": None if s % 2 else 0.5} for s in range(1, 6)]
    out = plot_curves(records, ["loss", "wer"], tmp_path / "loss.png", title="loss")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000


def test_one_seed_fixes_torch_numpy_and_loader_order():
    def draw(seed):
        generator = seed_everything(seed)
        loader = torch.utils.data.DataLoader(list(range(10)), batch_size=10, shuffle=True, generator=generator)
        return torch.randn(3), np.random.rand(3), next(iter(loader))

    a, b, c = draw(5), draw(5), draw(6)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and torch.equal(a[2], b[2])
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[2], c[2])
