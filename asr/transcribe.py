"""Transcribe audio files with an ASR checkpoint.

    python -m asr.transcribe CHECKPOINT FILE... [--json] [--beam N] [--lm LM.arpa] [--alpha A --beta B]

Prints `FILE<TAB>TEXT` per file, or with --json one JSON object per line:
{"file", "text", "duration" (s), "words": [{"word", "start", "end", "confidence"}]}.
Any format soundfile reads (wav, flac, ogg, ...), any sample rate and channel count: audio is
averaged to mono and resampled to the model's rate. A file that cannot be read is reported on
stderr in one line and skipped; the exit code is then 1, after the other files are transcribed.

Decoding is greedy by default, beam search with --beam, and beam search + word LM with --lm (beam
32 unless --beam says otherwise; alpha/beta as tuned by `asr.lm_tune` unless given).

Word times come from the most likely CTC alignment (Viterbi) of the decoded tokens: a word spans
the output frames aligned to its tokens; output frame i starts at i * hop_length / sample_rate *
(the model's time stride). Confidence is the mean probability of the aligned token over those
frames.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np
import torch

from asr.decode import BeamSearchDecoder, DecoderConfig, TokenWords, forced_align, greedy, split_words, token_words
from asr.evaluate import as_text, lm_decoder_config
from asr.model import load_asr_checkpoint
from common.audio import AudioError, load
from common.checkpoint import CheckpointError

STRIDE_PROBE_FRAMES = 100_000  # long enough that edge effects do not blur the stride ratio


def output_frame_seconds(model: torch.nn.Module, features: torch.nn.Module) -> float:
    """Seconds per model output frame: the feature hop times the model's time stride."""
    frames = torch.tensor([STRIDE_PROBE_FRAMES])
    stride = STRIDE_PROBE_FRAMES / model.output_lengths(frames).item()
    return features.cfg.hop_length / features.cfg.sample_rate * round(stride, 3)


def word_timings(log_probs: np.ndarray, tokens: list[int], words: TokenWords, frame_seconds: float) -> list[dict]:
    """Words of `tokens` with start/end seconds and confidence from a forced alignment.

    log_probs: (time, vocab) of the utterance; tokens: the decoded ids (no blanks).
    """
    alignment = forced_align(log_probs, tokens)  # (time,) token position or -1
    frames = np.arange(len(alignment))
    out = []
    for text, positions in split_words(tokens, words):
        mine = frames[np.isin(alignment, positions)]
        if len(mine) == 0:  # cannot happen for an alignment of these tokens; kept for safety
            continue
        probs = np.exp(log_probs[mine, np.asarray(tokens)[alignment[mine]]])
        out.append({"word": text, "start": round(float(mine[0] * frame_seconds), 3),
                    "end": round(float((mine[-1] + 1) * frame_seconds), 3),
                    "confidence": round(float(probs.mean()), 4)})
    return out


@torch.no_grad()
def utterance_log_probs(wave: torch.Tensor, model: torch.nn.Module, features: torch.nn.Module,
                        device: torch.device) -> np.ndarray:
    """Log-probs `(time, vocab)` of one mono wave `(samples,)`."""
    feats, frames = features(wave[None].to(device), torch.tensor([len(wave)], device=device))
    log_probs, lengths = model(feats, frames)
    return log_probs[0, : lengths[0]].float().cpu().numpy()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m asr.transcribe", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--json", action="store_true", help="JSON lines with word times and confidences")
    parser.add_argument("--beam", type=int, default=0, help="beam width (0: greedy; 32 with --lm)")
    parser.add_argument("--lm", help="word n-gram LM (ARPA) for shallow fusion")
    parser.add_argument("--alpha", type=float, help="LM weight (default: tuned value next to the LM)")
    parser.add_argument("--beta", type=float, help="word bonus (default: tuned value next to the LM)")
    args = parser.parse_args(argv)
    if args.beam < 0:
        parser.error(f"--beam must be >= 0 (0: greedy), got {args.beam}")
    if args.alpha is not None and not 0 <= args.alpha < math.inf:
        parser.error(f"--alpha must be a finite number >= 0, got {args.alpha}")
    if args.beta is not None and not math.isfinite(args.beta):
        parser.error(f"--beta must be a finite number, got {args.beta}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        ckpt = load_asr_checkpoint(args.checkpoint, device)
        model, features, tokenizer = ckpt.model, ckpt.features, ckpt.tokenizer
        decoder = None
        if args.lm:
            cfg = lm_decoder_config(args.lm, args.beam or 32, args.alpha, args.beta)
            decoder = BeamSearchDecoder(tokenizer.vocab, cfg)
        elif args.beam > 0:
            decoder = BeamSearchDecoder(tokenizer.vocab, DecoderConfig(beam_width=args.beam))
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    sample_rate = features.cfg.sample_rate
    frame_seconds = output_frame_seconds(model, features)
    words = token_words(tokenizer.vocab)
    failed = 0
    for path in args.files:
        try:
            wave = load(path, sample_rate)
        except AudioError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            failed += 1
            continue
        log_probs = utterance_log_probs(wave, model, features, device)
        if decoder is None:
            tokens = greedy(torch.from_numpy(log_probs)[None], torch.tensor([len(log_probs)]))[0]
        else:
            hyps = decoder.decode(log_probs)
            tokens = hyps[0].tokens if hyps else []
        text = as_text(tokenizer.decode(tokens))
        if args.json:
            print(json.dumps({"file": str(path), "text": text, "duration": round(len(wave) / sample_rate, 3),
                              "words": word_timings(log_probs, tokens, words, frame_seconds)}), flush=True)
        else:
            print(f"{path}\t{text}", flush=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
