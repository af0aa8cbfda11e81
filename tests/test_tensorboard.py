"""TensorBoard event files of a run hold what metrics.jsonl holds, plus the plots and example texts,
and a resumed run shows each step once (common/runlog.py has the tag mapping)."""
import json
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

import asr.train as train_module
import kws.train
import test_kws_train
from common.runlog import COORDINATES, RunLog, read_metrics, tensorboard_tag
from test_asr_train import tiny_config
from test_kws_data import write_speech_commands_tree


def tensorboard_view(run_dir: Path) -> event_accumulator.EventAccumulator:
    """What TensorBoard shows of a run folder: every event file read in order, restarts purged."""
    keep_all = {kind: 0 for kind in (event_accumulator.SCALARS, event_accumulator.IMAGES,
                                     event_accumulator.TENSORS)}  # the default keeps a sample of each
    view = event_accumulator.EventAccumulator(str(run_dir), size_guidance=keep_all)
    view.Reload()
    return view


def scalars(view: event_accumulator.EventAccumulator) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(e.step, e.value) for e in view.Scalars(tag)] for tag in view.Tags()["scalars"]}


def expected_scalars(records: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """metrics.jsonl's numbers by tag, as float32, with the final results (step -1) at the final step."""
    final_step = max(r["step"] for r in records) + 1
    expected: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        step = r["step"] if r["step"] >= 0 else final_step
        for name, value in r.items():
            if name not in COORDINATES and isinstance(value, (int, float)):
                tag = tensorboard_tag(name, r.get("split"), final=r["step"] < 0)
                expected.setdefault(tag, []).append((step, float(np.float32(value))))
    return expected


def steps_in_files(run_dir: Path, tag: str) -> list[int]:
    """The steps of `tag` in the run's event files as they are, before any loader's purge."""
    return [event.step for file in sorted(run_dir.glob("events.out.tfevents.*"))
            for event in EventFileLoader(str(file)).Load() if any(v.tag == tag for v in event.summary.value)]


def text_at(view: event_accumulator.EventAccumulator, tag: str) -> dict[int, str]:
    return {e.step: e.tensor_proto.string_val[0].decode() for e in view.Tensors(f"{tag}/text_summary")}


def test_a_crashed_and_resumed_asr_run_shows_metrics_plots_and_examples_once(tone_corpus, tmp_path, monkeypatch):
    cfg = tiny_config(tone_corpus, "epochs=1", "eval_every=3")
    real_loss, calls = train_module.ctc_loss, {"n": 0}

    def crash_after_first_checkpoint(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # last.pt of step 3 is on disk, step 4 is logged: die before step 5
            raise KeyboardInterrupt("simulated crash")
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "ctc_loss", crash_after_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train_module.train(cfg, log_root=tmp_path, quiet=True)
    monkeypatch.setattr(train_module, "ctc_loss", real_loss)
    run_dir = train_module.train(cfg, log_root=tmp_path, quiet=True)

    records = read_metrics(run_dir / "metrics.jsonl")
    last_step = max(r["step"] for r in records)
    assert last_step > 4
    view = tensorboard_view(run_dir)
    shown = scalars(view)
    # Same tags, steps and values as metrics.jsonl (float32), each step once although both sessions
    # wrote step 4.
    assert shown == expected_scalars(records)
    for tag, points in shown.items():
        steps = [step for step, _ in points]
        assert steps == sorted(set(steps)), tag
    assert [step for step, _ in shown["train/loss"]] == list(range(1, last_step + 1))
    assert [step for step, _ in shown["dev/cer"]] == [3, last_step]
    assert {"train/lr", "dev/wer", "train/audio_seconds_per_second"} <= set(shown)
    assert [step for step, _ in shown["test/test-clean/cer"]] == [last_step + 1]
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 2  # one per session
    # The crashed session's file lost its step 4, so a loader that ignores restart markers agrees.
    assert steps_in_files(run_dir, "train/loss") == list(range(1, last_step + 1))

    # The example transcripts: the blocks of examples.txt, at their steps, and the test examples.
    dev_examples = text_at(view, "dev/examples")
    assert sorted(dev_examples) == [3, last_step]
    blocks = (run_dir / "examples.txt").read_text().split("=== step ")
    assert dev_examples[last_step] == f"```\n=== step {blocks[-1].rstrip()}\n```"
    test_examples = text_at(view, "test/test-clean/examples")
    assert list(test_examples) == [last_step + 1] and "REF: " in test_examples[last_step + 1]

    # The plots, each time they were redrawn (the crashed session drew them at step 3 too).
    for tag in ("plots/loss", "plots/error_rates", "plots/lr"):
        images = view.Images(tag)
        assert [image.step for image in images] == [3, last_step]
        assert images[-1].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_kws_run_extended_by_an_epoch_shows_its_latest_final_results_once(tmp_path):
    root = write_speech_commands_tree(tmp_path / "sc")
    kws.train.train(test_kws_train.tiny_config(root, "epochs=1"), log_root=tmp_path / "logs", quiet=True)
    run_dir = kws.train.train(test_kws_train.tiny_config(root, "epochs=2"), log_root=tmp_path / "logs", quiet=True)

    records = read_metrics(run_dir / "metrics.jsonl")
    view = tensorboard_view(run_dir)
    shown = scalars(view)
    assert shown == expected_scalars(records)
    assert [step for step, _ in shown["val/au_fa_fr"]] == [4, 8]  # 4 batches per epoch
    # the first session's final results (step 5) are hidden; the second's are at the final step
    for tag in ("final/testing/best_au_fa_fr", "final/validation/best_au_fa_fr", "final/macs", "final/params"):
        assert [step for step, _ in shown[tag]] == [9], tag
    assert [image.step for image in view.Images("plots/fa_fr")] == [9]
    assert steps_in_files(run_dir, "final/testing/best_au_fa_fr") == [9]  # gone from the first file too
    assert [image.step for image in view.Images("plots/au_fa_fr")] == [4, 8]


def test_rerunning_a_finished_run_replaces_its_final_results(tmp_path):
    def session(resume_from: int | None, last_step: int, test_cer: float) -> None:
        run = RunLog("asr_clean", "demo", {}, seed=0, device="cpu", root=tmp_path, quiet=True)
        if resume_from is not None:
            run.resume_metrics(resume_from)
        for step in range((resume_from or 0) + 1, last_step + 1):
            run.metrics(step=step, epoch=0, train_loss=1.0 / step)
        run.metrics(step=-1, split="/data/LibriSpeech/test-clean", test_cer=test_cer, test_wer=0.5)
        run.close()

    session(None, 4, 0.30)
    session(4, 4, 0.30)  # the same run again: resumes at its last step, scores again
    session(4, 6, 0.20)  # more steps
    run_dir = tmp_path / "asr_clean" / "demo"
    records = read_metrics(run_dir / "metrics.jsonl")
    shown = scalars(tensorboard_view(run_dir))
    assert shown == expected_scalars(records)
    assert shown["test/test-clean/cer"] == [(7, pytest.approx(0.20))]  # the older results are gone
    assert steps_in_files(run_dir, "test/test-clean/cer") == [7]
    assert steps_in_files(run_dir, "train/loss") == [1, 2, 3, 4, 5, 6]
    assert [step for step, _ in shown["train/loss"]] == [1, 2, 3, 4, 5, 6]


def test_a_run_log_without_records_writes_no_event_file(tmp_path):
    run = RunLog("asr_experiments", "tables", {}, seed=0, device="cpu", root=tmp_path, quiet=True)
    run.info("a table")
    run.close()
    assert not list((tmp_path / "asr_experiments" / "tables").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("name, split, final, tag", [
    ("train_loss", None, False, "train/loss"),
    ("dev_cer", None, False, "dev/cer"),
    ("val_au_fa_fr", None, False, "val/au_fa_fr"),
    ("lr", None, False, "train/lr"),
    ("epoch_train_loss", None, False, "train/epoch_train_loss"),
    ("test_cer", "test-other", True, "test/test-other/cer"),
    ("test_wer", "/data/real/LibriSpeech/test-clean", True, "test/test-clean/wer"),
    ("best_au_fa_fr", "testing", True, "final/testing/best_au_fa_fr"),
    ("macs", None, True, "final/macs"),
])
def test_tags(name, split, final, tag):
    assert tensorboard_tag(name, split, final=final) == tag


def test_only_measurements_are_plotted(tmp_path):
    # The epoch, strings and None are not scalars; a record without step reaches metrics.jsonl only.
    run = RunLog("kws_baseline", "demo", {}, seed=0, device="cpu", root=tmp_path, quiet=True)
    run.metrics(step=2, epoch=1, train_loss=0.5, note="text", wer=None)
    run.metrics(note="no step")
    run.close()
    run_dir = tmp_path / "kws_baseline" / "demo"
    assert scalars(tensorboard_view(run_dir)) == {"train/loss": [(2, 0.5)]}
    assert json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1]) == {"note": "no step"}
