"""A synthetic English ASR corpus in the exact on-disk layout of LibriSpeech.

    root/LibriSpeech/
        SPEAKERS.TXT                      ";" comments, then "ID | SEX | SUBSET | MINUTES | NAME"
        lm-text.txt                       LM sentences, one per line (no dev/test sentence)
        {split}/SPEAKER/CHAPTER/SPEAKER-CHAPTER.trans.txt   "SPEAKER-CHAPTER-UTT TEXT" lines
        {split}/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac    16 kHz mono 16-bit FLAC, UTT = 0000...
        VOICES.TXT, HELDOUT.TXT           generated voice files; test-heldout voices and channels
        .complete                         JSON (spec, counts), written last

Splits are train-clean-100, train-other-500, dev-clean, test-clean, dev-other, test-other, with
disjoint speakers. "clean" speakers use eSpeak's plain m1-m7/f1-f5 variants at moderate rates and
pitches; "other" speakers use rarer variants (whisper, croak, aged and robotic voices) at extreme
rates and pitches, recorded through random noise/reverb/band-limit/gain chains. With
`random_voice_share` > 0, that share of each training split's speakers speak with a variant file
generated for them (`corpora.synth.voices`: vocal tract length, formants, tilt, breath, pitch).
Sentences come from `corpora.synth.english`, or from the caller's text file.

test-heldout is speech no other split holds in kind (docs/heldout.md; HELDOUT.TXT lists each
utterance's voice and channels): voices on eSpeak's Klatt engine or with formant scales outside
the training range, the `en-029` accent, and channels no split or training augmentation applies
(mu-law telephone codec, sparse echoes, automatic gain control). Its
speakers, voices and channels come from random streams of their own, so it stays the same
whatever the training splits' settings.

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

from corpora.synth import babble, corpus_folder, english, heldout, voices
from corpora.synth.corpus_folder import MARKER, SYNTHETIC_MARKER  # noqa: F401 (re-exported)
from corpora.synth.degrade import colored_noise, heldout_channel, mix_at_snr, recorded_in
from corpora.synth.espeak import SAMPLE_RATE, Espeak
from corpora.synth.pool import run_chunks
from corpora.synth.speakers import (ENGLISH_VOICES, HARD_VARIANTS, KLATT_VARIANTS,
                                   PLAIN_VARIANTS, Speaker, jitter, make_speakers,
                                   one_speaker_per_voice)

SPLITS = ("train-clean-100", "train-other-500", "dev-clean", "test-clean", "dev-other",
          "test-other", "test-heldout")
HELDOUT_SPLIT = "test-heldout"
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
    test_heldout: int = 300
    lm_sentences: int = 100_000
    # Speakers per split (fewer when a split has fewer utterances).
    train_clean_100_speakers: int = 80
    train_other_500_speakers: int = 60
    dev_test_speakers: int = 20  # each of dev-clean, test-clean, dev-other, test-other, heldout
    utterances_per_chapter: int = 20
    # Voices: English bases x variants; rates in words per minute, pitch and range 0-99.
    languages: tuple[str, ...] = tuple(v for v in ENGLISH_VOICES if v not in heldout.HELDOUT_LANGUAGES)
    clean_variants: tuple[str, ...] = tuple(PLAIN_VARIANTS)
    clean_rate: tuple[int, int] = (140, 190)
    clean_pitch: tuple[int, int] = (30, 70)
    clean_pitch_range: tuple[int, int] = (30, 70)
    # A quiet room's noise floor under clean recordings: eSpeak's pauses are exact digital zeros,
    # which no microphone records and which a model would learn to rely on as word boundaries.
    clean_floor_snr_db: tuple[float, float] = (30.0, 50.0)
    other_variants: tuple[str, ...] = tuple(v for v in HARD_VARIANTS if v not in KLATT_VARIANTS)
    other_rate: tuple[int, int] = (95, 260)
    other_pitch: tuple[int, int] = (3, 97)
    other_pitch_range: tuple[int, int] = (0, 99)
    babble_tracks: int = 8  # babble noise tracks for "other" splits, 5 talkers each
    # Voice randomization: this share of each training split's speakers get a generated variant
    # whose formant frequencies are scaled by a factor from `random_formant_scale`.
    random_voice_share: float = 0.0
    random_formant_scale: tuple[float, float] = voices.VoiceRanges().formant_scale
    # test-heldout: bases no other split uses; half its speakers take packaged Klatt-engine
    # variants, half generated voices (half of those on the Klatt engine) with formant scales
    # from these ranges, outside `random_formant_scale`.
    heldout_languages: tuple[str, ...] = heldout.HELDOUT_LANGUAGES
    heldout_formant_scales: tuple[tuple[float, float], ...] = heldout.HELDOUT_FORMANT_SCALES
    heldout_rate: tuple[int, int] = (120, 220)
    # Utterances per fresh worker process; part of the spec because it fixes eSpeak's call order.
    chunk_size: int = 50

    def __post_init__(self) -> None:
        if not 0.0 <= self.random_voice_share <= 1.0:
            raise ValueError(f"LibriSpeechSpec.random_voice_share = {self.random_voice_share}: "
                             f"expected a share in [0, 1]")

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
        fields["heldout_formant_scales"] = tuple(map(tuple, fields["heldout_formant_scales"]))
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
    # "clean": a noise floor only; "other": recorded-in degradations; "heldout": a noise floor,
    # then held-out channels.
    condition: str
    clean_floor_snr_db: tuple[float, float]
    babble_path: str | None
    generated_voice: voices.RandomVoice | None  # the voice's variant file when it is a generated one


# ---------------------------------------------------------------------------------------------
# Workers (run in fresh processes)

def _synth_chunk(jobs: list[_Utterance]) -> list[tuple[int, list[str]]]:
    """Synthesize, degrade and write each job's FLAC; return each file's (sample count, held-out
    channels applied)."""
    with voices.engine_with([job.generated_voice for job in jobs if job.generated_voice]) as engine:
        return [_synth_one(engine, job) for job in jobs]


def _synth_one(engine: Espeak, job: _Utterance) -> tuple[int, list[str]]:
    """One job: synthesize, degrade, write; (sample count, held-out channels applied)."""
    wave = engine.synth(job.text.lower(), job.voice, job.rate, job.pitch, job.pitch_range)
    if wave.size == 0:
        raise RuntimeError(f"eSpeak produced no audio for {job.text!r} ({job.voice}), "
                           f"meant for {job.path}")
    rng = np.random.default_rng(job.degrade_seed)
    channels: list[str] = []
    if job.condition == "other":
        bank = babble.load_bank(job.babble_path) if job.babble_path else []
        wave = recorded_in(wave, rng, bank, SAMPLE_RATE)
    else:
        floor = colored_noise(str(rng.choice(["white", "pink"])), wave.size, rng)
        wave = mix_at_snr(wave, floor, rng.uniform(*job.clean_floor_snr_db))
        if job.condition == "heldout":
            wave, channels = heldout_channel(wave, rng, SAMPLE_RATE)
    _write_flac(Path(job.path), wave)
    return int(wave.size), channels


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


def _generated_voices(spec: LibriSpeechSpec, train_rng: np.random.Generator,
                      heldout_rng: np.random.Generator
                      ) -> tuple[list[voices.RandomVoice], list[voices.RandomVoice]]:
    """(training voices, held-out voices): one generated variant per speaker that gets one."""
    per_split = spec.split_speakers()
    n_train = sum(round(spec.random_voice_share * per_split[split]) for split in TRAIN_SPLITS)
    train = voices.training_voices(n_train, spec.random_formant_scale, train_rng)
    return train, heldout.heldout_voices(per_split[HELDOUT_SPLIT], spec.heldout_formant_scales,
                                         heldout_rng)


def _speakers_per_split(spec: LibriSpeechSpec, rng: np.random.Generator,
                        heldout_rng: np.random.Generator, train_voices: list[str],
                        heldout_voices: list[str], data_path: str) -> dict[str, list[Speaker]]:
    """Each split's speakers; generated voices (`train_voices`, `heldout_voices`: variant names
    in `data_path`) go one to a speaker, the training ones dealt to the training splits in
    order. test-heldout draws only from `heldout_rng`."""
    speakers, next_id = {}, FIRST_SPEAKER_ID
    unused = list(train_voices)
    for split, n in spec.split_speakers().items():
        if split == HELDOUT_SPLIT:
            languages = list(spec.languages) + list(spec.heldout_languages)
            ranges = dict(rate=spec.heldout_rate, pitch=spec.clean_pitch,
                          pitch_range=spec.clean_pitch_range)
            speakers[split] = heldout.heldout_speakers(n, heldout_voices, heldout_rng,
                                                       languages=languages, ranges=ranges,
                                                       first_id=next_id, data_path=data_path)
            next_id += n
            continue
        clean = "clean" in split
        ranges = dict(rate=spec.clean_rate if clean else spec.other_rate,
                      pitch=spec.clean_pitch if clean else spec.other_pitch,
                      pitch_range=spec.clean_pitch_range if clean else spec.other_pitch_range)
        n_generated = round(spec.random_voice_share * n) if split in TRAIN_SPLITS else 0
        generated, unused = unused[:n_generated], unused[n_generated:]
        packaged = make_speakers(
            n - len(generated), rng, languages=list(spec.languages),
            variants=list(spec.clean_variants if clean else spec.other_variants),
            first_id=next_id, **ranges)
        speakers[split] = packaged + one_speaker_per_voice(
            generated, rng, list(spec.languages), ranges, next_id + len(packaged), data_path)
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
    # Streams 4-6 serve voice generation and test-heldout alone: held-out speech stays the same
    # whatever the training splits' settings (spawn(7)[:4] == spawn(4), so 0-3 kept their draws).
    streams = np.random.SeedSequence(spec.seed).spawn(7)
    (text_rng, speaker_rng, utterance_rng, babble_rng, voice_rng, heldout_voice_rng,
     heldout_rng) = (np.random.default_rng(s) for s in streams)
    # The texts before the old corpus goes: a text file that cannot be used must not cost it.
    texts = (_file_texts(spec, Path(text_file), text_rng) if text_file
             else _generated_texts(spec, text_rng))
    corpus = corpus_folder.fresh_corpus_folder(root, CORPUS_DIR)
    train_voices, heldout_voices = _generated_voices(spec, voice_rng, heldout_voice_rng)
    with voices.data_folder_with(train_voices + heldout_voices) as espeak_data:
        speakers = _speakers_per_split(spec, speaker_rng, heldout_rng,
                                       [v.name for v in train_voices],
                                       [v.name for v in heldout_voices], espeak_data)
        result = _synthesize(corpus, spec, texts, speakers, utterance_rng, heldout_rng,
                             babble_rng, train_voices + heldout_voices, processes)
    voices.write_voices_txt(corpus / "VOICES.TXT", train_voices + heldout_voices)
    corpus_folder.mark_complete(corpus, spec, {"text_sha256": _file_sha256(text_file), **result})
    return result


def _synthesize(corpus: Path, spec: LibriSpeechSpec, texts: dict[str, list[str]],
                speakers: dict[str, list[Speaker]], utterance_rng: np.random.Generator,
                heldout_rng: np.random.Generator, babble_rng: np.random.Generator,
                generated: list[voices.RandomVoice], processes: int | None) -> dict:
    """Every split's audio, transcripts, SPEAKERS.TXT and lm-text.txt; make_librispeech's result.

    generated: the generated variants some speakers' voices name."""
    generated_by_name = {voice.name: voice for voice in generated}
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
                    rng = heldout_rng if split == HELDOUT_SPLIT else utterance_rng
                    rate, pitch, pitch_range = jitter(speaker, rng)
                    degrade_seed = int(rng.integers(2 ** 63))
                    condition = ("heldout" if split == HELDOUT_SPLIT else
                                 "other" if "other" in split else "clean")
                    jobs.append(_Utterance(
                        path=str(folder / f"{utt_id}.flac"), text=split_texts[index],
                        voice=speaker.voice, rate=rate, pitch=pitch, pitch_range=pitch_range,
                        degrade_seed=degrade_seed, condition=condition,
                        clean_floor_snr_db=spec.clean_floor_snr_db,
                        babble_path=str(babble_path) if condition == "other" and need_babble
                        else None,
                        generated_voice=generated_by_name.get(speaker.voice.partition("+")[2])))
                    speaker_of_job.append((split, speaker))
                    lines.append((utt_id, split_texts[index]))
                chapters.append((folder / f"{speaker.id}-{chapter_id}.trans.txt", lines))
                chapter_id += 1

    # test-heldout in chunks of its own: eSpeak's output depends on the calls before it in a
    # process, and the held-out audio must not depend on what the training splits said.
    first_heldout = next((i for i, job in enumerate(jobs) if job.condition == "heldout"), len(jobs))
    results = [result for part, desc in ((jobs[:first_heldout], "LibriSpeech"),
                                         (jobs[first_heldout:], HELDOUT_SPLIT))
               for result in run_chunks(part, _synth_chunk, chunk_size=spec.chunk_size,
                                        processes=processes, desc=desc)]
    samples = [n for n, _ in results]
    _write_heldout_txt(corpus / "HELDOUT.TXT", jobs[first_heldout:],
                       [channels for _, channels in results[first_heldout:]])

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
    return result


def _write_heldout_txt(path: Path, jobs: list[_Utterance], channels: list[list[str]]) -> None:
    """Per test-heldout utterance: its voice and the held-out channels it went through, so errors
    can be broken down by what was held out (docs/heldout.md)."""
    lines = ["; test-heldout utterances: ID VOICE CHANNELS (comma-separated, in the order applied)\n"]
    for job, applied in zip(jobs, channels):
        lines.append(f"{Path(job.path).stem} {job.voice} {','.join(applied)}\n")
    path.write_text("".join(lines))


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
