"""Bad ASR inputs through the real entry points: `main(argv)` of asr.evaluate, asr.transcribe and
asr.lm_tune.

Each row of MATRIX is one input and what the user must see:
- "error": exit with ONE line `error: ...` naming the file, folder or option (no traceback);
- "usage": argparse's refusal (exit 2), its error line naming the option;
- "partial" (transcribe): the bad file reported in one stderr line, the good ones transcribed, exit 1;
- "skip": success, with a logged warning that counts what was dropped;
- "success".
Whatever the outcome, nothing may be written outside the test's folders: the working directory is
an empty folder that must stay empty, and the shared inputs must stay as they were.
"""
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr import evaluate, lm_tune, transcribe
from asr.config import TrainConfig
from asr.data import eval_loader, load_split, load_train_utterances
from asr.lm import train_kneser_ney, write_arpa
from asr.model import load_asr_checkpoint
from asr.text import CharTokenizer
from common.checkpoint import save_checkpoint
from common.config import from_dict, to_dict
from kws.model import CRNN, ModelConfig as KwsModelConfig
from kws.train import TrainConfig as KwsTrainConfig
from conftest import tone_wave, write_tone_librispeech
from test_eval_outputs import write_plain_folder
from test_transcribe import tiny_checkpoint

MAINS = {"evaluate": evaluate.main, "transcribe": transcribe.main, "lm_tune": lm_tune.main}
FAST = ["--workers", "1"]
GREEDY = ["--beam", "0", *FAST]
GRID = ["--alphas", "0", "--betas", "0", "--beam", "2", *FAST]


def _librispeech_sets(root: Path) -> dict[str, Path]:
    """LibriSpeech-layout folders, each broken in one way."""
    names = ["latin1", "one_latin1", "accents", "no_audio", "bad_audio"]
    texts = {"latin1": ["red cat", "big dog"], "one_latin1": ["red cat", "big dog", "sun top"],
             "accents": ["cafe at o'clock", "", "red cat"], "no_audio": ["red cat"], "bad_audio": ["red cat", "dog"]}
    corpus = write_tone_librispeech(root, {name: texts[name] for name in names})
    folders = {name: corpus / name for name in names}

    def transcript(name):
        return next(folders[name].rglob("*.trans.txt"))

    latin1 = " CAFÉ".encode("latin-1")  # not UTF-8: the reader skips such lines
    lines = transcript("latin1").read_bytes().splitlines()
    transcript("latin1").write_bytes(b"\n".join(line + latin1 for line in lines) + b"\n")
    lines = transcript("one_latin1").read_bytes().splitlines()
    lines[1] += latin1
    transcript("one_latin1").write_bytes(b"\n".join(lines) + b"\n")
    ids = sorted(p.stem for p in folders["accents"].rglob("*.flac"))
    transcript("accents").write_text(f"{ids[0]} CAFÉ AT 3 O'CLOCK\n{ids[1]} 42\n{ids[2]} RED CAT\n")
    for flac in folders["no_audio"].rglob("*.flac"):
        flac.unlink()
    for flac in folders["bad_audio"].rglob("*.flac"):
        flac.write_bytes(flac.read_bytes()[:200])  # header intact, audio cut short
    folders["empty"] = root / "empty"
    folders["empty"].mkdir()
    return folders


def _kws_checkpoint(path: Path) -> None:
    """A checkpoint as kws.train writes it (model and config, no tokenizer)."""
    save_checkpoint(path, {"model": CRNN(40, KwsModelConfig()).state_dict(), "config": to_dict(KwsTrainConfig()),
                           "epoch": 0, "step": 0})


@pytest.fixture(scope="module")
def world(tmp_path_factory, tone_corpus) -> dict[str, Path]:
    """Every input a row may name, by placeholder: checkpoints, LMs, audio files, split folders."""
    root = tmp_path_factory.mktemp("bad_input_asr")
    paths = {"root": root, "corpus": tone_corpus, "nowhere": root / "no-such-thing"}
    paths["ckpt"] = root / "tiny.pt"
    tiny_checkpoint(paths["ckpt"], data_root=tone_corpus)
    state = torch.load(paths["ckpt"], weights_only=True)
    paths["no_config_ckpt"] = root / "no_config.pt"
    save_checkpoint(paths["no_config_ckpt"], {**state, "config": {}})
    paths["kws_ckpt"] = root / "kws.pt"
    _kws_checkpoint(paths["kws_ckpt"])
    rng = np.random.default_rng(0)
    words = ["cat", "dog", "sun", "red", "big", "top"]
    paths["lm"] = root / "lm" / "words.arpa"
    write_arpa(paths["lm"], train_kneser_ney([list(rng.choice(words, 3)) for _ in range(50)], order=3))
    paths["bad_tuned_lm"] = root / "bad_tuned" / "words.arpa"
    paths["bad_tuned_lm"].parent.mkdir()
    shutil.copy(paths["lm"], paths["bad_tuned_lm"])
    (root / "bad_tuned" / "words.tuned.json").write_text("{alpha: 1")
    paths["negative_tuned_lm"] = root / "negative_tuned" / "words.arpa"
    paths["negative_tuned_lm"].parent.mkdir()
    shutil.copy(paths["lm"], paths["negative_tuned_lm"])
    (root / "negative_tuned" / "words.tuned.json").write_text('{"alpha": -1, "beta": NaN}')
    paths["text"] = root / "notes.txt"
    paths["text"].write_text("hello world\nthis is not a language model\n")
    paths["empty_file"] = root / "empty.arpa"
    paths["empty_file"].write_bytes(b"")
    paths["binary"] = root / "random.bin"
    paths["binary"].write_bytes(np.random.default_rng(1).bytes(4096))
    paths["wav"] = root / "red_cat.wav"
    sf.write(paths["wav"], tone_wave("red cat sun", rng), 16000, subtype="PCM_16")
    paths["long_wav"] = root / "long.wav"  # 20 s of noise: the untrained model emits hundreds of tokens
    sf.write(paths["long_wav"], (0.3 * rng.standard_normal(20 * 16000)).astype(np.float32), 16000)
    paths["short_wav"] = root / "short.wav"  # 1 ms: fewer samples than one feature frame
    sf.write(paths["short_wav"], np.full(16, 0.1, dtype=np.float32), 16000)
    paths["silent_wav"] = root / "silent.wav"
    sf.write(paths["silent_wav"], np.zeros(16000, dtype=np.float32), 16000)
    paths["not_audio"] = root / "notes.wav"
    paths["not_audio"].write_text("this is not audio\n")
    paths["nan_wav"] = root / "nan.wav"
    sf.write(paths["nan_wav"], np.full(1600, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    paths["odd_pcm"] = root / "odd.pcm"  # headerless 16-bit PCM cannot have an odd byte count
    paths["odd_pcm"].write_bytes(b"\x01\x02\x03")
    paths["latin1_lm"] = root / "latin1.arpa"  # kenlm reads it; its word list is not UTF-8
    paths["latin1_lm"].write_bytes(paths["lm"].read_bytes().replace(b"cat", "café".encode("latin-1")))
    paths["truncated_lm"] = root / "truncated.arpa"
    paths["truncated_lm"].write_bytes(paths["lm"].read_bytes()[:300])
    paths["empty_cache"] = root / "empty_cache.pt"
    evaluate.save_log_probs(paths["empty_cache"], [], [], CharTokenizer("abcdefghijklmnopqrstuvwxyz' ").to_dict(),
                            "dev-clean")
    paths.update(_librispeech_sets(root / "sets"))
    # Plain folders of audio + same-named .txt: one good, one with a bad pair of each kind, one all bad.
    paths["plain"] = write_plain_folder(root / "plain", {"a": "red cat", "b": "big dog"})
    paths["plain_some_bad"] = write_plain_folder(root / "plain_some_bad", {
        "a": "red cat", "b": "sun top", "no_text": None, "no_audio": ("dog", None),
        "latin1": "CAFÉ".encode("latin-1")})
    paths["plain_all_bad"] = write_plain_folder(root / "plain_all_bad", {"x": None, "y": None})
    return paths


def row(name, cli, argv, expect, *needles, xfail=None):
    """One matrix row: `needles` must all appear in the error line (for "skip": a regex the log matches)."""
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(cli, argv, expect, needles, id=f"{cli}-{name}-{expect}", marks=marks)


MATRIX = [
    # -- asr.evaluate: what is scored
    row("empty_folder", "evaluate", ["{ckpt}", "--split", "{empty}", *GREEDY], "error", "{empty}", "0 utterances read"),
    row("latin1_transcripts", "evaluate", ["{ckpt}", "--split", "{latin1}", *GREEDY], "error", "{latin1}",
        "0 utterances read", "2 unreadable transcript lines"),
    row("transcripts_without_audio", "evaluate", ["{ckpt}", "--split", "{no_audio}", *GREEDY], "error", "{no_audio}",
        "0 utterances read", "transcript lines without audio"),
    row("all_audio_unreadable", "evaluate", ["{ckpt}", "--split", "{bad_audio}", *GREEDY], "error", "{bad_audio}",
        "0 utterances scored", "unreadable audio"),
    row("unknown_split_name", "evaluate", ["{ckpt}", "--split", "dev-cleen", *GREEDY], "error", "dev-cleen",
        "no such split"),
    row("missing_folder", "evaluate", ["{ckpt}", "--split", "{nowhere}/", *GREEDY], "error", "{nowhere}",
        "no such folder"),
    row("file_as_split", "evaluate", ["{ckpt}", "--split", "{text}", *GREEDY], "error", "{text}", "no such folder"),
    row("missing_root", "evaluate", ["{ckpt}", "--split", "test-clean", "--root", "{nowhere}", *GREEDY], "error",
        "{nowhere}"),
    row("one_latin1_line", "evaluate", ["{ckpt}", "--split", "{one_latin1}", *GREEDY], "skip",
        r"skipped 2 of 4 utterances in \S*one_latin1: 1 unreadable transcript lines"),
    row("accents_and_digits", "evaluate", ["{ckpt}", "--split", "{accents}", *GREEDY], "skip",
        r"accents: 2 of 3 transcripts lose characters outside the alphabet .*: 'é' x1, '3' x1, '4' x1, '2' x1"
        r" \(1 left empty; first: \S+-0000 \"CAFÉ AT 3 O'CLOCK\"\)"),
    row("plain_folder", "evaluate", ["{ckpt}", "--split", "{plain}", *GREEDY], "success"),
    row("plain_folder_bad_pairs", "evaluate", ["{ckpt}", "--split", "{plain_some_bad}", *GREEDY], "skip",
        r"skipped 3 of 5 utterances in \S*plain_some_bad: 1 unreadable transcripts \(first: \S*latin1.txt\), "
        r"1 audio files without transcript \(first: \S*no_text.wav\), "
        r"1 transcripts without audio \(first: \S*no_audio.txt\)"),
    row("plain_folder_no_transcripts", "evaluate", ["{ckpt}", "--split", "{plain_all_bad}", *GREEDY], "error",
        "{plain_all_bad}", "0 utterances read", "2 audio files without transcript"),
    row("beam_and_lm", "evaluate", ["{ckpt}", "--split", "test-clean", "--beam", "2", "--lm", "{lm}", *FAST],
        "success"),
    row("out_folder", "evaluate", ["{ckpt}", "--split", "test-clean", "{plain}", "--out", "{tmp}/out", *GREEDY],
        "success"),
    row("file_as_out", "evaluate", ["{ckpt}", "--split", "test-clean", "--out", "{text}", *GREEDY], "error",
        "{text}", "--out is not a folder"),
    row("out_below_a_file", "evaluate", ["{ckpt}", "--split", "test-clean", "--out", "{text}/out", *GREEDY],
        "error", "{text}/out", "is a file"),
    row("positional_split", "evaluate", ["{ckpt}", "test-clean", *GREEDY], "usage", "--split test-clean"),
    row("split_twice", "evaluate", ["{ckpt}", "--split", "test-clean", "test-clean"], "usage", "--split",
        "'test-clean' given twice"),
    # -- asr.evaluate: options, checkpoint, LM
    row("negative_beam", "evaluate", ["{ckpt}", "--split", "test-clean", "--beam", "-3"], "usage", "--beam"),
    row("negative_alpha", "evaluate", ["{ckpt}", "--split", "test-clean", "--lm", "{lm}", "--alpha", "-1"], "usage",
        "--alpha"),
    row("nan_beta", "evaluate", ["{ckpt}", "--split", "test-clean", "--lm", "{lm}", "--beta", "nan"], "usage",
        "--beta"),
    row("text_as_lm", "evaluate", ["{ckpt}", "--split", "test-clean", "--lm", "{text}"], "error", "{text}",
        "not an ARPA"),
    row("empty_lm", "evaluate", ["{ckpt}", "--split", "test-clean", "--lm", "{empty_file}"], "error", "{empty_file}",
        "not an ARPA", "empty"),
    row("binary_lm", "evaluate", ["{ckpt}", "--split", "test-clean", "--lm", "{binary}"], "error", "{binary}",
        "not an ARPA"),
    row("truncated_lm", "evaluate", ["{ckpt}", "--split", "test-clean", "--lm", "{truncated_lm}"], "error",
        "{truncated_lm}", "not an ARPA"),
    row("latin1_lm", "evaluate", ["{ckpt}", "--split", "test-clean", "--lm", "{latin1_lm}", *FAST], "error",
        "{latin1_lm}", "not UTF-8"),
    row("folder_as_lm", "evaluate", ["{ckpt}", "--split", "test-clean", "--lm", "{root}"], "error", "{root}"),
    row("missing_lm", "evaluate", ["{ckpt}", "--split", "test-clean", "--lm", "{nowhere}"], "error", "{nowhere}",
        "not found"),
    row("bad_tuned_json", "evaluate", ["{ckpt}", "--split", "test-clean", "--lm", "{bad_tuned_lm}"], "error",
        "words.tuned.json"),
    row("folder_as_checkpoint", "evaluate", ["{root}", "--split", "test-clean"], "error", "{root}"),
    row("kws_checkpoint", "evaluate", ["{kws_ckpt}", "--split", "test-clean"], "error", "{kws_ckpt}", "not an ASR"),
    row("log_probs_cache_as_checkpoint", "evaluate", ["{empty_cache}", "--split", "test-clean"], "error",
        "{empty_cache}", "not an ASR"),
    row("text_as_checkpoint", "evaluate", ["{text}", "--split", "test-clean"], "error", "{text}",
        "not a readable checkpoint"),
    row("checkpoint_without_config", "evaluate", ["{no_config_ckpt}", "--split", "test-clean"], "error",
        "{no_config_ckpt}"),
    # -- asr.transcribe
    row("json_hundreds_of_tokens", "transcribe", ["{ckpt}", "{long_wav}", "--json"], "success"),
    row("short_and_silent_audio", "transcribe", ["{ckpt}", "{short_wav}", "{silent_wav}", "--json"], "success"),
    row("text_as_audio", "transcribe", ["{ckpt}", "{not_audio}", "{wav}"], "partial", "{not_audio}"),
    row("folder_without_audio", "transcribe", ["{ckpt}", "{empty}", "{wav}"], "partial", "{empty}", "no audio files"),
    row("librispeech_root_as_folder", "transcribe", ["{ckpt}", "{corpus}", "{wav}"], "partial", "{corpus}",
        "subfolders are not read"),
    row("plot_into_out", "transcribe", ["{ckpt}", "{wav}", "--plot", "--out", "{tmp}/plots", "--json"], "success"),
    row("out_without_plot", "transcribe", ["{ckpt}", "{wav}", "--out", "{tmp}/plots"], "usage", "--plot"),
    row("file_as_out", "transcribe", ["{ckpt}", "{wav}", "--plot", "--out", "{text}"], "error", "{text}",
        "not a folder"),
    row("alpha_without_lm", "transcribe", ["{ckpt}", "{wav}", "--alpha", "0.5"], "usage", "--alpha", "--lm"),
    row("missing_audio", "transcribe", ["{ckpt}", "{nowhere}", "{wav}"], "partial", "{nowhere}"),
    row("empty_audio_file", "transcribe", ["{ckpt}", "{empty_file}", "{wav}"], "partial", "{empty_file}"),
    row("nan_audio", "transcribe", ["{ckpt}", "{nan_wav}", "{wav}"], "partial", "{nan_wav}"),
    row("odd_byte_pcm", "transcribe", ["{ckpt}", "{odd_pcm}", "{wav}"], "partial", "{odd_pcm}"),
    row("negative_beam", "transcribe", ["{ckpt}", "{wav}", "--beam", "-3"], "usage", "--beam"),
    row("negative_alpha", "transcribe", ["{ckpt}", "{wav}", "--lm", "{lm}", "--alpha", "-1"], "usage", "--alpha"),
    row("nan_beta", "transcribe", ["{ckpt}", "{wav}", "--lm", "{lm}", "--beta", "nan"], "usage", "--beta"),
    row("text_as_lm", "transcribe", ["{ckpt}", "{wav}", "--lm", "{text}"], "error", "{text}", "not an ARPA"),
    row("empty_lm", "transcribe", ["{ckpt}", "{wav}", "--lm", "{empty_file}"], "error", "{empty_file}", "not an ARPA"),
    row("binary_lm", "transcribe", ["{ckpt}", "{wav}", "--lm", "{binary}"], "error", "{binary}", "not an ARPA"),
    row("latin1_lm", "transcribe", ["{ckpt}", "{wav}", "--lm", "{latin1_lm}"], "error", "{latin1_lm}", "not UTF-8"),
    row("negative_tuned_alpha", "transcribe", ["{ckpt}", "{wav}", "--lm", "{negative_tuned_lm}"], "error",
        "negative_tuned/words.tuned.json", "alpha >= 0"),
    row("kws_checkpoint", "transcribe", ["{kws_ckpt}", "{wav}"], "error", "{kws_ckpt}", "not an ASR"),
    row("folder_as_checkpoint", "transcribe", ["{root}", "{wav}"], "error", "{root}"),
    # -- asr.lm_tune
    row("empty_folder", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--split", "{empty}", *GRID], "error", "{empty}",
        "0 utterances read"),
    row("latin1_transcripts", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--split", "{latin1}", *GRID], "error",
        "{latin1}", "0 utterances read"),
    row("all_audio_unreadable", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--split", "{bad_audio}", *GRID], "error",
        "{bad_audio}", "0 utterances scored"),
    row("unknown_split_name", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--split", "dev-cleen", *GRID], "error",
        "dev-cleen"),
    row("plain_folder_no_transcripts", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--split", "{plain_all_bad}", *GRID],
        "error", "{plain_all_bad}", "0 utterances read", "audio files without transcript"),
    row("text_as_lm", "lm_tune", ["{ckpt}", "--lm", "{text}", *GRID], "error", "{text}", "not an ARPA"),
    row("empty_lm", "lm_tune", ["{ckpt}", "--lm", "{empty_file}", *GRID], "error", "{empty_file}", "not an ARPA"),
    row("binary_lm", "lm_tune", ["{ckpt}", "--lm", "{binary}", *GRID], "error", "{binary}", "not an ARPA"),
    row("latin1_lm", "lm_tune", ["{ckpt}", "--lm", "{latin1_lm}", *GRID], "error", "{latin1_lm}", "not UTF-8"),
    row("negative_beam", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--beam", "-3"], "usage", "--beam"),
    row("zero_beam", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--beam", "0"], "usage", "--beam"),
    row("negative_alpha", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--alphas", "-1", "0"], "usage", "--alphas"),
    row("nan_beta", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--betas", "nan"], "usage", "--betas"),
    row("empty_alpha_grid", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--alphas"], "usage", "--alphas"),
    row("folder_as_cache", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--log-probs", "{root}", *GRID], "error", "{root}",
        "is a folder"),
    row("checkpoint_as_cache", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--log-probs", "{ckpt}", *GRID], "error",
        "{ckpt}", "not a saved log-probs file"),
    row("empty_cache", "lm_tune", ["{ckpt}", "--lm", "{lm}", "--log-probs", "{empty_cache}", *GRID], "error",
        "{empty_cache}", "0 utterances"),
    row("kws_checkpoint", "lm_tune", ["{kws_ckpt}", "--lm", "{lm}", *GRID], "error", "{kws_ckpt}", "not an ASR"),
    row("cache_written_and_tuned", "lm_tune", ["{ckpt}", "--lm", "{tmp}/words.arpa", "--split", "dev-clean",
                                               "--log-probs", "{tmp}/dev.pt", *GRID], "success"),
    row("plain_folder", "lm_tune", ["{ckpt}", "--lm", "{tmp}/words.arpa", "--split", "{plain}", *GRID], "success"),
]


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.mark.parametrize("cli, argv, expect, needles", MATRIX)
def test_bad_input(cli, argv, expect, needles, world, tmp_path, monkeypatch, capsys, caplog):
    places = {**{k: str(v) for k, v in world.items()}, "tmp": str(tmp_path / "row")}
    (tmp_path / "row").mkdir()
    shutil.copy(world["lm"], tmp_path / "row" / "words.arpa")
    argv = [a.format(**places) for a in argv]
    needles = [n.format(**places) if expect != "skip" else n for n in needles]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = {**_snapshot(world["root"]), **_snapshot(world["corpus"])}

    code = 0
    try:
        MAINS[cli](argv)  # any exception other than SystemExit fails the test: a traceback
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()

    if expect == "error":
        assert isinstance(code, str) and code.startswith("error: ") and "\n" not in code, code
        for needle in needles:
            assert needle in code
    elif expect == "usage":
        assert code == 2
        last = err.splitlines()[-1]  # argparse prints its usage, then one error line
        assert ": error: " in last and all(needle in last for needle in needles), err
    elif expect == "partial":
        assert code == 1
        assert len(err.splitlines()) == 1 and err.startswith("error: ") and all(n in err for n in needles), err
        assert [line.split("\t")[0] for line in out.splitlines()] == [places["wav"]]
    else:
        assert code in (0, None), code
        if expect == "skip":
            warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
            assert any(re.search(needles[0], w) for w in warnings), warnings
    assert not any(cwd.iterdir()), "files written to the working directory"
    assert {**_snapshot(world["root"]), **_snapshot(world["corpus"])} == before, "shared inputs changed"


def test_matrix_covers_every_entry_point_and_outcome():
    outcomes = {(p.values[0], p.values[2]) for p in MATRIX}
    for cli in MAINS:
        assert {(cli, "error"), (cli, "usage"), (cli, "success")} <= outcomes
    assert ("evaluate", "skip") in outcomes and ("transcribe", "partial") in outcomes


def test_training_helpers_refuse_to_score_nothing(world):
    # asr.train's dev/test evaluation goes through these: an empty split must stop it, not log CER 0.
    ckpt = load_asr_checkpoint(world["ckpt"])
    cfg = from_dict(TrainConfig, ckpt.config)
    cfg.data.num_workers = 0
    with pytest.raises(ValueError, match=f"^{re.escape(str(world['empty']))}: 0 utterances read"):
        load_split(cfg, str(world["empty"]))
    with pytest.raises(ValueError, match="0 utterances read .*2 unreadable transcript lines"):
        eval_loader(cfg, ckpt.tokenizer, str(world["latin1"]))
    loader = eval_loader(cfg, ckpt.tokenizer, str(world["bad_audio"]))
    scored_nothing = f"^{re.escape(str(world['bad_audio']))}\\S*: 0 utterances scored \\(2 of 2 skipped"
    with pytest.raises(ValueError, match=scored_nothing):
        evaluate.evaluate(ckpt.model, ckpt.features, loader, ckpt.tokenizer, torch.device("cpu"))
    with pytest.raises(ValueError, match=scored_nothing):
        evaluate.collect_log_probs(ckpt.model, ckpt.features, loader, torch.device("cpu"), progress=False)


def test_characters_outside_the_alphabet_are_reported_once_per_split_in_training(world, caplog):
    cfg = TrainConfig()
    cfg.data.train_splits = [str(world["accents"]), str(world["one_latin1"])]
    utterances = load_train_utterances(cfg)
    assert [u.text for u in utterances[:3]] == ["caf at o'clock", "", "red cat"]
    reports = [r.getMessage() for r in caplog.records if "outside the alphabet" in r.getMessage()]
    assert len(reports) == 1 and reports[0].startswith(f"{world['accents']}: 2 of 3 transcripts")
