"""Random eSpeak NG voices: variant files drawn from ranges, in a data folder of their own.

An eSpeak variant file (`espeak-ng-data/voices/!v/NAME`, used as `en-us+NAME`) sets the voice's
source and filter: `formant N FREQ% HEIGHT% WIDTH%` scales formant N's frequency, amplitude and
bandwidth; `pitch BASE MAX` the pitch range in Hz; `flutter`, `roughness`, `breath` the source's
irregularity and noise; `tone` a spectral tilt; `klatt N` switches to the Klatt formant engine.
The 104 variants that ship with espeakng-loader are a few dozen points in that space; drawing
every speaker's file from ranges (vocal tract length as one scale on every formant, then each
formant, tilt, breathiness, pitch) makes a voice population wide enough that eSpeak's own
timbre stops being a cue a model can lean on.

eSpeak only reads variants from its data folder, so `voice_data_folder` builds one: links to
every file of the packaged data, plus a `voices/!v` folder holding the packaged variants and the
generated ones. eSpeak lists at most 349 voices (languages and variants together) and drops the
rest, so a synthesis worker's folder (`engine_with`) holds only the voices its own chunk uses.
The files depend only on the ranges and the generator, so a seed gives the same voices wherever
the folder lives.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from corpora.synth.espeak import Espeak, variants_dir

N_FORMANTS = 9  # eSpeak's formants 0-8; 0 is the nasal/low pole, 1-3 carry vowel identity
KLATT_ENGINES = (1, 2, 3, 4, 5, 6)  # `klatt N`: the six Klatt formant synthesizer modes


@dataclass(frozen=True)
class VoiceRanges:
    """Where random voices are drawn from; every range is (lo, hi), drawn uniformly."""

    # Vocal tract length: every formant frequency times one factor (about 0.85 = a long adult
    # male tract, 1.2 = a child's).
    formant_scale: tuple[float, float] = (0.88, 1.15)
    # Each formant's own frequency factor on top of the scale: 1 +- this (vowel colour, accent).
    formant_jitter: float = 0.05
    formant_height: tuple[int, int] = (70, 115)  # amplitude, % of the default
    formant_width: tuple[int, int] = (80, 160)  # bandwidth, % of the default
    pitch_base: tuple[int, int] = (75, 210)  # the voice's low pitch in Hz
    pitch_span: tuple[float, float] = (1.25, 1.8)  # its high pitch / low pitch
    flutter: tuple[int, int] = (0, 25)  # pitch irregularity
    roughness: tuple[int, int] = (0, 5)  # creak
    breath_p: float = 0.3  # share of breathy voices
    breath: tuple[int, int] = (1, 4)  # breath noise level per formant band, when breathy
    tilt_db_per_octave: tuple[float, float] = (-6.0, 3.0)  # spectral tone above 600 Hz
    klatt_p: float = 0.0  # share of voices on the Klatt engine (the training default holds it out)

    def __post_init__(self) -> None:
        for name in ("formant_scale", "formant_height", "formant_width", "pitch_base",
                     "pitch_span", "flutter", "roughness", "breath", "tilt_db_per_octave"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"VoiceRanges.{name} = {(lo, hi)} must be (lo, hi) with lo <= hi")
        if not 0.0 < self.formant_scale[0]:
            raise ValueError(f"VoiceRanges.formant_scale = {self.formant_scale} must be > 0")
        for name in ("breath_p", "klatt_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"VoiceRanges.{name} = {getattr(self, name)} must be in [0, 1]")


@dataclass(frozen=True)
class RandomVoice:
    """One generated variant: its file name, the file's text, and what a reader wants to see."""

    name: str
    text: str
    formant_scale: float
    klatt: int  # 0: eSpeak's own engine


def random_voice(name: str, ranges: VoiceRanges, rng: np.random.Generator) -> RandomVoice:
    """A variant file drawn from `ranges`, named `name` (the part after `+` in a voice name)."""
    scale = float(rng.uniform(*ranges.formant_scale))
    low = int(rng.integers(ranges.pitch_base[0], ranges.pitch_base[1] + 1))
    high = round(low * float(rng.uniform(*ranges.pitch_span)))
    sex = "F" if low >= 140 else "M"
    klatt = int(rng.choice(KLATT_ENGINES)) if rng.random() < ranges.klatt_p else 0
    lines = ["language variant", f"name {name}",
             f"gender {'female' if sex == 'F' else 'male'}", f"pitch {low} {high}",
             f"flutter {int(rng.integers(ranges.flutter[0], ranges.flutter[1] + 1))}",
             f"roughness {int(rng.integers(ranges.roughness[0], ranges.roughness[1] + 1))}"]
    for formant in range(N_FORMANTS):
        freq = round(100 * scale * (1 + rng.uniform(-ranges.formant_jitter,
                                                    ranges.formant_jitter)))
        height = int(rng.integers(ranges.formant_height[0], ranges.formant_height[1] + 1))
        width = int(rng.integers(ranges.formant_width[0], ranges.formant_width[1] + 1))
        lines.append(f"formant {formant} {freq} {height} {width}")
    # `tone F1 A1 F2 A2 ...`: amplitude (0-255) at each frequency, interpolated between them.
    tilt = float(rng.uniform(*ranges.tilt_db_per_octave))
    points = [(600, 0.0), (1200, 1.0), (2400, 2.0), (4000, np.log2(4000 / 600))]
    amplitudes = [min(255, round(200 * 10 ** (tilt * octaves / 20))) for _, octaves in points]
    lines.append("tone " + " ".join(f"{freq} {amp}" for (freq, _), amp in zip(points, amplitudes)))
    if rng.random() < ranges.breath_p:
        level = int(rng.integers(ranges.breath[0], ranges.breath[1] + 1))
        lines.append("breath 0 " + " ".join(str(level) for _ in range(7)))
    if klatt:
        lines.append(f"klatt {klatt}")
    return RandomVoice(name, "\n".join(lines) + "\n", scale, klatt)


def random_voices(n: int, prefix: str, ranges: VoiceRanges,
                  rng: np.random.Generator) -> list[RandomVoice]:
    """`n` voices named PREFIX0000, PREFIX0001, ... drawn from `ranges`."""
    if not prefix.isidentifier():
        raise ValueError(f"voice name prefix must be letters/digits/_, got {prefix!r}")
    return [random_voice(f"{prefix}{i:04d}", ranges, rng) for i in range(n)]


def training_voices(n: int, formant_scale: tuple[float, float],
                    rng: np.random.Generator) -> list[RandomVoice]:
    """`n` generated training variants, rv0000, ..., with formant scales in `formant_scale`, all
    on eSpeak's own engine (`corpora.synth.heldout` keeps the Klatt engine for test-heldout)."""
    return random_voices(n, "rv", VoiceRanges(formant_scale=tuple(formant_scale)), rng)


def voice_data_folder(folder: Path, voices: list[RandomVoice]) -> Path:
    """Make `folder` an eSpeak data folder that also holds `voices`; returns `folder`.

    Every entry of the packaged data is linked, not copied (the dictionaries are ~20 MB); the
    variants folder is a real folder of links plus the generated files. `folder` must not exist.
    """
    source_variants = variants_dir()  # DATA/voices/!v of the packaged data
    source = source_variants.parent.parent
    folder = Path(folder)
    variants = variants_dir(str(folder))
    variants.mkdir(parents=True)  # makes `folder` and `folder/voices` too
    for entry in source.iterdir():
        if entry.name != "voices":
            os.symlink(entry, folder / entry.name)
    for entry in source_variants.parent.iterdir():
        if entry != source_variants:
            os.symlink(entry, variants.parent / entry.name)
    packaged = set()
    for entry in source_variants.iterdir():
        os.symlink(entry, variants / entry.name)
        packaged.add(entry.name)
    for voice in voices:
        if voice.name in packaged:
            raise ValueError(f"generated voice {voice.name!r} would shadow a packaged variant")
        (variants / voice.name).write_text(voice.text, encoding="utf-8")
    return folder


# eSpeak lists at most 349 voices (N_VOICES_LIST), its own included: measured with espeak-ng 1.52, a
# folder with 180 generated variants speaks all of them, one with 190 loses some.
MAX_GENERATED_PER_FOLDER = 150


@contextmanager
def engine_with(generated: list[RandomVoice]) -> Iterator[Espeak]:
    """The process's eSpeak engine, reading a data folder that also holds `generated` (the packaged
    data when there are none); the folder goes when the block ends. Raises ValueError for more
    generated voices than eSpeak can list beside its own (`MAX_GENERATED_PER_FOLDER`): a voice
    past its list would be "not found" in the middle of a corpus."""
    unique = list({voice.name: voice for voice in generated}.values())
    if len(unique) > MAX_GENERATED_PER_FOLDER:
        raise ValueError(f"{len(unique)} generated voices in one synthesis chunk; eSpeak lists at most "
                         f"{MAX_GENERATED_PER_FOLDER} beside its own (use a smaller chunk_size)")
    with data_folder_with(unique) as data_path:
        yield Espeak(data_path)


@contextmanager
def data_folder_with(generated: list[RandomVoice]) -> Iterator[str | None]:
    """The path of a scratch eSpeak data folder holding `generated` beside the packaged voices
    (`voice_data_folder`), gone when the block ends; None (the packaged data) when there are none."""
    if not generated:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="espeak-voices-") as scratch:
        yield str(voice_data_folder(Path(scratch) / "espeak-ng-data", generated))


def write_voices_txt(path: Path, generated: list[RandomVoice],
                     listed_in: str = "SPEAKERS.TXT") -> None:
    """The generated variant files, so a reader sees (and eSpeak can replay) every voice;
    `listed_in` names the file that gives each speaker's voice."""
    lines = ["; eSpeak NG variant files generated for this corpus (corpora/synth/voices.py); a\n",
             f"; speaker's voice in {listed_in}, e.g. en-us+rv0003, names its file below.\n"]
    for voice in generated:
        lines.append(f"\n=== {voice.name} (formant scale {voice.formant_scale:.3f}, "
                     f"{'Klatt engine ' + str(voice.klatt) if voice.klatt else 'eSpeak engine'})\n")
        lines.append(voice.text)
    path.write_text("".join(lines))
