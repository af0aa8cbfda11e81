"""Babble noise: crowds of eSpeak talkers mixed into long unit-RMS tracks.

A job is (talkers' [(text, speaker)], samples, seed); `synth_babble` turns each job into one
track `(samples,)`. A corpus builds its jobs with `babble_jobs`, synthesizes them once into a bank
file with `write_bank` (one fresh process, so the bank is the same in every run), and its
synthesis workers read the bank back with `load_bank` to cut noise from it.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np

from corpora.synth.degrade import babble_from_waves
from corpora.synth.espeak import SAMPLE_RATE, Espeak
from corpora.synth.pool import run_chunks
from corpora.synth.speakers import Speaker

BabbleJob = tuple[list[tuple[str, Speaker]], int, int]


def babble_jobs(voices: list[Speaker], talker_texts: Iterable[str], talkers: int, seconds: float,
                rng: np.random.Generator) -> list[BabbleJob]:
    """Jobs for `synth_babble`: `voices` taken `talkers` at a time, one track of `seconds` each.

    talker_texts: what each voice says, in voice order. It is consumed one talker at a time, and
    each track's seed is drawn from `rng` after its talkers' texts, so a generator drawing from
    the same `rng` interleaves with the seeds.
    """
    texts = iter(talker_texts)
    jobs = []
    for first in range(0, len(voices), talkers):
        group = []
        for voice in voices[first:first + talkers]:
            text = next(texts, None)
            if text is None:
                raise ValueError(f"babble_jobs: fewer talker texts than the {len(voices)} voices")
            group.append((text, voice))
        jobs.append((group, int(seconds * SAMPLE_RATE), int(rng.integers(2 ** 63))))
    return jobs


def synth_babble(jobs: list[BabbleJob]) -> list[np.ndarray]:
    """Each job (talkers' [(text, speaker)], samples, seed) -> one unit-RMS babble wave."""
    engine = Espeak()
    return [babble_from_waves([engine.synth(text, s.voice, s.rate, s.pitch, s.pitch_range)
                               for text, s in talkers], n, np.random.default_rng(seed))
            for talkers, n, seed in jobs]


def write_bank(path: Path, jobs: list[BabbleJob]) -> None:
    """Synthesize every job in one fresh process and save the tracks `(tracks, samples)` to
    `path` (.npy); every job must ask for the same number of samples."""
    bank = run_chunks(jobs, synth_babble, chunk_size=max(1, len(jobs)), processes=1,
                      desc="babble")
    np.save(path, np.stack(bank))


@lru_cache(maxsize=1)
def load_bank(path: str) -> list[np.ndarray]:
    """The tracks saved by `write_bank`, read once per worker process."""
    return list(np.load(path))
