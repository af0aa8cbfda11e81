"""Knowledge distillation for the keyword spotter: a small student CRNN learns from the baseline.

    python -m kws.distill configs/kws/distill.json [key=value ...]

The student trains with `kws.train`'s loop (same data, sampler, augmentation, checkpoints,
resuming); only the objective differs (Hinton et al., 2015):

    loss = alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels)

where x_T = softmax(logits / T). The T^2 keeps the soft term's gradients on the scale of the hard
term's when T changes. The teacher sees the same (augmented) features as the student.
`attention_weight` > 0 adds attention distillation: the student's attention over time is pulled
towards the teacher's (KL, the teacher's weights moved onto the student's coarser frames).

What the command does:
1. a small grid over `grid_temperature` x `grid_alpha`, each point a short run
   (`grid_epochs`) in logs/<stage>/grid_T<T>_a<alpha>/; finished points are skipped, an
   interrupted one resumes, so rerunning continues where it stopped; the table of validation
   au-fa-fr goes to logs/<stage>/grid.md (the test split is never used for choosing);
2. the student with the best (T, alpha) trains for `epochs` in logs/<stage>/<name>/;
3. structured pruning of the teacher (`kws.prune`, `prune_channels` / `prune_hidden` kept), then
   fine-tuning with the same distillation loss in logs/<stage>/pruned/ (skipped if prune_epochs=0);
4. the compression report (`kws.compress`): logs/kws/compression.md and its plots (the float
   models and their fp16 / int8 versions; `./run.sh kws_quantize` writes the same report alone).
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from common.artifacts import KWS_BASELINE, KWS_REPORT, under
from common.checkpoint import CheckpointError, load_checkpoint
from common.cli import fail
from common.config import ConfigError, check, config_from_argv, to_dict
from kws import compress, prune
from kws.model import CRNN, load_kws_checkpoint
from kws.train import LossFn, TrainConfig, train


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, labels), batch mean.

    student_logits, teacher_logits: `(batch, classes)`; labels: `(batch,)` class indices.
    """
    if temperature <= 0 or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"need temperature > 0 and 0 <= alpha <= 1, got T={temperature}, alpha={alpha}")
    hard = F.cross_entropy(student_logits, labels)
    if alpha == 0:
        return hard
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                    F.log_softmax(teacher_logits / temperature, dim=-1), reduction="batchmean",
                    log_target=True)
    return alpha * temperature ** 2 * soft + (1 - alpha) * hard


def resample_attention(weights: torch.Tensor, source_centers: torch.Tensor,
                       target_centers: torch.Tensor) -> torch.Tensor:
    """Move attention weights `(batch, S)` onto other frames: `(batch, T)`.

    source_centers `(S,)` and target_centers `(T,)` (evenly spaced) are frame centers on one time
    axis. Each source frame's weight goes to the two target frames around its center, split
    linearly (all of it to the end frame beyond either end), so every row still sums to one. The
    teacher and the student see the clip at different conv strides; this puts the teacher's
    attention on the student's frames.
    """
    frames = len(target_centers)
    if frames == 1:
        return weights.sum(dim=-1, keepdim=True)
    spacing = float(target_centers[1] - target_centers[0])
    position = ((source_centers - target_centers[0]) / spacing).clamp(0, frames - 1)
    low = position.floor().long().clamp(max=frames - 2)
    upper_share = (position - low).to(weights.dtype)
    moves = torch.zeros(len(source_centers), frames, dtype=weights.dtype, device=weights.device)
    rows = torch.arange(len(source_centers))
    moves[rows, low] = 1 - upper_share
    moves[rows, low + 1] = upper_share
    return weights @ moves


class TeacherLoss:
    """The `kws.train` objective with a frozen teacher: `(student, feats, labels) -> loss`.

    With attention_weight > 0 it adds attention distillation: attention_weight * KL(teacher's
    attention over time, moved onto the student's frames || the student's attention).
    """

    def __init__(self, teacher: CRNN, temperature: float, alpha: float, attention_weight: float = 0.0) -> None:
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.temperature, self.alpha, self.attention_weight = temperature, alpha, attention_weight

    def __call__(self, student: CRNN, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.attention_weight == 0:
            with torch.no_grad():
                teacher_logits = self.teacher(feats)
            return distillation_loss(student(feats), teacher_logits, labels, self.temperature, self.alpha)
        logits, log_weights = student.forward_with_attention(feats)
        with torch.no_grad():
            teacher_logits, teacher_log_weights = self.teacher.forward_with_attention(feats)
            target = resample_attention(teacher_log_weights.exp(),
                                        self.teacher.frame_centers(teacher_log_weights.shape[1]),
                                        student.frame_centers(log_weights.shape[1]))
        attention = F.kl_div(log_weights, target, reduction="batchmean")
        return (distillation_loss(logits, teacher_logits, labels, self.temperature, self.alpha)
                + self.attention_weight * attention)


@dataclass
class DistillConfig(TrainConfig):
    stage: str = "kws_distill"
    name: str = "student"
    teacher: str = KWS_BASELINE  # a kws.train checkpoint
    temperature: float = 4.0  # used when the grid is empty
    alpha: float = 0.9  # weight of the soft (teacher) term; used when the grid is empty
    attention_weight: float = 0.0  # attention distillation: weight of the attention KL; 0 = off
    grid_temperature: list[float] = field(default_factory=lambda: [2.0, 5.0])  # temperatures the grid tries
    grid_alpha: list[float] = field(default_factory=lambda: [0.5, 0.9])  # alphas the grid tries
    grid_epochs: int = 4  # epochs per grid point (short runs: the grid ranks settings)
    prune_channels: int = 4  # conv channels the pruned teacher keeps (of 8)
    prune_hidden: int = 16  # GRU units per layer the pruned teacher keeps (of 32)
    prune_epochs: int = 4  # fine-tuning epochs of the pruned model; 0 skips pruning
    prune_lr: float = 3e-4  # fine-tuning learning rate (the pruned model starts trained)
    report: bool = True  # end with kws.compress's report

    def __post_init__(self) -> None:
        super().__post_init__()
        for key, values in (("temperature", [self.temperature]), ("grid_temperature", self.grid_temperature)):
            check(all(t > 0 for t in values), key, "> 0", getattr(self, key))
        for key, values in (("alpha", [self.alpha]), ("grid_alpha", self.grid_alpha)):
            check(all(0 <= a <= 1 for a in values), key, "in [0, 1]", getattr(self, key))
        check(self.attention_weight >= 0, "attention_weight", ">= 0", self.attention_weight)
        for key in ("grid_epochs", "prune_channels", "prune_hidden"):
            check(getattr(self, key) >= 1, key, ">= 1", getattr(self, key))
        check(self.prune_epochs >= 0, "prune_epochs", ">= 0", self.prune_epochs)
        check(self.prune_lr > 0, "prune_lr", "> 0", self.prune_lr)


def grid_name(temperature: float, alpha: float) -> str:
    return f"grid_T{temperature:g}_a{alpha:g}"


def train_student(cfg: DistillConfig, teacher: CRNN, log_root: str | Path = "logs", quiet: bool = False,
                  init_state: dict | None = None) -> Path:
    """One distillation run with `cfg.temperature` / `cfg.alpha`; returns the run folder."""
    loss_fn: LossFn = TeacherLoss(teacher, cfg.temperature, cfg.alpha, cfg.attention_weight)
    return train(cfg, log_root, quiet, loss_fn=loss_fn, init_state=init_state)


def finished(run_dir: Path, epochs: int) -> bool:
    """Whether `run_dir` holds a run that completed `epochs` epochs and its report."""
    last = run_dir / "last.pt"
    return last.is_file() and (run_dir / "results.md").is_file() and load_checkpoint(last)["epoch"] >= epochs


def run_grid(cfg: DistillConfig, teacher: CRNN, log_root: str | Path = "logs",
             quiet: bool = False) -> tuple[float, float, list[dict]]:
    """Train every (T, alpha) of the grid (skipping finished points); best by validation au-fa-fr.

    Returns (best T, best alpha, rows) and writes logs/<stage>/grid.md.
    """
    rows = []
    for temperature, alpha in itertools.product(cfg.grid_temperature, cfg.grid_alpha):
        point = replace(cfg, name=grid_name(temperature, alpha), temperature=temperature, alpha=alpha,
                        epochs=cfg.grid_epochs)
        run_dir = Path(log_root) / cfg.stage / point.name
        if not finished(run_dir, point.epochs):
            train_student(point, teacher, log_root, quiet)
        state = load_checkpoint(run_dir / "best.pt")
        rows.append({"temperature": temperature, "alpha": alpha, "val_au_fa_fr": state["best_au_fa_fr"],
                     "best_epoch": state["best_epoch"], "run": str(run_dir)})
    # Validation au-fa-fr rests on a few keyword clips, so ties happen: min keeps the first listed.
    best = min(rows, key=lambda r: r["val_au_fa_fr"])
    lines = [f"Distillation grid: {cfg.grid_epochs} epochs per point, student {cfg.model}",
             "", f"| T | alpha | validation au-fa-fr | epoch kept (select={cfg.select}) | run |", "|---|---|---|---|---|"]
    lines += [f"| {r['temperature']:g} | {r['alpha']:g} | {r['val_au_fa_fr']:.3e} | {r['best_epoch']} | "
              f"{r['run']}{' **best**' if r is best else ''} |" for r in rows]
    out = Path(log_root) / cfg.stage / "grid.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    if not quiet:
        print("\n".join(lines))
    return best["temperature"], best["alpha"], rows


def run(cfg: DistillConfig, log_root: str | Path = "logs", quiet: bool = False) -> Path:
    """The whole `./run.sh kws_distill`: grid, best student, pruned teacher, report."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    teacher = load_kws_checkpoint(cfg.teacher).model
    if load_checkpoint(cfg.teacher)["config"]["features"] != to_dict(cfg.features):
        # The teacher scores the student's features: they must be the ones it was trained on.
        raise ConfigError(f"{cfg.teacher}: the teacher's features differ from features.* of this config")
    if cfg.grid_temperature and cfg.grid_alpha:
        temperature, alpha, _ = run_grid(cfg, teacher, log_root, quiet)
        cfg = replace(cfg, temperature=temperature, alpha=alpha)
    student_dir = train_student(cfg, teacher, log_root, quiet)
    if cfg.prune_epochs > 0:
        pruned = prune.prune_crnn(teacher, cfg.prune_channels, cfg.prune_hidden)
        prune_cfg = replace(cfg, name="pruned", epochs=cfg.prune_epochs, model=pruned.cfg,
                            optim=replace(cfg.optim, lr=cfg.prune_lr))
        train_student(prune_cfg, teacher, log_root, quiet, init_state=pruned.state_dict())
    if cfg.report:
        run_root = Path(log_root) / cfg.stage
        compress.report(under(log_root, KWS_REPORT), sources={
            "baseline": cfg.teacher, "student": str(student_dir / "best.pt"),
            "pruned": str(run_root / "pruned" / "best.pt")})
    return student_dir


def main(argv: list[str]) -> None:
    cfg = config_from_argv(DistillConfig, argv, __doc__)
    try:
        run(cfg)
    except (ConfigError, CheckpointError, OSError) as e:
        fail(e)


if __name__ == "__main__":
    main(sys.argv[1:])
