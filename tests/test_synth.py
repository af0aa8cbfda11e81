"""The eSpeak engine, speakers, degradations, chunked process pool and sentence generator."""
import re
import time

import numpy as np
import pytest
from scipy.signal import welch

from corpora.synth import degrade, english
from corpora.synth.babble import synth_babble
from corpora.synth.espeak import SAMPLE_RATE, Espeak, EspeakError, available_variants
from corpora.synth.pool import run_chunks
from corpora.synth.speakers import PLAIN_VARIANTS, Speaker, jitter, make_speakers


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


# --- engine ----------------------------------------------------------------------------------

def test_engine_speaks_16k_float_audio():
    wave = Espeak().synth("hello there, how are you today", "en-us+m3", 160, 50, 50)
    assert SAMPLE_RATE == 16000
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert 1.0 < wave.size / SAMPLE_RATE < 3.5  # seven words at 160 wpm
    assert _rms(wave) > 0.02 and np.abs(wave).max() <= 1.0


def test_engine_rate_changes_duration():
    engine = Espeak()
    slow = engine.synth("one two three four five six", "en+f2", 100, 50, 50)
    fast = engine.synth("one two three four five six", "en+f2", 300, 50, 50)
    assert slow.size > 1.8 * fast.size


def test_engine_rejects_missing_voice_and_unknown_variant():
    engine = Espeak()
    with pytest.raises(EspeakError, match="'en-gb'"):
        engine.synth("hello", "en-gb", 160, 50, 50)
    with pytest.raises(ValueError, match="unknown variant 'nosuch'"):
        engine.synth("hello", "en-us+nosuch", 160, 50, 50)
    with pytest.raises(ValueError, match="rate"):
        engine.synth("hello", "en-us", 20, 50, 50)
    # A failed switch must not leave the engine unusable.
    assert engine.synth("hello", "en-us+m1", 160, 50, 50).size > 0


def test_available_variants_lists_the_variant_files():
    variants = available_variants()
    assert set(PLAIN_VARIANTS) <= set(variants)
    assert {"whisper", "croak", "klatt"} <= set(variants)


# --- pool ------------------------------------------------------------------------------------

def test_run_chunks_keeps_job_order_and_fixed_chunks():
    jobs = list(range(10))[::-1]
    # `sorted` sorts each chunk, which exposes the chunk boundaries: 3 jobs each, in order.
    expected = [7, 8, 9, 4, 5, 6, 1, 2, 3, 0]
    assert run_chunks(jobs, sorted, chunk_size=3, processes=2, desc="t") == expected
    assert run_chunks(jobs, sorted, chunk_size=3, processes=1, desc="t") == expected
    assert run_chunks([], sorted, chunk_size=3, desc="t") == []


def test_breathy_voices_repeat_across_fresh_processes():
    # f3, f5 and whisper add noise from a generator the library seeds from the clock.
    talkers = [("a quiet voice in the dark", Speaker(0, f"en-us+{v}", 160, 50, 50, "F"))
               for v in ("f3", "f5", "whisper")]
    jobs = [(talkers, 8000, 0), (talkers[:1], 8000, 1)]
    first = run_chunks(jobs, synth_babble, chunk_size=2, processes=1, desc="t")
    time.sleep(1.1)  # the library's clock seed has a one-second resolution
    second = run_chunks(jobs, synth_babble, chunk_size=1, processes=2, desc="t")
    assert np.array_equal(first[0], second[0])
    assert len(first) == 2 and first[0].shape == (8000,)


# --- speakers --------------------------------------------------------------------------------

def test_make_speakers_ids_sex_ranges_and_uniqueness():
    rng = np.random.default_rng(0)
    speakers = make_speakers(30, rng, languages=["en", "en-us"], variants=["m1", "f2"],
                             rate=(140, 150), pitch=(40, 45), pitch_range=(20, 30), first_id=7)
    assert [s.id for s in speakers] == list(range(7, 37))
    for s in speakers:
        base, variant = s.voice.split("+")
        assert base in ("en", "en-us") and s.sex == ("F" if variant == "f2" else "M")
        assert 140 <= s.rate <= 150 and 40 <= s.pitch <= 45 and 20 <= s.pitch_range <= 30
    assert len({(s.voice, s.rate, s.pitch, s.pitch_range) for s in speakers}) == 30
    # All four voices are used before any repeats.
    assert len({s.voice for s in speakers[:4]}) == 4
    with pytest.raises(ValueError, match="nosuch"):
        make_speakers(1, rng, languages=["en"], variants=["nosuch"], first_id=0)


def test_jitter_stays_close_to_the_speaker():
    speaker = Speaker(1, "en+m1", 160, 50, 40, "M")
    rng = np.random.default_rng(0)
    for _ in range(200):
        rate, pitch, pitch_range = jitter(speaker, rng)
        assert 150 <= rate <= 170 and 47 <= pitch <= 53 and 35 <= pitch_range <= 45


# --- degradations ----------------------------------------------------------------------------

def test_mix_at_snr_measures_back():
    rng = np.random.default_rng(0)
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    noise = degrade.colored_noise("pink", 5000, rng)  # shorter: gets tiled
    for snr in (0.0, 7.5, 20.0):
        mixed = degrade.mix_at_snr(wave, noise, snr)
        measured = 10 * np.log10(np.sum(wave.astype(np.float64) ** 2)
                                 / np.sum((mixed - wave).astype(np.float64) ** 2))
        assert abs(measured - snr) < 0.1


@pytest.mark.parametrize("kind, slope", [("white", 0.0), ("pink", -3.0), ("brown", -6.0)])
def test_colored_noise_spectral_slope(kind, slope):
    noise = degrade.colored_noise(kind, 2 ** 17, np.random.default_rng(1))
    assert abs(_rms(noise) - 1.0) < 1e-4
    freqs, power = welch(noise, nperseg=4096)
    band = (freqs > 0.004) & (freqs < 0.25)
    db_per_octave = np.polyfit(np.log2(freqs[band]), 10 * np.log10(power[band]), 1)[0]
    assert abs(db_per_octave - slope) < 0.6


def test_room_impulse_response_direct_path_then_decay():
    rng = np.random.default_rng(0)
    rir = degrade.room_impulse_response(rng, 16000, rt60=(0.5, 0.5))
    assert rir[0] == 1.0 and np.argmax(np.abs(rir)) == 0
    assert 0.5 * 16000 < rir.size < 0.52 * 16000
    tail = rir[1:]
    early, late = np.sum(tail[: tail.size // 4] ** 2), np.sum(tail[-tail.size // 4:] ** 2)
    assert late < early / 1000  # 45 dB of decay between the first and last quarter
    impulse = np.zeros(100, dtype=np.float32)
    impulse[0] = 1
    assert np.allclose(degrade.reverberate(impulse, rir), rir[:100], atol=1e-6)


def test_band_limit_passes_speech_band_and_cuts_outside():
    t = np.arange(16000) / 16000
    low = np.sin(2 * np.pi * 60 * t).astype(np.float32)
    mid = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    assert _rms(degrade.band_limit(low, 300, 3400, 16000)[4000:]) < 0.1 * _rms(low)
    assert abs(_rms(degrade.band_limit(mid, 300, 3400, 16000)[4000:]) / _rms(mid) - 1) < 0.05
    with pytest.raises(ValueError, match="Nyquist"):
        degrade.band_limit(mid, 300, 9000, 16000)


def test_gain_and_babble():
    wave = np.full(10, 0.1, dtype=np.float32)
    assert np.allclose(degrade.apply_gain(wave, 20.0), 1.0)
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) * s for n, s in ((300, 1), (700, 5))]
    babble = degrade.babble_from_waves(waves, 2000, rng)
    assert babble.shape == (2000,) and abs(_rms(babble) - 1) < 1e-4


def test_recorded_in_is_seeded_and_never_clips():
    rng = np.random.default_rng(0)
    wave = (0.99 * np.sin(2 * np.pi * 300 * np.arange(8000) / 16000)).astype(np.float32)
    bank = [degrade.colored_noise("white", 20000, rng)]
    outputs = [degrade.recorded_in(wave, np.random.default_rng(seed), bank) for seed in range(40)]
    for out in outputs:
        assert out.shape == wave.shape and np.isfinite(out).all() and np.abs(out).max() <= 1.0
    assert sum(not np.allclose(out, wave) for out in outputs) >= 35  # almost always changed
    again = degrade.recorded_in(wave, np.random.default_rng(3), bank)
    assert np.array_equal(again, outputs[3])


# --- sentences -------------------------------------------------------------------------------

_TRANSCRIPT = re.compile(r"[A-Z']+( [A-Z']+)*")


def test_sentences_are_upper_case_4_to_20_words():
    lines = english.sentences(3000, np.random.default_rng(0))
    for line in lines:
        assert _TRANSCRIPT.fullmatch(line), line
        assert english.MIN_WORDS <= len(line.split()) <= english.MAX_WORDS
    assert len(set(lines)) > 2900
    words = {w for line in lines for w in line.split()}
    assert len(words) > 1200  # a real vocabulary, not a handful of words
    assert any("'" in w for w in words)
    assert lines == english.sentences(3000, np.random.default_rng(0))
    assert lines != english.sentences(3000, np.random.default_rng(1))


def test_disjoint_sentence_sets():
    sizes = {"train": 3000, "dev": 200, "test": 200, "lm": 5000}
    sets = english.disjoint_sentence_sets(sizes, np.random.default_rng(0))
    assert {name: len(lines) for name, lines in sets.items()} == sizes
    held_out = set(sets["dev"]) | set(sets["test"])
    assert not held_out & (set(sets["train"]) | set(sets["lm"]))
    assert not set(sets["dev"]) & set(sets["test"])
    assert len(set(sets["lm"])) == 5000


def test_number_words():
    assert " ".join(english.number_words(312)) == "three hundred and twelve"
    assert " ".join(english.number_words(4005)) == "four thousand and five"
    assert " ".join(english.number_words(21000)) == "twenty one thousand"
    assert " ".join(english.year_words(1984)) == "nineteen eighty four"
    assert " ".join(english.year_words(1905)) == "nineteen oh five"
    assert " ".join(english.year_words(2007)) == "two thousand and seven"
    assert " ".join(english.ordinal_words(22)) == "twenty second"
