"""Synthetic speakers: an eSpeak voice (base language + variant) with a speaking rate and pitch.

A speaker keeps its voice and typical rate/pitch for all its utterances; `jitter` varies them a
little per utterance, as a person's delivery varies from sentence to sentence.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from corpora.synth.espeak import RATE_RANGE, check_voice_name, variant_sex

# English base voices that exist in espeak-ng 1.52 (en-gb and en-sc do not).
ENGLISH_VOICES = ["en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd"]
# The standard male/female variants: clear, natural-sounding speech.
PLAIN_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"]
# Rarer variants: whispered, creaky, the Klatt formant synthesizers, aged and robotic voices.
HARD_VARIANTS = ["whisper", "whisperf", "croak", "klatt", "klatt2", "klatt3", "klatt4", "klatt5",
                 "klatt6", "m8", "grandma", "grandpa", "iven", "iven2", "iven3", "iven4", "Andy",
                 "Annie", "belinda", "boris", "edward", "linda", "steph", "robosoft", "UniRobot"]
# The packaged variants that switch to the Klatt formant engine (a `klatt N` line): a synthesizer
# of its own, which the LibriSpeech corpus keeps for its test-heldout split alone.
KLATT_VARIANTS = ["Reed", "UniRobot", "adam", "announcer", "benjamin", "caleb", "david", "edward",
                  "edward2", "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "mike2",
                  "robosoft", "robosoft2", "robosoft3"]


@dataclass(frozen=True)
class Speaker:
    id: int
    voice: str  # e.g. "en-us+f3"
    rate: int  # words per minute
    pitch: int  # 0-99
    pitch_range: int  # 0-99
    sex: str  # "M" or "F"


def _check_range(name: str, bounds: tuple[int, int], lo: int, hi: int) -> None:
    if not (lo <= bounds[0] <= bounds[1] <= hi):
        raise ValueError(f"{name} range {bounds} must be (lo, hi) with {lo} <= lo <= hi <= {hi}")


def make_speakers(n: int, rng: np.random.Generator, *, languages: list[str], variants: list[str],
                  rate: tuple[int, int] = (140, 190), pitch: tuple[int, int] = (35, 65),
                  pitch_range: tuple[int, int] = (30, 70), first_id: int,
                  data_path: str | None = None) -> list[Speaker]:
    """`n` speakers with ids first_id, first_id + 1, ...

    `variants` are files in `data_path`'s variant folder (default: the packaged eSpeak data; a
    folder from `corpora.synth.voices.voice_data_folder` holds generated ones too).

    Voices cycle through a shuffled list of every (language, variant) pair, so speakers cover
    the pairs evenly before any repeats; rate, pitch and pitch_range are uniform integers within
    the given inclusive bounds. No two speakers share all of voice, rate, pitch and range.
    """
    if n < 0:
        raise ValueError(f"number of speakers must be >= 0, got {n}")
    if not languages or not variants:
        raise ValueError("make_speakers needs at least one language and one variant")
    _check_range("rate", rate, *RATE_RANGE)
    _check_range("pitch", pitch, 0, 99)
    _check_range("pitch_range", pitch_range, 0, 99)
    pairs = [(language, variant) for language in languages for variant in variants]
    for language, variant in pairs:
        check_voice_name(f"{language}+{variant}", data_path)
    sexes = {variant: variant_sex(variant, data_path) for variant in variants}
    speakers: list[Speaker] = []
    seen: set[tuple[str, int, int, int]] = set()
    order: list[int] = []
    while len(speakers) < n:
        if not order:
            order = list(rng.permutation(len(pairs)))
        language, variant = pairs[order.pop()]
        voice = f"{language}+{variant}"
        for _ in range(100):
            params = (int(rng.integers(rate[0], rate[1] + 1)),
                      int(rng.integers(pitch[0], pitch[1] + 1)),
                      int(rng.integers(pitch_range[0], pitch_range[1] + 1)))
            if (voice, *params) not in seen:
                break
        else:
            raise ValueError(f"cannot make {n} distinct speakers from {len(pairs)} voices and "
                             f"the ranges rate={rate} pitch={pitch} pitch_range={pitch_range}")
        seen.add((voice, *params))
        speakers.append(Speaker(first_id + len(speakers), voice, *params, sexes[variant]))
    return speakers


def one_speaker_per_voice(variants: list[str], rng: np.random.Generator, languages: list[str],
                          ranges: dict, first_id: int, data_path: str) -> list[Speaker]:
    """A speaker for each of `variants` (generated variant names in `data_path`), in order."""
    return [make_speakers(1, rng, languages=languages, variants=[variant],
                          first_id=first_id + i, data_path=data_path, **ranges)[0]
            for i, variant in enumerate(variants)]


def jitter(speaker: Speaker, rng: np.random.Generator) -> tuple[int, int, int]:
    """Per-utterance (rate, pitch, pitch_range): rate within +-6 %, pitch +-3, range +-5."""
    rate = round(speaker.rate * (1.0 + rng.uniform(-0.06, 0.06)))
    pitch = speaker.pitch + int(rng.integers(-3, 4))
    pitch_range = speaker.pitch_range + int(rng.integers(-5, 6))
    return (int(np.clip(rate, *RATE_RANGE)), int(np.clip(pitch, 0, 99)),
            int(np.clip(pitch_range, 0, 99)))
