"""Compare KWS checkpoints side by side: au-fa-fr, ratio to the first, paired bootstrap interval.

    python -m kws.compare CHECKPOINT... [--root DIR] [--split S ...] [--resamples N] [--threads N]

The first checkpoint is the reference; --split takes one or more lists (testing by default), scored
as one set of clips.

The default test split is too small to judge a ratio such as "within 1.1x of the baseline": with
65 keyword clips one hard clip can double a model's au-fa-fr. A larger corpus does it: the same
synthesis with another seed draws new speakers, voices and recording conditions from the same
distribution, so every split of it is unseen by models trained on the default corpus:

    ./run.sh data --root data/seed1 --seed 1 --only speech_commands --scale 5
    ./run.sh kws_compare logs/kws_baseline/default/best.pt logs/kws_distill/student/best.pt \\
        --root data/seed1/speech_commands --split train validation testing

`--split heldout` scores the synthetic corpus's held-out split instead: voices and channels no
training clip has (docs/heldout.md).

The interval resamples keyword and other clips separately (their counts stay fixed) and scores
every model on the same resample, so the ratio's interval reflects which clips were drawn, not
the models' independent luck. Where the first model's au-fa-fr is 0 (a perfect ranking) the ratio
is undefined: "n/a" in the table, and such resamples are left out of the interval (counted).

Bad input (a missing or non-KWS checkpoint, checkpoints for different keywords, a --root that is
not a Speech Commands folder, splits that hold no keyword clips or no other clips) is one line
`error: ...` and a non-zero exit.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.checkpoint import CheckpointError
from common.cli import fail
from common.metrics import au_fa_fr
from common.readers.speech_commands import SPLITS
from kws.data import DataConfig, keyword_labels, split_listing
from kws.evaluate import UNREADABLE, check_scorable, clips_loader, positive_int, split_label
from kws.model import KwsCheckpoint, keyword_probability, load_kws_checkpoint



@torch.inference_mode()
def score_splits(checkpoints: list[KwsCheckpoint], root: str | Path, splits: list[str],
                 batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Keyword scores `(models, clips)` and labels `(clips,)` over `splits` of `root`.

    Every clip is read once; each distinct feature setting is computed once per batch.
    Raises ValueError (or FileNotFoundError for a folder that is not a Speech Commands corpus)
    naming ROOT and the splits when they hold no keyword clips or no other clips together.
    """
    first = checkpoints[0]
    for ckpt in checkpoints[1:]:
        if (ckpt.keyword, ckpt.clip_samples) != (first.keyword, first.clip_samples):
            raise ValueError(f"{ckpt.path}: keyword {ckpt.keyword!r} / {ckpt.clip_samples} samples per clip "
                             f"differ from {first.path}'s ({first.keyword!r} / {first.clip_samples})")
    # All lists are read, and checked together, before any scoring: the splits are scored as one
    # set, so one split without keyword clips is fine when another has them.
    cfg = DataConfig(root=str(root), keyword=first.keyword)
    listings = {split: split_listing(cfg, split) for split in splits}
    skipped: dict[str, int] = {}
    for listing in listings.values():
        for kind, count in listing.skipped.items():
            skipped[kind] = skipped.get(kind, 0) + count
    clips = [c for listing in listings.values() for c in listing.clips]
    check_scorable(keyword_labels(clips, first.keyword), first.keyword, split_label(root, " + ".join(splits), skipped))
    feature_key = [json.dumps(ckpt.config["features"], sort_keys=True) for ckpt in checkpoints]
    scores, labels = [[] for _ in checkpoints], []
    for split, listing in listings.items():
        loader = clips_loader(listing.clips, first.keyword, first.features.cfg.sample_rate,
                              first.clip_samples, batch_size)
        for batch in tqdm(loader, desc=f"scoring {split}", leave=False, dynamic_ncols=True):
            skipped[UNREADABLE] = skipped.get(UNREADABLE, 0) + batch["skipped"]
            if batch["waves"].shape[0] == 0:
                continue
            feats = {}
            for i, ckpt in enumerate(checkpoints):
                if feature_key[i] not in feats:
                    feats[feature_key[i]] = ckpt.features(batch["waves"])[0]
                scores[i].append(keyword_probability(ckpt.model(feats[feature_key[i]])).float().numpy())
            labels.append(batch["labels"].numpy())
    # Unreadable clips can take the last keyword (or other) clips with them.
    where = split_label(root, " + ".join(splits), skipped)
    if not labels:
        raise ValueError(f"{where}: no readable clips")
    labels = np.concatenate(labels)
    check_scorable(labels, first.keyword, where)
    return np.stack([np.concatenate(s) for s in scores]), labels


def ratios_to_first(areas: np.ndarray) -> np.ndarray:
    """au-fa-fr `(models,)` over model 0's; all NaN when model 0's is 0 (a perfect reference):
    the ratio is undefined there, and any finite stand-in would print as a real ratio."""
    if areas[0] == 0:
        return np.full(areas.shape, np.nan)
    return areas / areas[0]


def bootstrap_ratios(scores: np.ndarray, labels: np.ndarray, resamples: int = 300,
                     seed: int = 0) -> np.ndarray:
    """au-fa-fr of every model over that of model 0, on paired resamples: `(resamples, models)`.

    scores `(models, clips)`, labels `(clips,)`. Keyword and other clips are drawn with
    replacement separately, and every model is scored on the same draw. A row is NaN where
    model 0 ranks the draw perfectly (`ratios_to_first`).
    """
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    ratios = np.empty((resamples, scores.shape[0]))
    for r in range(resamples):
        idx = np.concatenate([rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))])
        areas = np.array([au_fa_fr(model_scores[idx], labels[idx]) for model_scores in scores])
        ratios[r] = ratios_to_first(areas)
    return ratios


def interval(ratios: np.ndarray, level: float = 0.9) -> tuple[np.ndarray, np.ndarray, int]:
    """(low, high) per model of the central `level` interval of `ratios` `(resamples, models)`,
    leaving out undefined (NaN) resamples, and how many were left out. NaN where none is left."""
    defined = ~np.isnan(ratios[:, 0])
    if not defined.any():
        return np.full(ratios.shape[1], np.nan), np.full(ratios.shape[1], np.nan), len(ratios)
    tail = (1 - level) / 2
    low, high = np.quantile(ratios[defined], [tail, 1 - tail], axis=0)
    return low, high, int((~defined).sum())


def fmt_ratio(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{value:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kws.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     usage="python -m kws.compare CHECKPOINT... [--root DIR] [--split S ...] "
                                           "[--resamples N] [--threads N]")
    parser.add_argument("checkpoints", type=Path, nargs="+", metavar="CHECKPOINT", help="the first is the reference")
    parser.add_argument("--root", default=None, metavar="DIR", help="Speech Commands folder (default: the first "
                                                                    "checkpoint's data.root)")
    parser.add_argument("--split", dest="splits", nargs="+", default=["testing"], choices=list(SPLITS), metavar="S",
                        help=f"one or more of {', '.join(SPLITS)}, scored together (default: testing)")
    parser.add_argument("--resamples", type=positive_int, default=300, metavar="N", help="bootstrap resamples")
    parser.add_argument("--threads", type=positive_int, default=2, metavar="N", help="torch threads")
    args, extra = parser.parse_known_args(argv)
    if extra:
        if extra[0] == "--splits":  # the flag's old name: say the new one rather than just refuse it
            parser.error("--splits: the option is --split now (one or more splits: --split testing validation)")
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    for split in set(args.splits):
        if args.splits.count(split) > 1:  # its clips would count twice, as if drawn independently
            parser.error(f"--split: {split!r} given twice")
    try:
        return compare_checkpoints(args)
    except (CheckpointError, OSError, ValueError) as e:  # bad input; anything else is a bug: traceback
        fail(e)


def compare_checkpoints(args: argparse.Namespace) -> int:
    """`main` after parsing: prints the table."""
    torch.set_num_threads(args.threads)
    checkpoints = [load_kws_checkpoint(path) for path in args.checkpoints]
    root = args.root or checkpoints[0].config["data"]["root"]
    scores, labels = score_splits(checkpoints, root, args.splits)
    areas = np.array([au_fa_fr(s, labels) for s in scores])
    low, high, undefined = interval(bootstrap_ratios(scores, labels, args.resamples))
    print(f"{root} {' + '.join(args.splits)}: {len(labels):,} clips, {int(labels.sum()):,} "
          f"{checkpoints[0].keyword!r}; ratio = au-fa-fr / the first model's, 90% paired bootstrap "
          f"interval over {args.resamples} resamples")
    if undefined:
        print(f"{undefined} of {args.resamples} resamples left out of the interval: the first model's "
              f"au-fa-fr is 0 on them, so the ratio is undefined")
    print("\n| checkpoint | au-fa-fr | ratio | 90% interval |")
    print("|---|---|---|---|")
    for path, area, ratio, lo, hi in zip(args.checkpoints, areas, ratios_to_first(areas), low, high):
        print(f"| {path} | {area:.3e} | {fmt_ratio(ratio)} | {fmt_ratio(lo)}-{fmt_ratio(hi)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
