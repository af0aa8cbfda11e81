"""Results a user can keep: `asr.evaluate --out` (results.json, hyps.jsonl) checked against the
printed table, plain folders of audio + same-named .txt as splits, the note for alpha/beta tuned on
another checkpoint, `kws.evaluate --out` (scores.csv) and `--plot`."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from asr import evaluate
from asr.config import TrainConfig
from asr.data import load_split, split_source
from asr.evaluate import lm_decoder_config
from asr.lm import tuned_path
from common.config import load_config
from common.metrics import au_fa_fr, cer, wer
from common.readers import plain_folder
from conftest import TONE_ALPHABET, tone_wave
from kws import evaluate as kws_evaluate
from kws.model import load_kws_checkpoint
from kws.train import train
from test_kws_data import write_speech_commands_tree
from test_kws_train import tiny_config
from test_transcribe import lm_path, tiny_checkpoint  # noqa: F401 (lm_path: a fixture used here)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parent.parent


def write_plain_folder(folder: Path, items: dict, seed: int = 0) -> Path:
    """`folder` holding, per item NAME: VALUE, a plain-folder utterance (`common.readers.plain_folder`).

    VALUE: a str -> NAME.wav (tones of the text) and NAME.txt (the text, UTF-8); bytes -> NAME.wav
    and NAME.txt holding those bytes; None -> NAME.wav only; (TEXT, None) -> NAME.txt only.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for name, value in items.items():
        text = value[0] if isinstance(value, tuple) else value
        if not isinstance(value, tuple):
            spoken = " ".join(text.lower().split()) if isinstance(text, str) else "cat"
            spoken = "".join(c for c in spoken if c in TONE_ALPHABET)  # tones exist for these only
            sf.write(folder / f"{name}.wav", tone_wave(spoken, rng), 16000, subtype="PCM_16")
        if isinstance(text, str):
            (folder / f"{name}.txt").write_text(text, encoding="utf-8")
        elif isinstance(text, bytes):
            (folder / f"{name}.txt").write_bytes(text)
    return folder


# --- the plain-folder reader


def test_plain_folder_reads_good_pairs_and_counts_every_bad_one(tmp_path, caplog):
    folder = write_plain_folder(tmp_path / "mine", {
        "b": "red cat", "a": "Big\n  dog\n", "bom": b"\xef\xbb\xbfsun top",
        "no_text": None, "orphan": ("dog", None), "latin1": "CAFÉ".encode("latin-1"), "empty": b" \n"})
    sf.write(folder / "a.flac", tone_wave("big dog", np.random.default_rng(1)), 16000)  # preferred over a.wav
    write_plain_folder(folder / "sub", {"c": "not read"})  # subfolders are not read
    (folder / ".hidden.wav").write_bytes(b"")  # nor hidden files

    utterances = plain_folder.list_utterances(folder)
    assert [(u.id, u.path.name, u.text) for u in utterances] == [
        ("a", "a.flac", "Big dog"), ("b", "b.wav", "red cat"), ("bom", "bom.wav", "sun top")]
    [summary] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert summary == (
        f"skipped 5 of 8 utterances in {folder}: 1 second audio files of one name (first: {folder / 'a.wav'}), "
        f"1 empty transcripts (first: {folder / 'empty.txt'}), 1 unreadable transcripts (first: "
        f"{folder / 'latin1.txt'}), 1 audio files without transcript (first: {folder / 'no_text.wav'}), "
        f"1 transcripts without audio (first: {folder / 'orphan.txt'})")


def test_plain_folder_raises_on_request_and_for_a_missing_folder(tmp_path):
    folder = write_plain_folder(tmp_path / "mine", {"a": "red cat", "orphan": ("dog", None)})
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(str(folder / 'orphan.txt'))}: no audio file"):
        plain_folder.list_utterances(folder, on_error="raise")
    with pytest.raises(FileNotFoundError, match="no such folder .*same-named .txt transcript"):
        plain_folder.list_utterances(tmp_path / "gone")


def test_a_plain_folder_is_told_from_a_librispeech_one(tmp_path, tone_corpus):
    assert plain_folder.is_plain_folder(write_plain_folder(tmp_path / "pairs", {"a": "red cat"}))
    assert plain_folder.is_plain_folder(write_plain_folder(tmp_path / "texts_only", {"a": ("red", None)}))
    assert not plain_folder.is_plain_folder(tone_corpus / "test-clean")  # SPEAKER/CHAPTER folders
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.txt").write_text("a LibriSpeech-layout folder with a note")
    (tmp_path / "notes" / "100").mkdir()
    assert not plain_folder.is_plain_folder(tmp_path / "notes")
    (tmp_path / "empty").mkdir()
    assert not plain_folder.is_plain_folder(tmp_path / "empty")
    assert not plain_folder.is_plain_folder(tmp_path / "gone")


def test_load_split_reads_a_plain_folder_as_a_path_or_a_name_under_the_root(tmp_path, tone_corpus):
    cfg = TrainConfig()
    cfg.data.root = str(tone_corpus)
    folder = write_plain_folder(tmp_path / "mine", {"rec2": "Red CAT!", "rec1": "sun"})
    utterances = load_split(cfg, str(folder))
    assert [(u.id, u.text) for u in utterances] == [("rec1", "sun"), ("rec2", "red cat")]
    assert split_source(cfg, str(folder)) == folder
    cfg.data.root = str(tmp_path)
    assert [u.id for u in load_split(cfg, "mine")] == ["rec1", "rec2"]
    cfg.data.root = str(tone_corpus.parent)  # LibriSpeech splits still read as before
    assert len(load_split(cfg, "test-clean")) == 6
    korean = load_config(TrainConfig, ROOT / "configs/asr/ko.json", [])  # KsponSpeech splits are .trn lists
    hangul = write_plain_folder(tmp_path / "ko", {"a": "안녕하세요  여러분"})
    assert [(u.id, u.text) for u in load_split(korean, str(hangul))] == [("a", "안녕하세요 여러분")]


def test_an_empty_split_names_both_layouts(tmp_path):
    cfg = TrainConfig()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="0 utterances read .*SPEAKER/CHAPTER/.*same-named .txt transcript"):
        load_split(cfg, str(tmp_path / "empty"))


# --- asr.evaluate --out


def printed_table(out: str) -> list[list[str]]:
    """The decoder rows of asr.evaluate's table: split, decoder, utterances, CER, WER, seconds."""
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in out.splitlines() if line.startswith("| ")]
    return [r for r in rows[1:] if r[1] != "(acoustic model)"]


def test_evaluate_out_writes_the_table_and_every_hypothesis(tmp_path, tone_corpus, lm_path, capsys):  # noqa: F811
    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint, data_root=tone_corpus)
    mine = write_plain_folder(tmp_path / "mine", {"b": "red cat", "a": "big dog sun"})
    out = tmp_path / "results"
    evaluate.main([str(checkpoint), "--split", "test-clean", str(mine), "--beam", "2", "--lm", str(lm_path),
                   "--alpha", "0.5", "--beta", "1", "--workers", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    assert f"wrote {out / 'results.json'} and {out / 'hyps.jsonl'}" in printed
    assert sorted(p.name for p in out.iterdir()) == ["hyps.jsonl", "results.json"]

    results = json.loads((out / "results.json").read_text())
    assert results["lm"] == {"path": str(lm_path), "beam_width": 2, "alpha": 0.5, "beta": 1.0}
    assert set(results["acoustic_model_seconds"]) == {"test-clean", str(mine)}
    table = printed_table(printed)
    assert len(table) == len(results["results"]) == 6  # 2 splits x greedy, beam, beam + LM
    for shown, row in zip(table, results["results"]):
        assert shown == [row["split"], row["label"], str(row["utterances"]), f"{row['cer']:.2%}",
                         f"{row['wer']:.2%}", f"{row['seconds']:.1f}"]
        assert row["cer"] == row["char_edits"] / row["ref_chars"] and row["wer"] == row["word_edits"] / row["ref_words"]
    assert [r["decoder"] for r in results["results"][:3]] == ["greedy", "beam", "beam_lm"]

    records = [json.loads(line) for line in (out / "hyps.jsonl").read_text().splitlines()]
    assert [(r["split"], r["id"]) for r in records][-2:] == [(str(mine), "a"), (str(mine), "b")]
    assert [r["ref"] for r in records[-2:]] == ["big dog sun", "red cat"]
    assert len(records) == 6 + 2
    for row in results["results"]:  # the per-utterance counts add up to the table's rates
        mine_records = [r for r in records if r["split"] == row["split"]]
        assert len(mine_records) == row["utterances"]
        entries = [r["decoders"][row["decoder"]] for r in mine_records]
        assert sum(e["char_edits"] for e in entries) == row["char_edits"]
        assert sum(r["ref_chars"] for r in mine_records) == row["ref_chars"]
        assert sum(e["word_edits"] for e in entries) / sum(r["ref_words"] for r in mine_records) == row["wer"]
    for record in records:
        assert set(record["decoders"]) == {"greedy", "beam", "beam_lm"}
        for entry in record["decoders"].values():
            assert entry["cer"] == pytest.approx(cer(record["ref"], entry["hyp"]))
            assert entry["wer"] == pytest.approx(wer(record["ref"], entry["hyp"]))


def test_evaluate_writes_nothing_when_a_later_split_fails(tmp_path, tone_corpus):
    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint, data_root=tone_corpus)
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(checkpoint), "--split", "test-clean", str(tmp_path / "gone/"), "--beam", "0",
                       "--out", str(tmp_path / "results")])
    assert str(exit_info.value.code).startswith(f"error: {tmp_path / 'gone'}")
    assert not (tmp_path / "results").exists()


def test_splits_given_the_old_way_get_a_hint(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(tmp_path / "tiny.pt"), "test-clean", "dev-clean"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        "error: --split: got test-clean dev-clean as positional arguments; splits are given with --split: "
        "--split test-clean dev-clean")


# --- alpha/beta tuned for another checkpoint


@pytest.fixture
def tuned_lm(tmp_path, lm_path):  # noqa: F811
    """A copy of the LM with tuned values for `tmp_path/a.pt` (which exists) next to it."""
    lm = tmp_path / "lm" / "words.arpa"
    lm.parent.mkdir()
    shutil.copy(lm_path, lm)
    (tmp_path / "a.pt").write_bytes(b"")
    tuned_path(lm).write_text(json.dumps({"alpha": 0.3, "beta": 1.5, "split": "dev-clean",
                                          "checkpoint": str(tmp_path / "a.pt")}))
    return lm


def test_tuned_values_used_with_another_checkpoint_print_one_note(tmp_path, tuned_lm, capsys, monkeypatch):
    cfg = lm_decoder_config(str(tuned_lm), 4, None, None, checkpoint=tmp_path / "b.pt")
    assert (cfg.alpha, cfg.beta, cfg.beam_width, cfg.lm) == (0.3, 1.5, 4, str(tuned_lm))
    err = capsys.readouterr().err
    assert err == (f"note: alpha 0.3, beta 1.5 from {tuned_path(tuned_lm)} were tuned for {tmp_path / 'a.pt'} "
                   f"on dev-clean; used with {tmp_path / 'b.pt'}\n")
    lm_decoder_config(str(tuned_lm), 4, 0.7, None, checkpoint=tmp_path / "b.pt")  # beta still the tuned one
    assert capsys.readouterr().err.startswith("note: alpha 0.7, beta 1.5")

    monkeypatch.chdir(tmp_path / "lm")
    for checkpoint in ("../a.pt", tmp_path / "lm" / ".." / "a.pt"):  # the same file, spelled otherwise
        assert lm_decoder_config(str(tuned_lm), 4, None, None, checkpoint=checkpoint).alpha == 0.3
    lm_decoder_config(str(tuned_lm), 4, 0.1, 0.2, checkpoint=tmp_path / "b.pt")  # the tuned values are not used
    lm_decoder_config(str(tuned_lm), 4, None, None)  # callers that do not say which checkpoint
    tuned_path(tuned_lm).write_text(json.dumps({"alpha": 0.3, "beta": 1.5}))  # tuned for no known checkpoint
    lm_decoder_config(str(tuned_lm), 4, None, None, checkpoint=tmp_path / "b.pt")
    assert capsys.readouterr().err == ""


def test_evaluate_prints_the_note_for_another_checkpoint(tmp_path, tone_corpus, tuned_lm, capsys):
    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint, data_root=tone_corpus)
    mine = write_plain_folder(tmp_path / "mine", {"a": "red cat"})
    evaluate.main([str(checkpoint), "--split", str(mine), "--beam", "2", "--lm", str(tuned_lm), "--workers", "1"])
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if line.startswith("note:")] == [
        f"note: alpha 0.3, beta 1.5 from {tuned_path(tuned_lm)} were tuned for {tmp_path / 'a.pt'} on dev-clean; "
        f"used with {checkpoint}"]
    assert "beam 2 + LM (alpha 0.3, beta 1.5)" in captured.out


# --- kws.evaluate --out and --plot


@pytest.fixture(scope="module")
def kws_run(tmp_path_factory) -> tuple[Path, Path]:
    """(corpus root, checkpoint) of a tiny KWS model trained for one epoch."""
    base = tmp_path_factory.mktemp("kws_outputs")
    root = write_speech_commands_tree(base / "sc")
    run_dir = train(tiny_config(root, "epochs=1"), log_root=base / "logs", quiet=True)
    return root, run_dir / "best.pt"


def test_kws_evaluate_out_writes_per_clip_scores_and_the_attention_plot(tmp_path, kws_run, capsys):
    root, checkpoint = kws_run
    out = tmp_path / "eval"
    assert kws_evaluate.main([str(checkpoint), "--root", str(root), "--runs", "2", "--out", str(out),
                              "--plot", "3"]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["attention_testing.png", "eval.json", "fa_fr.png", "scores.csv"]
    result = json.loads((out / "eval.json").read_text())
    with open(out / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["path", "word", "label", "score"]
    listed = [str(root / e) for e in (root / "testing_list.txt").read_text().split()]
    assert [r["path"] for r in rows] == listed  # every clip, in list order
    assert all(r["label"] == str(int(r["word"] == "sheila")) for r in rows)
    scores, labels = np.array([float(r["score"]) for r in rows]), np.array([int(r["label"]) for r in rows])
    assert (len(rows), int(labels.sum())) == (result["clips"], result["positives"])
    assert au_fa_fr(scores, labels) == result["au_fa_fr"]
    assert f"au-fa-fr        {result['au_fa_fr']:.3e}" in printed
    assert f"drew the attention of the 3 worst-ranked clips: {out / 'attention_testing.png'}" in printed
    png = out / "attention_testing.png"
    assert png.read_bytes().startswith(PNG_MAGIC)
    with Image.open(png) as image:
        assert image.size == (800, 780)  # 8 x 2.6 inches per row at 100 dpi, 3 rows


def test_kws_plot_without_out_goes_next_to_the_checkpoint(tmp_path, kws_run, capsys):
    root, checkpoint = kws_run
    (tmp_path / "run").mkdir()
    copy = tmp_path / "run" / "best.pt"
    shutil.copy(checkpoint, copy)
    assert kws_evaluate.main([str(copy), "--root", str(root), "--runs", "2", "--plot", "20",
                              "--split", "validation"]) == 0
    assert sorted(p.name for p in copy.parent.iterdir()) == ["attention_validation.png", "best.pt"]
    assert (copy.parent / "attention_validation.png").read_bytes().startswith(PNG_MAGIC)
    assert "attention of the 8 worst-ranked clips" in capsys.readouterr().out  # 20 asked, 8 clips


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_kws_plot_next_to_a_read_only_checkpoint_fails_before_scoring(tmp_path, kws_run):
    root, checkpoint = kws_run
    (tmp_path / "run").mkdir()
    shutil.copy(checkpoint, tmp_path / "run" / "best.pt")
    (tmp_path / "run").chmod(0o555)
    try:
        with pytest.raises(SystemExit) as exit_info:
            kws_evaluate.main([str(tmp_path / "run" / "best.pt"), "--root", str(root), "--runs", "2", "--plot", "2"])
    finally:
        (tmp_path / "run").chmod(0o755)
    assert str(exit_info.value.code).startswith(f"error: {tmp_path / 'run'}: cannot write the --plot figure")


def test_worst_ranked_takes_missed_keyword_clips_and_false_alarms_half_each():
    scores = np.array([0.9, 0.2, 0.8, 0.1, 0.7, 0.05])
    labels = np.array([1, 1, 0, 0, 1, 0])
    assert kws_evaluate.worst_ranked(scores, labels, 3) == [1, 4, 2]
    assert kws_evaluate.worst_ranked(scores, labels, 4) == [1, 4, 2, 3]
    assert kws_evaluate.worst_ranked(scores, labels, 10) == [1, 4, 0, 2, 3, 5]
    assert kws_evaluate.worst_ranked(scores[:3], labels[:3], 3) == [1, 0, 2]  # one other clip: keyword clips fill


def test_attention_rows_put_weights_on_the_feature_frames(kws_run):
    _, checkpoint = kws_run
    ckpt = load_kws_checkpoint(checkpoint)
    rows = kws_evaluate.attention_rows(ckpt.model, ckpt.features, torch.randn(2, ckpt.clip_samples) * 0.1)
    for row in rows:
        frames = row["features"].shape[1]
        assert row["weights"].shape == row["centers"].shape and row["weights"].sum() == pytest.approx(1, abs=1e-5)
        assert 0 <= row["centers"][0] and row["centers"][-1] <= frames - 1
