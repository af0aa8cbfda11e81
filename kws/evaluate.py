"""Score a keyword-spotting checkpoint: au-fa-fr on a split, and what the model costs.

    python -m kws.evaluate CHECKPOINT [ROOT] [--split testing] [--threads 1] [--out DIR]

ROOT is any Speech Commands layout folder (default: the checkpoint's data.root); the keyword is the
one the checkpoint was trained for. Prints au-fa-fr, parameters, bytes of the saved state_dict,
MACs per clip (thop) and the median CPU latency of a batch-1 forward pass (`kws.costs`); with
--out also writes eval.json and the FA/FR curve as a PNG there.

Bad input is one line `error: ...` and a non-zero exit, before anything is written: a ROOT that is
not a Speech Commands folder, a split without keyword clips or without other clips (au-fa-fr is
undefined there), an --out that cannot be written. List entries without audio and unreadable clips
are skipped, logged and counted (eval.json: skipped, skipped_by_kind).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.checkpoint import CheckpointError
from common.cli import fail
from common.features import Features
from common.metrics import au_fa_fr, fa_fr_curve
from common.readers.speech_commands import Clip, SplitListing
from common.runlog import plt, save_figure
from kws import costs
from kws.data import DataConfig, KeywordDataset, collate, keyword_labels, split_listing
from kws.model import keyword_probability, load_kws_checkpoint

UNREADABLE = "unreadable clips"  # the skipped_by_kind key of clips whose audio did not load


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (zero runs, threads or batch size mean nothing)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def describe_skipped(skipped: dict[str, int]) -> str:
    """`{kind: count}` as "2 list entries without audio, 1 unreadable clips" ("nothing" when empty)."""
    return ", ".join(f"{count} {kind}" for kind, count in skipped.items() if count) or "nothing"


def check_scorable(labels: torch.Tensor | np.ndarray, keyword: str, where: str) -> None:
    """ValueError naming `where` unless `labels` hold keyword clips and other clips.

    au-fa-fr is undefined otherwise (`common.metrics.au_fa_fr`); checking here names the folder
    and split, which the metric cannot.
    """
    n, positives = len(labels), int(labels.sum())
    if n == 0:
        raise ValueError(f"{where}: no clips to score")
    if positives in (0, n):
        raise ValueError(f"{where}: {n} clips, {positives} of them {keyword!r}: au-fa-fr needs both "
                         f"{keyword!r} clips and other clips")


def split_label(root: str | Path, split: str, skipped: dict[str, int]) -> str:
    """The "ROOT SPLIT" that error messages start with, plus what was skipped when something was."""
    note = describe_skipped(skipped)
    return f"{root} {split}" + ("" if note == "nothing" else f" ({note} skipped)")


def eval_clips(root: str | Path, split: str, keyword: str) -> SplitListing:
    """The clips of `split`, checked to hold keyword and other clips (`check_scorable`).

    Raises FileNotFoundError / ValueError naming ROOT, the split and what is wrong.
    """
    listing = split_listing(DataConfig(root=str(root), keyword=keyword), split)
    check_scorable(keyword_labels(listing.clips, keyword), keyword, split_label(root, split, listing.skipped))
    return listing


def clips_loader(clips: list[Clip], keyword: str, sample_rate: int, clip_samples: int,
                 batch_size: int = 256, num_workers: int = 0) -> torch.utils.data.DataLoader:
    """Unaugmented, unshuffled batches of `clips`."""
    dataset = KeywordDataset(clips, keyword, sample_rate, clip_samples)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate,
                                       num_workers=num_workers)


def eval_loader(root: str, split: str, keyword: str, sample_rate: int, clip_samples: int,
                batch_size: int = 256, num_workers: int = 0) -> torch.utils.data.DataLoader:
    """Unaugmented, unshuffled batches of `split`; raises before any scoring when the split
    cannot give an au-fa-fr (`eval_clips`)."""
    clips = eval_clips(root, split, keyword).clips
    return clips_loader(clips, keyword, sample_rate, clip_samples, batch_size, num_workers)


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
        raise ValueError(f"no readable clips to evaluate ({skipped} {UNREADABLE} skipped)")
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


def check_out_folder(path: Path) -> None:
    """OSError naming `path` unless it is, or can be made as, a writable folder.

    Checked before scoring, so that a long evaluation does not end in a failed write. Nothing is
    created here: an error run leaves no empty folder behind.
    """
    if path.exists():
        if not path.is_dir():
            raise NotADirectoryError(f"{path}: --out is not a folder (a file of that name exists)")
        existing = path
    else:  # the nearest existing folder above is where mkdir would start
        existing = next(parent for parent in path.absolute().parents if parent.exists())
        if not existing.is_dir():
            raise NotADirectoryError(f"{path}: cannot create the --out folder, {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{path}: cannot write the --out folder, {existing} is not writable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kws.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("root", nargs="?", default=None,
                        help="Speech Commands folder (default: the checkpoint's data.root)")
    parser.add_argument("--split", default="testing", choices=["train", "validation", "testing"])
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads for scoring and latency")
    parser.add_argument("--runs", type=positive_int, default=300, help="timed forward passes for the latency")
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument("--out", type=Path, default=None, help="folder for eval.json and fa_fr.png")
    args = parser.parse_args(argv)
    try:
        return evaluate_checkpoint(args)
    except (CheckpointError, OSError, ValueError) as e:  # bad input; anything else is a bug: traceback
        fail(e)


def evaluate_checkpoint(args: argparse.Namespace) -> int:
    """`main` after parsing: every input is checked before the model scores a clip."""
    torch.set_num_threads(args.threads)
    ckpt = load_kws_checkpoint(args.checkpoint)
    root = args.root or ckpt.config["data"]["root"]
    listing = eval_clips(root, args.split, ckpt.keyword)
    if args.out is not None:
        check_out_folder(args.out)
    sample_rate = ckpt.features.cfg.sample_rate
    loader = clips_loader(listing.clips, ckpt.keyword, sample_rate, ckpt.clip_samples, args.batch_size)
    try:
        probs, labels, unreadable = predict(ckpt.model, ckpt.features, loader, desc=f"scoring {args.split}")
    except ValueError as e:  # every clip unreadable
        raise ValueError(f"{split_label(root, args.split, listing.skipped)}: {e}") from None
    skipped = {**listing.skipped, UNREADABLE: unreadable}
    # Unreadable clips can take the last keyword (or other) clips with them.
    check_scorable(labels, ckpt.keyword, split_label(root, args.split, skipped))
    metric = au_fa_fr(probs, labels)
    example, _ = ckpt.features(torch.zeros(1, ckpt.clip_samples))
    cost = costs.measure(ckpt.model, example, runs=args.runs, threads=args.threads)
    skipped = {kind: count for kind, count in skipped.items() if count}
    result = {"checkpoint": str(args.checkpoint), "root": str(root), "split": args.split,
              "keyword": ckpt.keyword, "clips": int(len(labels)), "positives": int(labels.sum()),
              "skipped": sum(skipped.values()), "skipped_by_kind": skipped, "au_fa_fr": metric,
              **cost.as_dict()}
    print(f"{args.checkpoint}: keyword {ckpt.keyword!r} on {root} {args.split} "
          f"({result['clips']} clips, {result['positives']} positives, skipped: {describe_skipped(skipped)})")
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
