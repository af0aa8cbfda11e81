"""The word LM on large text: build time and peak memory by corpus size, and what count cutoffs cost
in perplexity and WER.

    python bench/asr_lm.py OUT_DIR [--sizes 100000 1000000 10000000] [--prune-size 1000000]
                           [--prunes "" "0 1" "1 1" "1 2"] [--corpus data/LibriSpeech]
                           [--checkpoint logs/asr_other/default/best.pt]

1. Draws the largest size of sentences from the synthetic corpus's grammar
   (`corpora.synth.english`, seed 1234), leaving out every dev/test transcript of --corpus, and
   writes it once; each smaller size is its first lines.
2. Builds a 3-gram with `python -m asr.lm` per size, each in its own process: wall time, peak
   resident memory (the child's VmHWM, as `asr.lm` prints it), distinct n-grams, bytes per n-gram, and a line
   extrapolating to LibriSpeech's 40 M sentences (time by words; memory by a Heaps' law fit of
   the distinct n-grams, valid for text like ours only: real text has far more distinct n-grams).
3. Builds the --prune-size text with each count-cutoff setting and scores it: perplexity on the
   corpus's dev-clean + dev-other transcripts (kenlm, `</s>` counted, OOV words included), and
   with --checkpoint, test-other WER of beam 32 + that LM, alpha/beta tuned per LM on dev-other.
Prints the tables and writes them to OUT_DIR/asr_lm.md. Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import math
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asr.config import TrainConfig  # noqa: E402
from asr.data import eval_loader  # noqa: E402
from asr.decode import DecoderConfig  # noqa: E402
from asr.evaluate import collect_log_probs  # noqa: E402
from asr.lm import WordLM  # noqa: E402
from asr.lm_tune import best_point, grid_search  # noqa: E402
from asr.model import load_asr_checkpoint  # noqa: E402
from asr.text import TextConfig, normalize  # noqa: E402
from common.config import from_dict  # noqa: E402
from common.readers.librispeech import list_utterances  # noqa: E402
from corpora.synth.english import sentences  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LIBRISPEECH_SENTENCES = 40_000_000  # OpenSLR resource 11's librispeech-lm-norm.txt
HELD_OUT = ("dev-clean", "dev-other", "test-clean", "test-other")
ALPHAS, BETAS = (0.5, 0.75, 1.0, 1.5), (0.0, 2.0, 4.0)


def draw_text(path: Path, count: int, exclude: set[str], seed: int = 1234, batch: int = 100_000) -> None:
    """`count` grammar sentences (upper case, like LibriSpeech's LM text), none of them in `exclude`."""
    rng = np.random.default_rng(seed)
    tmp = path.with_name(path.name + ".tmp")
    written = 0
    with open(tmp, "w") as f:
        while written < count:
            kept = [s for s in sentences(min(batch, count - written), rng) if s.lower() not in exclude]
            f.write("".join(s + "\n" for s in kept))
            written += len(kept)
    tmp.replace(path)


def first_lines(source: Path, path: Path, count: int) -> None:
    with open(source) as f, open(path, "w") as out:
        for _, line in zip(range(count), f):
            out.write(line)


def build(text: Path, arpa: Path, extra: list[str]) -> dict:
    """Run `python -m asr.lm` in a child process; its wall time, peak memory and printed counts."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "asr.lm", str(text), str(arpa), *extra], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = done.stdout
    if done.returncode:
        raise RuntimeError(f"asr.lm {text} failed: {out.strip()}")
    grams = [int(x) for x in re.findall(r"\d-grams (\d+)", out)]
    peak = float(re.search(r"peak memory (\d+) MiB", out).group(1))
    return {"seconds": time.perf_counter() - started, "peak_mib": peak,
            "words": int(re.search(r"sentences, (\d+) words", out).group(1)), "ngrams": grams,
            "arpa_mib": arpa.stat().st_size / 2 ** 20}


def baseline_mib() -> float:
    """Peak memory of a process that only imports `asr.lm`: what every build's peak includes."""
    out = subprocess.run([sys.executable, "-c", "import asr.lm; print(asr.lm.peak_memory_mib())"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    return float(out)


def perplexity(arpa: Path, texts: list[str]) -> tuple[float, float]:
    """(perplexity over words and </s>, share of words the LM does not list) of `texts` under `arpa`."""
    model = WordLM(arpa).model
    log10, tokens, unknown = 0.0, 0, 0
    for text in texts:
        log10 += model.score(text, bos=True, eos=True)
        words = text.split()
        tokens += len(words) + 1
        unknown += sum(w not in model for w in words)
    return 10 ** (-log10 / tokens), unknown / (tokens - len(texts))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the texts, ARPA files and asr_lm.md")
    parser.add_argument("--sizes", type=int, nargs="*", default=[100_000, 1_000_000, 10_000_000],
                        help="sentences per scaling row (none: only the pruning table)")
    parser.add_argument("--prune-size", type=int, default=1_000_000, help="sentences of the pruned builds")
    parser.add_argument("--prunes", nargs="+", default=["", "0 1", "1 1", "1 2"],
                        help="--prune settings to compare ('' is none)")
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "LibriSpeech")
    parser.add_argument("--checkpoint", type=Path, help="ASR checkpoint for the WER column (default: none)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    held_out = {split: [normalize(u.text, TextConfig.alphabet) for u in list_utterances(args.corpus, split)]
                for split in HELD_OUT}
    exclude = {t for texts in held_out.values() for t in texts}
    lines = [f"# LM on large text (`python bench/asr_lm.py {shlex.join(argv)}`)", ""]

    sizes = sorted(set(args.sizes) | {args.prune_size})
    largest = args.out / f"text_{sizes[-1]}.txt"
    if not largest.is_file():
        print(f"drawing {sizes[-1]:,} sentences ...", flush=True)
        draw_text(largest, sizes[-1], exclude)
    texts = {}
    for size in sizes:
        texts[size] = args.out / f"text_{size}.txt"
        if not texts[size].is_file():
            first_lines(largest, texts[size], size)

    base = baseline_mib()
    if args.sizes:
        lines += [f"Peak memory is the process's VmHWM; bytes per n-gram leave out the {base:.0f} MiB that "
                  "importing `asr.lm` takes.", "",
                  "| sentences | words | 1/2/3-grams | build time | peak memory | bytes per n-gram | ARPA |",
                  "|---|---|---|---|---|---|---|"]
    scaling = []
    for size in args.sizes:
        result = build(texts[size], args.out / f"lm_{size}.arpa", [])
        distinct = sum(result["ngrams"])
        scaling.append((size, result["words"], distinct, result["seconds"], result["peak_mib"]))
        lines.append(f"| {size:,} | {result['words']:,} | {' / '.join(f'{g:,}' for g in result['ngrams'])} | "
                     f"{result['seconds']:.0f} s | {result['peak_mib']:.0f} MiB | "
                     f"{(result['peak_mib'] - base) * 2 ** 20 / distinct:.0f} | {result['arpa_mib']:.0f} MiB |")
        print(lines[-1], flush=True)
    if len(scaling) >= 2:
        (s1, _, d1, _, _), (s2, w2, d2, t2, m2) = scaling[-2], scaling[-1]
        beta = math.log(d2 / d1) / math.log(s2 / s1)
        factor = LIBRISPEECH_SENTENCES / s2
        distinct = d2 * factor ** beta
        lines.append(f"| {LIBRISPEECH_SENTENCES:,} (extrapolated) | {w2 * factor:,.0f} | {distinct:,.0f} in all "
                     f"(distinct ~ sentences^{beta:.2f}) | {t2 * factor / 60:.0f} min | "
                     f"{(base + (m2 - base) * distinct / d2) / 1024:.1f} GiB | | |")
    lines.append("")

    prune_lines = ["| --prune | 2-grams | 3-grams | ARPA | build | dev perplexity | dev OOV |"
                   + (" test-other WER (alpha, beta from dev-other) |" if args.checkpoint else ""),
                   "|---|---|---|---|---|---|---|" + ("---|" if args.checkpoint else "")]
    dev_texts = held_out["dev-clean"] + held_out["dev-other"]
    decoded = None
    if args.checkpoint:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        ckpt = load_asr_checkpoint(args.checkpoint, device)
        cfg = from_dict(TrainConfig, ckpt.config, source=str(args.checkpoint))
        cfg.data.root = str(args.corpus)
        decoded = {split: collect_log_probs(ckpt.model, ckpt.features, eval_loader(cfg, ckpt.tokenizer, split), device)
                   for split in ("dev-other", "test-other")}
    for prune in args.prunes:
        name = "none" if not prune.strip() else prune
        arpa = args.out / f"lm_{args.prune_size}_prune_{name.replace(' ', '_')}.arpa"
        result = build(texts[args.prune_size], arpa, ["--prune", *prune.split()] if prune.strip() else [])
        ppl, oov = perplexity(arpa, dev_texts)
        row = (f"| {name} | {result['ngrams'][1]:,} | {result['ngrams'][2]:,} | {result['arpa_mib']:.0f} MiB | "
               f"{result['seconds']:.0f} s | {ppl:.2f} | {oov:.2%} |")
        if decoded:
            lm = WordLM(arpa)
            dev_cfg = DecoderConfig(beam_width=32, lm=str(arpa))
            best = best_point(grid_search(*decoded["dev-other"], ckpt.tokenizer, dev_cfg, ALPHAS, BETAS, lm=lm,
                                          progress=False))
            test = grid_search(*decoded["test-other"], ckpt.tokenizer, dev_cfg, [best["alpha"]], [best["beta"]],
                               lm=lm, progress=False)[0]
            row += f" {test['wer']:.2%} ({best['alpha']:g}, {best['beta']:g}) |"
        prune_lines.append(row)
        print(row, flush=True)
    lines += [f"Count cutoffs on the {args.prune_size:,}-sentence text; perplexity on dev-clean + dev-other "
              f"({len(dev_texts)} sentences):", "", *prune_lines, ""]
    (args.out / "asr_lm.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
