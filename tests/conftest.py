"""Shared fixtures. Tests run on the CPU with one thread: the suite must stay fast on 2 cores."""
import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

torch.set_num_threads(1)

TONE_ALPHABET = "abcdefghijklmnopqrstuvwxyz' "


def file_digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path: two folders are byte-identical
    when these are equal (corpus markers included: they hold no corpus path)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def tone_wave(text: str, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """'Speech' in which every character is a 60 ms tone of its own pitch (space: silence).

    Learnable in seconds by a small CTC model, so tests can check that training really learns.
    """
    pieces = []
    for char in text:
        n = int(0.06 * sample_rate)
        t = np.arange(n) / sample_rate
        if char == " ":
            piece = np.zeros(n)
        else:
            freq = 300 + 110 * TONE_ALPHABET.index(char)
            piece = 0.3 * np.sin(2 * np.pi * freq * t) * np.hanning(n)
        pieces.append(piece)
    wave = np.concatenate([np.zeros(800), *pieces, np.zeros(800)])
    return (wave + 0.003 * rng.standard_normal(len(wave))).astype(np.float32)


def write_tone_librispeech(root: Path, splits: dict[str, list[str]], seed: int = 0) -> Path:
    """A LibriSpeech-layout folder ROOT/LibriSpeech/SPLIT/SPK/CH/... of tone utterances."""
    rng = np.random.default_rng(seed)
    for s, (split, texts) in enumerate(splits.items()):
        chapter_dir = root / "LibriSpeech" / split / str(100 + s) / "7"
        chapter_dir.mkdir(parents=True)
        lines = []
        for i, text in enumerate(texts):
            uid = f"{100 + s}-7-{i:04d}"
            sf.write(chapter_dir / f"{uid}.flac", tone_wave(text, rng), 16000, subtype="PCM_16")
            lines.append(f"{uid} {text.upper()}")
        (chapter_dir / f"{100 + s}-7.trans.txt").write_text("\n".join(lines) + "\n")
    return root / "LibriSpeech"


@pytest.fixture(scope="session")
def tone_corpus(tmp_path_factory) -> Path:
    words = ["cat", "dog", "sun", "red", "big", "top"]
    rng = np.random.default_rng(1)
    def sentences(n):
        return [" ".join(rng.choice(words, size=rng.integers(1, 4))) for _ in range(n)]
    return write_tone_librispeech(tmp_path_factory.mktemp("tones"),
                                  {"train-clean-100": sentences(24), "dev-clean": sentences(6),
                                   "test-clean": sentences(6)})
