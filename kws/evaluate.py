"""Score a keyword-spotting checkpoint: au-fa-fr on a split, and what the model costs.

    python -m kws.evaluate CHECKPOINT [--root DIR] [--split S] [--out DIR] [--plot N] [--threads N]
                           [--runs N] [--batch-size N]

--root is any Speech Commands layout folder (default: the checkpoint's data.root); --split one of
its lists (testing by default); the keyword is the one the checkpoint was trained for. Prints
au-fa-fr, parameters, bytes of the saved state_dict, MACs per clip (thop) and the median CPU latency
of a batch-1 forward pass (`kws.costs`). --out DIR also writes there:
- `eval.json`: what is printed, plus what was skipped;
- `fa_fr.png`: the FA/FR curve;
- `scores.csv`: one row per scored clip, in list order: path, word, label (1: the keyword), score
  (the keyword probability that au-fa-fr ranks).
--plot N draws `attention_<split>.png` (in --out DIR, else next to the checkpoint): the N worst-
ranked clips, the lowest-scored keyword clips and the highest-scored other clips, one row each,
with the model's input features over time and the attention weights on the same time axis.

Bad input is one line `error: ...` and a non-zero exit, before anything is written: a --root that
is not a Speech Commands folder, a split without keyword clips or without other clips (au-fa-fr is
undefined there), an --out that cannot be written. List entries without audio and unreadable clips
are skipped, logged and counted (eval.json: skipped, skipped_by_kind).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from common.checkpoint import CheckpointError
from common.cli import fail
from common.features import Features
from common.metrics import au_fa_fr, fa_fr_curve
from common.out_folder import check_out_folder, write_text_atomic
from common.readers.speech_commands import SPLITS, Clip, SplitListing
from common.runlog import plt, save_figure
from kws import costs
from kws.data import DataConfig, KeywordDataset, collate, keyword_labels, split_listing
from kws.model import CRNN, KwsCheckpoint, keyword_probability, load_kws_checkpoint

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


@dataclass
class ClipScores:
    """Scores of the readable clips of a loader, in loader order: keyword scores `(N,)` float32,
    labels `(N,)` 0/1, indices `(N,)` into the dataset's clips; `unreadable` clips were left out."""

    scores: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    unreadable: int


@torch.inference_mode()
def score_clips(model: torch.nn.Module, features: Features, loader: torch.utils.data.DataLoader,
                device: str | torch.device = "cpu", desc: str | None = None) -> ClipScores:
    """The keyword score of every readable clip of `loader` (batches of `kws.data.collate`).
    ValueError when no clip was readable."""
    model.eval()
    probs, labels, indices, skipped = [], [], [], 0
    for batch in tqdm(loader, desc=desc, disable=desc is None, leave=False, dynamic_ncols=True):
        skipped += batch["skipped"]
        if batch["waves"].shape[0] == 0:
            continue
        feats, _ = features(batch["waves"].to(device))
        probs.append(keyword_probability(model(feats)).float().cpu())
        labels.append(batch["labels"])
        indices.append(batch["indices"])
    if not probs:
        raise ValueError(f"no readable clips to evaluate ({skipped} {UNREADABLE} skipped)")
    return ClipScores(torch.cat(probs).numpy(), torch.cat(labels).numpy(), torch.cat(indices).numpy(), skipped)


def predict(model: torch.nn.Module, features: Features, loader: torch.utils.data.DataLoader,
            device: str | torch.device = "cpu", desc: str | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(keyword scores (N,), labels (N,), unreadable clips skipped) over `loader` (`score_clips`)."""
    result = score_clips(model, features, loader, device, desc)
    return result.scores, result.labels, result.unreadable


def scores_csv(clips: list[Clip], scores: ClipScores) -> str:
    """`scores.csv` as text: a header, then path, word, label, score per scored clip, in list order."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "word", "label", "score"])
    for index, label, score in zip(scores.indices, scores.labels, scores.scores):
        clip = clips[index]
        writer.writerow([str(clip.path), clip.word, int(label), repr(float(score))])
    return text.getvalue()


def worst_ranked(scores: np.ndarray, labels: np.ndarray, count: int) -> list[int]:
    """Positions (into `scores`) of the `count` clips that cost au-fa-fr most: the lowest-scored
    keyword clips and the highest-scored other clips, half each (the rest from the other kind when
    one runs short); keyword clips first, each kind worst first."""
    positives = [int(i) for i in np.flatnonzero(labels == 1)[np.argsort(scores[labels == 1], kind="stable")]]
    negatives = [int(i) for i in np.flatnonzero(labels == 0)[np.argsort(-scores[labels == 0], kind="stable")]]
    count = min(count, len(positives) + len(negatives))
    take_positives = min(len(positives), max((count + 1) // 2, count - len(negatives)))
    return positives[:take_positives] + negatives[:count - take_positives]


@torch.inference_mode()
def attention_rows(model: CRNN, features: Features, waves: torch.Tensor) -> list[dict]:
    """Per clip of `waves` `(clips, samples)`: its features `(n_features, time)`, attention weights
    `(T',)` summing to 1, and where their RNN frames are centred, in feature frames `(T',)`."""
    model.eval()
    feats, _ = features(waves)
    _, log_weights = model.forward_with_attention(feats)
    centers = model.frame_centers(log_weights.shape[1])
    return [{"features": f.cpu().numpy(), "weights": w.exp().cpu().numpy(), "centers": centers.numpy()}
            for f, w in zip(feats, log_weights)]


def plot_attention(rows: list[dict], titles: list[str], frame_seconds: float, feature_name: str,
                   out_png: str | Path) -> Path:
    """One figure, a row per clip: its features as an image (time across) and below it, on the
    same time axis, the attention weight of every RNN frame at the frame's centre.

    rows: `attention_rows` entries; titles: one line per row; frame_seconds: the feature hop.
    """
    fig = plt.figure(figsize=(8, 2.6 * len(rows)), dpi=100, layout="constrained")
    clips = fig.add_gridspec(len(rows), 1)
    for r, (row, title) in enumerate(zip(rows, titles)):
        pair = clips[r].subgridspec(2, 1, height_ratios=[3, 1.2])
        spec = fig.add_subplot(pair[0])
        attention = fig.add_subplot(pair[1], sharex=spec)
        frames = row["features"].shape[1]
        spec.imshow(row["features"], origin="lower", aspect="auto", cmap="magma",
                    extent=(0, frames * frame_seconds, 0, row["features"].shape[0]))
        spec.set_ylabel(f"{feature_name}\nbin", fontsize=8)
        spec.set_title(title, fontsize=9, loc="left")
        spec.tick_params(labelbottom=False, labelsize=7)
        # A frame's centre, in feature frames, is the middle of its frame: + 0.5 on the image's axis.
        times = (row["centers"] + 0.5) * frame_seconds
        attention.bar(times, row["weights"], width=0.8 * (times[1] - times[0]) if len(times) > 1 else frame_seconds,
                      color="tab:cyan", edgecolor="tab:blue")
        attention.set_ylim(0, max(float(row["weights"].max()) * 1.15, 1e-6))
        attention.set_ylabel("attention", fontsize=8)
        attention.tick_params(labelsize=7)
        attention.grid(alpha=0.3)
        if r == len(rows) - 1:
            attention.set_xlabel("seconds", fontsize=8)
        else:
            attention.tick_params(labelbottom=False)
    out_png = Path(out_png)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


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
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     usage="python -m kws.evaluate CHECKPOINT [--root DIR] [--split S] [--out DIR] "
                                           "[--plot N] [--threads N] [--runs N] [--batch-size N]")
    parser.add_argument("checkpoint", type=Path, metavar="CHECKPOINT")
    parser.add_argument("--root", default=None, metavar="DIR",
                        help="Speech Commands folder (default: the checkpoint's data.root)")
    parser.add_argument("--split", default="testing", choices=list(SPLITS), metavar="S",
                        help="train, validation, testing or heldout (the synthetic corpus's voices and channels "
                             "no training clip has, docs/heldout.md) (default: testing)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="folder for eval.json, fa_fr.png and scores.csv")
    parser.add_argument("--plot", type=positive_int, default=None, metavar="N",
                        help="draw attention over the features of the N worst-ranked clips")
    parser.add_argument("--threads", type=positive_int, default=1, metavar="N",
                        help="torch threads for scoring and latency")
    parser.add_argument("--runs", type=positive_int, default=300, metavar="N",
                        help="timed forward passes for the latency")
    parser.add_argument("--batch-size", type=positive_int, default=256, metavar="N")
    args, extra = parser.parse_known_args(argv)
    if extra:
        # The corpus folder used to be positional: say how to write it now rather than just refuse it.
        if len(extra) == 1 and not extra[0].startswith("-"):
            parser.error(f"--root: got {extra[0]} as a positional argument; the corpus folder is given with --root: "
                         f"--root {extra[0]}")
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return evaluate_checkpoint(args)
    except (CheckpointError, OSError, ValueError) as e:  # bad input; anything else is a bug: traceback
        fail(e)


def plot_path(args: argparse.Namespace) -> Path | None:
    """Where --plot draws: `attention_<split>.png` in --out, else next to the checkpoint; None without --plot."""
    if args.plot is None:
        return None
    return (args.out if args.out is not None else args.checkpoint.parent) / f"attention_{args.split}.png"


def evaluate_checkpoint(args: argparse.Namespace) -> int:
    """`main` after parsing: every input is checked before the model scores a clip."""
    torch.set_num_threads(args.threads)
    ckpt = load_kws_checkpoint(args.checkpoint)
    root = args.root or ckpt.config["data"]["root"]
    listing = eval_clips(root, args.split, ckpt.keyword)
    if args.out is not None:
        check_out_folder(args.out)
    elif args.plot is not None and not os.access(args.checkpoint.parent, os.W_OK | os.X_OK):
        raise PermissionError(f"{args.checkpoint.parent}: cannot write the --plot figure next to the checkpoint "
                              f"(not writable); give --out DIR")
    sample_rate = ckpt.features.cfg.sample_rate
    loader = clips_loader(listing.clips, ckpt.keyword, sample_rate, ckpt.clip_samples, args.batch_size)
    try:
        scored = score_clips(ckpt.model, ckpt.features, loader, desc=f"scoring {args.split}")
    except ValueError as e:  # every clip unreadable
        raise ValueError(f"{split_label(root, args.split, listing.skipped)}: {e}") from None
    probs, labels = scored.scores, scored.labels
    skipped = {**listing.skipped, UNREADABLE: scored.unreadable}
    # Unreadable clips can take the last keyword (or other) clips with them.
    check_scorable(labels, ckpt.keyword, split_label(root, args.split, skipped))
    metric = au_fa_fr(probs, labels) + 0.0  # a perfect ranking's area is -0.0: shown as 0, not -0
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
        write_text_atomic(args.out / "eval.json", json.dumps(result, indent=2) + "\n")
        write_text_atomic(args.out / "scores.csv", scores_csv(listing.clips, scored))
        _, fa, fr = fa_fr_curve(probs, labels)
        plot_fa_fr({f"{args.split} ({metric:.2e})": (fa, fr)}, args.out / "fa_fr.png",
                   f"{ckpt.keyword!r}: FA/FR on {args.split}")
        print(f"  wrote {args.out / 'eval.json'}, {args.out / 'scores.csv'} and {args.out / 'fa_fr.png'}")
    if args.plot is not None:
        png = draw_worst_clips(ckpt, listing.clips, scored, args.plot, plot_path(args))
        print(f"  drew the attention of the {min(args.plot, len(labels))} worst-ranked clips: {png}")
    return 0


def draw_worst_clips(ckpt: KwsCheckpoint, clips: list[Clip], scored: ClipScores, count: int, out_png: Path) -> Path:
    """`plot_attention` of the `count` worst-ranked scored clips (`worst_ranked`), titled with
    their file, kind, score and rank among all scored clips by score (1: highest)."""
    chosen = worst_ranked(scored.scores, scored.labels, count)
    dataset = KeywordDataset([clips[scored.indices[i]] for i in chosen], ckpt.keyword,
                             ckpt.features.cfg.sample_rate, ckpt.clip_samples)
    waves = torch.stack([dataset[k]["wave"] for k in range(len(chosen))])  # read fine a moment ago
    rows = attention_rows(ckpt.model, ckpt.features, waves)
    order = np.argsort(-scored.scores, kind="stable")
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(1, len(order) + 1)
    n_positive = int(scored.labels.sum())
    titles = []
    for i in chosen:
        clip = clips[scored.indices[i]]
        kind = f"{ckpt.keyword!r} clip" if scored.labels[i] else f"other clip ({clip.word!r})"
        titles.append(f"{clip.word}/{clip.path.name}: {kind}, score {scored.scores[i]:.4g}, "
                      f"rank {rank[i]} of {len(order)} (keyword clips should be 1-{n_positive})")
    cfg = ckpt.features.cfg
    return plot_attention(rows, titles, cfg.hop_length / cfg.sample_rate, cfg.kind, out_png)


if __name__ == "__main__":
    sys.exit(main())
