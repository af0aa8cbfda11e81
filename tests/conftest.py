"""Tests run on the CPU with few threads: the suite must stay fast on a 2-core machine."""
import torch

torch.set_num_threads(1)
