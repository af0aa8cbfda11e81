import numpy as np
import pytest
import soundfile as sf
import torch

from common.audio import AudioError, load, save


def sine(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_int16_wav(tmp_path):
    ints = np.array([0, 1, -1, 16384, -32768, 32767], dtype=np.int16)
    sf.write(tmp_path / "a.wav", ints, 16000, subtype="PCM_16")
    wave = load(tmp_path / "a.wav", 16000)
    assert wave.dtype == torch.float32 and wave.shape == (6,)
    np.testing.assert_array_equal(wave.numpy(), ints / 32768.0)


def test_float32_wav_is_exact(tmp_path):
    x = np.random.default_rng(0).uniform(-1.5, 1.5, 1000).astype(np.float32)
    sf.write(tmp_path / "f.wav", x, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load(tmp_path / "f.wav", 16000).numpy(), x)


def test_stereo_is_averaged(tmp_path):
    left, right = sine(300, 16000, 0.1), sine(500, 16000, 0.1, amplitude=0.25)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load(tmp_path / "s.wav", 16000).numpy(), (left + right) / 2, atol=1e-7)


def test_resample_8k_to_16k_keeps_length_and_frequency(tmp_path):
    sf.write(tmp_path / "n.wav", sine(440, 8000), 8000, subtype="PCM_16")
    wave = load(tmp_path / "n.wav", 16000)
    assert wave.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(wave.numpy()))
    assert np.argmax(spectrum) == 440  # 1 s of audio: one bin per Hz
    assert wave.abs().max() == pytest.approx(0.5, abs=0.02)


def test_flac_round_trip_via_save(tmp_path):
    x = sine(1000, 16000, 0.5)
    save(tmp_path / "x.flac", torch.from_numpy(x), 16000)
    wave = load(tmp_path / "x.flac", 16000)
    np.testing.assert_allclose(wave.numpy(), x, atol=1 / 32768)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.flac"]  # no temp file left


def test_raw_pcm(tmp_path):
    ints = np.array([0, 100, -100, 32767, -32768], dtype="<i2")
    ints.tofile(tmp_path / "k.pcm")
    np.testing.assert_array_equal(load(tmp_path / "k.pcm", 16000).numpy(), ints / 32768.0)
    # A headerless file at another rate gets resampled like any other.
    (np.round(sine(440, 8000) * 32767).astype("<i2")).tofile(tmp_path / "n.raw")
    assert load(tmp_path / "n.raw", 16000, raw_sample_rate=8000).shape == (16000,)


def test_raw_pcm_round_trip_via_save(tmp_path):
    x = sine(200, 16000, 0.1)
    save(tmp_path / "x.pcm", x, 16000)
    assert (tmp_path / "x.pcm").stat().st_size == 2 * len(x)  # no header
    np.testing.assert_allclose(load(tmp_path / "x.pcm", 16000).numpy(), x, atol=1 / 32768)


def test_save_clips_integer_pcm(tmp_path):
    save(tmp_path / "c.wav", np.array([2.0, -2.0, 0.5], dtype=np.float32), 16000)
    ints, _ = sf.read(tmp_path / "c.wav", dtype="int16")
    np.testing.assert_array_equal(ints, [32767, -32768, 16384])


@pytest.mark.parametrize("cut", [-1001, 0.5, 50, 30, 10])
def test_truncated_wav_raises_naming_the_file(tmp_path, cut):
    sf.write(tmp_path / "full.wav", sine(440, 16000), 16000, subtype="PCM_16")
    data = (tmp_path / "full.wav").read_bytes()
    end = int(len(data) * cut) if isinstance(cut, float) else cut % len(data)
    (tmp_path / "cut.wav").write_bytes(data[:end])
    with pytest.raises(AudioError, match="cut.wav"):
        load(tmp_path / "cut.wav", 16000)


def test_truncated_raw_and_flac(tmp_path):
    (tmp_path / "odd.pcm").write_bytes(b"\x00\x01\x02")
    with pytest.raises(AudioError, match="odd.pcm.*truncated"):
        load(tmp_path / "odd.pcm", 16000)
    save(tmp_path / "x.flac", sine(440, 16000), 16000)
    data = (tmp_path / "x.flac").read_bytes()
    (tmp_path / "x.flac").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="x.flac"):
        load(tmp_path / "x.flac", 16000)


def test_empty_audio(tmp_path):
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="zero.wav"):
        load(tmp_path / "zero.wav", 16000)
    sf.write(tmp_path / "noframes.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="noframes.wav.*empty"):
        load(tmp_path / "noframes.wav", 16000)
    (tmp_path / "e.pcm").write_bytes(b"")
    with pytest.raises(AudioError, match="e.pcm.*empty"):
        load(tmp_path / "e.pcm", 16000)


def test_non_finite_samples(tmp_path):
    x = sine(440, 16000, 0.1)
    x[10] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav.*NaN"):
        load(tmp_path / "nan.wav", 16000)


def test_missing_file_is_an_audio_error_and_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="missing.wav"):
        load(tmp_path / "missing.wav", 16000)
    with pytest.raises(AudioError):
        load(tmp_path / "missing.wav", 16000)
