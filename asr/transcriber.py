"""The ASR Python API: a checkpoint in, text with word times and confidences out.

    from asr import Transcriber

    transcriber = Transcriber.from_checkpoint("logs/asr_other/default/best.pt", lm="data/LibriSpeech/lm.arpa")
    result = transcriber.transcribe("recording.flac")       # or a wave (samples,) with sample_rate=
    print(result.text)
    for w in result.words:
        print(f"{w.start:6.2f}-{w.end:6.2f} s  {w.word}  ({w.confidence:.2f})")

`python -m asr.transcribe` is this class on the command line: its output is `Transcript.to_dict()`.

Decoding is greedy by default, beam search with `beam`, and beam search + word LM with `lm` (beam
32 unless `beam` says otherwise; alpha/beta as tuned by `asr.lm_tune` next to the LM unless given,
with a note on stderr when they were tuned for another checkpoint).

Word times come from the most likely CTC alignment (Viterbi) of the decoded tokens: a word spans
the output frames aligned to its tokens; output frame i starts at i * hop_length / sample_rate *
(the model's time stride). Confidence is the mean probability of the aligned token over those
frames. Times are rounded to the millisecond and confidences to 4 digits (an output frame is tens
of milliseconds, so nothing that means anything is lost), so the API and the JSON of the command
line carry the same numbers.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF

from asr.decode import (BeamSearchDecoder, DecoderConfig, TokenWords, check_decoding, forced_align, greedy, split_words,
                        token_words)
from asr.evaluate import as_text, lm_decoder_config
from asr.model import load_asr_checkpoint
from asr.text import TextTokenizer
from common.audio import load

STRIDE_PROBE_FRAMES = 100_000  # long enough that edge effects do not blur the stride ratio
LM_BEAM = 32  # beam width of LM decoding when none is given

Audio = str | os.PathLike | torch.Tensor | np.ndarray


@dataclass(frozen=True)
class Word:
    """One decoded word: `start`/`end` in seconds from the start of the audio, `confidence` in (0, 1]."""

    word: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Transcript:
    """The text of one recording, its words in order (`[w.word for w in words] == text.split()`) and
    its duration in seconds."""

    text: str
    words: list[Word]
    duration: float

    def to_dict(self) -> dict:
        """{"text", "duration", "words": [{"word", "start", "end", "confidence"}]}: what
        `python -m asr.transcribe --json` prints (after "file")."""
        return {"text": self.text, "duration": self.duration, "words": [asdict(w) for w in self.words]}


@dataclass(frozen=True)
class Analysis:
    """Everything one transcription computed, for plots and inspection.

    features: `(num_features, feature_frames)` what the model read, one frame per `feature_seconds`;
    log_probs: `(output_frames, vocab)` the CTC log-posteriors, one frame per `frame_seconds`
    (column 0 is the blank); tokens: the decoded token ids (no blanks); alignment: `(output_frames,)`
    the position in `tokens` each output frame emits in the forced alignment, or -1 for blank.
    """

    transcript: Transcript
    features: np.ndarray
    log_probs: np.ndarray
    tokens: list[int]
    alignment: np.ndarray
    feature_seconds: float
    frame_seconds: float


def output_frame_seconds(model: torch.nn.Module, features: torch.nn.Module) -> float:
    """Seconds per model output frame: the feature hop times the model's time stride."""
    frames = torch.tensor([STRIDE_PROBE_FRAMES])
    stride = STRIDE_PROBE_FRAMES / model.output_lengths(frames).item()
    return features.cfg.hop_length / features.cfg.sample_rate * round(stride, 3)


def word_timings(log_probs: np.ndarray, tokens: list[int], words: TokenWords, frame_seconds: float,
                 alignment: np.ndarray | None = None) -> list[Word]:
    """Words of `tokens` with start/end seconds and confidence from a forced alignment.

    log_probs: (time, vocab) of the utterance; tokens: the decoded ids (no blanks); alignment:
    `forced_align(log_probs, tokens)` when already computed.
    """
    if alignment is None:
        alignment = forced_align(log_probs, tokens)  # (time,) token position or -1
    frames = np.arange(len(alignment))
    out = []
    for text, positions in split_words(tokens, words):
        mine = frames[np.isin(alignment, positions)]
        if len(mine) == 0:  # cannot happen for an alignment of these tokens; kept for safety
            continue
        probs = np.exp(log_probs[mine, np.asarray(tokens)[alignment[mine]]])
        out.append(Word(text, round(float(mine[0] * frame_seconds), 3), round(float((mine[-1] + 1) * frame_seconds), 3),
                        round(float(probs.mean()), 4)))
    return out


def as_wave(audio: Audio, sample_rate: int | None, model_rate: int) -> torch.Tensor:
    """A mono float32 wave `(samples,)` at `model_rate` from a file or an array.

    A file: any format `common.audio.load` reads (its header gives the rate; `sample_rate` is the
    rate of a headerless .pcm/.raw file, 16 kHz by default). An array or tensor: `(samples,)` or
    `(channels, samples)` (torchaudio's layout; channels are averaged) at `sample_rate`, required.
    Raises ValueError (`common.audio.AudioError` for files) naming what is wrong.
    """
    if isinstance(audio, (str, os.PathLike)):
        return load(audio, model_rate, raw_sample_rate=sample_rate or 16000)
    if sample_rate is None:
        raise ValueError("a wave needs its sample_rate (Hz)")
    if sample_rate < 1:
        raise ValueError(f"sample_rate must be >= 1 Hz, got {sample_rate}")
    wave = torch.as_tensor(np.asarray(audio) if isinstance(audio, np.ndarray) else audio).detach().cpu().float()
    if wave.dim() == 2:
        wave = wave.mean(dim=0)
    if wave.dim() != 1:
        raise ValueError(f"a wave must be (samples,) or (channels, samples), got shape {tuple(wave.shape)}")
    if wave.numel() == 0:
        raise ValueError("empty wave (0 samples)")
    if not torch.isfinite(wave).all():
        raise ValueError("the wave contains NaN or inf samples")
    if sample_rate != model_rate:
        wave = AF.resample(wave, sample_rate, model_rate)
    return wave


class Transcriber:
    """An ASR model with its features, tokenizer and decoder: `transcribe(audio)` -> `Transcript`.

    Build it with `from_checkpoint`; the constructor takes the parts (model in eval mode on
    `device`, its feature module, tokenizer, and a `BeamSearchDecoder` or None for greedy).
    """

    def __init__(self, model: torch.nn.Module, features: torch.nn.Module, tokenizer: TextTokenizer,
                 decoder: BeamSearchDecoder | None = None, device: torch.device | str = "cpu") -> None:
        self.model = model.eval()
        self.features = features
        self.tokenizer = tokenizer
        self.decoder = decoder
        self.device = torch.device(device)
        self.sample_rate: int = features.cfg.sample_rate  # the model's; other rates are resampled
        self.frame_seconds = output_frame_seconds(model, features)
        self.words = token_words(tokenizer.vocab)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, lm: str | os.PathLike | None = None, beam: int | None = None,
                        alpha: float | None = None, beta: float | None = None,
                        device: torch.device | str | None = None) -> "Transcriber":
        """Load an `asr.train` checkpoint; decode greedily, or with a beam of `beam`, or with the word
        LM `lm` (ARPA; beam 32 unless `beam` > 0; alpha/beta tuned next to the LM unless given).

        device: None picks CUDA when available. Raises `common.checkpoint.CheckpointError` for a file
        that is not an ASR checkpoint, ValueError for settings or an LM that cannot be used.
        """
        check_decoding(lm, beam, alpha, beta)
        device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
        ckpt = load_asr_checkpoint(path, device)
        decoder = None
        if lm is not None:
            # The checkpoint lets lm_decoder_config say when lm.tuned.json was tuned for another model.
            cfg = lm_decoder_config(str(lm), beam or LM_BEAM, alpha, beta, checkpoint=Path(path))
            decoder = BeamSearchDecoder(ckpt.tokenizer.vocab, cfg)
        elif beam:
            decoder = BeamSearchDecoder(ckpt.tokenizer.vocab, DecoderConfig(beam_width=beam))
        return cls(ckpt.model, ckpt.features, ckpt.tokenizer, decoder, device)

    @property
    def decoding(self) -> str:
        """How this transcriber decodes: "greedy", "beam 4", "beam 32 + LM (alpha 0.75, beta 3)"."""
        if self.decoder is None:
            return "greedy"
        cfg = self.decoder.cfg
        lm = f" + LM (alpha {cfg.alpha:g}, beta {cfg.beta:g})" if self.decoder.lm is not None else ""
        return f"beam {cfg.beam_width}{lm}"

    def transcribe(self, audio: Audio, sample_rate: int | None = None) -> Transcript:
        """The text, words and duration of `audio`: a file path, or a wave `(samples,)` /
        `(channels, samples)` at `sample_rate` Hz (see `as_wave`)."""
        return self.analyze(audio, sample_rate).transcript

    @torch.no_grad()
    def analyze(self, audio: Audio, sample_rate: int | None = None) -> Analysis:
        """`transcribe`, keeping the features, log-posteriors and alignment it computed."""
        wave = as_wave(audio, sample_rate, self.sample_rate)
        feats, frames = self.features(wave[None].to(self.device), torch.tensor([len(wave)], device=self.device))
        log_probs, lengths = self.model(feats, frames)
        log_probs = log_probs[0, : lengths[0]].float().cpu().numpy()  # (time, vocab)
        if self.decoder is None:
            tokens = greedy(torch.from_numpy(log_probs)[None], torch.tensor([len(log_probs)]))[0]
        else:
            hyps = self.decoder.decode(log_probs)
            tokens = hyps[0].tokens if hyps else []
        alignment = forced_align(log_probs, tokens)
        transcript = Transcript(as_text(self.tokenizer.decode(tokens)),
                                word_timings(log_probs, tokens, self.words, self.frame_seconds, alignment),
                                round(len(wave) / self.sample_rate, 3))
        cfg = self.features.cfg
        return Analysis(transcript, feats[0, :, : frames[0]].float().cpu().numpy(), log_probs, tokens, alignment,
                        cfg.hop_length / cfg.sample_rate, self.frame_seconds)
