"""Train DeepSpeech2 with CTC: one hand-written loop.

    python -m asr.train configs/asr/clean.json [key=value ...]
    torchrun --nproc_per_node 2 -m asr.train configs/asr/clean.json   # DDP (gloo on CPU, nccl on GPU)

A run lives in logs/<stage>/<name>/. If that folder holds `last.pt`, training resumes from it and
continues exactly where it stopped (same batches, same random streams). `best.pt` is the checkpoint
with the lowest dev WER; the run ends by evaluating it on the test splits.
"""
from __future__ import annotations

import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from asr.config import OptimConfig, TrainConfig
from asr.data import (DurationBatchSampler, SpeechDataset, collate, draw_vtlp, durations, eval_loader,
                      load_train_utterances, make_spec_augment, make_wave_augment, scored_splits, select, split_source)
from asr.evaluate import evaluate, write_examples
from asr.model import DeepSpeech2, load_asr_checkpoint
from asr.text import build_tokenizer, kept_characters, tokenizer_from_dict
from common.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from common.config import ConfigError, config_from_argv, from_dict, require_resumable, to_dict
from common.cli import fail
from common.features import make_features
from common.readers.librispeech import Utterance
from common.runlog import RunLog, plot_curves, read_metrics
from common.seed import seed_everything, seed_worker


def setup_distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the torchrun process group when there is one."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        rank, local_rank = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))
    else:
        rank, local_rank = 0, 0
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return rank, world, torch.device("cuda", local_rank)
    return rank, world, torch.device("cpu")


def make_optimizer(cfg: OptimConfig, model: DeepSpeech2) -> torch.optim.Optimizer:
    """Parameter groups by learning rate: the self-attention blocks get `attention_lr_scale` × lr.

    Each group carries its "lr_scale", which `make_scheduler` applies to every schedule's peak.
    """
    attention = list(model.attentions.parameters())
    attention_ids = {id(p) for p in attention}
    groups = [{"params": [p for p in model.parameters() if id(p) not in attention_ids], "lr_scale": 1.0}]
    if attention:
        groups.append({"params": attention, "lr_scale": cfg.attention_lr_scale})
    for group in groups:
        group["lr"] = cfg.lr * group["lr_scale"]
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)
    optimizer_class = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return optimizer_class(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(cfg: OptimConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    """Learning-rate schedule stepped once per optimizer step; peaks at `cfg.lr` × each group's "lr_scale"."""
    peaks = [cfg.lr * group["lr_scale"] for group in optimizer.param_groups]
    if cfg.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total_steps,
                                                   pct_start=cfg.warmup_fraction, div_factor=25.0,
                                                   final_div_factor=1e3, cycle_momentum=False)
    if cfg.scheduler == "cyclic":
        return torch.optim.lr_scheduler.CyclicLR(optimizer, base_lr=[peak * cfg.min_lr_ratio for peak in peaks],
                                                 max_lr=peaks,
                                                 step_size_up=cfg.cyclic_step_size, mode="triangular2",
                                                 cycle_momentum=False)
    warmup = max(1, int(cfg.warmup_fraction * total_steps))

    def cosine(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine if cfg.scheduler == "cosine" else lambda _: 1.0)


def rng_state() -> dict:
    """Every random stream training draws from, as checkpoint-safe values."""
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()),
                                                       *np_state[2:]], "python": random.getstate()}
    if torch.cuda.is_available():  # dropout and SpecAugment masks drawn on the GPU
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    random.setstate(tuple(x if not isinstance(x, list) else tuple(x) for x in state["python"]))


def optimizer_step(loss: torch.Tensor, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler, grad_clip: float) -> None:
    """Backward `loss` and update: gradients scaled for fp16 (a no-op scaler otherwise), unscaled
    before clipping their norm to `grad_clip`."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The dtype that `amp` ("off", "bf16", "fp16") runs the model's forward in on `device`; None: float32.

    fp16 runs on CUDA only. bf16 runs on CUDA and on a processor with bfloat16 instructions (AVX-512
    BF16 or AMX), where the oneDNN LSTM and the convolutions gain from it; other processors emulate
    bfloat16, 5-10x slower than float32 (docs/asr.md#training-speed-on-the-cpu), and train in float32.
    """
    if device.type == "cuda":
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    return torch.bfloat16 if amp == "bf16" and cpu_has_bf16() else None


def cpu_has_bf16() -> bool:
    """Whether this processor computes bfloat16 natively (AVX-512 BF16 or AMX), as torch detects it."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def ctc_loss(model: torch.nn.Module, features: torch.nn.Module, batch: dict, device: torch.device,
             spec_augment: torch.nn.Module | None = None, amp_dtype: torch.dtype | None = None,
             warp: torch.Tensor | None = None) -> torch.Tensor:
    """Mean CTC loss of a collated batch (per utterance, normalized by target length); `warp`: VTLP
    factors `(batch,)` or None."""
    waves, wave_lengths = batch["waves"].to(device), batch["wave_lengths"].to(device)
    with torch.no_grad():
        feats, frames = features(waves, wave_lengths, warp)
        if spec_augment is not None:
            feats = spec_augment(feats)
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        log_probs, out_lengths = model(feats, frames)
    return F.ctc_loss(log_probs.float().transpose(0, 1), batch["targets"].to(device), out_lengths,
                      batch["target_lengths"].to(device), blank=0, reduction="mean", zero_infinity=True)


def select_train_utterances(cfg: TrainConfig) -> tuple[list[Utterance], list[float], int]:
    """The training utterances within the duration limits, their seconds, and how many were dropped
    (outside the limits or unreadable); a ConfigError when none is left."""
    utterances = load_train_utterances(cfg)
    kept, seconds, dropped = select(utterances, durations(utterances), cfg.data.min_seconds, cfg.data.max_seconds)
    if not kept:
        raise ConfigError(f"data.train_splits {cfg.data.train_splits} under {cfg.data.root}: none of the "
                          f"{len(utterances)} utterances read is {cfg.data.min_seconds}-{cfg.data.max_seconds} s "
                          f"long and readable (data.min_seconds, data.max_seconds)")
    return kept, seconds, dropped


def build_data(cfg: TrainConfig, tokenizer, utterances: list[Utterance], seconds: list[float], rank: int,
               world: int) -> tuple[SpeechDataset, DurationBatchSampler]:
    """Training dataset and its length-grouped batch sampler over `utterances` of `seconds`."""
    wave_augment = make_wave_augment(cfg.augment, cfg.features.sample_rate)
    dataset = SpeechDataset(utterances, tokenizer, kept_characters(cfg.text, [u.text for u in utterances]),
                            cfg.features.sample_rate, wave_augment=wave_augment, seed=cfg.seed)
    sampler = DurationBatchSampler(seconds, cfg.data.max_batch_seconds, shuffle=True, seed=cfg.seed,
                                   sortagrad=cfg.data.sortagrad, num_replicas=world, rank=rank)
    return dataset, sampler


def train(cfg: TrainConfig, log_root: str | Path = "logs", quiet: bool = False) -> Path:
    """Train (or resume) the run described by `cfg`; returns the run folder."""
    rank, world, device = setup_distributed()
    main_process = rank == 0
    generator = seed_everything(cfg.seed, deterministic=cfg.deterministic)
    run_dir = Path(log_root) / cfg.stage / cfg.name
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    init_state = load_checkpoint(cfg.init_from) if cfg.init_from else None
    if init_state is not None:
        # Fine-tuning continues the checkpoint's network: its features, text and model settings
        # win over the config's, so a size changed on asr_clean's command line carries over.
        for section in ("features", "text", "model"):
            setattr(cfg, section, from_dict(type(getattr(cfg, section)), init_state["config"][section],
                                            source=f"{cfg.init_from} {section}"))
    resume_state = load_checkpoint(last_path) if cfg.resume and last_path.exists() else None
    if resume_state is not None:
        init_state = None  # the weights come from last.pt
        require_resumable(resume_state["config"], to_dict(cfg), str(run_dir))

    # Whatever can refuse the run (data, splits, model sizes) comes before its folder is made.
    train_utterances, seconds, dropped = select_train_utterances(cfg)
    # Tokenizer: from the checkpoint we resume or fine-tune from, else built from the transcripts.
    source_state = resume_state or init_state
    if source_state is not None:
        tokenizer = tokenizer_from_dict(source_state["tokenizer"])
    else:
        tokenizer = build_tokenizer(cfg.text, [u.text for u in train_utterances])
    dataset, sampler = build_data(cfg, tokenizer, train_utterances, seconds, rank, world)

    features = make_features(cfg.features).to(device)
    model = DeepSpeech2(features.num_features, len(tokenizer.vocab), cfg.model).to(device)
    if init_state is not None:
        load_model_state(model, init_state["model"], cfg.init_from)
    spec_augment = make_spec_augment(cfg.augment)
    optimizer = make_optimizer(cfg.optim, model)
    total_steps = cfg.epochs * len(sampler)
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    epochs_to_run = math.ceil(total_steps / len(sampler))  # fewer than cfg.epochs under max_steps
    scheduler = make_scheduler(cfg.optim, optimizer, total_steps)
    amp_dtype = autocast_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler(enabled=amp_dtype == torch.float16)

    step, epoch, batch_in_epoch, best_wer = 0, 0, 0, float("inf")
    skipped_batches, skipped_utterances = 0, 0  # non-finite losses; unreadable audio
    if resume_state is not None:
        model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        scaler.load_state_dict(resume_state["scaler"])
        step, epoch, batch_in_epoch = resume_state["step"], resume_state["epoch"], resume_state["batch_in_epoch"]
        best_wer, skipped_batches = resume_state["best_wer"], resume_state["skipped_batches"]
        skipped_utterances = resume_state["skipped_utterances"]
        set_rng_state(resume_state["rng"])
    train_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    def checkpoint_state() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "step": step,
                "epoch": epoch, "batch_in_epoch": batch_in_epoch, "best_wer": best_wer,
                "skipped_batches": skipped_batches, "skipped_utterances": skipped_utterances,
                "rng": rng_state(), "tokenizer": tokenizer.to_dict(),
                "num_features": features.num_features, "config": to_dict(cfg)}

    dev = eval_loader(cfg, tokenizer, cfg.data.dev_split) if main_process else None
    for split in cfg.data.test_splits:  # scored at the end: a missing one is refused now
        split_source(cfg, split)
    test_splits, missing_heldout = scored_splits(cfg)
    run = RunLog(cfg.stage, cfg.name, to_dict(cfg), seed=cfg.seed, device=str(device), root=log_root,
                 quiet=quiet) if main_process else None
    if run is not None:
        if resume_state is not None:
            run.resume_metrics(step)
        run.info(f"train: {len(train_utterances)} utterances, {sum(seconds) / 3600:.2f} h "
                 f"({dropped} outside {cfg.data.min_seconds}-{cfg.data.max_seconds} s or unreadable)")
        if missing_heldout:
            run.info(f"held-out splits not in {cfg.data.root}, not scored: {', '.join(missing_heldout)} "
                     f"(./run.sh data makes test-heldout in the synthetic corpus)")

    def evaluate_dev() -> None:
        nonlocal best_wer
        result = evaluate(model, features, dev, tokenizer, device)
        run.metrics(step=step, epoch=epoch, dev_cer=result["cer"], dev_wer=result["wer"])
        run.info(f"step {step}: dev {cfg.data.dev_split} CER {result['cer']:.2%} WER {result['wer']:.2%}")
        log_examples(run, run.dir / "examples.txt", "dev/examples", step, result)
        if result["wer"] < best_wer:
            best_wer = result["wer"]
            save_checkpoint(best_path, checkpoint_state())
        save_checkpoint(last_path, checkpoint_state())
        records = read_metrics(run.metrics_path)
        plots = [plot_curves(records, ["train_loss"], run.dir / "loss.png", title="CTC loss (train)", log_y=True),
                 plot_curves(records, ["dev_cer", "dev_wer"], run.dir / "error_rates.png", title=cfg.data.dev_split),
                 plot_curves(records, ["lr"], run.dir / "lr.png", title="learning rate")]
        for png in plots:
            run.image(png, step)

    if main_process:
        params = sum(p.numel() for p in model.parameters())
        forward_dtype = str(amp_dtype or torch.float32).removeprefix("torch.")
        run.info(f"model: {params / 1e6:.2f} M parameters, vocabulary {len(tokenizer.vocab)}, device {device}, "
                 f"forward in {forward_dtype}, world size {world}; {len(sampler)} batches per epoch, "
                 f"{total_steps} steps"
                 + (f"; resuming at step {step} (epoch {epoch}, batch {batch_in_epoch})" if resume_state else ""))
    started, audio_seconds, loss_sum, loss_count = time.time(), 0.0, 0.0, 0
    while epoch < cfg.epochs and step < total_steps:
        sampler.set_epoch(epoch, start_batch=batch_in_epoch)
        dataset.epoch = epoch
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                             num_workers=cfg.data.num_workers, worker_init_fn=seed_worker,
                                             generator=generator)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs_to_run}", initial=batch_in_epoch, total=len(sampler),
                   disable=not main_process or quiet, dynamic_ncols=True)
        for batch in bar:
            train_model.train()
            skipped_utterances += batch["skipped"]
            if batch["waves"].shape[0] == 0:  # every utterance of the batch was unreadable
                skipped_batches += 1
            else:
                loss = ctc_loss(train_model, features, batch, device, spec_augment, amp_dtype,
                                draw_vtlp(cfg.augment, batch["waves"].shape[0]))
                # A non-finite loss is skipped on every process alike (DDP needs matching steps).
                finite = torch.isfinite(loss.detach())
                if world > 1:
                    finite = finite.float().to(device)
                    dist.all_reduce(finite, op=dist.ReduceOp.MIN)
                    finite = finite.bool()
                if not finite:
                    skipped_batches += 1
                    if main_process:
                        run.info(f"step {step}: non-finite loss, batch skipped ({skipped_batches} so far)")
                else:
                    optimizer_step(loss, model, optimizer, scaler, cfg.optim.grad_clip)
                    loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
                    audio_seconds += batch["wave_lengths"].sum().item() / cfg.features.sample_rate
            scheduler.step()
            step += 1
            batch_in_epoch += 1
            if main_process and step % cfg.log_every == 0 and loss_count:
                speed = audio_seconds / max(1e-9, time.time() - started)
                run.metrics(step=step, epoch=epoch, train_loss=loss_sum / loss_count,
                            lr=scheduler.get_last_lr()[0], audio_seconds_per_second=speed * world)
                bar.set_postfix(loss=f"{loss_sum / loss_count:.3f}", audio_s_per_s=f"{speed * world:.1f}")
                loss_sum, loss_count = 0.0, 0
            if step >= total_steps:  # max_steps reached inside the epoch
                break
            if cfg.eval_every and step % cfg.eval_every == 0 and batch_in_epoch < len(sampler):
                if main_process:
                    evaluate_dev()
                if world > 1:
                    dist.barrier()
        epoch, batch_in_epoch = epoch + 1, 0
        if main_process:
            evaluate_dev()
        if world > 1:
            dist.barrier()

    if main_process:
        run.info(f"training done: {step} steps, {skipped_batches} batches skipped (non-finite loss or no audio), "
                 f"{skipped_utterances} unreadable utterances skipped, best dev WER {best_wer:.2%}, "
                 f"{(time.time() - started) / 60:.1f} min in this process")
        report_test(cfg, test_splits, best_path, device, run)
        run.close()
    if world > 1:
        dist.destroy_process_group()
    return run_dir


def report_test(cfg: TrainConfig, splits: list[str], checkpoint: Path, device: torch.device,
                run: RunLog) -> None:
    """Evaluate the best checkpoint on `splits`; a table on screen and in results.md."""
    ckpt = load_asr_checkpoint(checkpoint, device)
    model, features, tokenizer = ckpt.model, ckpt.features, ckpt.tokenizer
    rows = ["| split | utterances | CER | CER without spaces | WER |", "|---|---|---|---|---|"]
    for split in splits:
        result = evaluate(model, features, eval_loader(cfg, tokenizer, split), tokenizer, device)
        run.metrics(step=-1, split=split, test_cer=result["cer"], test_cer_without_spaces=result["cer_without_spaces"],
                    test_wer=result["wer"])
        name = Path(split).name  # a split may be given as a folder path
        log_examples(run, run.dir / f"examples_{name}.txt", f"test/{name}/examples", -1, result)
        rows.append(f"| {split} | {len(result['refs'])} | {result['cer']:.2%} | {result['cer_without_spaces']:.2%} "
                    f"| {result['wer']:.2%} |")
    table = "\n".join(rows)
    (run.dir / "results.md").write_text(f"Greedy decoding, {checkpoint}\n\n{table}\n")
    run.info(f"test results ({checkpoint.name}, greedy):\n{table}\nlogs: {run.dir}")


def log_examples(run: RunLog, path: Path, tag: str, step: int, result: dict) -> None:
    """Append example transcripts of `result` to `path` (`write_examples`) and show the same block in
    TensorBoard under `tag` at `step` (-1: the final results).

    The block is read back from the file, so TensorBoard shows exactly what the file holds.
    """
    start = path.stat().st_size if path.exists() else 0
    write_examples(path, step, result["refs"], result["hyps"])
    with open(path, "rb") as f:
        f.seek(start)
        run.text(tag, f.read().decode("utf-8"), step)


def check_init_from(cfg: TrainConfig) -> None:
    """The checkpoint a fine-tuning run starts from exists and is an ASR training checkpoint."""
    if not cfg.init_from:
        return
    if not Path(cfg.init_from).is_file():
        raise ConfigError(f"init_from {cfg.init_from}: no such checkpoint (asr_other starts from the model "
                          f"of ./run.sh asr_clean: run that first, or set init_from=...)")
    load_asr_checkpoint(cfg.init_from)


def main(argv: list[str]) -> None:
    cfg = config_from_argv(TrainConfig, argv, __doc__, check=check_init_from)
    try:
        train(cfg)
    except (ValueError, OSError) as e:  # a bad config or data folder (ConfigError, CheckpointError), a read-only logs/
        fail(e)


if __name__ == "__main__":
    main(sys.argv[1:])
