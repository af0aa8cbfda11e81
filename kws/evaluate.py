"""Score a keyword-spotting checkpoint: au-fa-fr on a split, and what the model costs.

    python -m kws.evaluate CHECKPOINT [ROOT] [--split testing] [--threads 1] [--out DIR]

ROOT is any Speech Commands layout folder (default: the checkpoint's data.root); the keyword is the
one the checkpoint was trained for. Prints au-fa-fr, parameters, bytes of the saved state_dict,
MACs per clip (thop) and the median CPU latency of a batch-1 forward pass (`kws.costs`); with
--out also writes eval.json and the FA/FR curve as a PNG there.
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
from common.features import Features
from common.metrics import au_fa_fr, fa_fr_curve
from common.runlog import plt, save_figure
from kws import costs
from kws.data import DataConfig, KeywordDataset, collate, split_clips
from kws.model import keyword_probability, load_kws_checkpoint


def eval_loader(root: str, split: str, keyword: str, sample_rate: int, clip_samples: int,
                batch_size: int = 256, num_workers: int = 0) -> torch.utils.data.DataLoader:
    """Unaugmented, unshuffled batches of `split`."""
    clips = split_clips(DataConfig(root=root, keyword=keyword), split)
    dataset = KeywordDataset(clips, keyword, sample_rate, clip_samples)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate,
                                       num_workers=num_workers)


@torch.inference_mode()
def predict(model: torch.nn.Module, features: Features, loader: torch.utils.data.DataLoader,
            device: str | torch.device = "cpu", desc: str | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(keyword scores (N,), labels (N,), unreadable clips skipped) over `loader`."""
    model.eval()
    probs, labels, skipped = [], [], 0
    for batch in tqdm(loader, desc=desc, disable=desc is None, leave=False, dynamic_ncols=True):
        skipped += batch["skipped"]
        if batch["waves"].shape[0] == 0:
            continue
        feats, _ = features(batch["waves"].to(device))
        probs.append(keyword_probability(model(feats)).float().cpu())
        labels.append(batch["labels"])
    if not probs:
        raise ValueError("no readable clips to evaluate")
    return torch.cat(probs).numpy(), torch.cat(labels).numpy(), skipped


def plot_fa_fr(curves: dict[str, tuple[np.ndarray, np.ndarray]], out_png: str | Path, title: str) -> Path:
    """FR against FA (both over all clips, as in au-fa-fr) for each named (fa, fr) curve."""
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=110)
    for name, (fa, fr) in curves.items():
        ax.plot(fa, fr, label=name, drawstyle="steps-post")
    # Both rates live in [0, 1] but the interesting part is near 0: log scales with a linear bit at 0.
    ax.set_xscale("symlog", linthresh=1e-4)
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_xlabel("false alarms / all clips")
    ax.set_ylabel("false rejects / all clips")
    ax.set_title(title)
    return save_figure(fig, ax, out_png)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kws.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("root", nargs="?", default=None,
                        help="Speech Commands folder (default: the checkpoint's data.root)")
    parser.add_argument("--split", default="testing", choices=["train", "validation", "testing"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads for scoring and latency")
    parser.add_argument("--runs", type=int, default=300, help="timed forward passes for the latency")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None, help="folder for eval.json and fa_fr.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        ckpt = load_kws_checkpoint(args.checkpoint)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    root = args.root or ckpt.config["data"]["root"]
    sample_rate = ckpt.features.cfg.sample_rate
    loader = eval_loader(root, args.split, ckpt.keyword, sample_rate, ckpt.clip_samples, args.batch_size)
    probs, labels, skipped = predict(ckpt.model, ckpt.features, loader, desc=f"scoring {args.split}")
    metric = au_fa_fr(probs, labels)
    example, _ = ckpt.features(torch.zeros(1, ckpt.clip_samples))
    cost = costs.measure(ckpt.model, example, runs=args.runs, threads=args.threads)
    result = {"checkpoint": str(args.checkpoint), "root": str(root), "split": args.split,
              "keyword": ckpt.keyword, "clips": int(len(labels)), "positives": int(labels.sum()),
              "skipped": skipped, "au_fa_fr": metric, **cost.as_dict()}
    print(f"{args.checkpoint}: keyword {ckpt.keyword!r} on {root} {args.split} "
          f"({result['clips']} clips, {result['positives']} positives, {skipped} unreadable skipped)")
    print(f"  au-fa-fr        {metric:.3e}")
    print(f"  parameters      {cost.params:,}")
    print(f"  state_dict      {cost.state_dict_bytes:,} bytes")
    print(f"  MACs per clip   {cost.macs:,} (thop, {example.shape[-1]} frames)")
    print(f"  CPU latency     {cost.latency_ms:.3f} ms median, {cost.latency_p90_ms:.3f} ms p90 "
          f"(batch 1, {args.threads} thread{'s' if args.threads > 1 else ''}, model only)")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
        _, fa, fr = fa_fr_curve(probs, labels)
        plot_fa_fr({f"{args.split} ({metric:.2e})": (fa, fr)}, args.out / "fa_fr.png",
                   f"{ckpt.keyword!r}: FA/FR on {args.split}")
        print(f"  wrote {args.out / 'eval.json'} and {args.out / 'fa_fr.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
