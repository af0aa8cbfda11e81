"""Bad input to the KWS scoring commands, through their real entry points.

Every row of the matrix is one input and the outcome the user must get:

- "error": `main` exits with ONE line `error: ...` naming the path or key at fault (no traceback),
  and nothing is written (`--out` stays absent);
- "usage": argparse rejects the option: exit status 2, its last stderr line names the option;
- "skip": the command succeeds and the bad items are logged and counted;
- "ok": the command succeeds.

Each row runs in an empty working folder, and the test checks that the folder stays empty: nothing
may appear outside the test's tmp folders. One tiny checkpoint is trained once for the module.
"""
from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf
import torch

from common.checkpoint import load_checkpoint, save_checkpoint
from kws import compare, evaluate
from kws.train import train
from test_kws_data import write_speech_commands_tree
from test_kws_train import tiny_config

LAYOUT = "Speech Commands layout: WORD/*.wav, validation_list.txt, testing_list.txt"


@dataclass
class Trained:
    """The module's corpus and checkpoint (never modified by a row: rows work on copies)."""

    root: Path
    ckpt: Path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Trained:
    base = tmp_path_factory.mktemp("kws_bad_input")
    root = write_speech_commands_tree(base / "sc")
    run_dir = train(tiny_config(root, "epochs=1"), log_root=base / "logs", quiet=True)
    return Trained(root, run_dir / "best.pt")


class Case:
    """What a row's setup may use: a fresh tmp folder, copies of the corpus, variants of the checkpoint."""

    def __init__(self, tmp: Path, trained: Trained) -> None:
        self.tmp, self.trained, self.ckpt = tmp, trained, str(trained.ckpt)
        self.out = tmp / "out"  # evaluate's --out: must exist after success only
        self.root = tmp / "sc"  # the corpus copy the row's argv points at

    def tree(self) -> Path:
        """A copy of the good corpus at self.root."""
        shutil.copytree(self.trained.root, self.root)
        return self.root

    def testing_list(self, keep: Callable[[str], bool]) -> Path:
        """A corpus copy whose testing_list.txt keeps only the entries `keep` accepts."""
        root = self.tree()
        entries = (root / "testing_list.txt").read_text().splitlines()
        (root / "testing_list.txt").write_text("".join(e + "\n" for e in entries if keep(e)))
        return root

    def testing_entries(self) -> list[str]:
        return (self.root / "testing_list.txt").read_text().splitlines()

    def checkpoint(self, name: str, change: Callable[[dict], object]) -> str:
        """A copy of the checkpoint with `change(state)` applied."""
        state = load_checkpoint(self.trained.ckpt)
        change(state)
        save_checkpoint(self.tmp / name, state)
        return str(self.tmp / name)

    def eval_argv(self, *extra: str, root: Path | None = None) -> list[str]:
        return [self.ckpt, "--root", str(root or self.root), "--runs", "2", "--out", str(self.out), *extra]

    def compare_argv(self, *checkpoints: str, root: Path | None = None, extra: tuple[str, ...] = ()) -> list[str]:
        return [*(checkpoints or (self.ckpt, self.ckpt)), "--root", str(root or self.root),
                "--resamples", "5", "--threads", "1", *extra]


def corrupt(path: Path) -> None:
    path.write_bytes(b"RIFF\x00\x00")  # a truncated header: unreadable audio


def set_keyword(state: dict, keyword: str) -> None:
    state["config"]["data"]["keyword"] = keyword


def set_root(state: dict, root: str) -> None:
    state["config"]["data"]["root"] = root


@dataclass
class Row:
    id: str
    main: Callable[[list[str]], int]
    argv: Callable[[Case], list[str]]  # builds the input in case.tmp and returns the command line
    outcome: str  # "error", "usage", "skip", "ok"
    expect: Callable[[Case], list[str]] = lambda case: []  # substrings of the error line / the log
    check: Callable[[Case, str], None] | None = None  # further checks on success (stdout given)


def eval_json(case: Case) -> dict:
    return json.loads((case.out / "eval.json").read_text())


def evaluate_ok(case: Case, stdout: str) -> None:
    result = eval_json(case)
    assert (result["clips"], result["positives"], result["skipped"]) == (8, 2, 0)


def evaluate_ok_with_plot(case: Case, stdout: str) -> None:
    evaluate_ok(case, stdout)
    assert sorted(p.name for p in case.out.iterdir()) == ["attention_testing.png", "eval.json", "fa_fr.png",
                                                          "scores.csv"]


def two_missing_counted(case: Case, stdout: str) -> None:
    result = eval_json(case)
    assert (result["clips"], result["positives"], result["skipped"]) == (6, 1, 2)
    assert result["skipped_by_kind"] == {"list entries without audio": 2}
    assert "2 list entries without audio" in stdout


def one_unreadable_counted(case: Case, stdout: str) -> None:
    result = eval_json(case)
    assert (result["clips"], result["skipped"], result["skipped_by_kind"]) == (7, 1, {"unreadable clips": 1})
    assert "1 unreadable clips" in stdout


def malformed_counted(case: Case, stdout: str) -> None:
    result = eval_json(case)
    assert (result["clips"], result["skipped_by_kind"]) == (8, {"malformed list lines": 2})


def table_printed(case: Case, stdout: str) -> None:
    assert "| 1.00 | 1.00-1.00 |" in stdout


def table_with_note(case: Case, stdout: str) -> None:
    # Only 2 keyword clips: most resamples rank them perfectly, where the ratio is undefined.
    assert "resamples left out of the interval" in stdout
    table_printed(case, stdout)


def is_keyword(entry: str) -> bool:
    return entry.startswith("sheila/")


def write_root_file(case: Case) -> Path:
    case.root.write_text("a file, not a folder")
    return case.root


def make_empty(case: Case) -> Path:
    case.root.mkdir()
    return case.root


def drop_list(case: Case, name: str) -> Path:
    root = case.tree()
    (root / name).unlink()
    return root


def without_keyword_folder(case: Case) -> Path:
    root = case.testing_list(lambda e: not is_keyword(e))
    shutil.rmtree(root / "sheila")
    (root / "validation_list.txt").write_text(
        "".join(e + "\n" for e in (root / "validation_list.txt").read_text().splitlines() if not is_keyword(e)))
    return root


def two_missing_one_keyword(case: Case) -> Path:
    case.tree()
    keyword_entry = next(e for e in case.testing_entries() if is_keyword(e))
    other_entry = next(e for e in case.testing_entries() if not is_keyword(e))
    (case.root / keyword_entry).unlink()
    (case.root / other_entry).unlink()
    return case.root


def all_missing(case: Case) -> Path:
    """testing_list.txt names 8 clips, none of which has audio."""
    case.tree()
    for entry in case.testing_entries():
        (case.root / entry).unlink()
    return case.root


def with_malformed_lines(case: Case) -> Path:
    root = case.tree()
    with open(root / "testing_list.txt", "a") as f:
        f.write("not a path\n../outside.wav\n")
    return root


def one_unreadable(case: Case) -> Path:
    root = case.tree()
    corrupt(root / next(e for e in case.testing_entries() if not is_keyword(e)))
    return root


def keyword_unreadable(case: Case) -> Path:
    root = case.tree()
    for entry in case.testing_entries():
        if is_keyword(entry):
            corrupt(root / entry)
    return root


def all_unreadable(case: Case) -> Path:
    root = case.tree()
    for entry in case.testing_entries():
        corrupt(root / entry)
    return root


def out_is_file(case: Case) -> list[str]:
    case.tree()
    case.out.write_text("a file")
    return case.eval_argv()


def out_below_file(case: Case) -> list[str]:
    case.tree()
    (case.tmp / "file").write_text("a file")
    case.out = case.tmp / "file" / "out"
    return case.eval_argv()


def text_checkpoint(case: Case) -> str:
    (case.tmp / "notes.pt").write_text("not a checkpoint")
    return str(case.tmp / "notes.pt")


def foreign_checkpoint(case: Case) -> str:
    save_checkpoint(case.tmp / "foreign.pt", {"weights": torch.zeros(3)})
    return str(case.tmp / "foreign.pt")


def asr_like_checkpoint(case: Case) -> str:
    save_checkpoint(case.tmp / "asr.pt", {"model": {}, "config": {"model": {"encoder_layers": 4}}})
    return str(case.tmp / "asr.pt")


def evaluate_with(ckpt: Callable[[Case], str]) -> Callable[[Case], list[str]]:
    def argv(case: Case) -> list[str]:
        case.tree()
        return [ckpt(case), *case.eval_argv()[1:]]
    return argv


def evaluate_on(make_root: Callable[[Case], Path], *extra: str) -> Callable[[Case], list[str]]:
    def argv(case: Case) -> list[str]:
        return case.eval_argv(*extra, root=make_root(case))
    return argv


def compare_on(make_root: Callable[[Case], Path], *extra: str) -> Callable[[Case], list[str]]:
    def argv(case: Case) -> list[str]:
        return case.compare_argv(root=make_root(case), extra=extra)
    return argv


def compare_with(second: Callable[[Case], str]) -> Callable[[Case], list[str]]:
    def argv(case: Case) -> list[str]:
        case.tree()
        return case.compare_argv(case.ckpt, second(case))
    return argv


def usage(main, *extra: str) -> Callable[[Case], list[str]]:
    def argv(case: Case) -> list[str]:
        case.tree()
        return case.eval_argv(*extra) if main is evaluate.main else case.compare_argv(extra=extra)
    return argv


def default_root_missing(case: Case) -> list[str]:
    ckpt = case.checkpoint("moved.pt", lambda s: set_root(s, str(case.tmp / "moved_away")))
    return [ckpt, "--runs", "2", "--out", str(case.out)]


def positional_root(case: Case) -> list[str]:
    """The corpus folder where it used to go: a positional argument after the checkpoint."""
    case.tree()
    return [case.ckpt, str(case.root), "--runs", "2"]


def no_keyword_in_testing(case: Case) -> Path:
    return case.testing_list(lambda e: not is_keyword(e))


E, C = evaluate.main, compare.main
ROWS = [
    # --- kws.evaluate: the corpus folder
    Row("eval-ok", E, evaluate_on(Case.tree), "ok", check=evaluate_ok),
    Row("eval-ok-with-plot", E, evaluate_on(Case.tree, "--plot", "3"), "ok", check=evaluate_ok_with_plot),
    Row("eval-no-keyword-clips", E, evaluate_on(no_keyword_in_testing), "error",
        lambda c: [str(c.root), "testing", "6 clips, 0 of them 'sheila'"]),
    Row("eval-only-keyword-clips", E, evaluate_on(lambda c: c.testing_list(is_keyword)), "error",
        lambda c: [str(c.root), "testing", "2 clips, 2 of them 'sheila'"]),
    Row("eval-empty-testing-list", E, evaluate_on(lambda c: c.testing_list(lambda e: False)), "error",
        lambda c: [str(c.root), "testing", "no clips"]),
    Row("eval-no-testing-list", E, evaluate_on(lambda c: drop_list(c, "testing_list.txt")), "error",
        lambda c: [str(c.root / "testing_list.txt"), "missing list file", LAYOUT]),
    Row("eval-no-validation-list", E, evaluate_on(lambda c: drop_list(c, "validation_list.txt"), "--split",
                                                  "validation"), "error",
        lambda c: [str(c.root / "validation_list.txt"), "missing list file"]),
    Row("eval-empty-folder", E, evaluate_on(make_empty), "error",
        lambda c: [str(c.root), "no word folders", LAYOUT]),
    Row("eval-missing-folder", E, evaluate_on(lambda c: c.root), "error",
        lambda c: [str(c.root), "no such folder", LAYOUT]),
    Row("eval-root-is-a-file", E, evaluate_on(write_root_file), "error",
        lambda c: [str(c.root), "not a folder", LAYOUT]),
    Row("eval-no-keyword-folder", E, evaluate_on(without_keyword_folder), "error",
        lambda c: [str(c.root), "no folder for keyword 'sheila'"]),
    Row("eval-default-root-missing", E, default_root_missing, "error",
        lambda c: [str(c.tmp / "moved_away"), "no such folder"]),
    # --- kws.evaluate: the clips
    Row("eval-listed-files-missing", E, evaluate_on(two_missing_one_keyword), "skip",
        lambda c: ["skipped 2 of 8 clips in testing", "2 list entries without audio"],
        check=two_missing_counted),
    Row("eval-all-listed-files-missing", E, evaluate_on(all_missing), "error",
        lambda c: [str(c.root), "testing", "no clips", "8 list entries without audio"]),
    Row("eval-malformed-list-lines", E, evaluate_on(with_malformed_lines), "skip",
        lambda c: ["skipped 2 of 10 clips in testing", "2 malformed list lines"], check=malformed_counted),
    Row("eval-one-unreadable-clip", E, evaluate_on(one_unreadable), "skip",
        lambda c: ["skipping clip"], check=one_unreadable_counted),
    Row("eval-keyword-clips-unreadable", E, evaluate_on(keyword_unreadable), "error",
        lambda c: [str(c.root), "testing", "6 clips, 0 of them 'sheila'", "2 unreadable"]),
    Row("eval-all-unreadable", E, evaluate_on(all_unreadable), "error",
        lambda c: [str(c.root), "testing", "no readable clips", "8 unreadable"]),
    # --- kws.evaluate: the checkpoint and the options
    Row("eval-missing-checkpoint", E, evaluate_with(lambda c: str(c.tmp / "gone.pt")), "error",
        lambda c: [str(c.tmp / "gone.pt"), "not found"]),
    Row("eval-text-checkpoint", E, evaluate_with(text_checkpoint), "error",
        lambda c: [str(c.tmp / "notes.pt"), "checkpoint"]),
    Row("eval-foreign-checkpoint", E, evaluate_with(foreign_checkpoint), "error",
        lambda c: [str(c.tmp / "foreign.pt"), "not a KWS checkpoint"]),
    Row("eval-asr-like-checkpoint", E, evaluate_with(asr_like_checkpoint), "error",
        lambda c: [str(c.tmp / "asr.pt"), "does not fit"]),
    Row("eval-out-is-a-file", E, out_is_file, "error", lambda c: [str(c.out), "not a folder"]),
    Row("eval-out-below-a-file", E, out_below_file, "error", lambda c: [str(c.out), str(c.tmp / "file")]),
    Row("eval-runs-0", E, usage(E, "--runs", "0"), "usage", lambda c: ["--runs", "'0'"]),
    Row("eval-runs-negative", E, usage(E, "--runs", "-3"), "usage", lambda c: ["--runs", "'-3'"]),
    Row("eval-runs-not-a-number", E, usage(E, "--runs", "many"), "usage", lambda c: ["--runs", "'many'"]),
    Row("eval-batch-size-0", E, usage(E, "--batch-size", "0"), "usage", lambda c: ["--batch-size"]),
    Row("eval-threads-0", E, usage(E, "--threads", "0"), "usage", lambda c: ["--threads"]),
    Row("eval-unknown-split", E, usage(E, "--split", "test"), "usage", lambda c: ["--split", "'test'"]),
    Row("eval-plot-0", E, usage(E, "--plot", "0"), "usage", lambda c: ["--plot", "'0'"]),
    Row("eval-positional-root", E, positional_root, "usage", lambda c: ["--root", str(c.root)]),
    # --- kws.compare
    Row("compare-ok", C, compare_on(Case.tree), "ok", check=table_printed),
    Row("compare-union-of-splits", C, compare_on(no_keyword_in_testing, "--split", "testing", "validation"),
        "ok", check=table_with_note),
    Row("compare-no-keyword-clips", C, compare_on(no_keyword_in_testing), "error",
        lambda c: [str(c.root), "testing", "6 clips, 0 of them 'sheila'"]),
    Row("compare-keyword-clips-unreadable", C, compare_on(keyword_unreadable), "error",
        lambda c: [str(c.root), "testing", "0 of them 'sheila'"]),
    Row("compare-all-listed-files-missing", C, compare_on(all_missing), "error",
        lambda c: [str(c.root), "testing", "no clips"]),
    Row("compare-missing-folder", C, compare_on(lambda c: c.root), "error",
        lambda c: [str(c.root), "no such folder"]),
    Row("compare-root-is-a-file", C, compare_on(write_root_file), "error",
        lambda c: [str(c.root), "not a folder"]),
    Row("compare-empty-folder", C, compare_on(make_empty), "error", lambda c: [str(c.root), "no word folders"]),
    Row("compare-no-testing-list", C, compare_on(lambda c: drop_list(c, "testing_list.txt")), "error",
        lambda c: [str(c.root / "testing_list.txt"), "missing list file"]),
    Row("compare-missing-checkpoint", C, compare_with(lambda c: str(c.tmp / "gone.pt")), "error",
        lambda c: [str(c.tmp / "gone.pt"), "not found"]),
    Row("compare-foreign-checkpoint", C, compare_with(foreign_checkpoint), "error",
        lambda c: [str(c.tmp / "foreign.pt"), "not a KWS checkpoint"]),
    Row("compare-other-keyword", C, compare_with(lambda c: c.checkpoint("yes.pt", lambda s: set_keyword(s, "yes"))),
        "error", lambda c: [str(c.tmp / "yes.pt"), "'yes'", "'sheila'"]),
    Row("compare-unknown-split", C, usage(C, "--split", "testing", "dev"), "usage", lambda c: ["--split", "'dev'"]),
    Row("compare-split-twice", C, usage(C, "--split", "testing", "testing"), "usage",
        lambda c: ["--split", "'testing'"]),
    Row("compare-old-splits-flag", C, usage(C, "--splits", "testing"), "usage",
        lambda c: ["--splits", "--split now"]),
    Row("compare-resamples-0", C, usage(C, "--resamples", "0"), "usage", lambda c: ["--resamples", "'0'"]),
    Row("compare-threads-0", C, usage(C, "--threads", "0"), "usage", lambda c: ["--threads", "'0'"]),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_matrix(row: Row, trained, tmp_path, monkeypatch, capsys, caplog):
    case = Case(tmp_path / "case", trained)
    case.tmp.mkdir()
    argv = row.argv(case)
    out_before = case.out.read_bytes() if case.out.is_file() else None  # the "--out is a file" rows
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # anything written relative to the working folder would land here
    caplog.set_level(logging.WARNING)
    try:
        status, exit_message = row.main(argv), None
    except SystemExit as e:
        status, exit_message = e.code, e.code
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert list(cwd.iterdir()) == []
    expected = row.expect(case)
    if row.outcome == "error":
        assert isinstance(exit_message, str), f"expected an error exit, got status {status!r}"
        assert exit_message.startswith("error: ") and "\n" not in exit_message, exit_message
        for part in expected:
            assert part in exit_message, f"{part!r} not in {exit_message!r}"
        if out_before is None:
            assert not case.out.exists(), "an error run wrote its output"
        else:
            assert case.out.read_bytes() == out_before
    elif row.outcome == "usage":
        assert status == 2
        last = err.strip().splitlines()[-1]
        assert "error: argument" in last or "error: --" in last, err
        for part in expected:
            assert part in last, f"{part!r} not in {last!r}"
    else:
        assert status == 0
        if row.outcome == "skip":
            logged = "\n".join(r.getMessage() for r in caplog.records)
            for part in expected:
                assert part in logged, f"{part!r} not in the log {logged!r}"
        row.check(case, out)
    # The module's corpus and checkpoint are untouched by every row.
    assert trained.ckpt.is_file() and (trained.root / "testing_list.txt").is_file()
    assert sf.info(str(next((trained.root / "sheila").iterdir()))).frames > 0
