"""Grid-search the LM weight alpha and word bonus beta on a dev split; the best pair is saved next
to the LM as NAME.tuned.json, where `asr.evaluate` and `asr.transcribe` pick it up, and the grid is
drawn beside it as NAME.tuned.png (WER per cell, the best cell boxed).

    python -m asr.lm_tune CHECKPOINT --lm ARPA [--split S] [--root DIR] [--beam N]
                          [--alphas 0 0.25 ...] [--betas -1 0 1 ...] [--log-probs CACHE.pt] [--workers N]

The split (default dev-clean) is a split name under the data root, a LibriSpeech-layout folder or a
plain folder of audio files with same-named .txt transcripts, as in `asr.evaluate`.
NAME.tuned.json records the checkpoint it was tuned for (as an absolute path): decoding another
checkpoint with these values prints a note. The acoustic model runs once (or not at all when
--log-probs names an existing cache of the same --split, which is written otherwise); the grid points are then decoded
in worker processes that share the log-probs and the loaded LM (fork). Ties in WER go to the lower
CER.
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
from common.runlog import plt

DEFAULT_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
DEFAULT_BETAS = (-1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
CHUNK = 64  # utterances searched together

USAGE = ("python -m asr.lm_tune CHECKPOINT --lm ARPA [--split S] [--root DIR] [--beam N] [--alphas A ...]\n"
         "                             [--betas B ...] [--log-probs CACHE.pt] [--workers N] [--check]")

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


def plot_grid(grid: list[dict], alphas: Sequence[float], betas: Sequence[float], out_png: str | Path,
              title: str) -> Path:
    """The WER of every (alpha, beta) of `grid` as a heatmap (alphas down, betas across), each cell
    labelled with its WER, the best cell (`best_point`) boxed in red. Returns `out_png`."""
    cells = {(r["alpha"], r["beta"]): r for r in grid}
    percent = np.array([[100 * cells[(float(a), float(b))]["wer"] for b in betas] for a in alphas])
    best = best_point(grid)
    fig, ax = plt.subplots(figsize=(2.2 + 0.75 * len(betas), 1.6 + 0.45 * len(alphas)), dpi=110)
    shown = np.where(np.isfinite(percent), percent, np.nan)  # an infinite WER (empty references) stays blank
    image = ax.imshow(shown, cmap="viridis", aspect="auto", origin="lower")
    fig.colorbar(image, ax=ax, label="WER %")
    for i, a in enumerate(alphas):
        for j, b in enumerate(betas):
            is_best = (float(a), float(b)) == (best["alpha"], best["beta"])
            # Dark text on the bright (high-WER) end of viridis, light text on the dark end.
            light = not np.isfinite(shown[i, j]) or image.norm(shown[i, j]) < 0.6
            ax.text(j, i, f"{percent[i, j]:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if light else "black", fontweight="bold" if is_best else "normal")
            if is_best:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
    ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
    ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set_xlabel("beta (word bonus)")
    ax.set_ylabel("alpha (LM weight)")
    ax.set_title(f"{title}\nbest (red box): alpha {best['alpha']:g}, beta {best['beta']:g}, WER {best['wer']:.2%}",
                 fontsize=9)
    fig.tight_layout()
    out_png = Path(out_png)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m asr.lm_tune", description=__doc__.split("\n\n")[0],
                                     usage=USAGE)
    parser.add_argument("checkpoint", metavar="CHECKPOINT")
    parser.add_argument("--lm", required=True, metavar="ARPA", help="word n-gram LM (ARPA)")
    parser.add_argument("--split", default="dev-clean", metavar="S",
                        help="dev split name, LibriSpeech-layout folder or plain folder of audio files with "
                             "same-named .txt transcripts (default: dev-clean)")
    parser.add_argument("--root", metavar="DIR", help="data root holding the split (default: the one trained with)")
    parser.add_argument("--beam", type=int, default=32, metavar="N", help="beam width (default 32)")
    parser.add_argument("--alphas", type=float, nargs="+", default=list(DEFAULT_ALPHAS), metavar="A",
                        help="LM weights to try")
    parser.add_argument("--betas", type=float, nargs="+", default=list(DEFAULT_BETAS), metavar="B",
                        help="word bonuses to try")
    parser.add_argument("--log-probs", metavar="CACHE.pt",
                        help="cache of the split's log-probs: read if it exists (it must be of this --split), else written")
    parser.add_argument("--workers", type=int, default=default_workers(), metavar="N", help="decoding processes")
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
            log_probs, refs, tokenizer_state = load_log_probs(args.log_probs, args.split)
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
                save_log_probs(args.log_probs, log_probs, refs, tokenizer.to_dict(), args.split)
        decoder_cfg = DecoderConfig(beam_width=args.beam, lm=args.lm)
        grid = grid_search(log_probs, refs, tokenizer, decoder_cfg, args.alphas, args.betas, args.workers, lm=lm)
    except (CheckpointError, FileNotFoundError, ValueError) as e:  # ValueError: also an LM that is not UTF-8
        sys.exit(f"error: {e}")
    best = best_point(grid)
    # Absolute: the note in `asr.evaluate.lm_decoder_config` compares it with the checkpoint decoded
    # later, from whatever folder that command runs in.
    result = {"alpha": best["alpha"], "beta": best["beta"], "wer": best["wer"], "cer": best["cer"],
              "split": args.split, "utterances": len(refs), "checkpoint": str(Path(args.checkpoint).absolute()),
              "beam_width": args.beam, "grid": grid}
    out = tuned_path(args.lm)
    out.write_text(json.dumps(result, indent=1) + "\n")
    png = plot_grid(grid, args.alphas, args.betas, out.with_suffix(".png"),
                    f"WER of beam {args.beam} + LM on {args.split} ({len(refs)} utterances)")
    print("| alpha | " + " | ".join(f"beta {b:g}" for b in args.betas) + " |")
    print("|---" * (len(args.betas) + 1) + "|")
    for a in args.alphas:
        row = [r for r in grid if r["alpha"] == a]
        print(f"| {a:g} | " + " | ".join(f"{r['wer']:.2%}" for r in row) + " |")
    print(f"best: alpha {best['alpha']:g}, beta {best['beta']:g}: WER {best['wer']:.2%}, CER {best['cer']:.2%} "
          f"on {args.split} ({len(refs)} utterances); saved {out} and {png} ({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
