"""A synthetic keyword corpus in the exact on-disk layout of Speech Commands v0.02.

    root/speech_commands/
        WORD/HASH_nohash_N.wav          1 s (16000 samples), 16 kHz mono 16-bit PCM; HASH is the
                                        speaker (8 hex digits), N the speaker's repetition
        validation_list.txt             "word/HASH_nohash_N.wav" lines, sorted
        testing_list.txt
        _heldout_/WORD/HASH_nohash_N.wav  the held-out test split (below); HELDOUT.TXT there
                                        lists each clip's voice and held-out channels
        _background_noise_/*.wav        minute-long noises: white, pink, brown, babble, mains hum,
                                        running tap; README.md describes them
        SPEAKERS.TXT, VOICES.TXT        only with `random_voice_share` > 0: the speakers with
                                        generated voices, and those voices' variant files
        README.md
        .synthetic                      written first: only folders holding it are ever deleted
        .complete                       JSON (spec, counts), written last

Speakers go to the validation/testing splits by the dataset's own rule (`which_set`, a hash of
the speaker part of the file name), so all clips of a speaker share a split. Each speaker is an
eSpeak voice (English accent + variant, some whispered/creaky/robotic) with its own rate and
pitch, saying a handful of the 35 words a few times each; the core words are about twice as
frequent as the others, as in the real corpus. The word sits at a random offset in the second.
Every clip gets a low noise floor; a `degraded_fraction` of clips, in every split alike, is
recorded in hard conditions (noise at low SNR, reverberation, band limits). With
`random_voice_share` > 0, that share of the speakers not on hard variants speak with a variant
file generated for them (as in the LibriSpeech corpus).

`_heldout_/` holds speech no split holds in kind, as LibriSpeech's test-heldout does
(docs/heldout.md): speakers on the Klatt engine, on generated voices with formant scales outside
any training voice, on the `en-029` accent, each clip under a noise floor then through one or two
held-out channels (`corpora.synth.degrade.heldout_channel`). A folder starting with `_` is no
word folder, so loaders of the real dataset never train on it. It is made from random streams
and synthesis chunks of its own: it stays the same whatever the training splits' settings.

The same spec gives byte-identical files whatever the number of processes (see
`corpora.synth.pool`); another seed gives another corpus.
"""
from __future__ import annotations

import hashlib
import os
import re
import wave as wave_io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from corpora.synth import babble, corpus_folder, english, heldout, voices
from corpora.synth.corpus_folder import MARKER, SYNTHETIC_MARKER  # noqa: F401 (re-exported)
from corpora.synth.degrade import (apply_gain, band_limit, colored_noise, heldout_channel,
                                  reverberate, room_impulse_response)
from corpora.synth.espeak import SAMPLE_RATE
from corpora.synth.pool import run_chunks
from corpora.synth.speakers import (ENGLISH_VOICES, HARD_VARIANTS, KLATT_VARIANTS,
                                   PLAIN_VARIANTS, Speaker, jitter, make_speakers,
                                   one_speaker_per_voice)

CORPUS_DIR = "speech_commands"
BACKGROUND_DIR = "_background_noise_"
HELDOUT_DIR = "_heldout_"
CLIP_SAMPLES = SAMPLE_RATE  # every clip is exactly one second

# The v0.01 core words, the v0.01 auxiliary words, and the five words v0.02 added. In the real
# v0.02 the three groups have about 3,800, 2,050 and 1,600 clips per word.
CORE_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "zero", "one",
              "two", "three", "four", "five", "six", "seven", "eight", "nine")
AUXILIARY_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree",
                   "wow")
ADDED_WORDS = ("backward", "follow", "forward", "learn", "visual")
WORDS = tuple(sorted(CORE_WORDS + AUXILIARY_WORDS + ADDED_WORDS))
WORD_WEIGHTS = {**{w: 1.0 for w in CORE_WORDS}, **{w: 0.54 for w in AUXILIARY_WORDS},
                **{w: 0.42 for w in ADDED_WORDS}}

# From the dataset README: the split of a file depends only on the hash of its speaker part.
MAX_NUM_WAVS_PER_CLASS = 2 ** 27 - 1  # ~134M
_NOHASH = re.compile(r"_nohash_.*$")

BACKGROUND_NOISES = {
    "white_noise.wav": "white Gaussian noise",
    "pink_noise.wav": "pink (1/f) noise",
    "brown_noise.wav": "brown (1/f^2) noise",
    "babble.wav": "several synthetic talkers speaking non-keyword sentences at once",
    "mains_hum.wav": "50 or 60 Hz mains hum with harmonics and a faint hiss",
    "running_tap.wav": "band-passed noise with slow swells and droplet clicks, like a running tap",
}


def which_set(filename: str, validation_percentage: float, testing_percentage: float) -> str:
    """"training", "validation" or "testing" for a clip, exactly as the dataset README does it.

    Only the part of the name before `_nohash_` counts, so every clip of a speaker lands in the
    same split, and adding clips never moves old ones.
    """
    base_name = os.path.basename(filename)
    hash_name = _NOHASH.sub("", base_name)
    hash_name_hashed = hashlib.sha1(hash_name.encode("utf-8")).hexdigest()
    percentage_hash = ((int(hash_name_hashed, 16) % (MAX_NUM_WAVS_PER_CLASS + 1))
                       * (100.0 / MAX_NUM_WAVS_PER_CLASS))
    if percentage_hash < validation_percentage:
        return "validation"
    if percentage_hash < testing_percentage + validation_percentage:
        return "testing"
    return "training"


@dataclass
class SpeechCommandsSpec:
    """Everything that determines the corpus; the same spec gives the same bytes."""

    seed: int = 0
    n_speakers: int = 2000
    words_per_speaker: tuple[int, int] = (3, 10)  # inclusive range, drawn per speaker
    repetitions: tuple[int, int] = (1, 3)  # inclusive range, drawn per (speaker, word)
    # Voices: English bases x variants (the held-out kinds are never used for training).
    languages: tuple[str, ...] = tuple(v for v in ENGLISH_VOICES
                                       if v not in heldout.HELDOUT_LANGUAGES)
    hard_variants: tuple[str, ...] = tuple(v for v in HARD_VARIANTS if v not in KLATT_VARIANTS)
    hard_voice_fraction: float = 0.3  # speakers with whispered/creaky/aged/robotic variants
    # Voice randomization (#18): this share of the other speakers speak with a variant generated
    # for them (`corpora.synth.voices`: vocal tract length, formants, tilt, breath, pitch), with
    # formant scales from `random_formant_scale`, inside the training range the held-out split's
    # voices lie outside. Every split alike: a clip's split follows its speaker's hash.
    random_voice_share: float = 0.0
    random_formant_scale: tuple[float, float] = voices.VoiceRanges().formant_scale
    rate: tuple[int, int] = (120, 220)  # words per minute: keeps every word under a second
    pitch: tuple[int, int] = (20, 80)
    pitch_range: tuple[int, int] = (20, 80)
    level_dbfs: tuple[float, float] = (-32.0, -16.0)  # RMS of the spoken word
    floor_snr_db: tuple[float, float] = (25.0, 45.0)  # noise floor under every clip
    floor_reverb: float = 0.1  # probability of a small dry room for a clip not degraded
    # Hard enough that the baseline's test au-fa-fr (~5e-5, the course's real-data range is
    # 3-3.9e-5) rests on several misranked positives, not one: with 0.35 / (-5, 15) dB / 0.15
    # hard voices a single clip decided it (4.9e-6), leaving compression nothing to measure.
    degraded_fraction: float = 0.6  # clips in hard conditions, in every split alike
    degraded_snr_db: tuple[float, float] = (-10.0, 10.0)
    degraded_reverb: float = 0.5  # probability of reverberation for a degraded clip
    degraded_band_limit: float = 0.2  # probability of a telephone-like band for a degraded clip
    validation_percentage: float = 10.0
    testing_percentage: float = 10.0
    # The held-out split (_heldout_/): speakers, their bases, generated voices' formant scales.
    # 1000, not 200: 200 speakers gave 45 keyword clips, too few to tell a 1.1x au-fa-fr ratio
    # (90% bootstrap 0.49-2.27 for a student/baseline pair, docs/heldout.md).
    heldout_speakers: int = 1000
    heldout_languages: tuple[str, ...] = heldout.HELDOUT_LANGUAGES
    heldout_formant_scales: tuple[tuple[float, float], ...] = heldout.HELDOUT_FORMANT_SCALES
    background_seconds: float = 65.0
    chunk_size: int = 400

    def __post_init__(self) -> None:
        for name in ("words_per_speaker", "repetitions", "rate", "pitch", "pitch_range",
                     "level_dbfs", "floor_snr_db", "degraded_snr_db", "random_formant_scale"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"SpeechCommandsSpec.{name} must be (low, high), "
                                 f"got {(low, high)}")
            setattr(self, name, (low, high))
        if not 1 <= self.words_per_speaker[0] <= self.words_per_speaker[1] <= len(WORDS):
            raise ValueError(f"SpeechCommandsSpec.words_per_speaker must lie in 1-{len(WORDS)}, "
                             f"got {self.words_per_speaker}")
        if self.heldout_speakers < 0:
            raise ValueError(f"SpeechCommandsSpec.heldout_speakers must be >= 0, "
                             f"got {self.heldout_speakers}")
        self.heldout_formant_scales = tuple(map(tuple, self.heldout_formant_scales))
        if self.repetitions[0] < 1:
            raise ValueError(f"SpeechCommandsSpec.repetitions must be >= 1, got {self.repetitions}")
        for name in ("hard_voice_fraction", "random_voice_share", "floor_reverb",
                     "degraded_fraction", "degraded_reverb", "degraded_band_limit"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SpeechCommandsSpec.{name} must be a probability, "
                                 f"got {getattr(self, name)}")
        if self.background_seconds < 60.0:
            raise ValueError(f"SpeechCommandsSpec.background_seconds must be >= 60 (the real "
                             f"noise files are a minute or longer), got {self.background_seconds}")

    def hard_speakers(self) -> int:
        """How many speakers take the hard variants."""
        return int(round(self.n_speakers * self.hard_voice_fraction))

    def scaled(self, factor: float) -> SpeechCommandsSpec:
        """This spec with `factor` times the speakers (so about `factor` times the clips)."""
        return replace(self, n_speakers=max(1, round(self.n_speakers * factor)),
                       heldout_speakers=round(self.heldout_speakers * factor))


@dataclass(frozen=True)
class _Clip:
    """One clip to synthesize (picklable): where, which word, which voice, how recorded."""

    path: str
    word: str
    voice: str
    rate: int
    pitch: int
    pitch_range: int
    seed: int
    degraded: bool
    level_dbfs: tuple[float, float]
    floor_snr_db: tuple[float, float]
    floor_reverb: float
    degraded_snr_db: tuple[float, float]
    degraded_reverb: float
    degraded_band_limit: float
    babble_path: str
    heldout: bool = False  # a noise floor, then held-out channels (degraded is then False)
    generated_voice: voices.RandomVoice | None = None  # the voice's variant file when it is a generated one


# ---------------------------------------------------------------------------------------------
# Noises

def mains_hum(n: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Unit-RMS mains hum `(n,)`: 50 or 60 Hz, odd-heavy harmonics, a slow wobble, faint hiss."""
    t = np.arange(n) / sample_rate
    base = (50.0 if rng.random() < 0.5 else 60.0) * (1.0 + rng.uniform(-0.004, 0.004))
    hum = np.zeros(n)
    for harmonic in range(1, 13):
        amplitude = rng.uniform(0.3, 1.0) / harmonic ** (0.7 if harmonic % 2 else 1.4)
        hum += amplitude * np.sin(2 * np.pi * base * harmonic * t + rng.uniform(0, 2 * np.pi))
    hum *= 1.0 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t)
    hum /= np.sqrt(np.mean(hum ** 2))
    hum += 0.03 * colored_noise("white", n, rng)
    return (hum / np.sqrt(np.mean(hum ** 2))).astype(np.float32)


def running_tap(n: int, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Unit-RMS "running tap" `(n,)`: band-passed noise with slow swells and droplet clicks."""
    t = np.arange(n) / sample_rate
    water = band_limit(colored_noise("pink", n, rng), rng.uniform(400, 900),
                       rng.uniform(4500, 7000), sample_rate).astype(np.float64)
    swell = np.ones(n)
    for _ in range(3):
        swell += rng.uniform(0.05, 0.25) * np.sin(2 * np.pi * rng.uniform(0.1, 2.0) * t
                                                  + rng.uniform(0, 2 * np.pi))
    water *= swell
    # Droplets: short decaying sine bursts at random times and pitches.
    droplets = np.zeros(n)
    length = int(0.02 * sample_rate)
    decay = np.exp(-np.arange(length) / (0.004 * sample_rate))
    for start in rng.integers(0, max(1, n - length), size=int(n / sample_rate * 25)):
        tone = np.sin(2 * np.pi * rng.uniform(800, 3000) * np.arange(length) / sample_rate)
        droplets[start:start + length] += rng.uniform(0.5, 2.0) * tone * decay
    water /= np.sqrt(np.mean(water ** 2))
    mix = water + 0.3 * droplets
    return (mix / np.sqrt(np.mean(mix ** 2))).astype(np.float32)


def _babble_texts(n: int, rng: np.random.Generator) -> list[str]:
    """`n` generated English sentences containing none of the 35 keywords."""
    keywords = set(WORDS)
    texts: list[str] = []
    while len(texts) < n:
        for text in english.sentences(2 * n, rng):
            if not keywords & set(re.findall(r"[a-z]+", text.lower())):
                texts.append(text.lower())
    return texts[:n]


def _babble_jobs(rng: np.random.Generator, languages: list[str], tracks: int, talkers: int,
                 seconds: float) -> list[babble.BabbleJob]:
    """Jobs for `babble.synth_babble`: per track, talkers' (text, speaker) and the track length."""
    talking = make_speakers(tracks * talkers, rng, languages=languages, variants=PLAIN_VARIANTS,
                            first_id=0)
    # About 2.5 s per sentence at these rates; enough text that a talker never repeats itself.
    per_talker = int(seconds / 2.5) + 1
    texts = _babble_texts(tracks * talkers * per_talker, rng)
    said = [" ".join(texts[first:first + per_talker])
            for first in range(0, len(texts), per_talker)]
    return babble.babble_jobs(talking, said, talkers, seconds, rng)


def _noise(kind: str, n: int, rng: np.random.Generator, bank: list[np.ndarray]) -> np.ndarray:
    """A unit-RMS noise `(n,)` of `kind`; babble is cut at random from the `bank` tracks."""
    if kind == "babble":
        track = bank[int(rng.integers(len(bank)))]
        start = int(rng.integers(track.size - n + 1))
        return track[start:start + n]
    if kind == "hum":
        return mains_hum(n, rng)
    if kind == "tap":
        return running_tap(n, rng)
    return colored_noise(kind, n, rng)


# ---------------------------------------------------------------------------------------------
# Workers (run in fresh processes)

def _write_wav(path: Path, wave: np.ndarray) -> None:
    """`wave` `(samples,)` in [-1, 1] as a 16 kHz mono 16-bit PCM WAV (plain 44-byte header).

    The standard library's writer, not libsndfile's: closing a libsndfile file fsyncs it, which
    took half the corpus generation time.
    """
    pcm = np.round(np.clip(wave, -1.0, 1.0) * 32767.0).astype("<i2")
    tmp = path.with_name(path.name + ".tmp")
    with wave_io.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    os.replace(tmp, path)


def place_in_second(word: np.ndarray, rng: np.random.Generator,
                    length: int = CLIP_SAMPLES) -> np.ndarray:
    """`word` `(samples,)` at a random offset in a zero clip `(length,)`; a longer word is cut to
    its loudest `length` samples (by a sliding energy window)."""
    if word.size > length:
        energy = np.concatenate([[0.0], np.cumsum(word.astype(np.float64) ** 2)])
        start = int(np.argmax(energy[length:] - energy[:-length]))
        return word[start:start + length].copy()
    clip = np.zeros(length, dtype=np.float32)
    offset = int(rng.integers(length - word.size + 1))
    clip[offset:offset + word.size] = word
    return clip


def _record(word: np.ndarray, job: _Clip, rng: np.random.Generator,
            bank: list[np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """The word wave as a recorded one-second clip `(16000,)`: level, room, noise, channel; and
    the held-out channels it went through (none unless `job.heldout`)."""
    rms = float(np.sqrt(np.mean(word.astype(np.float64) ** 2)))
    if rms == 0.0:
        raise RuntimeError(f"eSpeak produced silence for {job.word!r} ({job.voice}), "
                           f"meant for {job.path}")
    word = word * (10 ** (rng.uniform(*job.level_dbfs) / 20) / rms)
    speech_rms = float(np.sqrt(np.mean(word.astype(np.float64) ** 2)))
    clip = place_in_second(word.astype(np.float32), rng)
    if job.degraded:
        if rng.random() < job.degraded_reverb:
            clip = reverberate(clip, room_impulse_response(rng, SAMPLE_RATE))
        kind = ("white", "pink", "brown", "babble", "hum", "tap")[int(rng.integers(6))]
        snr_db = rng.uniform(*job.degraded_snr_db)
    else:
        # A small, fairly dry room; a held-out clip's rooms are its held-out channels.
        if not job.heldout and rng.random() < job.floor_reverb:
            clip = reverberate(clip, room_impulse_response(rng, SAMPLE_RATE, rt60=(0.1, 0.3),
                                                           direct_to_reverberant_db=(5.0, 15.0)))
        kind = ("white", "pink", "brown", "babble", "hum")[int(rng.integers(5))]
        snr_db = rng.uniform(*job.floor_snr_db)
    # The SNR is measured against the spoken word, not the whole (mostly silent) second.
    noise = _noise(kind, CLIP_SAMPLES, rng, bank)
    clip = clip + noise * (speech_rms / 10 ** (snr_db / 20))
    if job.degraded and rng.random() < job.degraded_band_limit:
        clip = band_limit(clip, rng.uniform(200, 400), rng.uniform(3000, 3800), SAMPLE_RATE)
    channels: list[str] = []
    if job.heldout:
        clip, channels = heldout_channel(clip, rng, SAMPLE_RATE)
    peak = float(np.max(np.abs(clip)))
    if peak > 0.99:
        clip = apply_gain(clip, 20 * np.log10(0.99 / peak))
    return clip.astype(np.float32), channels


def _synth_clips(jobs: list[_Clip]) -> list[list[str]]:
    """Synthesize, record and write each job's clip; return each clip's held-out channels."""
    applied = []
    with voices.engine_with([job.generated_voice for job in jobs if job.generated_voice]) as engine:
        for job in jobs:
            word = engine.synth(job.word, job.voice, job.rate, job.pitch, job.pitch_range)
            bank = babble.load_bank(job.babble_path)
            clip, channels = _record(word, job, np.random.default_rng(job.seed), bank)
            _write_wav(Path(job.path), clip)
            applied.append(channels)
    return applied


def _synth_background(jobs: list[tuple[str, int, int, list[tuple[str, Speaker]]]]) -> list[int]:
    """Each job (path, samples, seed, babble talkers' [(text, speaker)]) -> one noise file.

    Returns each file's sample count. Only babble.wav uses its talkers, each of whom says enough
    text to fill the whole file, so the crowd never audibly loops.
    """
    out = []
    for path, n, seed, talkers in jobs:
        rng = np.random.default_rng(seed)
        name = Path(path).name
        if name == "babble.wav":
            noise = babble.synth_babble([(talkers, n, seed)])[0]
        elif name == "mains_hum.wav":
            noise = mains_hum(n, rng)
        elif name == "running_tap.wav":
            noise = running_tap(n, rng)
        else:
            noise = colored_noise(name.split("_")[0], n, rng)
        # Around -20 dBFS RMS like a quiet recording, peaks kept clear of clipping.
        noise = noise * 0.1
        peak = float(np.max(np.abs(noise)))
        if peak > 0.99:
            noise = noise * (0.99 / peak)
        _write_wav(Path(path), noise)
        out.append(n)
    return out


# ---------------------------------------------------------------------------------------------
# Corpus

def is_complete(root: Path, spec: SpeechCommandsSpec) -> bool:
    """True when root/speech_commands was fully written from this spec."""
    return corpus_folder.is_complete(Path(root) / CORPUS_DIR, spec)


def _speaker_hashes(n: int, rng: np.random.Generator) -> list[str]:
    hashes: list[str] = []
    seen: set[str] = set()
    while len(hashes) < n:
        name = f"{int(rng.integers(2 ** 32)):08x}"
        if name not in seen:
            seen.add(name)
            hashes.append(name)
    return hashes


def _training_voices(spec: SpeechCommandsSpec, rng: np.random.Generator) -> list[voices.RandomVoice]:
    """The generated variants of the `random_voice_share` of the speakers not on hard variants."""
    n_generated = int(round((spec.n_speakers - spec.hard_speakers()) * spec.random_voice_share))
    return voices.training_voices(n_generated, spec.random_formant_scale, rng)


def _make_speakers(spec: SpeechCommandsSpec, rng: np.random.Generator,
                   generated: Sequence[str] = (), data_path: str | None = None) -> list[Speaker]:
    """The corpus's speakers in a random order: plain variants, hard variants, and one speaker
    per `generated` variant (names in `data_path`'s variant folder), which take plain ones' places."""
    n_hard = spec.hard_speakers()
    ranges = dict(rate=spec.rate, pitch=spec.pitch, pitch_range=spec.pitch_range)
    plain = make_speakers(spec.n_speakers - n_hard - len(generated), rng,
                          languages=list(spec.languages), variants=PLAIN_VARIANTS, first_id=0,
                          **ranges)
    hard = make_speakers(n_hard, rng, languages=list(spec.languages),
                         variants=list(spec.hard_variants), first_id=len(plain), **ranges)
    speakers = plain + hard + one_speaker_per_voice(list(generated), rng, list(spec.languages),
                                                    ranges, len(plain) + len(hard), data_path)
    return [speakers[i] for i in rng.permutation(len(speakers))]


def make_speech_commands(root: Path, spec: SpeechCommandsSpec, *,
                         processes: int | None = None) -> dict:
    """Write the corpus under root/speech_commands (replacing an earlier synthetic one).

    Returns {"corpus", "path", "utterances" (= "clips"), "clips", "hours", "speakers",
    "words": {word: clips}, "splits": {split: {"clips", "speakers"}} (training, validation,
    testing and heldout), "background_noise": {file: seconds}}.
    """
    corpus = corpus_folder.fresh_corpus_folder(root, CORPUS_DIR)

    # Streams 4 and 5 serve the held-out split alone, so it stays the same whatever the
    # training settings; stream 6 draws the generated training voices (spawn(7)[:4] == spawn(4):
    # streams 0-3 keep their draws).
    streams = np.random.SeedSequence(spec.seed).spawn(7)
    (speaker_rng, clip_rng, babble_rng, background_rng, heldout_voice_rng, heldout_rng,
     voice_rng) = (np.random.default_rng(s) for s in streams)
    babble_path = corpus / ".babble.npy"
    babble.write_bank(babble_path, _babble_jobs(babble_rng, list(spec.languages), tracks=8,
                                                talkers=4, seconds=12.0))

    generated = _training_voices(spec, voice_rng)
    with voices.data_folder_with(generated) as espeak_data:
        speakers = _make_speakers(spec, speaker_rng, [v.name for v in generated], espeak_data)
    hashes = _speaker_hashes(len(speakers), speaker_rng)
    jobs = _clip_jobs(spec, corpus, speakers, hashes, speaker_rng, clip_rng, babble_path,
                      generated={v.name: v for v in generated})
    if generated:
        _write_generated_speakers(corpus, speakers, hashes, generated)

    background = corpus / BACKGROUND_DIR
    background.mkdir()
    n_background = int(spec.background_seconds * SAMPLE_RATE)
    crowd = _babble_jobs(background_rng, list(spec.languages), tracks=1, talkers=6,
                         seconds=spec.background_seconds)
    background_jobs = [(str(background / name), n_background, int(background_rng.integers(2 ** 63)),
                        crowd[0][0] if name == "babble.wav" else [])
                       for name in BACKGROUND_NOISES]
    run_chunks(background_jobs, _synth_background, chunk_size=1, processes=processes,
               desc="background noise")
    (background / "README.md").write_text(
        "Synthetic background noises (16 kHz mono 16-bit), made by corpora.synth:\n\n"
        + "".join(f"- {name}: {what}\n" for name, what in BACKGROUND_NOISES.items()))

    run_chunks(jobs, _synth_clips, chunk_size=spec.chunk_size, processes=processes,
               desc="Speech Commands")
    heldout_split = _make_heldout(spec, corpus, babble_path, heldout_voice_rng, heldout_rng,
                                  first_id=len(speakers), processes=processes)
    babble_path.unlink()

    lists: dict[str, list[str]] = {"validation": [], "testing": [], "training": []}
    split_speakers: dict[str, set[str]] = {name: set() for name in lists}
    words: dict[str, int] = {w: 0 for w in WORDS}
    for job in jobs:
        relative = f"{job.word}/{Path(job.path).name}"
        split = which_set(relative, spec.validation_percentage, spec.testing_percentage)
        lists[split].append(relative)
        split_speakers[split].add(Path(job.path).name.split("_nohash_")[0])
        words[job.word] += 1
    for split in ("validation", "testing"):
        (corpus / f"{split}_list.txt").write_text("".join(f"{p}\n" for p in sorted(lists[split])))
    (corpus / "README.md").write_text(
        "Synthetic keyword corpus in the layout of Speech Commands v0.02, spoken by eSpeak NG "
        "voices (python -m corpora.synth).\nSplits follow the dataset's which_set rule on the "
        "speaker hash; every clip is 1 s, 16 kHz, 16-bit PCM.\n")

    result = {"corpus": "speech_commands", "path": str(corpus), "utterances": len(jobs),
              "clips": len(jobs),
              "hours": len(jobs) * CLIP_SAMPLES / SAMPLE_RATE / 3600,
              "speakers": len(speakers), "words": words,
              "splits": {**{split: {"clips": len(lists[split]),
                                    "speakers": len(split_speakers[split])} for split in lists},
                         "heldout": heldout_split},
              "background_noise": {name: spec.background_seconds for name in BACKGROUND_NOISES}}
    corpus_folder.mark_complete(corpus, spec, result)
    return result


def _clip_jobs(spec: SpeechCommandsSpec, folder: Path, speakers: list[Speaker],
               hashes: list[str], speaker_rng: np.random.Generator,
               clip_rng: np.random.Generator, babble_path: Path, *, heldout: bool = False,
               generated: dict[str, voices.RandomVoice] | None = None) -> list[_Clip]:
    """Each speaker's words and repetitions as clip jobs under `folder`/WORD/HASH_nohash_N.wav
    (word folders made here). Held-out clips get a noise floor, then held-out channels."""
    weights = np.array([WORD_WEIGHTS[w] for w in WORDS])
    jobs: list[_Clip] = []
    for speaker, hash_name in zip(speakers, hashes):
        n_words = int(speaker_rng.integers(spec.words_per_speaker[0],
                                           spec.words_per_speaker[1] + 1))
        chosen = speaker_rng.choice(len(WORDS), size=n_words, replace=False,
                                    p=weights / weights.sum())
        for index in sorted(chosen):
            word = WORDS[index]
            (folder / word).mkdir(parents=True, exist_ok=True)
            reps = int(speaker_rng.integers(spec.repetitions[0], spec.repetitions[1] + 1))
            for repetition in range(reps):
                rate, pitch, pitch_range = jitter(speaker, clip_rng)
                seed = int(clip_rng.integers(2 ** 63))
                degraded = bool(clip_rng.random() < spec.degraded_fraction) and not heldout
                jobs.append(_Clip(
                    path=str(folder / word / f"{hash_name}_nohash_{repetition}.wav"), word=word,
                    voice=speaker.voice, rate=rate, pitch=pitch, pitch_range=pitch_range,
                    seed=seed, degraded=degraded,
                    level_dbfs=spec.level_dbfs, floor_snr_db=spec.floor_snr_db,
                    floor_reverb=spec.floor_reverb,
                    degraded_snr_db=spec.degraded_snr_db, degraded_reverb=spec.degraded_reverb,
                    degraded_band_limit=spec.degraded_band_limit, babble_path=str(babble_path),
                    heldout=heldout,
                    generated_voice=(generated or {}).get(speaker.voice.partition("+")[2])))
    return jobs


def _write_generated_speakers(corpus: Path, speakers: list[Speaker], hashes: list[str],
                              generated: list[voices.RandomVoice]) -> None:
    """SPEAKERS.TXT (each generated-voice speaker's hash and voice) and VOICES.TXT (the variant
    files) at the corpus root; the real dataset has neither, and loaders ignore both."""
    names = {voice.name for voice in generated}
    lines = ["; speakers with generated voices: HASH VOICE (the clips are WORD/HASH_nohash_N.wav)\n"]
    lines += [f"{hash_name} {speaker.voice}\n" for speaker, hash_name in zip(speakers, hashes)
              if speaker.voice.partition("+")[2] in names]
    (corpus / "SPEAKERS.TXT").write_text("".join(lines))
    voices.write_voices_txt(corpus / "VOICES.TXT", generated, listed_in="SPEAKERS.TXT")


def _make_heldout(spec: SpeechCommandsSpec, corpus: Path, babble_path: Path,
                  voice_rng: np.random.Generator, rng: np.random.Generator, *, first_id: int,
                  processes: int | None) -> dict:
    """Write the held-out split under `corpus`/_heldout_ with its HELDOUT.TXT and VOICES.TXT;
    returns {"clips", "speakers"}. Draws only from `voice_rng` and `rng`, in chunks of its own
    (eSpeak's output depends on the calls before it in a process)."""
    folder = corpus / HELDOUT_DIR
    folder.mkdir()
    generated = heldout.heldout_voices(spec.heldout_speakers, spec.heldout_formant_scales,
                                       voice_rng)
    with voices.data_folder_with(generated) as espeak_data:  # to check voice names
        speakers = heldout.heldout_speakers(
            spec.heldout_speakers, [v.name for v in generated], rng,
            languages=list(spec.languages) + list(spec.heldout_languages),
            ranges=dict(rate=spec.rate, pitch=spec.pitch, pitch_range=spec.pitch_range),
            first_id=first_id, data_path=espeak_data)
    jobs = _clip_jobs(spec, folder, speakers, _speaker_hashes(len(speakers), rng), rng, rng,
                      babble_path, heldout=True, generated={v.name: v for v in generated})
    channels = run_chunks(jobs, _synth_clips, chunk_size=spec.chunk_size, processes=processes,
                          desc="Speech Commands held-out")
    lines = ["; held-out clips: WORD/FILE VOICE CHANNELS (comma-separated, in the order "
             "applied)\n"]
    lines += [f"{job.word}/{Path(job.path).name} {job.voice} {','.join(applied)}\n"
              for job, applied in zip(jobs, channels)]
    (folder / "HELDOUT.TXT").write_text("".join(lines))
    voices.write_voices_txt(folder / "VOICES.TXT", generated, listed_in="HELDOUT.TXT")
    return {"clips": len(jobs), "speakers": len(speakers)}
