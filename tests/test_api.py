"""The Python API: `asr.Transcriber` gives what `python -m asr.transcribe` prints, and `kws.Detector`
detects on a checkpoint what it detects on the checkpoint's exported TorchScript file, which is
what `python -m kws.demo` prints."""
import json
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr import Transcriber, Transcript, Word, transcribe
from common.checkpoint import CheckpointError, save_checkpoint
from common.config import to_dict
from kws import Detection, Detector, demo, export
from kws.model import CRNN, ModelConfig as KwsModelConfig
from kws.train import TrainConfig as KwsTrainConfig
from test_kws_export import write_wav
from test_kws_stream import track
from test_transcribe import audio_files, lm_path, tiny_checkpoint  # noqa: F401 (fixtures)

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def asr_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("asr") / "tiny.pt"
    tiny_checkpoint(path)
    return path


def flags(decoding: dict) -> list[str]:
    return [a for key, value in decoding.items() for a in (f"--{key}", str(value))]


@pytest.mark.parametrize("decoding", [{}, {"beam": 4}, {"lm": "LM"}, {"lm": "LM", "beam": 8, "alpha": 0.3, "beta": 2.0}],
                         ids=["greedy", "beam", "beam_lm", "beam_lm_alpha_beta"])
def test_transcriber_gives_what_the_command_line_prints(asr_checkpoint, audio_files, lm_path, capsys, decoding):
    decoding = {k: str(lm_path) if v == "LM" else v for k, v in decoding.items()}
    files = [audio_files["wav"], audio_files["flac"], audio_files["stereo"]]
    transcriber = Transcriber.from_checkpoint(asr_checkpoint, **decoding)
    api = [transcriber.transcribe(f) for f in files]
    transcribe.main([str(asr_checkpoint), *map(str, files), "--json", *flags(decoding)])
    cli = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert cli == [{"file": str(f), **t.to_dict()} for f, t in zip(files, api)]
    assert sum(len(t.words) for t in api) >= 2 and all(isinstance(w, Word) for t in api for w in t.words)
    expected = "greedy" if not decoding else f"beam {decoding.get('beam', 32)}"
    assert transcriber.decoding.startswith(expected) and ("LM" in transcriber.decoding) == ("lm" in decoding)


def test_a_wave_in_memory_transcribes_as_its_file(asr_checkpoint, audio_files):
    transcriber = Transcriber.from_checkpoint(asr_checkpoint, beam=4)
    mono, rate = sf.read(audio_files["wav"], dtype="float32")
    assert transcriber.transcribe(mono, sample_rate=rate) == transcriber.transcribe(audio_files["wav"])
    # (channels, samples) at 44.1 kHz: averaged and resampled as the file reader does.
    stereo, rate = sf.read(audio_files["stereo"], dtype="float32")
    from_array = transcriber.transcribe(torch.from_numpy(stereo.T.copy()), sample_rate=rate)
    assert from_array == transcriber.transcribe(str(audio_files["stereo"]))
    assert isinstance(from_array, Transcript) and from_array.duration == pytest.approx(1.2, abs=1e-3)


def test_transcriber_refuses_what_it_cannot_use_in_one_line(asr_checkpoint, tmp_path, lm_path):
    transcriber = Transcriber.from_checkpoint(asr_checkpoint)
    for audio, rate, message in [(np.zeros(100), None, "sample_rate"), (np.full(100, np.nan), 16000, "NaN"),
                                 (np.zeros((2, 2, 100)), 16000, "shape"), (np.zeros(0), 16000, "empty")]:
        with pytest.raises(ValueError, match=message):
            transcriber.transcribe(audio, sample_rate=rate)
    for settings, message in [({"alpha": 0.5}, "give lm"), ({"beam": -1}, "beam"),
                              ({"lm": lm_path, "beta": float("nan")}, "beta")]:
        with pytest.raises(ValueError, match=message):
            Transcriber.from_checkpoint(asr_checkpoint, **settings)
    kws = tmp_path / "kws.pt"
    save_checkpoint(kws, {"model": CRNN(40, KwsModelConfig()).state_dict(), "config": to_dict(KwsTrainConfig())})
    with pytest.raises(CheckpointError, match="not an ASR"):
        Transcriber.from_checkpoint(kws)


def test_tuned_values_for_another_checkpoint_are_noted_once_on_stderr(asr_checkpoint, audio_files, lm_path,
                                                                       tmp_path, capsys):
    from asr.lm import tuned_path

    tuned_path(lm_path).write_text(json.dumps({"alpha": 0.25, "beta": 2.0, "checkpoint": str(tmp_path / "other.pt"),
                                               "split": "dev-other"}))
    try:
        assert Transcriber.from_checkpoint(asr_checkpoint, lm=lm_path).decoding == "beam 32 + LM (alpha 0.25, beta 2)"
        note = capsys.readouterr().err
        assert note.startswith("note: alpha 0.25, beta 2") and "other.pt on dev-other" in note
        assert note.rstrip().endswith(f"used with {asr_checkpoint}") and note.count("\n") == 1
        transcribe.main([str(asr_checkpoint), str(audio_files["wav"]), "--lm", str(lm_path)])
        assert capsys.readouterr().err == note
        tuned_path(lm_path).write_text(json.dumps({"alpha": 0.25, "beta": 2.0, "checkpoint": str(asr_checkpoint)}))
        Transcriber.from_checkpoint(asr_checkpoint, lm=lm_path)
        assert capsys.readouterr().err == ""
    finally:
        tuned_path(lm_path).unlink()


def test_the_packages_import_the_api_on_first_use():
    code = ("import sys, asr, kws; assert 'asr.transcriber' not in sys.modules and 'kws.detector' not in sys.modules;"
            "from asr import Transcriber; from kws import Detector; print(Transcriber.__module__, Detector.__module__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["asr.transcriber", "kws.detector"]


# -- kws.Detector


@pytest.fixture(scope="module")
def kws_files(tmp_path_factory) -> dict[str, Path]:
    """A kws.train-format checkpoint (random weights), its export, and a 16-bit wav track."""
    root = tmp_path_factory.mktemp("kws")
    torch.manual_seed(0)
    files = {"checkpoint": root / "best.pt", "exported": root / "detector.ts", "wav": root / "track.wav"}
    save_checkpoint(files["checkpoint"], {"model": CRNN(40, KwsModelConfig()).state_dict(),
                                          "config": to_dict(KwsTrainConfig()), "epoch": 0, "step": 0})
    assert export.main([str(files["checkpoint"]), "--out", str(files["exported"])]) == 0
    write_wav(files["wav"], track(5.0, seed=4))
    return files


def wav_samples(path: Path) -> torch.Tensor:
    with wave.open(str(path), "rb") as f:
        return torch.frombuffer(bytearray(f.readframes(f.getnframes())), dtype=torch.int16).float() / 32768


def crossing_threshold(probs: torch.Tensor) -> float:
    """The threshold the track crosses most often among those half-way between two of its frames'
    probabilities at least 1e-4 apart: the exported file's 1e-5 differences cannot move a frame
    across it."""
    values = probs.sort().values
    candidates = [float(a + b) / 2 for a, b in zip(values[:-1], values[1:]) if b - a > 1e-4]
    return max(candidates, key=lambda t: int(((probs[1:] >= t) & (probs[:-1] < t)).sum()))


def test_detector_on_a_checkpoint_and_on_its_export_detects_what_the_demo_prints(kws_files, tmp_path, capsys):
    samples = wav_samples(kws_files["wav"])
    threshold = crossing_threshold(Detector.from_checkpoint(kws_files["checkpoint"]).run(samples).probabilities)
    runs = {}
    for kind in ("checkpoint", "exported"):
        detector = Detector.from_checkpoint(kws_files[kind], threshold=threshold, refractory=0.5)
        assert (detector.sample_rate, detector.window, detector.step) == (16000, 11, 1)
        runs[kind] = detector.run(samples)
    assert len(runs["checkpoint"].detections) >= 3, "the threshold must give detections"
    torch.testing.assert_close(runs["exported"].probabilities, runs["checkpoint"].probabilities, atol=1e-5, rtol=0)
    assert torch.equal(runs["exported"].times, runs["checkpoint"].times)
    assert [d.time for d in runs["exported"].detections] == [d.time for d in runs["checkpoint"].detections]
    assert [d.probability for d in runs["exported"].detections] == pytest.approx(
        [d.probability for d in runs["checkpoint"].detections], abs=1e-5)
    assert Detector.from_checkpoint(kws_files["checkpoint"]).keyword == "sheila"

    # kws.demo streams the file through the same class: the same lines, from either file.
    for kind in ("checkpoint", "exported"):
        assert demo.main([str(kws_files[kind]), "--wav", str(kws_files["wav"]), "--threshold", repr(threshold),
                          "--refractory", "0.5", "--out", str(tmp_path / f"{kind}.png")]) == 0
        printed = re.findall(r"^ +([\d.]+) s  p=([\d.]+)$", capsys.readouterr().out, re.MULTILINE)
        assert printed == [(f"{d.time:.2f}", f"{d.probability:.3f}") for d in runs["checkpoint"].detections]
        assert (tmp_path / f"{kind}.png").is_file()


def test_pushing_chunks_of_any_size_fires_the_same_detections_as_they_happen(kws_files):
    samples = wav_samples(kws_files["wav"])
    detector = Detector.from_checkpoint(kws_files["exported"])
    whole = detector.run(samples, chunk=16000)
    detector = Detector.from_checkpoint(kws_files["exported"], threshold=crossing_threshold(whole.probabilities))
    expected = detector.run(samples).detections
    assert len(expected) >= 2
    detector.reset()
    rng = np.random.default_rng(0)
    fired, start = [], 0
    while start < len(samples):
        size = int(rng.integers(1, 3000))
        chunk = samples[start:start + size].numpy().astype(np.float64)  # any float array
        new = detector.push(chunk)
        assert all(d.time <= (start + size) / 16000 for d in new)  # fired by the samples pushed so far
        fired += new
        start += size
    assert [d.time for d in fired] == [d.time for d in expected]
    # Peaks completed as the runs went on (the chunking moves the exported STFT's float rounding).
    assert [d.probability for d in detector.detections] == pytest.approx([d.probability for d in expected], abs=1e-6)
    assert all(isinstance(d, Detection) for d in fired)


def test_detector_refuses_what_it_cannot_use(kws_files, tmp_path, asr_checkpoint):
    with pytest.raises(CheckpointError, match=re.escape(f"{asr_checkpoint}: checkpoint config does not fit")):
        Detector.from_checkpoint(asr_checkpoint)  # an ASR checkpoint
    noise = tmp_path / "noise.ts"
    noise.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="noise.ts"):
        Detector.from_checkpoint(noise)
    with pytest.raises(ValueError, match="fixed at export"):
        Detector.from_checkpoint(kws_files["exported"], window=5)
    with pytest.raises(ValueError, match="threshold"):
        Detector.from_checkpoint(kws_files["exported"], threshold=1.5)
    with pytest.raises(ValueError, match="mono"):
        Detector.from_checkpoint(kws_files["exported"]).push(np.zeros((2, 160)))


@pytest.mark.parametrize("argv, message", [
    (["{wav}"], "the first argument is the CHECKPOINT"),  # the old `kws.demo FILE.wav`
    (["{checkpoint}", "--wav", "{wav}", "--mic"], "two sources"),
    (["{checkpoint}", "--wav", "{wav}", "--root", "somewhere"], "--root"),
])
def test_demo_flags_say_what_goes_where(kws_files, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        demo.main([a.format(**kws_files) for a in argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err.splitlines()[-1]


def test_demo_track_needs_a_checkpoint_not_an_export(kws_files, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        demo.main([str(kws_files["exported"]), "--out", str(tmp_path / "x.png")])
    assert exit_.value.code.startswith("error: ") and "--wav" in exit_.value.code and "\n" not in exit_.value.code

