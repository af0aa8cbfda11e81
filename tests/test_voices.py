"""Generated eSpeak voices (corpora.synth.voices) and the held-out channels (corpora.synth.degrade)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from corpora.synth import voices
from corpora.synth.degrade import (HELDOUT_CHANNELS, agc_compression, heldout_channel, phone_codec,
                                   sparse_echoes)
from corpora.synth.espeak import available_variants, variants_dir

REPO = Path(__file__).resolve().parents[1]


def _formants(text: str) -> list[list[int]]:
    return [[int(x) for x in line.split()[1:]] for line in text.splitlines()
            if line.startswith("formant ")]


def test_random_voice_draws_within_its_ranges_and_repeats_for_a_seed():
    ranges = voices.VoiceRanges(formant_scale=(0.9, 0.9), formant_jitter=0.05, klatt_p=1.0)
    voice = voices.random_voice("rv0001", ranges, np.random.default_rng(3))
    assert voice == voices.random_voice("rv0001", ranges, np.random.default_rng(3))
    assert voice.text.startswith("language variant\nname rv0001\n")
    formants = _formants(voice.text)
    assert [f[0] for f in formants] == list(range(voices.N_FORMANTS))
    assert all(round(90 * 0.95) <= freq <= round(90 * 1.05) for _, freq, _, _ in formants)
    assert voice.klatt in voices.KLATT_ENGINES and f"klatt {voice.klatt}\n" in voice.text
    plain = voices.random_voice("rv0002", voices.VoiceRanges(), np.random.default_rng(3))
    assert plain.klatt == 0 and "klatt" not in plain.text


def test_voice_ranges_are_checked():
    with pytest.raises(ValueError, match="formant_scale"):
        voices.VoiceRanges(formant_scale=(1.2, 0.9))
    with pytest.raises(ValueError, match="klatt_p"):
        voices.VoiceRanges(klatt_p=1.5)


def test_voice_data_folder_holds_packaged_and_generated_variants(tmp_path):
    generated = voices.random_voices(2, "rv", voices.VoiceRanges(), np.random.default_rng(0))
    folder = voices.voice_data_folder(tmp_path / "data", generated)
    names = {p.name for p in variants_dir(str(folder)).iterdir()}
    assert names == set(available_variants()) | {"rv0000", "rv0001"}
    assert (folder / "en_dict").exists() and (folder / "voices" / "!v" / "m1").exists()
    clash = voices.random_voice("m1", voices.VoiceRanges(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="shadow a packaged variant"):
        voices.voice_data_folder(tmp_path / "other", [clash])


_CENTROIDS = """
import sys
import numpy as np
from corpora.synth import voices
from corpora.synth.espeak import Espeak
fixed = dict(formant_jitter=0.0, pitch_base=(120, 120), pitch_span=(1.4, 1.4), breath_p=0.0,
             tilt_db_per_octave=(0.0, 0.0), formant_height=(100, 100), formant_width=(100, 100))
made = [voices.random_voice(f"t{i}", voices.VoiceRanges(formant_scale=(s, s), **fixed),
                            np.random.default_rng(0)) for i, s in enumerate((0.8, 1.0, 1.25))]
engine = Espeak(str(voices.voice_data_folder(sys.argv[1], made)))
for voice in made:
    wave = engine.synth("the quick brown fox jumps over the lazy dog", "en-us+" + voice.name,
                        160, 50, 50)
    power = np.abs(np.fft.rfft(wave)) ** 2
    print((power * np.fft.rfftfreq(wave.size, 1 / 16000)).sum() / power.sum())
"""


def test_formant_scale_moves_the_spectrum(tmp_path):
    # A fresh process: eSpeak reads one data folder per process.
    out = subprocess.run([sys.executable, "-c", _CENTROIDS, str(tmp_path / "data")], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    low, mid, high = (float(x) for x in out.split())
    assert low * 1.15 < mid and mid * 1.15 < high  # measured: 816, 1110, 1423 Hz


def _band_energy(wave: np.ndarray, lo: float, hi: float) -> float:
    power = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(wave.size, 1 / 16000)
    return float(power[(freqs >= lo) & (freqs < hi)].sum())


def test_phone_codec_is_narrowband_and_keeps_the_speech_band():
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    out = phone_codec(noise)
    assert out.shape == noise.shape and out.dtype == np.float32
    assert _band_energy(out, 4300, 8000) < 0.01 * _band_energy(noise, 4300, 8000)
    tone = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)).astype(np.float32)
    coded = phone_codec(tone)
    error = coded[100:-100] - tone[100:-100]
    snr = 10 * np.log10(np.mean(tone ** 2) / np.mean(error ** 2))
    assert 25 < snr < 45  # 8-bit mu-law: about 38 dB on a loud tone, not transparent


def test_sparse_echoes_add_a_few_discrete_reflections():
    impulse = np.zeros(2000, dtype=np.float32)
    impulse[0] = 1.0
    out = sparse_echoes(impulse, np.random.default_rng(1))
    taps = np.flatnonzero(np.abs(out) > 1e-6)
    assert taps[0] == 0 and 2 <= len(taps) - 1 <= 5
    assert taps[-1] <= 35 * 16 and np.all(np.abs(out[taps[1:]]) >= 0.3 - 1e-6)


def test_agc_compression_flattens_loudness_and_keeps_the_rms():
    t = np.arange(32000) / 16000
    # a loud half and a quiet half (20 dB apart), as a stressed and an unstressed syllable
    wave = (np.sin(2 * np.pi * 300 * t) * np.where(t < 1.0, 0.5, 0.05)).astype(np.float32)
    out = agc_compression(wave, np.random.default_rng(0))

    def level_gap_db(x):
        return 20 * np.log10(np.sqrt(np.mean(x[2000:14000] ** 2)) / np.sqrt(np.mean(x[18000:30000] ** 2)))
    assert level_gap_db(wave) == pytest.approx(20.0, abs=0.1)
    assert level_gap_db(out) < 12.0  # compressed by a ratio of 4-10 above the threshold
    assert np.sqrt(np.mean(out ** 2)) == pytest.approx(np.sqrt(np.mean(wave ** 2)), rel=1e-4)


def test_heldout_channel_applies_one_or_two_named_channels():
    wave = (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)
    seen = set()
    for seed in range(20):
        out, names = heldout_channel(wave, np.random.default_rng(seed))
        assert out.shape == wave.shape and np.max(np.abs(out)) <= 1.0
        assert 1 <= len(names) <= 2 and len(set(names)) == len(names)
        seen.update(names)
        again, _ = heldout_channel(wave, np.random.default_rng(seed))
        assert np.array_equal(out, again)
    assert seen == set(HELDOUT_CHANNELS)


def test_engine_with_refuses_more_voices_than_espeak_lists():
    from corpora.synth.voices import MAX_GENERATED_PER_FOLDER, engine_with

    many = voices.random_voices(MAX_GENERATED_PER_FOLDER + 1, "zz", voices.VoiceRanges(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="smaller chunk_size"):
        with engine_with(many):
            pass
