"""The synthetic Speech Commands corpus: layout, splits, determinism, recording conditions."""
import hashlib
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from common.readers import speech_commands as reader
from corpora.synth import speech_commands as sc
from corpora.synth.degrade import HELDOUT_CHANNELS
from corpora.synth.heldout import HELDOUT_LANGUAGES
from corpora.synth.speakers import KLATT_VARIANTS
from conftest import file_digests

TINY = dict(n_speakers=14, words_per_speaker=(2, 3), repetitions=(1, 2), background_seconds=60.0,
            chunk_size=6, validation_percentage=25.0, testing_percentage=25.0, heldout_speakers=4)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """The tiny corpus made with 1 and 2 processes, and with another seed."""
    roots = {}
    for name, seed, processes in (("one", 0, 1), ("two", 0, 2), ("other_seed", 1, 2)):
        root = tmp_path_factory.mktemp(name)
        result = sc.make_speech_commands(root, sc.SpeechCommandsSpec(seed=seed, **TINY),
                                         processes=processes)
        roots[name] = (root, result)
    return roots


def test_which_set_reproduces_the_readme_rule():
    # Independent restatement of the README arithmetic on the sha1 of the speaker part.
    for speaker in ("bb05582b", "0a7c2a8d", "ffffffff", "1234abcd", "c50f55b8"):
        value = int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % 2 ** 27
        percentage = value * 100.0 / (2 ** 27 - 1)
        expected = ("validation" if percentage < 10 else
                    "testing" if percentage < 20 else "training")
        assert sc.which_set(f"right/{speaker}_nohash_3.wav", 10, 10) == expected
        # Only the speaker part counts: word and repetition never move a clip.
        assert sc.which_set(f"left/{speaker}_nohash_0.wav", 10, 10) == expected
    rng = np.random.default_rng(0)
    names = [f"{int(rng.integers(2 ** 32)):08x}_nohash_0.wav" for _ in range(20000)]
    shares = {s: np.mean([sc.which_set(n, 10, 10) == s for n in names])
              for s in ("validation", "testing")}
    assert abs(shares["validation"] - 0.10) < 0.01 and abs(shares["testing"] - 0.10) < 0.01


def test_the_35_words_of_v002():
    assert len(sc.WORDS) == 35
    assert {"sheila", "marvin", "backward", "forward", "follow", "learn", "visual", "tree",
            "zero", "nine", "wow"} <= set(sc.WORDS)


def test_same_seed_same_bytes_whatever_the_processes(corpora):
    one = file_digests(corpora["one"][0] / "speech_commands")
    two = file_digests(corpora["two"][0] / "speech_commands")
    assert one == two
    other = file_digests(corpora["other_seed"][0] / "speech_commands")
    assert other != one
    clips = {k: v for k, v in one.items() if k.endswith(".wav") and not k.startswith("_")}
    assert len(clips) == corpora["one"][1]["clips"] > 14
    heldout = [k for k in one if k.startswith(sc.HELDOUT_DIR) and k.endswith(".wav")]
    assert len(heldout) == corpora["one"][1]["splits"]["heldout"]["clips"] > 4


def test_every_clip_is_one_second_of_16_bit_pcm(corpora):
    root = corpora["one"][0] / "speech_commands"
    clips = [p for p in root.glob("*/*.wav") if p.parent.name != sc.BACKGROUND_DIR]
    assert clips
    for path in clips:
        info = sf.info(path)
        assert (info.samplerate, info.frames, info.channels, info.subtype) == (16000, 16000, 1,
                                                                               "PCM_16")
        assert path.parent.name in sc.WORDS
        assert len(path.name.split("_nohash_")[0]) == 8
        wave, _ = sf.read(path)
        assert np.sqrt(np.mean(wave ** 2)) > 1e-3 and np.max(np.abs(wave)) < 1.0


def test_lists_follow_which_set_and_speakers_do_not_cross_splits(corpora):
    root = corpora["one"][0] / "speech_commands"
    listed = {}
    for split in ("validation", "testing"):
        entries = (root / f"{split}_list.txt").read_text().splitlines()
        assert entries == sorted(entries)
        for entry in entries:
            assert (root / entry).is_file(), entry
            listed[entry] = split
    speakers: dict[str, set[str]] = {"training": set(), "validation": set(), "testing": set()}
    for path in root.glob("*/*.wav"):
        if path.parent.name == sc.BACKGROUND_DIR:
            continue
        entry = f"{path.parent.name}/{path.name}"
        split = sc.which_set(entry, TINY["validation_percentage"], TINY["testing_percentage"])
        assert listed.get(entry, "training") == split
        speakers[split].add(path.name.split("_nohash_")[0])
    assert all(speakers.values()), "the tiny corpus should have speakers in every split"
    assert not speakers["training"] & speakers["validation"]
    assert not speakers["training"] & speakers["testing"]
    assert not speakers["validation"] & speakers["testing"]
    # The project's own reader sees the same splits.
    assert len(reader.list_clips(root, "validation", on_error="raise")) == sum(
        1 for s in listed.values() if s == "validation")
    counts = corpora["one"][1]["splits"]
    assert len(reader.list_clips(root, "train", on_error="raise")) == counts["training"]["clips"]


def test_background_noise_files_are_a_minute_or_longer(corpora):
    folder = corpora["one"][0] / "speech_commands" / sc.BACKGROUND_DIR
    files = sorted(p.name for p in folder.glob("*.wav"))
    assert files == sorted(sc.BACKGROUND_NOISES)
    for name in files:
        wave, rate = sf.read(folder / name)
        assert rate == 16000 and wave.ndim == 1 and wave.size >= 60 * 16000
        assert 0.03 < np.sqrt(np.mean(wave ** 2)) and np.max(np.abs(wave)) < 1.0
    assert (folder / "README.md").is_file()


def test_is_complete_and_refusing_foreign_folders(corpora, tmp_path):
    root, _ = corpora["one"]
    assert sc.is_complete(root, sc.SpeechCommandsSpec(seed=0, **TINY))
    assert not sc.is_complete(root, sc.SpeechCommandsSpec(seed=5, **TINY))
    assert not sc.is_complete(tmp_path, sc.SpeechCommandsSpec())
    (tmp_path / "speech_commands").mkdir()
    (tmp_path / "speech_commands" / "precious.wav").write_bytes(b"real data")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        sc.make_speech_commands(tmp_path, sc.SpeechCommandsSpec(**TINY))
    assert (tmp_path / "speech_commands" / "precious.wav").is_file()


def test_spec_rejects_bad_values():
    with pytest.raises(ValueError, match="background_seconds"):
        sc.SpeechCommandsSpec(background_seconds=10)
    with pytest.raises(ValueError, match="degraded_fraction"):
        sc.SpeechCommandsSpec(degraded_fraction=1.5)
    with pytest.raises(ValueError, match="rate"):
        sc.SpeechCommandsSpec(rate=(200, 100))
    with pytest.raises(ValueError, match="random_voice_share"):
        sc.SpeechCommandsSpec(random_voice_share=2.0)


def test_place_in_second_keeps_the_word_and_crops_long_ones():
    rng = np.random.default_rng(0)
    word = np.linspace(0.1, 0.5, 4000, dtype=np.float32)
    clip = sc.place_in_second(word, rng)
    start = int(np.flatnonzero(clip)[0])
    assert clip.shape == (16000,) and np.array_equal(clip[start:start + 4000], word)
    assert np.count_nonzero(clip) == 4000
    long_word = np.zeros(25000, dtype=np.float32)
    long_word[1000:1100] = 0.01  # too far from the loud part to share a one-second window
    long_word[20000:21000] = 1.0  # the loud part must survive the crop
    cropped = sc.place_in_second(long_word, rng)
    assert cropped.shape == (16000,) and cropped.sum() == pytest.approx(1000.0)


def _job(degraded: bool) -> sc._Clip:
    return sc._Clip(path="unused.wav", word="yes", voice="en+m1", rate=170, pitch=50,
                    pitch_range=50, seed=0, degraded=degraded, level_dbfs=(-20.0, -20.0),
                    floor_snr_db=(40.0, 40.0), floor_reverb=0.0, degraded_snr_db=(0.0, 0.0),
                    degraded_reverb=0.0, degraded_band_limit=0.0, babble_path="unused.npy")


@pytest.mark.parametrize("seed", range(6))
def test_snr_is_measured_against_the_spoken_word(seed):
    # A 0.25 s "word" at -20 dBFS: at 0 dB SNR the noise over the whole second has the word's
    # RMS, so the clip's energy is word (0.25 s) + noise (1 s); at 40 dB it is the word's alone.
    t = np.arange(4000) / 16000
    word = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    babble = [np.random.default_rng(1).standard_normal(32000).astype(np.float32)]
    speech_power = 10 ** (-20 / 10)
    hard, _ = sc._record(word, _job(True), np.random.default_rng(seed), babble)
    assert np.mean(hard.astype(np.float64) ** 2) == pytest.approx(speech_power * 1.25, rel=0.2)
    clean, _ = sc._record(word, _job(False), np.random.default_rng(seed), babble)
    assert np.mean(clean.astype(np.float64) ** 2) == pytest.approx(speech_power * 0.25, rel=0.05)


def test_heldout_split_holds_only_heldout_voices_and_channels(corpora):
    root, result = corpora["one"]
    folder = root / "speech_commands" / sc.HELDOUT_DIR
    lines = [line.split() for line in (folder / "HELDOUT.TXT").read_text().splitlines()
             if not line.startswith(";")]
    assert len(lines) == result["splits"]["heldout"]["clips"] > 4
    generated = {line.split()[1] for line in (folder / "VOICES.TXT").read_text().splitlines()
                 if line.startswith("===")}
    assert len(generated) == TINY["heldout_speakers"] // 2
    for entry, voice, channels in lines:
        info = sf.info(folder / entry)
        assert (info.samplerate, info.frames) == (16000, 16000)
        variant = voice.split("+")[1]
        assert variant in KLATT_VARIANTS or variant in generated, voice
        assert 1 <= len(channels.split(",")) <= 2 and set(channels.split(",")) <= set(HELDOUT_CHANNELS)
    # Training speakers use none of the held-out kinds.
    spec = sc.SpeechCommandsSpec(**TINY)
    for speaker in sc._make_speakers(replace(spec, n_speakers=400), np.random.default_rng(0)):
        language, variant = speaker.voice.split("+")
        assert variant not in KLATT_VARIANTS and language not in HELDOUT_LANGUAGES, speaker.voice
    # The reader sees the held-out clips as a split of their own, never as training.
    heldout = reader.list_clips(root / "speech_commands", "heldout", on_error="raise")
    assert sorted(f"{c.word}/{c.path.name}" for c in heldout) == sorted(e for e, _, _ in lines)
    train = reader.list_clips(root / "speech_commands", "train", on_error="raise")
    assert not {c.path for c in heldout} & {c.path for c in train}


def test_heldout_split_does_not_depend_on_the_training_settings(corpora, tmp_path):
    other = sc.SpeechCommandsSpec(**{**TINY, "n_speakers": 9, "hard_voice_fraction": 0.8,
                                     "degraded_fraction": 0.1})
    sc.make_speech_commands(tmp_path, other, processes=2)
    mine = file_digests(corpora["one"][0] / "speech_commands")
    theirs = file_digests(tmp_path / "speech_commands")
    heldout = {k: v for k, v in mine.items() if k.startswith(sc.HELDOUT_DIR)}
    assert heldout and heldout == {k: v for k, v in theirs.items() if k.startswith(sc.HELDOUT_DIR)}
    assert mine["testing_list.txt"] != theirs["testing_list.txt"]


def test_generated_training_voices(corpora, tmp_path):
    # random_voice_share 0.5: half the 10 speakers not on hard variants get a generated voice.
    spec = sc.SpeechCommandsSpec(**TINY, random_voice_share=0.5, random_formant_scale=(0.9, 0.95))
    digests = []
    for processes in (1, 2):
        sc.make_speech_commands(tmp_path / str(processes), spec, processes=processes)
        digests.append(file_digests(tmp_path / str(processes) / "speech_commands"))
    assert digests[0] == digests[1]
    root = tmp_path / "1" / "speech_commands"
    speakers = dict(line.split() for line in (root / "SPEAKERS.TXT").read_text().splitlines()
                    if not line.startswith(";"))
    headers = [line.split() for line in (root / "VOICES.TXT").read_text().splitlines()
               if line.startswith("===")]
    assert len(speakers) == len(headers) == 5
    assert sorted(v.split("+")[1] for v in speakers.values()) == sorted(h[1] for h in headers)
    for header in headers:  # "=== rv0000 (formant scale 0.911, eSpeak engine)"
        assert 0.9 <= float(header[4].rstrip(",")) <= 0.95 and header[5] == "eSpeak", header
    spoken = {c.path.name.split("_nohash_")[0] for split in ("train", "validation", "testing")
              for c in reader.list_clips(root, split, on_error="raise")}
    assert set(speakers) <= spoken
    # Another training corpus, the same held-out split byte for byte.
    plain = file_digests(corpora["one"][0] / "speech_commands")
    mine = digests[0]
    assert {k: v for k, v in mine.items() if k.startswith(sc.HELDOUT_DIR)} == \
        {k: v for k, v in plain.items() if k.startswith(sc.HELDOUT_DIR)}
    assert "SPEAKERS.TXT" not in plain
    assert {k for k in mine if k.endswith(".wav")} != {k for k in plain if k.endswith(".wav")}


def test_spectrogram_panels_pair_training_clips_with_heldout_kinds(corpora):
    from bench.heldout_spectrograms import pick_keyword

    root = corpora["one"][0] / "speech_commands"
    heldout = [line.split() for line in (root / sc.HELDOUT_DIR / "HELDOUT.TXT").read_text().splitlines()
               if not line.startswith(";")]
    training = {c.word for c in reader.list_clips(root, "train", on_error="raise")}
    keyword = next(entry.split("/")[0] for entry, _, _ in heldout if entry.split("/")[0] in training)
    panels = pick_keyword(root, keyword)
    train_panels = [path for title, path in panels if title.startswith("training")]
    heldout_panels = [(title, path) for title, path in panels if title.startswith("test-heldout")]
    listed = (root / "validation_list.txt").read_text() + (root / "testing_list.txt").read_text()
    assert 1 <= len(train_panels) <= 3 and heldout_panels
    assert all(p.parent.name == keyword and f"{keyword}/{p.name}" not in listed for p in train_panels)
    for title, path in heldout_panels:
        assert path.is_file() and path.parent.parent.name == sc.HELDOUT_DIR and path.parent.name == keyword
        assert ("+hv" in title) == ("generated" in title)


def test_more_generated_voices_than_espeak_lists_in_one_folder(tmp_path):
    # eSpeak lists at most 349 voices, its own included; 1000 held-out speakers bring 500 generated
    # ones, which one data folder for the whole corpus could not hold (some were "not found").
    spec = sc.SpeechCommandsSpec(**{**TINY, "n_speakers": 2, "heldout_speakers": 1000,
                                    "words_per_speaker": (1, 1), "repetitions": (1, 1), "chunk_size": 40})
    result = sc.make_speech_commands(tmp_path, spec, processes=2)
    assert result["splits"]["heldout"] == {"clips": 1000, "speakers": 1000}
