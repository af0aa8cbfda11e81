"""A synthetic Korean ASR corpus in the on-disk layout of KsponSpeech (AI Hub).

    root/KsponSpeech/
        KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000001.pcm   train, then dev, numbered on
        KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000001.txt   1000 files per folder, 124
                                                                  folders per KsponSpeech_NN part
        KsponSpeech_eval/eval_clean/KsponSpeech_E00001.pcm (.txt)
        KsponSpeech_eval/eval_other/KsponSpeech_E00301.pcm (.txt) numbered on after eval_clean
        KsponSpeech_scripts/{train,dev,eval_clean,eval_other}.trn
        .synthetic                        written first: only folders holding it are ever deleted
        .complete                         JSON (spec, counts), written last

Audio is headerless 16-bit little-endian 16 kHz mono PCM. Each .txt holds the annotated
transcript on one line in CP949; each .trn line is `RELATIVE/PATH.pcm :: TRANSCRIPT` in UTF-8,
with the same annotated transcript (the real train.trn, dev.trn and eval .trn files all carry the
raw annotations, e.g. `(20년)/(이십 년)`, `b/`, `l/`; the eval folders and numbering follow the real
release: eval_clean E00001-E03000, then eval_other from E03001).

Sentences come from `corpora.synth.korean`; dev and eval sentences never occur in train, and each
split has its own speakers (eSpeak's `ko` voice with a variant, rate and pitch). The audio speaks
the phonetic form of the transcript; tags become sounds: `b/` a breath, `n/` a knock or rustle,
`l/` a laugh, `u/` a muffled mumble of the hidden word, `o/` another talker underneath. eval_other
uses more unusual voices and every utterance is recorded in poor conditions
(`degrade.recorded_in`); a fraction of train/dev is too.

The same spec gives byte-identical files whatever the number of processes (see
`corpora.synth.pool`); another seed gives another corpus.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from corpora.synth import babble, corpus_folder, korean
from corpora.synth.corpus_folder import MARKER, SYNTHETIC_MARKER  # noqa: F401 (re-exported)
from corpora.synth.degrade import apply_gain, band_limit, colored_noise, recorded_in
from corpora.synth.espeak import SAMPLE_RATE, Espeak
from corpora.synth.pool import run_chunks
from corpora.synth.speakers import HARD_VARIANTS, PLAIN_VARIANTS, Speaker, jitter, make_speakers

SPLITS = ("train", "dev", "eval_clean", "eval_other")
CORPUS_DIR = "KsponSpeech"
SCRIPTS_DIR = "KsponSpeech_scripts"
EVAL_DIR = "KsponSpeech_eval"
VOICE = "ko"
TRANSCRIPT_ENCODING = "cp949"
LAUGHS = ["하하하", "하하", "흐흐흐", "히히", "헤헤헤", "으하하"]


@dataclass
class KsponSpec:
    """Everything that determines the corpus; the same spec gives the same bytes."""

    seed: int = 0
    n_train: int = 3000
    n_dev: int = 300
    n_eval_clean: int = 300
    n_eval_other: int = 300
    n_train_speakers: int = 120
    n_dev_speakers: int = 12
    n_eval_speakers: int = 12  # for each of eval_clean and eval_other
    rate: tuple[int, int] = (130, 200)  # words per minute
    pitch: tuple[int, int] = (25, 75)
    pitch_range: tuple[int, int] = (25, 80)
    hard_voice_fraction: float = 0.15  # train/dev speakers with unusual variants
    eval_other_hard_voice_fraction: float = 0.5
    train_other_fraction: float = 0.3  # train/dev utterances recorded in poor conditions
    level_dbfs: tuple[float, float] = (-30.0, -18.0)  # RMS of the speech
    floor_snr_db: tuple[float, float] = (30.0, 50.0)  # room noise floor under every recording
    files_per_folder: int = 1000
    folders_per_part: int = 124
    chunk_size: int = 100

    def __post_init__(self) -> None:
        for name in ("rate", "pitch", "pitch_range", "level_dbfs", "floor_snr_db"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"KsponSpec.{name} must be (low, high), got {(low, high)}")
            setattr(self, name, (low, high))
        for split in SPLITS:
            if self.split_sizes()[split] < 0:
                raise ValueError(f"KsponSpec: the {split} size must be >= 0")
        for name in ("hard_voice_fraction", "eval_other_hard_voice_fraction",
                     "train_other_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"KsponSpec.{name} must be a probability, got "
                                 f"{getattr(self, name)}")

    def split_sizes(self) -> dict[str, int]:
        return {"train": self.n_train, "dev": self.n_dev, "eval_clean": self.n_eval_clean,
                "eval_other": self.n_eval_other}

    def scaled(self, factor: float) -> KsponSpec:
        """This spec with `factor` times the utterances and speakers (a non-empty split keeps at
        least one of each)."""
        def scale(n: int) -> int:
            return max(1, round(n * factor)) if n else 0
        return replace(self, n_train=scale(self.n_train), n_dev=scale(self.n_dev),
                       n_eval_clean=scale(self.n_eval_clean),
                       n_eval_other=scale(self.n_eval_other),
                       n_train_speakers=scale(self.n_train_speakers),
                       n_dev_speakers=scale(self.n_dev_speakers),
                       n_eval_speakers=scale(self.n_eval_speakers))


@dataclass(frozen=True)
class _Utterance:
    """One synthesis job (picklable): where to write, what to say, how, and how to record."""

    pcm_path: str
    tokens: tuple[korean.Token, ...]
    voice: str
    rate: int
    pitch: int
    pitch_range: int
    seed: int
    other: bool  # recorded in poor conditions
    overlap_text: str  # what a second talker says under an `o/` tag
    overlap_voice: str
    level_dbfs: tuple[float, float]
    floor_snr_db: tuple[float, float]
    babble_path: str


# ---------------------------------------------------------------------------------------------
# Non-speech sounds

def breath(rng: np.random.Generator) -> np.ndarray:
    """A breath `(samples,)`, unit peak: 0.25-0.5 s of band-passed noise swelling and fading."""
    n = int(rng.uniform(0.25, 0.5) * SAMPLE_RATE)
    noise = band_limit(colored_noise("pink", n, rng), rng.uniform(300, 600),
                       rng.uniform(2000, 3500), SAMPLE_RATE)
    wave = noise * np.hanning(n) ** 1.5
    return (wave / np.max(np.abs(wave))).astype(np.float32)


def knock_or_rustle(rng: np.random.Generator) -> np.ndarray:
    """A short non-speech noise `(samples,)`, unit peak: a decaying knock or a rustle."""
    if rng.random() < 0.5:
        n = int(rng.uniform(0.04, 0.15) * SAMPLE_RATE)
        decay = np.exp(-np.arange(n) / (rng.uniform(0.005, 0.03) * SAMPLE_RATE))
        wave = band_limit(colored_noise("white", n, rng), 60, rng.uniform(1500, 6000),
                          SAMPLE_RATE) * decay
    else:
        n = int(rng.uniform(0.2, 0.6) * SAMPLE_RATE)
        wave = band_limit(colored_noise("white", n, rng), rng.uniform(1000, 2500), 7500,
                          SAMPLE_RATE) * np.hanning(n)
        wave *= 0.6 + 0.4 * rng.random(n // 160 + 1).repeat(160)[:n]  # crackle
    return (wave / np.max(np.abs(wave))).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Workers (run in fresh processes)

def _rms(wave: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0


def _scaled(wave: np.ndarray, rms: float) -> np.ndarray:
    current = _rms(wave)
    return wave * (rms / current) if current > 0 else wave


def render(job: _Utterance, engine: Espeak, rng: np.random.Generator) -> np.ndarray:
    """The utterance as said, before any recording effects: `(samples,)` float32.

    Speech runs between tags are synthesized one call each, in transcript order, separated by
    short pauses; tags become their sounds, scaled relative to the speech.
    """
    pieces: list[tuple[str, np.ndarray]] = []
    run: list[str] = []

    def speak(text: str, **changes) -> np.ndarray:
        params = {"rate": job.rate, "pitch": job.pitch, "pitch_range": job.pitch_range, **changes}
        return engine.synth(text, job.voice, params["rate"], params["pitch"],
                            params["pitch_range"])

    def flush() -> None:
        if run:
            pieces.append(("speech", speak(" ".join(run))))
            run.clear()

    for token in job.tokens:
        if token.sound == korean.SPEECH:
            if token.said:
                run.append(token.said)
            continue
        flush()
        if token.sound == "breath":
            pieces.append((token.sound, breath(rng)))
        elif token.sound == "noise":
            pieces.append((token.sound, knock_or_rustle(rng)))
        elif token.sound == "laughter":
            pieces.append((token.sound, speak(LAUGHS[int(rng.integers(len(LAUGHS)))],
                                              pitch=min(99, job.pitch + 15),
                                              rate=min(450, job.rate + 40))))
        elif token.sound == "mumble":
            said = speak(token.said, rate=min(450, job.rate + 60)) if token.said else np.zeros(0)
            if said.size:
                pieces.append((token.sound, band_limit(said, 80, rng.uniform(500, 900),
                                                       SAMPLE_RATE)))
        elif token.sound == "overlap":
            pieces.append((token.sound, np.zeros(0, dtype=np.float32)))
    flush()

    speech_rms = float(np.mean([_rms(w) for kind, w in pieces if kind == "speech"] or [0.0]))
    if speech_rms == 0.0:
        raise RuntimeError(f"eSpeak produced no speech for {job.pcm_path} "
                           f"({korean.spoken_text(list(job.tokens))!r}, {job.voice})")
    # Level of each event relative to the speech, in dB.
    levels = {"breath": (-20, -10), "noise": (-12, 0), "laughter": (-6, 0), "mumble": (-10, -4)}
    out: list[np.ndarray] = []
    position = 0
    overlap_at: int | None = None
    for index, (kind, wave) in enumerate(pieces):
        if index:
            pause = np.zeros(int(rng.uniform(0.04, 0.2) * SAMPLE_RATE), dtype=np.float32)
            out.append(pause)
            position += pause.size
        if kind == "overlap":
            overlap_at = position
            continue
        if kind in levels:
            wave = _scaled(wave, speech_rms * 10 ** (rng.uniform(*levels[kind]) / 20))
        out.append(wave.astype(np.float32))
        position += wave.size
    wave = np.concatenate(out)
    if overlap_at is not None:
        other = engine.synth(job.overlap_text, job.overlap_voice, job.rate, 50, 50)
        other = _scaled(other, speech_rms * 10 ** (rng.uniform(-18, -10) / 20))
        end = overlap_at + other.size
        if end > wave.size:
            wave = np.concatenate([wave, np.zeros(end - wave.size, dtype=np.float32)])
        wave[overlap_at:end] += other
    return wave.astype(np.float32)


def _record(wave: np.ndarray, job: _Utterance, rng: np.random.Generator) -> np.ndarray:
    """`wave` with room silence around it, at a speech level, through a clean or poor channel."""
    lead, trail = (np.zeros(int(rng.uniform(0.1, 0.5) * SAMPLE_RATE), dtype=np.float32)
                   for _ in range(2))
    speech_rms = _rms(wave)
    target = 10 ** (rng.uniform(*job.level_dbfs) / 20)
    wave = np.concatenate([lead, wave * (target / speech_rms), trail]).astype(np.float32)
    # Every room has a noise floor, so no recording holds digital silence.
    kind = ("white", "pink", "brown")[int(rng.integers(3))]
    floor = target / 10 ** (rng.uniform(*job.floor_snr_db) / 20)
    wave = wave + colored_noise(kind, wave.size, rng) * floor
    if job.other:
        wave = recorded_in(wave, rng, babble.load_bank(job.babble_path), SAMPLE_RATE)
    peak = float(np.max(np.abs(wave)))
    if peak > 0.99:
        wave = apply_gain(wave, 20 * np.log10(0.99 / peak))
    return wave.astype(np.float32)


def write_pcm(path: Path, wave: np.ndarray) -> None:
    """`wave` `(samples,)` in [-1, 1] as headerless 16-bit little-endian PCM."""
    pcm = np.round(np.clip(wave, -1.0, 1.0) * 32767.0).astype("<i2")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(pcm.tobytes())
    os.replace(tmp, path)


def _synth_chunk(jobs: list[_Utterance]) -> list[int]:
    """Render, record and write each job's .pcm; return each file's sample count."""
    engine = Espeak()
    counts = []
    for job in jobs:
        rng = np.random.default_rng(job.seed)
        wave = _record(render(job, engine, rng), job, rng)
        write_pcm(Path(job.pcm_path), wave)
        counts.append(int(wave.size))
    return counts


# ---------------------------------------------------------------------------------------------
# Corpus

def is_complete(root: Path, spec: KsponSpec) -> bool:
    """True when root/KsponSpeech was fully written from this spec."""
    return corpus_folder.is_complete(Path(root) / CORPUS_DIR, spec)


def relative_path(split: str, number: int, spec: KsponSpec) -> str:
    """The path of utterance `number` (1-based, counted over train+dev or over both evals).

    relative_path("train", 1, spec) -> "KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000001.pcm";
    relative_path("eval_clean", 1, spec) -> "KsponSpeech_eval/eval_clean/KsponSpeech_E00001.pcm".
    """
    if split in ("eval_clean", "eval_other"):
        return f"{EVAL_DIR}/{split}/KsponSpeech_E{number:05d}.pcm"
    folder = (number - 1) // spec.files_per_folder + 1
    part = (folder - 1) // spec.folders_per_part + 1
    return f"KsponSpeech_{part:02d}/KsponSpeech_{folder:04d}/KsponSpeech_{number:06d}.pcm"


def _sentences(spec: KsponSpec, rng: np.random.Generator) -> dict[str, list[list[korean.Token]]]:
    """Distinct plain sentences per split; held-out splits are drawn first, train gets the rest."""
    sizes = spec.split_sizes()
    total = sum(sizes.values())
    seen: set[str] = set()
    drawn: list[list[korean.Token]] = []
    attempts = 0
    while len(drawn) < total:
        attempts += 1
        if attempts > 50 * total + 1000:
            raise ValueError(f"KsponSpec asks for {total} distinct sentences; the templates in "
                             f"corpora.synth.korean gave only {len(drawn)} in {attempts} draws")
        tokens = korean.sentence(rng)
        key = korean.sentence_key(tokens)
        if key not in seen:
            seen.add(key)
            drawn.append(tokens)
    out, first = {}, 0
    for split in ("eval_clean", "eval_other", "dev", "train"):
        out[split] = drawn[first:first + sizes[split]]
        first += sizes[split]
    return out


def _speakers(spec: KsponSpec, rng: np.random.Generator) -> dict[str, list[Speaker]]:
    counts = {"train": spec.n_train_speakers, "dev": spec.n_dev_speakers,
              "eval_clean": spec.n_eval_speakers, "eval_other": spec.n_eval_speakers}
    hard_fraction = {"train": spec.hard_voice_fraction, "dev": spec.hard_voice_fraction,
                     "eval_clean": 0.0, "eval_other": spec.eval_other_hard_voice_fraction}
    ranges = dict(rate=spec.rate, pitch=spec.pitch, pitch_range=spec.pitch_range)
    speakers, next_id = {}, 1
    for split in SPLITS:
        n_hard = int(round(counts[split] * hard_fraction[split]))
        plain = make_speakers(counts[split] - n_hard, rng, languages=[VOICE],
                              variants=PLAIN_VARIANTS, first_id=next_id, **ranges)
        hard = make_speakers(n_hard, rng, languages=[VOICE], variants=HARD_VARIANTS,
                             first_id=next_id + len(plain), **ranges)
        group = plain + hard
        speakers[split] = [group[i] for i in rng.permutation(len(group))]
        next_id += len(group)
    return speakers


def _babble_jobs(rng: np.random.Generator, tracks: int = 8, talkers: int = 4,
                 seconds: float = 12.0) -> list[babble.BabbleJob]:
    """Babble tracks of Korean talkers saying template sentences (not tied to any split)."""
    voices = make_speakers(tracks * talkers, rng, languages=[VOICE], variants=PLAIN_VARIANTS,
                           first_id=0)
    # Drawn lazily: each track's sentences come from `rng` just before that track's seed.
    said = (" ".join(korean.spoken_text(korean.sentence(rng)) for _ in range(4)) for _ in voices)
    return babble.babble_jobs(voices, said, talkers, seconds, rng)


def make_kspon(root: Path, spec: KsponSpec, *, processes: int | None = None) -> dict:
    """Write the corpus under root/KsponSpeech (replacing an earlier synthetic one).

    Returns {"corpus", "path", "utterances", "hours", "splits": {split: {"utterances", "hours",
    "speakers"}}}.
    """
    corpus = corpus_folder.fresh_corpus_folder(root, CORPUS_DIR)

    streams = np.random.SeedSequence(spec.seed).spawn(5)
    text_rng, speaker_rng, annotation_rng, utterance_rng, babble_rng = (
        np.random.default_rng(s) for s in streams)
    sentences = _sentences(spec, text_rng)
    speakers = _speakers(spec, speaker_rng)
    overlap_voices = [f"{VOICE}+{v}" for v in PLAIN_VARIANTS]

    babble_path = corpus / ".babble.npy"
    babble.write_bank(babble_path, _babble_jobs(babble_rng))

    jobs: list[_Utterance] = []
    lines: dict[str, list[str]] = {split: [] for split in SPLITS}
    speaker_of_job: list[tuple[str, int]] = []
    numbers = {"train": 0, "dev": spec.n_train, "eval_clean": 0, "eval_other": spec.n_eval_clean}
    for split in SPLITS:
        split_speakers = speakers[split]
        n = len(sentences[split])
        if n and not split_speakers:
            raise ValueError(f"KsponSpec: {n} {split} utterances need at least one speaker")
        # Consecutive files share a speaker, as consecutive turns of a recorded conversation do.
        owners = np.array_split(np.arange(n), len(split_speakers)) if n else []
        for speaker, indices in zip(split_speakers, owners):
            for index in indices:
                numbers[split] += 1
                relative = relative_path(split, numbers[split], spec)
                pcm_path = corpus / relative
                pcm_path.parent.mkdir(parents=True, exist_ok=True)
                tokens = korean.annotate(sentences[split][index], annotation_rng)
                text = korean.transcript(tokens)
                try:
                    encoded = text.encode(TRANSCRIPT_ENCODING)
                except UnicodeEncodeError as e:
                    raise ValueError(f"{relative}: transcript {text!r} has a character CP949 "
                                     f"cannot encode: {text[e.start:e.end]!r}") from None
                pcm_path.with_suffix(".txt").write_bytes(encoded + b"\n")
                lines[split].append(f"{relative} :: {text}\n")
                rate, pitch, pitch_range = jitter(speaker, utterance_rng)
                other = split == "eval_other" or (
                    split in ("train", "dev")
                    and utterance_rng.random() < spec.train_other_fraction)
                overlap_text = korean.spoken_text(korean.sentence(utterance_rng))
                overlap_voice = overlap_voices[int(utterance_rng.integers(len(overlap_voices)))]
                jobs.append(_Utterance(
                    pcm_path=str(pcm_path), tokens=tuple(tokens), voice=speaker.voice, rate=rate,
                    pitch=pitch, pitch_range=pitch_range, seed=int(utterance_rng.integers(2 ** 63)),
                    other=other, overlap_text=overlap_text, overlap_voice=overlap_voice,
                    level_dbfs=spec.level_dbfs, floor_snr_db=spec.floor_snr_db,
                    babble_path=str(babble_path)))
                speaker_of_job.append((split, speaker.id))

    samples = run_chunks(jobs, _synth_chunk, chunk_size=spec.chunk_size, processes=processes,
                         desc="KsponSpeech")
    babble_path.unlink()

    scripts = corpus / SCRIPTS_DIR
    scripts.mkdir()
    for split in SPLITS:
        (scripts / f"{split}.trn").write_text("".join(lines[split]), encoding="utf-8")

    splits = {}
    for split in SPLITS:
        counts = [n for (name, _), n in zip(speaker_of_job, samples) if name == split]
        splits[split] = {"utterances": len(counts), "hours": sum(counts) / SAMPLE_RATE / 3600,
                         "speakers": len({sid for name, sid in speaker_of_job if name == split})}
    result = {"corpus": "kspon", "path": str(corpus),
              "utterances": sum(s["utterances"] for s in splits.values()),
              "hours": sum(s["hours"] for s in splits.values()), "splits": splits}
    corpus_folder.mark_complete(corpus, spec, result)
    return result
