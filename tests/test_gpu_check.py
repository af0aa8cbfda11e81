"""bench/gpu_check.py: its RNN comparison (the padded two-direction layer against torch's packed
bidirectional GRU), and the whole script end to end on the CPU with tiny settings, as a GPU run
will take it (minus the fp16 rows, which are CUDA only)."""
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import asr.model
from asr.model import RecurrentLayer
from bench.gpu_check import compare_with_packed, packed_twin

ROOT = Path(__file__).resolve().parent.parent
TINY_RUN = ["--tiny", "--steps", "3", "--ddp-steps", "2", "--rnn-seconds", "2", "--rnn-repeats", "1"]


def random_layer_and_batch() -> tuple[RecurrentLayer, torch.Tensor, torch.Tensor]:
    """A bidirectional GRU layer and a batch with ragged lengths (one of a single frame); the padding
    holds random values, so a layer that let it leak into valid frames would show."""
    torch.manual_seed(0)
    layer = RecurrentLayer(6, 8, "gru", bidirectional=True, batch_norm=False)
    return layer, torch.randn(5, 19, 6), torch.tensor([19, 1, 12, 7, 19])


def test_the_padded_layer_agrees_with_the_packed_bidirectional_gru():
    layer, x, lengths = random_layer_and_batch()
    agreement = compare_with_packed(layer, x, lengths)
    assert agreement.within(1e-5), agreement


def test_the_comparison_catches_a_backward_direction_that_reads_the_padding(monkeypatch):
    # Reversing the whole padded tensor starts the backward GRU of a short utterance on padding.
    monkeypatch.setattr(asr.model, "reverse_within_lengths", lambda x, lengths: x.flip(1))
    layer, x, lengths = random_layer_and_batch()
    agreement = compare_with_packed(layer, x, lengths)
    assert agreement.output > 0.05 and not agreement.within(1e-2)


def test_the_twin_refuses_a_layer_with_batch_norm():
    with pytest.raises(ValueError, match="batch_norm=False"):
        packed_twin(RecurrentLayer(4, 4, "gru", bidirectional=True, batch_norm=True))


def read_tables(markdown: str) -> dict[str, list[dict[str, str]]]:
    """Each `## N. title` section's table as rows of {column: cell}, keyed by "N"."""
    tables = {}
    for section in markdown.split("\n## ")[1:]:
        lines = [line for line in section.splitlines() if line.startswith("|")]
        def cells(line):
            return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        columns = cells(lines[0])
        tables[section.split(".")[0]] = [dict(zip(columns, cells(line))) for line in lines[2:]]
    return tables


def run_check(out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread in every process it starts, as the suite runs
    return subprocess.run([sys.executable, "-m", "bench.gpu_check", str(out), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_the_check_runs_end_to_end_on_the_cpu(tmp_path):
    done = run_check(tmp_path / "out", *TINY_RUN, "--utterances", "12", "--dev-utterances", "3")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = (tmp_path / "out" / "gpu_check.md").read_text()
    assert report in done.stdout  # printed as written
    tables = read_tables(report)
    assert sorted(tables) == ["1", "2", "3", "4", "5"]

    assert [(r["split"], r["utterances"], r["status"]) for r in tables["1"]] == [
        ("train-clean-100", "12", "ok"), ("dev-clean", "3", "ok"), ("test-clean", "3", "ok")]

    training = tables["2"]
    assert [(r["config"], r["dtype"]) for r in training] == [
        (config, dtype) for config in ("configs/asr/paper_scale_clean.json", "configs/asr/clean.json")
        for dtype in ("fp32", "bf16", "fp16")]
    for row in training:
        if row["dtype"] == "fp16":
            assert row["status"] == "skipped (CUDA only)"
            continue
        assert row["status"] == "ok", row
        assert math.isfinite(float(row["first loss"])) and math.isfinite(float(row["last loss"]))
        assert float(row["audio s/s"]) > 0 and row["peak GPU memory (GiB)"] == "n/a"
        assert row["GRU output dtype"] == {"fp32": "float32", "bf16": "bfloat16"}[row["dtype"]]

    assert len(tables["3"]) == 2
    for row in tables["3"]:
        assert row["status"] == "ok", row
        assert float(row["max abs Δ output"]) <= 1e-4 and float(row["padded / packed"]) > 0

    (ddp,) = tables["4"]
    assert (ddp["processes"], ddp["exit"], ddp["status"]) == ("1", "0", "ok"), ddp
    assert ddp["steps"] == "2" and math.isfinite(float(ddp["last train loss"]))
    assert (tmp_path / "out" / "ddp" / "logs" / "asr_clean" / "gpu_check" / "best.pt").is_file()

    (decoding,) = tables["5"]
    assert (decoding["model"], decoding["utterances"], decoding["status"]) == ("part 4: best.pt", "3", "ok")
    assert 0 <= float(decoding["CER"].rstrip("%")) and float(decoding["utterances/s"]) > 0


def test_a_failing_part_is_one_line_in_its_table_and_the_exit_status_is_1(tmp_path):
    (tmp_path / "not_a_folder").write_text("")
    done = run_check(tmp_path / "out", *TINY_RUN, "--data", str(tmp_path / "not_a_folder"))
    assert done.returncode == 1
    tables = read_tables((tmp_path / "out" / "gpu_check.md").read_text())
    (corpus,) = tables["1"]
    assert corpus["status"].startswith("FAILED: ") and "not_a_folder" in corpus["status"]
    for part in ("2", "4", "5"):
        assert all(row["status"].startswith("FAILED: ") for row in tables[part]), tables[part]
    assert all(row["status"] == "ok" for row in tables["3"])  # the RNN comparison needs no corpus
