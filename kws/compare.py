"""Compare KWS checkpoints side by side: au-fa-fr, ratio to the first, paired bootstrap interval.

    python -m kws.compare CKPT_REFERENCE CKPT ... [--root ROOT] [--splits testing]

The default test split is too small to judge a ratio such as "within 1.1x of the baseline": with
65 keyword clips one hard clip can double a model's au-fa-fr. A larger held-out corpus does it:
the same synthesis with another seed draws new speakers, voices and recording conditions from
the same distribution, so every split of it is unseen by models trained on the default corpus:

    ./run.sh data --root data/heldout --seed 1 --only speech_commands --scale 5
    ./run.sh kws_compare logs/kws_baseline/default/best.pt logs/kws_distill/student/best.pt \\
        --root data/heldout/speech_commands --splits train validation testing

The interval resamples keyword and other clips separately (their counts stay fixed) and scores
every model on the same resample, so the ratio's interval reflects which clips were drawn, not
the models' independent luck.
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
from common.metrics import au_fa_fr
from kws.evaluate import eval_loader
from kws.model import KwsCheckpoint, keyword_probability, load_kws_checkpoint


@torch.inference_mode()
def score_splits(checkpoints: list[KwsCheckpoint], root: str | Path, splits: list[str],
                 batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Keyword scores `(models, clips)` and labels `(clips,)` over `splits` of `root`.

    Every clip is read once; each distinct feature setting is computed once per batch.
    """
    first = checkpoints[0]
    for ckpt in checkpoints[1:]:
        if (ckpt.keyword, ckpt.clip_samples) != (first.keyword, first.clip_samples):
            raise ValueError(f"{ckpt.path}: keyword {ckpt.keyword!r} / {ckpt.clip_samples} samples per clip "
                             f"differ from {first.path}'s ({first.keyword!r} / {first.clip_samples})")
    feature_key = [json.dumps(ckpt.config["features"], sort_keys=True) for ckpt in checkpoints]
    scores, labels = [[] for _ in checkpoints], []
    for split in splits:
        loader = eval_loader(str(root), split, first.keyword, first.features.cfg.sample_rate,
                             first.clip_samples, batch_size)
        for batch in tqdm(loader, desc=f"scoring {split}", leave=False, dynamic_ncols=True):
            if batch["waves"].shape[0] == 0:
                continue
            feats = {}
            for i, ckpt in enumerate(checkpoints):
                if feature_key[i] not in feats:
                    feats[feature_key[i]] = ckpt.features(batch["waves"])[0]
                scores[i].append(keyword_probability(ckpt.model(feats[feature_key[i]])).float().numpy())
            labels.append(batch["labels"].numpy())
    if not labels:
        raise ValueError(f"{root}: no readable clips in {splits}")
    return np.stack([np.concatenate(s) for s in scores]), np.concatenate(labels)


def ratios_to_first(areas: np.ndarray) -> np.ndarray:
    """au-fa-fr `(models,)` over model 0's (a perfect reference would divide by zero)."""
    return areas / max(areas[0], np.finfo(float).tiny)


def bootstrap_ratios(scores: np.ndarray, labels: np.ndarray, resamples: int = 300,
                     seed: int = 0) -> np.ndarray:
    """au-fa-fr of every model over that of model 0, on paired resamples: `(resamples, models)`.

    scores `(models, clips)`, labels `(clips,)`. Keyword and other clips are drawn with
    replacement separately, and every model is scored on the same draw.
    """
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    ratios = np.empty((resamples, scores.shape[0]))
    for r in range(resamples):
        idx = np.concatenate([rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))])
        areas = np.array([au_fa_fr(model_scores[idx], labels[idx]) for model_scores in scores])
        ratios[r] = ratios_to_first(areas)
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kws.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", type=Path, nargs="+", help="the first is the reference")
    parser.add_argument("--root", default=None, help="Speech Commands folder (default: the first "
                                                     "checkpoint's data.root)")
    parser.add_argument("--splits", nargs="+", default=["testing"], choices=["train", "validation", "testing"])
    parser.add_argument("--resamples", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        checkpoints = [load_kws_checkpoint(path) for path in args.checkpoints]
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    root = args.root or checkpoints[0].config["data"]["root"]
    scores, labels = score_splits(checkpoints, root, args.splits)
    areas = np.array([au_fa_fr(s, labels) for s in scores])
    low, high = np.quantile(bootstrap_ratios(scores, labels, args.resamples), [0.05, 0.95], axis=0)
    print(f"{root} {' + '.join(args.splits)}: {len(labels):,} clips, {int(labels.sum()):,} "
          f"{checkpoints[0].keyword!r}; ratio = au-fa-fr / the first model's, 90% paired bootstrap "
          f"interval over {args.resamples} resamples\n")
    print("| checkpoint | au-fa-fr | ratio | 90% interval |")
    print("|---|---|---|---|")
    for path, area, ratio, lo, hi in zip(args.checkpoints, areas, ratios_to_first(areas), low, high):
        print(f"| {path} | {area:.3e} | {ratio:.2f} | {lo:.2f}-{hi:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
