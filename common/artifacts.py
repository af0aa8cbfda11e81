"""Where each stage leaves what a later stage reads: every artifact path, named once.

Paths are relative to the repository root, where `run.sh` runs every stage. Python defaults read
these names; `run.sh` reads them through `python -m common.artifacts`, which prints one
`NAME=path` line each (shell-quoted, ready for `eval`). A run folder is `logs/<stage>/<name>/`
(`common.runlog`), so a checkpoint path below follows from the stage and run name of the config
that trains it (`configs/asr/clean.json`, `configs/kws/baseline.json`, `configs/kws/distill.json`);
`tests/test_architecture.py` checks that they agree.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

LOGS = "logs"  # every run folder lives under it

# ASR: the train-clean model that `asr_other` fine-tunes (configs/asr/other.json `init_from`).
ASR_CLEAN = f"{LOGS}/asr_clean/default/best.pt"
# The word LM: its training text (written by the corpus generator) and the ARPA `asr_lm` makes.
LM_TEXT = "data/LibriSpeech/lm-text.txt"
LM_ARPA = "data/LibriSpeech/lm.arpa"

# KWS: the baseline (the distillation teacher), the distilled student and the pruned baseline.
KWS_BASELINE = f"{LOGS}/kws_baseline/default/best.pt"
KWS_STUDENT = f"{LOGS}/kws_distill/student/best.pt"
KWS_PRUNED = f"{LOGS}/kws_distill/pruned/best.pt"
# The compression report's folder and the streaming detector exported into it.
KWS_REPORT = f"{LOGS}/kws"
KWS_DETECTOR = f"{KWS_REPORT}/detector.ts"

ARTIFACTS = {name: value for name, value in globals().items()
             if name.isupper() and name != "LOGS" and isinstance(value, str)}


def under(log_root: str | Path, artifact: str) -> Path:
    """`artifact` (a path under logs/) as it is under another log root (tests train in temp folders)."""
    return Path(log_root) / Path(artifact).relative_to(LOGS)


def shell_assignments() -> str:
    """Every artifact as `NAME=path` lines for a shell's `eval`."""
    return "\n".join(f"{name}={shlex.quote(path)}" for name, path in ARTIFACTS.items())


if __name__ == "__main__":
    if sys.argv[1:]:
        sys.exit("usage: python -m common.artifacts (prints NAME=path per artifact; takes no arguments)")
    print(shell_assignments())
