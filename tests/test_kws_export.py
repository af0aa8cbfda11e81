import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from common.config import load_config
from common.features import FeatureConfig, make_features
from kws.demo import detect
from kws.distill import DistillConfig
from kws.export import export
from kws.model import CRNN
from kws.quantize import pack_int8, unpack_int8
from kws.stream import StreamingDetector, stream_wave
from test_kws_stream import track

FEATURES = make_features(FeatureConfig(kind="logmel", n_mels=40))
PROJECT = Path(__file__).resolve().parent.parent


def int8_student() -> CRNN:
    """The student architecture of configs/kws/distill.json with weight-only int8 weights."""
    torch.manual_seed(0)
    model = CRNN(40, load_config(DistillConfig, PROJECT / "configs/kws/distill.json").model).eval()
    return unpack_int8(model, pack_int8(model))


def write_wav(path: Path, samples: torch.Tensor, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes((samples.clamp(-1, 1) * 32767).round().short().numpy().tobytes())
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[CRNN, Path, int]:
    model = int8_student()
    window = (101 - model.kernel_time) // model.stride_time + 1
    return model, export(model, FEATURES, window, tmp_path_factory.mktemp("export") / "detector.ts"), window


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")  # see kws/export.py
@pytest.mark.parametrize("chunk", [160, 333, 5000])
def test_exported_detector_matches_the_in_project_stream(exported, chunk):
    sys.path.insert(0, str(PROJECT / "kws"))  # the standalone script is not part of the package API
    import stream_standalone

    model, path, window = exported
    wave_ = track(3.0, seed=3)
    times, probs = stream_wave(StreamingDetector(model, FEATURES, window), wave_, chunk)
    with torch.inference_mode():
        exported_times, exported_probs = stream_standalone.stream(torch.jit.load(str(path)), wave_, chunk)
    torch.testing.assert_close(exported_probs, probs, atol=1e-5, rtol=0)
    np.testing.assert_allclose(exported_times, times.numpy(), atol=1e-6)


def test_standalone_script_prints_the_in_project_detections_with_only_torch(exported, tmp_path):
    model, path, window = exported
    wav = write_wav(tmp_path / "track.wav", track(4.0, seed=4))
    # Both sides stream the 16-bit samples of the file.
    with wave.open(str(wav), "rb") as f:
        samples = torch.frombuffer(bytearray(f.readframes(f.getnframes())), dtype=torch.int16).float() / 32768
    times, probs = stream_wave(StreamingDetector(model, FEATURES, window), samples, 160)
    threshold = float(probs.quantile(0.6))  # random weights: a threshold the track crosses
    expected = detect(times, probs, threshold, 1.0)
    assert expected
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, str(PROJECT / "kws" / "stream_standalone.py"), str(path), str(wav),
                          "--threshold", f"{threshold!r}"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, check=True).stdout
    assert f"{len(expected)} detections" in out
    for t, p in expected:
        assert f"keyword at {t:.2f} s (p = {p:.3f})" in out


def test_standalone_script_refuses_a_wav_of_another_rate(exported, tmp_path):
    _, path, _ = exported
    wav = write_wav(tmp_path / "8k.wav", torch.zeros(800), rate=8000)
    result = subprocess.run([sys.executable, str(PROJECT / "kws" / "stream_standalone.py"), str(path), str(wav)],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "expected 16-bit mono PCM at 16000 Hz" in result.stderr
