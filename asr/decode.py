"""Decoding CTC outputs into token ids."""
from __future__ import annotations

import torch


def greedy(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Best path: argmax per frame, collapse repeats, drop blanks (id 0).

    log_probs (batch, time, vocab), lengths (batch,) -> one id list per utterance.
    """
    best = log_probs.argmax(dim=-1).cpu()
    out = []
    for path, n in zip(best, lengths.tolist()):
        path = path[:n]
        keep = torch.ones_like(path, dtype=torch.bool)
        keep[1:] = path[1:] != path[:-1]
        out.append(path[keep & (path != 0)].tolist())
    return out
