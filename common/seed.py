"""One seed for everything random in a run: Python, NumPy, torch (CPU and CUDA), data loaders."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, *, deterministic: bool = False) -> torch.Generator:
    """Seed python, numpy and torch; return a generator for `DataLoader(generator=...)`.

    With `deterministic=True` torch picks deterministic kernels (and no cuDNN autotuning), so two
    runs with the same seed give the same weights; it can be slower. Ops that have no deterministic
    kernel (CTC loss backward on CUDA among them) warn instead of raising, so a GPU run with it
    still trains, only not bit for bit.
    Pass `seed_worker` as the loader's `worker_init_fn` so workers' numpy/random streams follow too.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS needs a fixed workspace to be deterministic; must be set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def seed_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: derive the worker's numpy/random seeds from torch's.

    torch gives each worker `base_seed + worker_id` (base drawn from the loader's generator), but
    numpy and `random` would otherwise start identical in every forked worker.
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
