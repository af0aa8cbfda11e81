"""Grid-search the LM weight alpha and word bonus beta on a dev split; the best pair is saved next
to the LM as NAME.tuned.json, where `asr.evaluate` and `asr.transcribe` pick it up.

    python -m asr.lm_tune CHECKPOINT --lm LM.arpa [--split dev-clean] [--beam 32]
                          [--alphas 0 0.25 ...] [--betas -1 0 1 ...] [--log-probs CACHE.pt]

The acoustic model runs once (or not at all when --log-probs names an existing cache, which is
written otherwise); the grid points are then decoded in worker processes that share the log-probs
and the loaded LM (fork). Ties in WER go to the lower CER.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.decode import BeamSearchDecoder, DecoderConfig, default_workers
from asr.config import TrainConfig
from asr.data import eval_loader
from asr.evaluate import collect_log_probs, load_log_probs, save_log_probs
from asr.lm import WordLM, tuned_path
from asr.model import load_asr_checkpoint
from asr.text import tokenizer_from_dict
from common.checkpoint import CheckpointError
from common.cli import add_check_flag
from common.config import from_dict
from common.metrics import cer, wer

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
DEFAULT_BETAS = (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
CHUNK = 64  # utterances searched together

_GRID_DECODER: BeamSearchDecoder | None = None
_GRID_INPUTS: tuple = ()


def _decode_point(point: tuple[float, float]) -> dict:
    """WER/CER of the shared decoder at (alpha, beta) over the shared log-probs."""
    decoder = _GRID_DECODER
    log_probs, refs, tokenizer = _GRID_INPUTS
    decoder.cfg = dataclasses.replace(decoder.cfg, alpha=point[0], beta=point[1])
    by_length = sorted(range(len(log_probs)), key=lambda i: len(log_probs[i]))
    hyps = [""] * len(log_probs)
    for start in range(0, len(by_length), CHUNK):
        chunk = by_length[start:start + CHUNK]
        for i, result in zip(chunk, decoder.decode_batch([log_probs[i] for i in chunk])):
            hyps[i] = tokenizer.decode(result[0].tokens)
    return {"alpha": point[0], "beta": point[1], "wer": wer(refs, hyps), "cer": cer(refs, hyps)}


def grid_search(log_probs: Sequence[np.ndarray], refs: Sequence[str], tokenizer, cfg: DecoderConfig,
                alphas: Sequence[float], betas: Sequence[float], workers: int = 2,
                progress: bool = True, lm=None) -> list[dict]:
    """WER and CER of beam + LM decoding (`cfg`, with `cfg.lm` set) at every (alpha, beta).

    lm: the loaded `asr.lm.WordLM` of `cfg.lm`, when the caller has it already.
    Returns one dict {alpha, beta, wer, cer} per grid point, in grid order.
    """
    global _GRID_DECODER, _GRID_INPUTS
    if not cfg.lm:
        raise ValueError("grid_search needs a decoder config with an LM (cfg.lm)")
    points = [(float(a), float(b)) for a in alphas for b in betas]
    _GRID_DECODER = BeamSearchDecoder(tokenizer.vocab, cfg, lm=lm)  # loads the LM once, before forking
    _GRID_INPUTS = (log_probs, refs, tokenizer)
    bar = tqdm(total=len(points), desc="alpha/beta grid", unit="point", disable=not progress, leave=False)
    results = {}
    try:
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            with multiprocessing.get_context("fork").Pool(min(workers, len(points))) as pool:
                for result in pool.imap_unordered(_decode_point, points):
                    results[(result["alpha"], result["beta"])] = result
                    bar.update()
        else:
            for point in points:
                results[point] = _decode_point(point)
                bar.update()
    finally:
        _GRID_DECODER, _GRID_INPUTS = None, ()
        bar.close()
    return [results[p] for p in points]


def best_point(grid: list[dict]) -> dict:
    """The grid point with the lowest WER (then CER, then smaller alpha)."""
    return min(grid, key=lambda r: (r["wer"], r["cer"], r["alpha"]))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m asr.lm_tune", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--lm", required=True, help="word n-gram LM (ARPA)")
    parser.add_argument("--split", default="dev-clean", help="dev split name or LibriSpeech-layout folder")
    parser.add_argument("--root", help="data root holding the split (default: the one trained with)")
    parser.add_argument("--beam", type=int, default=32)
    parser.add_argument("--alphas", type=float, nargs="+", default=list(DEFAULT_ALPHAS))
    parser.add_argument("--betas", type=float, nargs="+", default=list(DEFAULT_BETAS))
    parser.add_argument("--log-probs", help="cache of the split's log-probs: read if it exists, else written")
    parser.add_argument("--workers", type=int, default=default_workers())
    add_check_flag(parser)
    args = parser.parse_args(argv)
    if args.beam < 1:
        parser.error(f"--beam must be >= 1, got {args.beam}")
    if not all(0 <= a < math.inf for a in args.alphas):
        parser.error(f"--alphas must be finite numbers >= 0, got {args.alphas}")
    if not all(math.isfinite(b) for b in args.betas):
        parser.error(f"--betas must be finite numbers, got {args.betas}")
    if args.check:
        return
    started = time.time()
    try:
        lm = WordLM(args.lm)  # loaded before any audio: a bad --lm fails fast
        if args.log_probs and Path(args.log_probs).is_dir():
            raise ValueError(f"{args.log_probs}: is a folder; --log-probs names the cache file (read or written)")
        if args.log_probs and Path(args.log_probs).is_file():
            log_probs, refs, tokenizer_state = load_log_probs(args.log_probs)
            tokenizer = tokenizer_from_dict(tokenizer_state)
        else:
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            ckpt = load_asr_checkpoint(args.checkpoint, device)
            tokenizer = ckpt.tokenizer
            cfg = from_dict(TrainConfig, ckpt.config, source=args.checkpoint)
            if args.root:
                cfg.data.root = args.root
            log_probs, refs = collect_log_probs(ckpt.model, ckpt.features, eval_loader(cfg, tokenizer, args.split),
                                                device)
            if args.log_probs:
                save_log_probs(args.log_probs, log_probs, refs, tokenizer.to_dict())
        decoder_cfg = DecoderConfig(beam_width=args.beam, lm=args.lm)
        grid = grid_search(log_probs, refs, tokenizer, decoder_cfg, args.alphas, args.betas, args.workers, lm=lm)
    except (CheckpointError, FileNotFoundError, ValueError) as e:  # ValueError: also an LM that is not UTF-8
        sys.exit(f"error: {e}")
    best = best_point(grid)
    result = {"alpha": best["alpha"], "beta": best["beta"], "wer": best["wer"], "cer": best["cer"],
              "split": args.split, "utterances": len(refs), "checkpoint": str(args.checkpoint),
              "beam_width": args.beam, "grid": grid}
    out = tuned_path(args.lm)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("| alpha | " + " | ".join(f"beta {b:g}" for b in args.betas) + " |")
    print("|---" * (len(args.betas) + 1) + "|")
    for a in args.alphas:
        row = [r for r in grid if r["alpha"] == a]
        print(f"| {a:g} | " + " | ".join(f"{r['wer']:.2%}" for r in row) + " |")
    print(f"best: alpha {best['alpha']:g}, beta {best['beta']:g}: WER {best['wer']:.2%}, CER {best['cer']:.2%} "
          f"on {args.split} ({len(refs)} utterances); saved {out} ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
