"""bench/asr_train.py: every lever row trains on the same audio, whatever batch size the row sets,
and the table runs end to end on a tiny corpus."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.asr_train import real_batches, timed_batches
from test_asr_train import TINY, tiny_config

ROOT = Path(__file__).resolve().parent.parent


def test_rows_with_other_batch_sizes_train_on_the_same_utterances(tone_corpus):
    small_data = real_batches(tiny_config(tone_corpus, "data.max_batch_seconds=3"), 12)
    large_data = real_batches(tiny_config(tone_corpus, "data.max_batch_seconds=8"), 12)
    small, large = small_data.batches, large_data.batches
    vocab, vocab_large = small_data.vocab_size, large_data.vocab_size
    texts = sorted(t for batch in small for t in batch["texts"])
    assert len(texts) == 12 and texts == sorted(t for batch in large for t in batch["texts"])
    assert len(large) < len(small) and vocab == vocab_large
    # Loaded with the training augmentation: the same item seed gives the same samples in both.
    assert sum(b["wave_lengths"].sum().item() for b in small) == sum(b["wave_lengths"].sum().item() for b in large)


@pytest.mark.parametrize("loading", ["inline", "worker"])
def test_rows_that_load_while_timing_step_through_the_preloaded_batches(tone_corpus, loading):
    data = real_batches(tiny_config(tone_corpus, "data.max_batch_seconds=3"), 8)
    loaded = list(timed_batches(data, loading))
    assert len(loaded) == len(data.batches)
    for batch, reference in zip(loaded, data.batches):
        assert batch["texts"] == reference["texts"] and torch.equal(batch["waves"], reference["waves"])


def test_lever_table_prints_a_ratio_of_one_for_its_first_row(tone_corpus):
    overrides = [f"data.root={tone_corpus}", *TINY]
    out = subprocess.run([sys.executable, "bench/asr_train.py", "--utterances", "8", "--rounds", "2",
                          "--rows", "GRU (the default before #21)", "LSTM (the default now)", "--set", *overrides],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith("| GRU") or line.startswith("| LSTM")]
    assert len(rows) == 2
    assert rows[0].split("|")[6].strip() == "1.00"
    assert re.search(r"audio s/s in one process", out) and "median of 2 interleaved rounds" in out
