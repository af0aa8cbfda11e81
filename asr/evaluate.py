"""Evaluate an ASR checkpoint: CER/WER of greedy, beam search and beam search + word LM decoding.

    python -m asr.evaluate CHECKPOINT [SPLIT ...] [--root DATA_ROOT] [--beam 32] [--lm LM.arpa]
                           [--alpha A --beta B]

A SPLIT is a split name under the data root the checkpoint was trained with (default: its test
splits) or a path to any folder in LibriSpeech layout (your own recordings, for example).
The acoustic model runs once per split; every decoder then works on the same log-probs. With
--lm and no --alpha/--beta, the values tuned by `python -m asr.lm_tune` (saved next to the LM)
are used when present.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.config import TrainConfig
from asr.data import eval_loader
from asr.decode import BeamSearchDecoder, DecoderConfig, decode_dataset, default_workers, greedy
from asr.lm import WordLM, read_tuned
from asr.model import load_asr_checkpoint
from common.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from common.config import from_dict
from common.metrics import cer, wer


def as_text(hypothesis: str) -> str:
    """A decoded hypothesis as the text it stands for: words separated by single spaces.

    Greedy CTC over characters emits a space on each side of characters it then drops (" a  b");
    as text that is "a b", which is what the beam + LM decoder returns and what a reader sees.
    Every CER here is taken on this form, so training logs, tables and decoders agree.
    """
    return " ".join(hypothesis.split())


@torch.no_grad()
def evaluate(model: torch.nn.Module, features: torch.nn.Module, loader, tokenizer,
             device: torch.device) -> dict:
    """Greedy-decode every batch of `loader`; returns cer, wer, refs, hyps (in loader order)."""
    model.eval()
    refs, hyps, skipped = [], [], 0
    for batch in loader:
        skipped += batch["skipped"]
        if batch["waves"].shape[0] == 0:
            continue
        feats, frames = features(batch["waves"].to(device), batch["wave_lengths"].to(device))
        log_probs, lengths = model(feats, frames)
        hyps += [as_text(tokenizer.decode(ids)) for ids in greedy(log_probs, lengths)]
        refs += batch["texts"]
    check_scored(loader, len(refs), skipped)
    return {"cer": cer(refs, hyps), "wer": wer(refs, hyps), "refs": refs, "hyps": hyps}


def check_scored(loader, scored: int, skipped: int) -> None:
    """Raise ValueError when no utterance of `loader` was scored: an error rate over nothing is no
    score (and would read as a perfect one). Names the folder of the loader's audio files."""
    if scored:
        return
    paths = [str(u.path) for u in getattr(loader.dataset, "utterances", [])]
    where = os.path.commonpath(paths) if paths else "evaluation data"
    raise ValueError(f"{where}: 0 utterances scored ({skipped} of {len(paths)} skipped for unreadable audio, "
                     f"see the warnings above)")


def write_examples(path: Path, step: int, refs: list[str], hyps: list[str], count: int = 10) -> None:
    """Append `count` reference/prediction pairs (spread over the split) under a step header."""
    stride = max(1, len(refs) // count)
    lines = [f"=== step {step} ===" if step >= 0 else "=== test ==="]
    for ref, hyp in list(zip(refs, hyps))[::stride][:count]:
        lines += [f"REF: {ref}", f"HYP: {hyp}", ""]
    with open(path, "a") as f:
        f.write("\n".join(lines) + "\n")


@torch.no_grad()
def collect_log_probs(model: torch.nn.Module, features: torch.nn.Module, loader, device: torch.device,
                      progress: bool = True) -> tuple[list[np.ndarray], list[str]]:
    """Run the model over `loader`: per utterance log-probs `(time_i, vocab)` float32 and its reference."""
    model.eval()
    log_probs, refs, skipped = [], [], 0
    for batch in tqdm(loader, desc="acoustic model", unit="batch", disable=not progress, leave=False):
        skipped += batch["skipped"]
        if batch["waves"].shape[0] == 0:
            continue
        feats, frames = features(batch["waves"].to(device), batch["wave_lengths"].to(device))
        out, lengths = model(feats, frames)
        out = out.float().cpu().numpy()
        log_probs += [out[i, :n] for i, n in enumerate(lengths.tolist())]
        refs += batch["texts"]
    check_scored(loader, len(refs), skipped)
    return log_probs, refs


def save_log_probs(path: str | Path, log_probs: list[np.ndarray], refs: list[str], tokenizer_state: dict) -> None:
    """Store log-probs (as float16), references and the tokenizer for later decoding runs."""
    save_checkpoint(path, {"log_probs": [torch.from_numpy(x).half() for x in log_probs], "refs": list(refs),
                           "tokenizer": tokenizer_state})


def load_log_probs(path: str | Path) -> tuple[list[np.ndarray], list[str], dict]:
    """(log-probs float32 `(time_i, vocab)`, references, tokenizer state) saved by `save_log_probs`."""
    state = load_checkpoint(path)
    missing = [k for k in ("log_probs", "refs", "tokenizer") if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a saved log-probs file (missing {', '.join(missing)})")
    if not state["refs"]:
        raise CheckpointError(f"{path}: the saved log-probs hold 0 utterances")
    return [x.float().numpy() for x in state["log_probs"]], state["refs"], state["tokenizer"]


def lm_decoder_config(lm: str, beam: int, alpha: float | None, beta: float | None) -> DecoderConfig:
    """Decoder settings for beam + LM: alpha/beta given, else tuned next to the LM, else defaults."""
    cfg = DecoderConfig(beam_width=beam, lm=lm)
    tuned = read_tuned(lm) or {}
    cfg.alpha = alpha if alpha is not None else tuned.get("alpha", cfg.alpha)
    cfg.beta = beta if beta is not None else tuned.get("beta", cfg.beta)
    return cfg


def decoding_table(log_probs: list[np.ndarray], refs: list[str], tokenizer, beam: int,
                   lm_cfg: DecoderConfig | None, workers: int, lm=None) -> list[dict]:
    """CER/WER and decoding seconds of greedy, beam (if beam > 0) and beam + LM (if lm_cfg).

    lm: the loaded `asr.lm.WordLM` of `lm_cfg.lm`, when the caller has it already.
    """
    rows = []
    started = time.time()
    hyps = [tokenizer.decode(ids) for ids in
            (greedy(torch.from_numpy(x)[None], torch.tensor([len(x)]))[0] for x in log_probs)]
    rows.append({"decoder": "greedy", "hyps": hyps, "seconds": time.time() - started})
    configs = []
    if beam > 0:
        configs.append((f"beam {beam}", DecoderConfig(beam_width=beam), None))
    if lm_cfg is not None:
        configs.append((f"beam {lm_cfg.beam_width} + LM (alpha {lm_cfg.alpha:g}, beta {lm_cfg.beta:g})", lm_cfg, lm))
    for name, cfg, cfg_lm in configs:
        started = time.time()
        decoder = BeamSearchDecoder(tokenizer.vocab, cfg, lm=cfg_lm)
        ids = decode_dataset(log_probs, decoder, workers=workers, desc=name)
        rows.append({"decoder": name, "hyps": [tokenizer.decode(x) for x in ids], "seconds": time.time() - started})
    for row in rows:
        row["hyps"] = [as_text(h) for h in row["hyps"]]
        row["cer"], row["wer"] = cer(refs, row["hyps"]), wer(refs, row["hyps"])
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="asr_eval", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("splits", nargs="*", help="split names or LibriSpeech-layout folders")
    parser.add_argument("--root", help="data root holding the splits (default: the one trained with)")
    parser.add_argument("--beam", type=int, default=32, help="beam width (0: greedy only; default 32)")
    parser.add_argument("--lm", help="word n-gram LM (ARPA) for a beam + LM row")
    parser.add_argument("--alpha", type=float, help="LM weight (default: tuned value next to the LM, else 0.5)")
    parser.add_argument("--beta", type=float, help="word bonus (default: tuned value next to the LM, else 1.0)")
    parser.add_argument("--workers", type=int, default=default_workers(), help="decoding processes")
    args = parser.parse_args(argv)
    if args.beam < 0:
        parser.error(f"--beam must be >= 0 (0: greedy only), got {args.beam}")
    if args.alpha is not None and not 0 <= args.alpha < math.inf:
        parser.error(f"--alpha must be a finite number >= 0, got {args.alpha}")
    if args.beta is not None and not math.isfinite(args.beta):
        parser.error(f"--beta must be a finite number, got {args.beta}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        ckpt = load_asr_checkpoint(args.checkpoint, device)
        model, features, tokenizer = ckpt.model, ckpt.features, ckpt.tokenizer
        cfg = from_dict(TrainConfig, ckpt.config, source=args.checkpoint)
        lm_cfg = lm_decoder_config(args.lm, max(args.beam, 1), args.alpha, args.beta) if args.lm else None
        lm = WordLM(args.lm) if args.lm else None  # loaded before any audio: a bad --lm fails fast
    except (CheckpointError, FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    if args.root:
        cfg.data.root = args.root
    splits = args.splits or cfg.data.test_splits
    print("| split | decoder | utterances | CER | WER | decoding s |\n|---|---|---|---|---|---|")
    for split in splits:
        started = time.time()
        try:
            log_probs, refs = collect_log_probs(model, features, eval_loader(cfg, tokenizer, split), device)
            forward_seconds = time.time() - started
            rows = decoding_table(log_probs, refs, tokenizer, args.beam, lm_cfg, args.workers, lm=lm)
        except (FileNotFoundError, ValueError) as e:  # a missing or empty split, an LM that is not UTF-8
            sys.exit(f"error: {e}")
        for row in rows:
            print(f"| {split} | {row['decoder']} | {len(refs)} | {row['cer']:.2%} | {row['wer']:.2%} "
                  f"| {row['seconds']:.1f} |", flush=True)
        print(f"| {split} | (acoustic model) | {len(refs)} | | | {forward_seconds:.1f} |", flush=True)

if __name__ == "__main__":
    main(sys.argv[1:])
