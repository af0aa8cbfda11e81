"""Evaluate an ASR checkpoint: greedy CER/WER on any split.

    python -m asr.evaluate CHECKPOINT [SPLIT ...] [--root DATA_ROOT]

A SPLIT is a split name under the data root the checkpoint was trained with (default: its test
splits) or a path to any folder in LibriSpeech layout (your own recordings, for example).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from asr.decode import greedy
from asr.model import DeepSpeech2, ModelConfig
from asr.text import tokenizer_from_dict
from common.checkpoint import CheckpointError, load_checkpoint, load_model_state
from common.config import from_dict
from common.features import FeatureConfig, make_features
from common.metrics import cer, wer


@torch.no_grad()
def evaluate(model: torch.nn.Module, features: torch.nn.Module, loader, tokenizer,
             device: torch.device) -> dict:
    """Greedy-decode every batch of `loader`; returns cer, wer, refs, hyps (in loader order)."""
    model.eval()
    refs, hyps = [], []
    for batch in loader:
        if batch["waves"].shape[0] == 0:
            continue
        feats, frames = features(batch["waves"].to(device), batch["wave_lengths"].to(device))
        log_probs, lengths = model(feats, frames)
        hyps += [tokenizer.decode(ids) for ids in greedy(log_probs, lengths)]
        refs += batch["texts"]
    return {"cer": cer(refs, hyps), "wer": wer(refs, hyps), "refs": refs, "hyps": hyps}


def write_examples(path: Path, step: int, refs: list[str], hyps: list[str], count: int = 10) -> None:
    """Append `count` reference/prediction pairs (spread over the split) under a step header."""
    stride = max(1, len(refs) // count)
    lines = [f"=== step {step} ===" if step >= 0 else "=== test ==="]
    for ref, hyp in list(zip(refs, hyps))[::stride][:count]:
        lines += [f"REF: {ref}", f"HYP: {hyp}", ""]
    with open(path, "a") as f:
        f.write("\n".join(lines) + "\n")


def load_asr_checkpoint(path: str | Path, device: torch.device | str = "cpu"):
    """(model, features, tokenizer, config dict) rebuilt from a training checkpoint."""
    state = load_checkpoint(path)
    missing = [k for k in ("model", "tokenizer", "config") if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not an ASR training checkpoint (missing {', '.join(missing)})")
    config = state["config"]
    tokenizer = tokenizer_from_dict(state["tokenizer"])
    features = make_features(from_dict(FeatureConfig, config["features"], source=f"{path} features")).to(device)
    model = DeepSpeech2(features.num_features, len(tokenizer.vocab),
                        from_dict(ModelConfig, config["model"], source=f"{path} model"))
    load_model_state(model, state["model"], str(path))
    return model.to(device).eval(), features, tokenizer, config


def main(argv: list[str]) -> None:
    from asr.train import TrainConfig, dev_loader  # the loaders live with training

    parser = argparse.ArgumentParser(prog="asr_eval", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("splits", nargs="*", help="split names or LibriSpeech-layout folders")
    parser.add_argument("--root", help="data root holding the splits (default: the one trained with)")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model, features, tokenizer, config = load_asr_checkpoint(args.checkpoint, device)
    except CheckpointError as e:
        sys.exit(f"error: {e}")
    cfg = from_dict(TrainConfig, config, source=args.checkpoint)
    if args.root:
        cfg.data.root = args.root
    splits = args.splits or cfg.data.test_splits
    print(f"| split | utterances | CER | WER | seconds |\n|---|---|---|---|---|")
    for split in splits:
        started = time.time()
        try:
            loader = dev_loader(cfg, tokenizer, split)
        except FileNotFoundError as e:
            sys.exit(f"error: {e}")
        result = evaluate(model, features, loader, tokenizer, device)
        print(f"| {split} | {len(result['refs'])} | {result['cer']:.2%} | {result['wer']:.2%} "
              f"| {time.time() - started:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
