"""A synthetic English ASR corpus in the exact on-disk layout of LibriSpeech.

    root/LibriSpeech/
        SPEAKERS.TXT                      ";" comments, then "ID | SEX | SUBSET | MINUTES | NAME"
        lm-text.txt                       LM sentences, one per line (no dev/test sentence)
        {split}/SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt   "SPEAKER-CHAPTER-UTT TEXT" lines
        {split}/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac    16 kHz mono 16-bit FLAC, UTT = 0000...
        .complete                         JSON (spec, counts), written last

Splits are train-clean-100, train-other-500, dev-clean, test-clean, dev-other, test-other, with
disjoint speakers. "clean" speakers use eSpeak's plain m1-m7/f1-f5 variants at moderate rates and
pitches; "other" speakers use rarer variants (whisper, croak, Klatt, aged and robotic voices) at
extreme rates and pitches, recorded through random noise/reverb/band-limit/gain chains. Sentences
come from `corpora.synth.english`, or from the caller's text file.

The same spec gives byte-identical files whatever the number of processes (see
`corpora.synth.pool`); another seed gives another corpus.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from corpora.synth import babble, corpus_folder, english
from corpora.synth.corpus_folder import MARKER, SYNTHETIC_MARKER  # noqa: F401 (re-exported)
from corpora.synth.degrade import colored_noise, mix_at_snr, recorded_in
from corpora.synth.espeak import SAMPLE_RATE, Espeak
from corpora.synth.pool import run_chunks
from corpora.synth.speakers import (ENGLISH_VOICES, HARD_VARIANTS, PLAIN_VARIANTS, Speaker,
                                   jitter, make_speakers)

SPLITS = ("train-clean-100", "train-other-500", "dev-clean", "test-clean", "dev-other",
          "test-other")
TRAIN_SPLITS = ("train-clean-100", "train-other-500")
CORPUS_DIR = "LibriSpeech"
FIRST_SPEAKER_ID = 100
FIRST_CHAPTER_ID = 1000


@dataclass
class LibriSpeechSpec:
    """Everything that determines the corpus; `.complete` records it for `is_complete`."""

    seed: int = 0
    # Utterances per split.
    train_clean_100: int = 4000
    train_other_500: int = 3000
    dev_clean: int = 300
    test_clean: int = 300
    dev_other: int = 300
    test_other: int = 300
    lm_sentences: int = 100_000
    # Speakers per split (fewer when a split has fewer utterances).
    train_clean_100_speakers: int = 80
    train_other_500_speakers: int = 60
    dev_test_speakers: int = 20  # each of dev-clean, test-clean, dev-other, test-other
    utterances_per_chapter: int = 20
    # Voices: English bases x variants; rates in words per minute, pitch and range 0-99.
    languages: tuple[str, ...] = tuple(ENGLISH_VOICES)
    clean_variants: tuple[str, ...] = tuple(PLAIN_VARIANTS)
    clean_rate: tuple[int, int] = (140, 190)
    clean_pitch: tuple[int, int] = (30, 70)
    clean_pitch_range: tuple[int, int] = (30, 70)
    # A quiet room's noise floor under clean recordings: eSpeak's pauses are exact digital zeros,
    # which no microphone records and which a model would learn to rely on as word boundaries.
    clean_floor_snr_db: tuple[float, float] = (30.0, 50.0)
    other_variants: tuple[str, ...] = tuple(HARD_VARIANTS)
    other_rate: tuple[int, int] = (95, 260)
    other_pitch: tuple[int, int] = (3, 97)
    other_pitch_range: tuple[int, int] = (0, 99)
    babble_tracks: int = 8  # babble noise tracks for "other" splits, 5 talkers each
    # Utterances per fresh worker process; part of the spec because it fixes eSpeak's call order.
    chunk_size: int = 50

    def split_sizes(self) -> dict[str, int]:
        return {split: getattr(self, split.replace("-", "_")) for split in SPLITS}

    def split_speakers(self) -> dict[str, int]:
        wanted = {"train-clean-100": self.train_clean_100_speakers,
                  "train-other-500": self.train_other_500_speakers}
        return {split: min(wanted.get(split, self.dev_test_speakers), size)
                for split, size in self.split_sizes().items()}

    def scaled(self, factor: float) -> LibriSpeechSpec:
        """The same corpus design with utterance, sentence and speaker counts times `factor`."""
        def times(n: int) -> int:
            return max(1, round(n * factor)) if n else 0
        fields = asdict(self)
        for name in [split.replace("-", "_") for split in SPLITS] + [
                "lm_sentences", "train_clean_100_speakers", "train_other_500_speakers",
                "dev_test_speakers"]:
            fields[name] = times(fields[name])
        return LibriSpeechSpec(**fields)


@dataclass(frozen=True)
class _Utterance:
    """One synthesis job (picklable): where to write, what to say, how, and how to degrade."""

    path: str
    text: str
    voice: str
    rate: int
    pitch: int
    pitch_range: int
    degrade_seed: int
    other: bool  # recorded-in degradations; clean recordings only get a noise floor
    clean_floor_snr_db: tuple[float, float]
    babble_path: str | None


# ---------------------------------------------------------------------------------------------
# Workers (run in fresh processes)

def _synth_chunk(jobs: list[_Utterance]) -> list[int]:
    """Synthesize, degrade and write each job's FLAC; return each file's sample count."""
    engine = Espeak()
    counts = []
    for job in jobs:
        wave = engine.synth(job.text.lower(), job.voice, job.rate, job.pitch, job.pitch_range)
        if wave.size == 0:
            raise RuntimeError(f"eSpeak produced no audio for {job.text!r} ({job.voice}), "
                               f"meant for {job.path}")
        rng = np.random.default_rng(job.degrade_seed)
        if job.other:
            bank = babble.load_bank(job.babble_path) if job.babble_path else []
            wave = recorded_in(wave, rng, bank, SAMPLE_RATE)
        else:
            floor = colored_noise(str(rng.choice(["white", "pink"])), wave.size, rng)
            wave = mix_at_snr(wave, floor, rng.uniform(*job.clean_floor_snr_db))
        _write_flac(Path(job.path), wave)
        counts.append(int(wave.size))
    return counts


def _write_flac(path: Path, wave: np.ndarray) -> None:
    # Not common.audio.save: that imports torch, which would cost every fresh worker ~1 s.
    # Quantizing here (not in libsndfile) makes the bytes depend on the samples alone.
    pcm = np.round(np.clip(wave, -1.0, 1.0) * 32767.0).astype(np.int16)
    tmp = path.with_name(path.name + ".tmp")
    sf.write(tmp, pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# Text

_PUNCTUATION = re.compile(r"[.,;:!?\"()\[\]\-\u2013\u2014\u201c\u201d]")
_ALLOWED = re.compile(r"[A-Z' ]*")


def normalize_line(line: str, where: str) -> str:
    """A user's sentence in transcript form: upper case, punctuation dropped, apostrophes kept.

    Digits and other symbols cannot be transcribed the way eSpeak reads them, so they are an
    error (naming `where`, e.g. "file.txt:12") rather than silently dropped.
    """
    text = _PUNCTUATION.sub(" ", line.replace("\u2019", "'").upper())
    text = " ".join(text.split())
    if not _ALLOWED.fullmatch(text):
        bad = sorted(set(re.sub(r"[A-Z' ]", "", text)))
        raise ValueError(f"{where}: characters {''.join(bad)!r} cannot be spoken and transcribed "
                         f"exactly; write numbers and symbols as words (letters, apostrophes, "
                         f"punctuation only)")
    words = [w.strip("'") if not w.endswith("S'") else w.lstrip("'") for w in text.split()]
    return " ".join(w for w in words if w)


def _generated_texts(spec: LibriSpeechSpec, rng: np.random.Generator) -> dict[str, list[str]]:
    return english.disjoint_sentence_sets({**spec.split_sizes(), "lm": spec.lm_sentences}, rng)


def _file_texts(spec: LibriSpeechSpec, text_file: Path,
                rng: np.random.Generator) -> dict[str, list[str]]:
    """The user's unique sentences shuffled and dealt to the splits in proportion to the spec.

    When there are fewer lines than the spec asks for, every split shrinks by the same factor
    (keeping at least one utterance). The LM text is every sentence not in a dev/test split.
    """
    if not text_file.is_file():
        raise FileNotFoundError(f"{text_file}: no such text file")
    unique: dict[str, None] = {}
    try:
        content = text_file.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{text_file}: not UTF-8 text (byte {e.start}): save it as UTF-8"
                         ) from None
    for number, line in enumerate(content.splitlines(), 1):
        text = normalize_line(line, f"{text_file}:{number}")
        if text:
            unique.setdefault(text)
    lines = list(unique)
    lines = [lines[i] for i in rng.permutation(len(lines))]
    sizes = spec.split_sizes()
    wanted = sum(sizes.values())
    if len(lines) < sum(1 for size in sizes.values() if size):
        raise ValueError(f"{text_file}: {len(lines)} usable sentences, need at least one per "
                         f"split ({len(sizes)})")
    if len(lines) < wanted:
        factor = len(lines) / wanted
        sizes = {split: max(1, math.floor(size * factor)) if size else 0
                 for split, size in sizes.items()}
        sizes["train-clean-100"] += len(lines) - sum(sizes.values())
    sets, start = {}, 0
    for split, size in sizes.items():
        sets[split] = lines[start:start + size]
        start += size
    held_out = {text for split in SPLITS if split not in TRAIN_SPLITS for text in sets[split]}
    sets["lm"] = [text for text in lines if text not in held_out]
    return sets


# ---------------------------------------------------------------------------------------------
# Corpus

def _file_sha256(path: Path | None) -> str | None:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None


def is_complete(root: Path, spec: LibriSpeechSpec, text_file: Path | None = None) -> bool:
    """True when root/LibriSpeech was fully written from this spec (and this text file)."""
    text_hash = _file_sha256(text_file) if text_file and Path(text_file).is_file() else None
    return corpus_folder.is_complete(Path(root) / CORPUS_DIR, spec, text_sha256=text_hash)


def _speakers_per_split(spec: LibriSpeechSpec,
                        rng: np.random.Generator) -> dict[str, list[Speaker]]:
    speakers, next_id = {}, FIRST_SPEAKER_ID
    for split, n in spec.split_speakers().items():
        clean = "clean" in split
        speakers[split] = make_speakers(
            n, rng, languages=list(spec.languages),
            variants=list(spec.clean_variants if clean else spec.other_variants),
            rate=spec.clean_rate if clean else spec.other_rate,
            pitch=spec.clean_pitch if clean else spec.other_pitch,
            pitch_range=spec.clean_pitch_range if clean else spec.other_pitch_range,
            first_id=next_id)
        next_id += n
    return speakers


def _babble_jobs(spec: LibriSpeechSpec, rng: np.random.Generator, tracks: int,
                 talkers: int = 5, seconds: float = 12.0) -> list[babble.BabbleJob]:
    """Babble tracks from clean-style voices saying generated sentences (never corpus text)."""
    voices = make_speakers(tracks * talkers, rng, languages=list(spec.languages),
                           variants=list(spec.clean_variants), rate=spec.clean_rate,
                           pitch=spec.clean_pitch, pitch_range=spec.clean_pitch_range,
                           first_id=0)
    texts = english.sentences(tracks * talkers * 3, rng)
    said = [" ".join(texts[first:first + 3]).lower() for first in range(0, len(texts), 3)]
    return babble.babble_jobs(voices, said, talkers, seconds, rng)


def make_librispeech(root: Path, spec: LibriSpeechSpec, *, processes: int | None = None,
                     text_file: Path | None = None) -> dict:
    """Write the corpus under root/LibriSpeech (replacing an earlier synthetic one).

    Returns {"corpus", "path", "utterances", "hours", "lm_sentences", "splits": {split:
    {"utterances", "hours", "speakers"}}}.
    """
    corpus_folder.check_replaceable(Path(root) / CORPUS_DIR)  # refuse before any work
    streams = np.random.SeedSequence(spec.seed).spawn(4)
    text_rng, speaker_rng, utterance_rng, babble_rng = (np.random.default_rng(s) for s in streams)
    # The texts before the old corpus goes: a text file that cannot be used must not cost it.
    texts = (_file_texts(spec, Path(text_file), text_rng) if text_file
             else _generated_texts(spec, text_rng))
    corpus = corpus_folder.fresh_corpus_folder(root, CORPUS_DIR)
    speakers = _speakers_per_split(spec, speaker_rng)

    need_babble = spec.babble_tracks > 0 and any(texts[s] for s in SPLITS if "other" in s)
    babble_path = corpus / ".babble.npy"
    if need_babble:
        babble.write_bank(babble_path, _babble_jobs(spec, babble_rng, spec.babble_tracks))

    jobs: list[_Utterance] = []
    chapters: list[tuple[Path, list[tuple[str, str]]]] = []  # (trans.txt path, [(id, text)])
    speaker_of_job: list[tuple[str, Speaker]] = []
    chapter_id = FIRST_CHAPTER_ID
    for split in SPLITS:
        split_texts, split_speakers = texts[split], speakers[split]
        n_speakers = min(len(split_speakers), len(split_texts))
        per_speaker = np.array_split(np.arange(len(split_texts)), n_speakers) if n_speakers else []
        for speaker, indices in zip(split_speakers, per_speaker):
            for first in range(0, len(indices), spec.utterances_per_chapter):
                folder = corpus / split / str(speaker.id) / str(chapter_id)
                folder.mkdir(parents=True)
                lines = []
                for utt, index in enumerate(indices[first:first + spec.utterances_per_chapter]):
                    utt_id = f"{speaker.id}-{chapter_id}-{utt:04d}"
                    rate, pitch, pitch_range = jitter(speaker, utterance_rng)
                    degrade_seed = int(utterance_rng.integers(2 ** 63))
                    other = "other" in split
                    jobs.append(_Utterance(
                        path=str(folder / f"{utt_id}.flac"), text=split_texts[index],
                        voice=speaker.voice, rate=rate, pitch=pitch, pitch_range=pitch_range,
                        degrade_seed=degrade_seed, other=other, clean_floor_snr_db=spec.clean_floor_snr_db,
                        babble_path=str(babble_path) if other and need_babble else None))
                    speaker_of_job.append((split, speaker))
                    lines.append((utt_id, split_texts[index]))
                chapters.append((folder / f"{speaker.id}-{chapter_id}.trans.txt", lines))
                chapter_id += 1

    samples = run_chunks(jobs, _synth_chunk, chunk_size=spec.chunk_size, processes=processes,
                         desc="LibriSpeech")

    for path, lines in chapters:
        path.write_text("".join(f"{utt_id} {text}\n" for utt_id, text in lines))
    seconds: dict[tuple[str, int], float] = {}
    for (split, speaker), n in zip(speaker_of_job, samples):
        seconds[split, speaker.id] = seconds.get((split, speaker.id), 0.0) + n / SAMPLE_RATE
    _write_speakers_txt(corpus / "SPEAKERS.TXT", speakers, seconds)
    (corpus / "lm-text.txt").write_text("".join(f"{text}\n" for text in texts["lm"]))
    babble_path.unlink(missing_ok=True)

    splits = {}
    for split in SPLITS:
        split_seconds = sum(s for (name, _), s in seconds.items() if name == split)
        splits[split] = {"utterances": len(texts[split]), "hours": split_seconds / 3600,
                         "speakers": sum(1 for name, _ in seconds if name == split)}
    result = {"corpus": "librispeech", "path": str(corpus),
              "utterances": sum(s["utterances"] for s in splits.values()),
              "hours": sum(s["hours"] for s in splits.values()),
              "lm_sentences": len(texts["lm"]), "splits": splits}
    # No absolute path in the marker: identical specs give identical files wherever they live.
    corpus_folder.mark_complete(corpus, spec, {
        "text_sha256": _file_sha256(text_file),
        **{key: value for key, value in result.items() if key != "path"}})
    return result


def _write_speakers_txt(path: Path, speakers: dict[str, list[Speaker]],
                        seconds: dict[tuple[str, int], float]) -> None:
    lines = [
        "; Synthetic LibriSpeech-layout corpus made with eSpeak NG (python -m corpora.synth).\n",
        "; Each speaker is an eSpeak voice+variant with its own rate (wpm), pitch and range;\n",
        "; NAME spells these out. Speakers are disjoint across subsets.\n",
        ";ID  |SEX| SUBSET           |MINUTES| NAME\n",
    ]
    for split in SPLITS:
        for s in speakers[split]:
            if (split, s.id) not in seconds:
                continue
            name = f"{s.voice} rate {s.rate} pitch {s.pitch} range {s.pitch_range}"
            lines.append(f"{s.id:<5}| {s.sex} | {split:<17}| {seconds[split, s.id] / 60:5.2f} "
                         f"| {name}\n")
    path.write_text("".join(lines))
