"""Train the keyword-spotting CRNN: one hand-written loop.

    python -m kws.train configs/kws/baseline.json [key=value ...]

A run lives in logs/<stage>/<name>/. Each epoch ends with au-fa-fr on the validation split;
`best.pt` is the epoch with the lowest (with `select=last`: the final epoch), `last.pt` the latest.
If the run folder holds `last.pt`, training resumes after the last finished epoch and gives the
same result as an uninterrupted run: every random draw of an epoch (sampler, augmentation, dropout,
masks) is seeded by (seed, epoch).
The run ends by scoring `best.pt` on the test split (results.md) and drawing its FA/FR curves.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from common.cli import fail
from common.config import check, config_from_argv, from_dict, is_folder_name, require_resumable, to_dict
from common.features import FeatureConfig, make_features
from common.metrics import au_fa_fr, fa_fr_curve
from common.readers.speech_commands import has_heldout
from common.runlog import RunLog, plot_curves, read_metrics
from common.seed import seed_everything, seed_worker
from kws.data import (AugmentConfig, DataConfig, KeywordDataset, LogMelChannel, SpecAugment, collate, epoch_sampler,
                      make_wave_augment, split_clips)
from kws import costs
from kws.evaluate import eval_clips, eval_loader, plot_fa_fr, predict
from kws.model import CRNN, ModelConfig


@dataclass
class OptimConfig:
    lr: float = 3e-4  # Adam
    weight_decay: float = 1e-5  # Adam's L2 weight decay
    grad_clip: float = 5.0  # max global gradient norm
    # "constant" is the course recipe; "cosine" decays to 0 over the run, which settles small
    # students whose validation score otherwise jumps from epoch to epoch.
    schedule: Literal["constant", "cosine"] = "constant"

    def __post_init__(self) -> None:
        check(self.lr > 0, "lr", "> 0", self.lr)
        check(self.weight_decay >= 0, "weight_decay", ">= 0", self.weight_decay)
        check(self.grad_clip > 0, "grad_clip", "> 0", self.grad_clip)


def learning_rate(cfg: OptimConfig, step: int, total_steps: int) -> float:
    """The learning rate of optimizer step `step` (0-based) of `total_steps`."""
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    return cfg.lr


@dataclass
class TrainConfig:
    stage: str = "kws_baseline"  # runs go to logs/<stage>/<name>
    name: str = "default"  # run name: the run folder under logs/<stage>/
    seed: int = 0  # fixes init, sampling and augmentation
    epochs: int = 20  # passes over the training clips
    batch_size: int = 128  # clips per batch
    threads: int = 1  # torch threads; 0 leaves torch's default (all cores)
    log_every: int = 25  # steps between train-loss records
    resume: bool = True  # continue from last.pt when the run folder has one
    features: FeatureConfig = field(default_factory=lambda: FeatureConfig(kind="logmel", n_mels=40))
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    # Which epoch best.pt keeps: "validation" the lowest validation au-fa-fr (the course recipe),
    # "last" the final one. A validation split of a few dozen keyword clips cannot rank the late
    # epochs of a long cosine schedule (it picked epoch 11 of 120 for one student), while the end of
    # the schedule is consistently the better model on a larger held-out set.
    select: Literal["validation", "last"] = "validation"
    # Optimizer steps per loaded batch, each on its own SpecAugment masks ("data echoing", Choi et
    # al. 2019). On a CPU, reading, augmenting and featurizing a batch costs several times the step
    # of a small model, so echoing buys more steps (what long schedules need) for little extra time.
    echo: int = 1

    def __post_init__(self) -> None:
        for key in ("stage", "name"):
            check(is_folder_name(getattr(self, key)), key, "a single folder name (no '/', not '.' or '..')",
                  getattr(self, key))
        for key in ("epochs", "batch_size", "log_every", "echo"):
            check(getattr(self, key) >= 1, key, ">= 1", getattr(self, key))
        check(self.threads >= 0, "threads", ">= 0", self.threads)
        check(not self.augment.channel_on or self.features.kind == "logmel", "features.kind",
              "logmel when augment.eq_p / filter_p / gain_transition_p > 0 (they act on log-mel bands)",
              self.features.kind)


def epoch_seed(seed: int, epoch: int) -> int:
    """The torch seed of one epoch (dropout, SpecAugment): a function of (seed, epoch) only."""
    return int(np.random.SeedSequence([seed, epoch, 1]).generate_state(1)[0])


# (model, log-mel features (batch, n_mels, time), labels (batch,)) -> scalar loss. The loss runs the
# model itself, so a distillation loss can also read the model's attention and feed its teacher.
LossFn = Callable[[CRNN, torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(model: CRNN, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The default objective: cross-entropy of the model's logits."""
    return F.cross_entropy(model(feats), labels)


def train(cfg: TrainConfig, log_root: str | Path = "logs", quiet: bool = False, *,
          loss_fn: LossFn = cross_entropy, init_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Train (or resume) the run described by `cfg`; returns the run folder.

    loss_fn: the training objective (`kws.distill` plugs in a teacher here); init_state: model
    weights to start from instead of a random init (e.g. a pruned model to fine-tune); ignored
    when resuming, since last.pt holds newer weights.
    """
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    run_dir = Path(log_root) / cfg.stage / cfg.name
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    resume_state = load_checkpoint(last_path) if cfg.resume and last_path.exists() else None
    if resume_state is not None:
        # More epochs extend a run when the learning rate does not depend on the epoch count.
        # Keys added to the schema since the run started take their defaults (not a changed config).
        saved = to_dict(from_dict(type(cfg), resume_state["config"], source=str(last_path)))
        ignore = ("resume", "epochs") if cfg.optim.schedule == "constant" else ("resume",)
        require_resumable(saved, to_dict(cfg), str(run_dir), ignore=ignore)

    # Whatever can refuse the run (the data, its splits) comes before its folder is made.
    sample_rate = cfg.features.sample_rate
    clip_samples = round(cfg.data.clip_seconds * sample_rate)
    train_clips = split_clips(cfg.data, "train")
    augment = make_wave_augment(cfg.augment, cfg.data.root, sample_rate)
    dataset = KeywordDataset(train_clips, cfg.data.keyword, sample_rate, clip_samples, augment=augment,
                             seed=cfg.seed)
    dev = eval_loader(cfg.data.root, "validation", cfg.data.keyword, sample_rate, clip_samples,
                      num_workers=cfg.data.num_workers)
    eval_clips(cfg.data.root, "testing", cfg.data.keyword)  # scored at the end: refused now if it cannot be
    run = RunLog(cfg.stage, cfg.name, to_dict(cfg), seed=cfg.seed, device=str(device), root=log_root,
                 quiet=quiet)
    if resume_state is not None:
        run.resume_metrics(resume_state["step"])
    n_pos = int(dataset.labels.sum())
    run.info(f"data: {cfg.data.root}, keyword {cfg.data.keyword!r}: train {len(dataset)} clips "
             f"({n_pos} positive, {n_pos / len(dataset):.2%}), validation {len(dev.dataset)} clips "
             f"({int(dev.dataset.labels.sum())} positive); sampler positive share "
             f"{cfg.data.positive_fraction if cfg.data.positive_fraction is not None else 'natural'}")

    features = make_features(cfg.features).to(device)
    model = CRNN(features.num_features, cfg.model).to(device)
    channel = LogMelChannel(cfg.augment, cfg.features.n_mels, cfg.features.sample_rate, cfg.features.log_floor,
                            cfg.features.f_min, cfg.features.f_max)
    spec_augment = SpecAugment(cfg.augment)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)

    epoch, step, best_metric, best_epoch, skipped_clips, train_seconds = 0, 0, float("inf"), -1, 0, 0.0
    if resume_state is not None:
        load_model_state(model, resume_state["model"], str(last_path))
        optimizer.load_state_dict(resume_state["optimizer"])
        epoch, step = resume_state["epoch"], resume_state["step"]
        best_metric, best_epoch = resume_state["best_au_fa_fr"], resume_state["best_epoch"]
        skipped_clips, train_seconds = resume_state["skipped_clips"], resume_state["train_seconds"]
    elif init_state is not None:
        load_model_state(model, init_state, "init_state")

    def checkpoint_state() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "step": step, "best_au_fa_fr": best_metric, "best_epoch": best_epoch,
                "skipped_clips": skipped_clips, "train_seconds": train_seconds, "config": to_dict(cfg)}

    batches_per_epoch = math.ceil(len(dataset) / cfg.batch_size)  # the sampler draws len(dataset) per epoch
    total_steps = cfg.epochs * batches_per_epoch * cfg.echo
    params = sum(p.numel() for p in model.parameters())
    run.info(f"model: {params:,} parameters, device {device}, {torch.get_num_threads()} thread(s), "
             f"{batches_per_epoch} batches per epoch" + (f", {cfg.echo} steps each" if cfg.echo > 1 else "")
             + (f"; resuming after epoch {epoch}" if resume_state is not None else ""))
    while epoch < cfg.epochs:
        started = time.time()
        torch.manual_seed(epoch_seed(cfg.seed, epoch))
        dataset.epoch = epoch
        sampler = epoch_sampler(dataset.labels, cfg.data.positive_fraction, cfg.seed, epoch)
        loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler,
                                             collate_fn=collate, num_workers=cfg.data.num_workers,
                                             worker_init_fn=seed_worker)
        model.train()
        epoch_loss, epoch_steps, window_loss, window_steps = 0.0, 0, 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=quiet, dynamic_ncols=True)
        for batch in bar:
            skipped_clips += batch["skipped"]
            if batch["waves"].shape[0] == 0:
                continue
            targets = batch["labels"].to(device)
            with torch.no_grad():
                batch_feats, _ = features(batch["waves"].to(device))
                if channel.active:
                    batch_feats = channel(batch_feats)
            for _ in range(cfg.echo):
                with torch.no_grad():
                    feats = spec_augment(batch_feats)  # a fresh mask for every echo
                loss = loss_fn(model, feats, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(cfg.optim, step, total_steps)
                optimizer.step()
                step += 1
                epoch_loss, epoch_steps = epoch_loss + loss.item(), epoch_steps + 1
                window_loss, window_steps = window_loss + loss.item(), window_steps + 1
                if step % cfg.log_every == 0:
                    run.metrics(step=step, epoch=epoch, train_loss=window_loss / window_steps)
                    bar.set_postfix(loss=f"{window_loss / window_steps:.4f}")
                    window_loss, window_steps = 0.0, 0
        train_seconds += time.time() - started
        probs, labels, dev_skipped = predict(model, features, dev, device)
        metric = au_fa_fr(probs, labels)
        epoch += 1
        keep = metric < best_metric if cfg.select == "validation" else epoch == cfg.epochs
        if keep:
            best_metric, best_epoch = metric, epoch
        run.metrics(step=step, epoch=epoch, epoch_train_loss=epoch_loss / max(1, epoch_steps),
                    val_au_fa_fr=metric, epoch_seconds=time.time() - started, train_seconds=train_seconds)
        unreadable = skipped_clips + dev_skipped
        run.info(f"epoch {epoch}: train loss {epoch_loss / max(1, epoch_steps):.4f}, validation "
                 f"au-fa-fr {metric:.3e}{' (kept as best.pt)' if keep else ''}, {time.time() - started:.0f} s"
                 + (f", {unreadable} unreadable clips skipped so far" if unreadable else ""))
        if keep:
            save_checkpoint(best_path, checkpoint_state())
        save_checkpoint(last_path, checkpoint_state())
        records = read_metrics(run.metrics_path)
        plots = [plot_curves(records, ["train_loss", "epoch_train_loss"], run.dir / "loss.png",
                             title="cross-entropy (train)", log_y=True),
                 plot_curves(records, ["val_au_fa_fr"], run.dir / "au_fa_fr.png", x="epoch",
                             title="au-fa-fr (validation)", log_y=True)]
        for png in plots:
            run.image(png, step)

    run.info(f"training done: {epoch} epochs, {step} steps, {train_seconds / 60:.1f} min of training "
             f"(without validation), best.pt: epoch {best_epoch} (select={cfg.select}), validation "
             f"au-fa-fr {best_metric:.3e}")
    report_best(cfg, best_path, device, run)
    run.close()
    return run_dir


def report_best(cfg: TrainConfig, best_path: Path, device: torch.device, run: RunLog) -> None:
    """Score best.pt on validation, test and (when the corpus has one) held-out: results.md, metrics
    and fa_fr.png."""
    state = load_checkpoint(best_path)
    features = make_features(cfg.features).to(device)
    model = CRNN(features.num_features, cfg.model).to(device)
    load_model_state(model, state["model"], str(best_path))
    sample_rate, clip_samples = cfg.features.sample_rate, round(cfg.data.clip_seconds * cfg.features.sample_rate)
    curves, rows = {}, ["| split | clips | positives | au-fa-fr |", "|---|---|---|---|"]
    splits = ("validation", "testing") + (("heldout",) if has_heldout(cfg.data.root) else ())
    for split in splits:
        loader = eval_loader(cfg.data.root, split, cfg.data.keyword, sample_rate, clip_samples,
                             num_workers=cfg.data.num_workers)
        probs, labels, _ = predict(model, features, loader, device)
        metric = au_fa_fr(probs, labels)
        _, fa, fr = fa_fr_curve(probs, labels)
        curves[f"{split} ({metric:.2e})"] = (fa, fr)
        rows.append(f"| {split} | {len(labels)} | {int(labels.sum())} | {metric:.3e} |")
        run.metrics(step=-1, epoch=state["epoch"], split=split, best_au_fa_fr=metric)
    title = f"best.pt (epoch {state['epoch']}), keyword {cfg.data.keyword!r}"
    run.image(plot_fa_fr(curves, run.dir / "fa_fr.png", title), -1)  # -1: with the final results
    example, _ = features(torch.zeros(1, clip_samples, device=device))
    cost = costs.measure(model, example)
    run.metrics(step=-1, epoch=state["epoch"], **cost.as_dict())
    table = "\n".join(rows)
    cost_line = (f"{cost.params:,} parameters, state_dict file {cost.state_dict_bytes:,} bytes, "
                 f"{cost.macs:,} MACs per {clip_samples / sample_rate:g} s clip (thop), CPU latency "
                 f"{cost.latency_ms:.3f} ms median (batch 1, 1 thread, model only)")
    (run.dir / "results.md").write_text(f"{best_path} (epoch {state['epoch']})\n\n{table}\n\n{cost_line}\n")
    run.info(f"best.pt (epoch {state['epoch']}):\n{table}\n{cost_line}\nlogs: {run.dir}")


def main(argv: list[str]) -> None:
    cfg = config_from_argv(TrainConfig, argv, __doc__)
    try:
        train(cfg)
    except (ValueError, OSError) as e:  # a bad config or data folder (ConfigError, CheckpointError), a read-only logs/
        fail(e)


if __name__ == "__main__":
    main(sys.argv[1:])
