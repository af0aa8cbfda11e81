"""Command-line decoding on real files: asr.transcribe (text, JSON word times, bad files), the
asr.evaluate decoder table and asr.lm_tune, with a tiny untrained checkpoint in train.py's format."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from asr import evaluate, lm_tune, transcribe, transcriber
from asr.decode import token_words
from asr.lm import train_kneser_ney, tuned_path, write_arpa
from asr.config import TrainConfig
from asr.model import DeepSpeech2, ModelConfig, load_asr_checkpoint
from asr.text import CharTokenizer
from common.checkpoint import save_checkpoint
from common.config import to_dict
from common.features import FeatureConfig, make_features
from conftest import tone_wave

CHARS = ["<blank>", *"abcdefghijklmnopqrstuvwxyz' "]


def tiny_checkpoint(path, data_root=None) -> None:
    """A checkpoint as train.py writes it (model, tokenizer, config, ...) for an untrained tiny model."""
    torch.manual_seed(0)
    cfg = TrainConfig(features=FeatureConfig(n_mels=16, n_mfcc=13, normalize="utterance"),
                      model=ModelConfig(num_conv_layers=1, conv_channels=[4], conv_kernels=[[5, 5]],
                                        conv_strides=[[2, 2]], rnn_layers=1, rnn_hidden=16))
    if data_root is not None:
        cfg.data.root = str(data_root)
    tokenizer = CharTokenizer(cfg.text.alphabet)
    features = make_features(cfg.features)
    model = DeepSpeech2(features.num_features, len(tokenizer.vocab), cfg.model)
    with torch.no_grad():  # louder logits: the untrained model then changes its mind often
        model.head[1].weight.mul_(20.0)
    save_checkpoint(path, {"model": model.state_dict(), "tokenizer": tokenizer.to_dict(), "step": 0,
                           "num_features": features.num_features, "config": to_dict(cfg)})


@pytest.fixture(scope="module")
def lm_path(tmp_path_factory):
    rng = np.random.default_rng(0)
    words = ["cat", "dog", "sun", "red", "big", "top"]
    path = tmp_path_factory.mktemp("lm") / "words.arpa"
    write_arpa(path, train_kneser_ney([list(rng.choice(words, 3)) for _ in range(50)], order=3))
    return path


@pytest.fixture
def audio_files(tmp_path):
    rng = np.random.default_rng(0)
    wave = tone_wave("red cat sun", rng)
    files = {"wav": tmp_path / "mono.wav", "flac": tmp_path / "mono.flac", "stereo": tmp_path / "stereo44k.wav",
             "corrupt": tmp_path / "corrupt.wav"}
    sf.write(files["wav"], wave, 16000, subtype="PCM_16")
    sf.write(files["flac"], wave[:8000], 16000, subtype="PCM_16")
    t = np.arange(int(1.2 * 44100)) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 900 * t)], axis=1)
    sf.write(files["stereo"], stereo, 44100, subtype="PCM_16")
    files["corrupt"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really audio")
    return files


def test_transcribe_prints_text_per_file_and_reports_a_bad_file(tmp_path, audio_files, capsys):
    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint)
    order = ["wav", "corrupt", "flac", "stereo"]
    with pytest.raises(SystemExit) as exit_info:
        transcribe.main([str(checkpoint), *(str(audio_files[k]) for k in order)])
    assert exit_info.value.code == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(audio_files[k]) for k in ["wav", "flac", "stereo"]]
    assert all(set(line.split("\t")[1]) <= set(CHARS[1:]) for line in lines)
    assert err.strip().count("\n") == 0 and str(audio_files["corrupt"]) in err and err.startswith("error: ")


@pytest.mark.parametrize("decoding", [[], ["--beam", "4"], ["--lm", "LM"]])
def test_transcribe_json_has_monotonic_word_times(tmp_path, audio_files, lm_path, capsys, decoding):
    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint)
    decoding = [str(lm_path) if d == "LM" else d for d in decoding]
    transcribe.main([str(checkpoint), str(audio_files["wav"]), str(audio_files["stereo"]), "--json", *decoding])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in records] == [str(audio_files["wav"]), str(audio_files["stereo"])]
    assert records[1]["duration"] == pytest.approx(1.2, abs=1e-3)
    assert sum(len(r["words"]) for r in records) >= 2
    for record in records:
        assert set(record) == {"file", "text", "duration", "words"}
        assert [w["word"] for w in record["words"]] == record["text"].split()
        times = [t for w in record["words"] for t in (w["start"], w["end"])]
        assert times == sorted(times) and all(w["start"] < w["end"] for w in record["words"])
        assert times == [] or times[-1] <= record["duration"] + 0.05
        assert all(0.0 < w["confidence"] <= 1.0 for w in record["words"])


def test_transcribe_json_aligns_hundreds_of_tokens_and_goes_on_to_the_next_file(tmp_path, audio_files, capsys):
    # 20 s of noise: the untrained model emits hundreds of tokens. Aligning 64 or more once overflowed
    # (int8 back-pointers) and ended the run before the next file.
    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint)
    noise = tmp_path / "noise.wav"
    sf.write(noise, (0.3 * np.random.default_rng(0).standard_normal(20 * 16000)).astype(np.float32), 16000)
    transcribe.main([str(checkpoint), str(noise), str(audio_files["wav"]), "--json"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["file"] for r in records] == [str(noise), str(audio_files["wav"])]
    long = records[0]
    assert len(long["text"]) >= 64 and [w["word"] for w in long["words"]] == long["text"].split()
    times = [t for w in long["words"] for t in (w["start"], w["end"])]
    assert times == sorted(times) and times[-1] <= long["duration"] + 0.05


def test_transcribe_reads_the_audio_files_of_a_folder_in_name_order(tmp_path, audio_files, capsys):
    # A folder of recordings with same-named transcripts (what asr.evaluate scores): the .txt files,
    # hidden files and subfolders are not transcribed.
    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint)
    folder = tmp_path / "recordings"
    (folder / "sub").mkdir(parents=True)
    for name, source in [("b.wav", "wav"), ("a.FLAC", "flac"), ("sub/c.wav", "wav"), (".hidden.wav", "wav")]:
        (folder / name).write_bytes(audio_files[source].read_bytes())
    (folder / "b.txt").write_text("red cat sun\n")
    transcribe.main([str(checkpoint), str(folder), str(audio_files["stereo"])])
    printed = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert printed == [str(folder / "a.FLAC"), str(folder / "b.wav"), str(audio_files["stereo"])]


def test_transcribe_plot_writes_a_png_per_file_into_out_or_the_current_folder(tmp_path, audio_files, capsys,
                                                                              monkeypatch):
    from PIL import Image

    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint)
    out = tmp_path / "plots" / "new"  # made when the first plot is written
    files = [str(audio_files["wav"]), str(audio_files["flac"]), str(audio_files["stereo"])]
    transcribe.main([str(checkpoint), *files, "--json", "--plot", "--out", str(out)])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # mono.wav and mono.flac share a stem: the second gets mono-2.png rather than overwriting the first.
    assert [r["plot"] for r in records] == [str(out / "mono.png"), str(out / "mono-2.png"), str(out / "stereo44k.png")]
    for record in records:
        with Image.open(record["plot"]) as png:
            assert png.width >= 900 and png.height >= 700
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    transcribe.main([str(checkpoint), files[0], "--plot"])
    out_text, err = capsys.readouterr()
    assert out_text == f"{files[0]}\t{records[0]['text']}\n" and err == "plot: mono.png\n"
    assert sorted(p.name for p in cwd.iterdir()) == ["mono.png"]


def test_plot_shows_the_likely_rows_of_a_large_vocabulary(tmp_path):
    # A BPE vocabulary has hundreds of tokens: the posteriorgram keeps the blank and the likely ones.
    rng = np.random.default_rng(0)
    vocab = ["<blank>", *(f"▁w{i}" for i in range(150))]
    log_probs = np.log(rng.dirichlet(np.full(len(vocab), 0.05), size=30) + 1e-9)
    words = [transcriber.Word("w3", 0.1, 0.2, 0.5)]
    analysis = transcriber.Analysis(transcriber.Transcript("w3", words, 0.6), rng.standard_normal((40, 61)),
                                    log_probs, [4], np.where(np.arange(30) == 7, 0, -1), 0.01, 0.02)
    png = transcribe.plot_analysis(analysis, vocab, "logmel", tmp_path / "bpe.png", "bpe")
    assert png.stat().st_size > 10_000


def test_word_timings_follow_the_alignment():
    # Frames of 40 ms: blank h i blank space blank o k k blank
    labels = [0, "h", "i", 0, " ", 0, "o", "k", "k", 0]
    ids = [0 if c == 0 else CHARS.index(c) for c in labels]
    log_probs = np.full((len(ids), len(CHARS)), np.log(0.01 / (len(CHARS) - 1)))
    log_probs[np.arange(len(ids)), ids] = np.log(0.99)
    log_probs[7, CHARS.index("k")] = np.log(0.5)  # a less certain frame lowers the word's confidence
    tokens = [CHARS.index(c) for c in "hi ok"]
    words = transcriber.word_timings(log_probs, tokens, token_words(CHARS), frame_seconds=0.04)
    assert [(w.word, w.start, w.end) for w in words] == [("hi", 0.04, 0.12), ("ok", 0.24, 0.36)]
    assert words[0].confidence == pytest.approx(0.99)
    assert words[1].confidence == pytest.approx((0.99 + 0.5 + 0.99) / 3, abs=1e-4)


def test_output_frame_seconds_uses_the_model_stride(tmp_path):
    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint)
    ckpt = load_asr_checkpoint(checkpoint)
    assert transcriber.output_frame_seconds(ckpt.model, ckpt.features) == pytest.approx(0.02)  # hop 10 ms x stride 2


def test_evaluate_prints_greedy_beam_and_lm_rows(tmp_path, tone_corpus, lm_path, capsys):
    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint, data_root=tone_corpus)
    tuned_path(lm_path).write_text(json.dumps({"alpha": 0.25, "beta": 2.0}))
    evaluate.main([str(checkpoint), "--split", "test-clean", "--beam", "4", "--lm", str(lm_path), "--workers", "1"])
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()[2:]]
    assert [r[1].strip() for r in rows] == ["greedy", "beam 4", "beam 4 + LM (alpha 0.25, beta 2)", "(acoustic model)"]
    assert all(r[0].strip() == "test-clean" and r[2].strip() == "6" for r in rows)
    tuned_path(lm_path).unlink()


def test_lm_tune_saves_the_best_pair_next_to_the_lm_and_caches_log_probs(tmp_path, tone_corpus, lm_path, capsys):
    checkpoint = tmp_path / "tiny.pt"
    tiny_checkpoint(checkpoint, data_root=tone_corpus)
    cache = tmp_path / "dev.pt"
    args = ["--lm", str(lm_path), "--split", "dev-clean", "--alphas", "0", "0.5", "--betas", "0", "1",
            "--beam", "4", "--log-probs", str(cache), "--workers", "1"]
    lm_tune.main([str(checkpoint), *args])
    tuned = json.loads(tuned_path(lm_path).read_text())
    assert {"alpha", "beta", "wer", "cer", "grid", "split"} <= set(tuned) and len(tuned["grid"]) == 4
    assert tuned["wer"] == min(r["wer"] for r in tuned["grid"]) and tuned["split"] == "dev-clean"
    assert tuned["checkpoint"] == str(checkpoint.absolute())  # what lm_decoder_config compares with
    assert cache.is_file() and "best: alpha" in capsys.readouterr().out
    png = tuned_path(lm_path).with_suffix(".png")  # the grid as a heatmap, beside the JSON
    assert png.name == "words.tuned.png" and png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    lm_tune.main([str(tmp_path / "no-such-checkpoint.pt"), *args])  # the cache stands in for the model
    assert json.loads(tuned_path(lm_path).read_text())["grid"] == tuned["grid"]
    with pytest.raises(SystemExit, match=r"dev\.pt: the saved log-probs are of split 'dev-clean', not 'test-clean'"):
        lm_tune.main([str(checkpoint), *[("test-clean" if a == "dev-clean" else a) for a in args]])
    tuned_path(lm_path).unlink()
    png.unlink()


def test_hypotheses_are_scored_as_the_text_they_stand_for():
    from asr.evaluate import as_text
    from common.metrics import cer
    # Greedy CTC kept both spaces around a dropped "x": as text that is one space, so the CER also
    # counts the dropped space (2 of 6 characters), as it does for the beam + LM decoder's output.
    assert as_text(" ab  c ") == "ab c"
    assert cer("ab x c", "ab  c") == pytest.approx(1 / 6)
    assert cer("ab x c", as_text("ab  c")) == pytest.approx(2 / 6)
