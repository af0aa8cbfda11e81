"""Greedy CER on test-heldout broken down by what was held out (docs/heldout.md).

    python bench/heldout_breakdown.py CHECKPOINT [CHECKPOINT ...] [--root data/LibriSpeech]

Reads the corpus's HELDOUT.TXT (each utterance's voice and held-out channels) and VOICES.TXT (each
generated voice's formant scale and engine) and prints one table: CER per group (Klatt-engine
packaged variants, generated voices by engine and formant scale, the en-029 accent, each
channel) for every checkpoint, side by side, with a 90% bootstrap interval over utterances for
the whole split. A group's rows overlap (an utterance has a voice and one or two channels).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asr.config import TrainConfig  # noqa: E402
from asr.data import eval_loader  # noqa: E402
from asr.decode import greedy  # noqa: E402
from asr.evaluate import acoustic_outputs, as_text  # noqa: E402
from asr.model import load_asr_checkpoint  # noqa: E402
from common.config import from_dict  # noqa: E402
from common.metrics import error_rates  # noqa: E402
from common.readers.librispeech import corpus_root  # noqa: E402

SPLIT = "test-heldout"
_VOICE_HEADER = re.compile(r"^=== (\S+) \(formant scale ([0-9.]+), (Klatt engine \d|eSpeak engine)\)$")


def voice_groups(voice: str, generated: dict[str, tuple[float, bool]]) -> list[str]:
    """The groups an utterance's voice (e.g. "en-029+hv0003") belongs to."""
    language, _, variant = voice.partition("+")
    groups = ["accent en-029" if language == "en-029" else "accent seen in training"]
    if variant in generated:
        scale, klatt = generated[variant]
        groups.append(f"generated, {'Klatt' if klatt else 'eSpeak'} engine, formant scale "
                      f"{'< 0.88' if scale < 1.0 else '> 1.15'}")
    else:
        groups.append("packaged Klatt-engine variant")
    return groups


def read_generated_voices(path: Path) -> dict[str, tuple[float, bool]]:
    """{voice name: (formant scale, on the Klatt engine)} from VOICES.TXT."""
    voices = {}
    for line in path.read_text().splitlines():
        match = _VOICE_HEADER.match(line)
        if match:
            voices[match[1]] = (float(match[2]), match[3].startswith("Klatt"))
    return voices


def utterance_groups(corpus: Path) -> dict[str, list[str]]:
    """{utterance id: its groups} from HELDOUT.TXT and VOICES.TXT."""
    for name in ("HELDOUT.TXT", "VOICES.TXT"):
        if not (corpus / name).is_file():
            sys.exit(f"error: {corpus / name}: missing (make the corpus with ./run.sh data)")
    generated = read_generated_voices(corpus / "VOICES.TXT")
    groups = {}
    for line in (corpus / "HELDOUT.TXT").read_text().splitlines():
        if line.startswith(";"):
            continue
        utt_id, voice, channels = (line.split(" ") + [""])[:3]
        groups[utt_id] = voice_groups(voice, generated) + [f"channel {c}" for c in channels.split(",") if c]
    return groups


def per_utterance_errors(checkpoint: str, root: str | None
                         ) -> tuple[list[str], np.ndarray, np.ndarray, str]:
    """(ids, character edits, reference characters, data root) of greedy decoding on
    test-heldout; the root is `root` or the one the checkpoint was trained with."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ckpt = load_asr_checkpoint(checkpoint, device)
    cfg = from_dict(TrainConfig, ckpt.config, source=checkpoint)
    if root:
        cfg.data.root = root
    outputs = acoustic_outputs(ckpt.model, ckpt.features, eval_loader(cfg, ckpt.tokenizer, SPLIT), device)
    edits, units = [], []
    for log_probs, ref in zip(outputs.log_probs, outputs.refs):
        ids = greedy(torch.from_numpy(log_probs)[None], torch.tensor([len(log_probs)]))[0]
        rate = error_rates([ref], [as_text(ckpt.tokenizer.decode(ids))])
        edits.append(rate.edits)
        units.append(rate.ref_units)
    return outputs.ids, np.array(edits), np.array(units), cfg.data.root


def bootstrap_interval(edits: np.ndarray, units: np.ndarray, draws: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """90% interval of the pooled CER over utterances resampled with replacement."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(edits), size=(draws, len(edits)))
    rates = edits[picks].sum(1) / units[picks].sum(1)
    return float(np.quantile(rates, 0.05)), float(np.quantile(rates, 0.95))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT")
    parser.add_argument("--root", help="data root holding test-heldout (default: the one trained with)")
    args = parser.parse_args(argv)
    results = {path: per_utterance_errors(path, args.root) for path in args.checkpoints}
    groups = utterance_groups(corpus_root(results[args.checkpoints[0]][3]))
    names = sorted({g for gs in groups.values() for g in gs})
    header = "| group | utterances | " + " | ".join(Path(p).parent.name or p for p in args.checkpoints) + " |"
    print(header + "\n|---|---|" + "---|" * len(args.checkpoints))
    cells = []
    for path in args.checkpoints:
        ids, edits, units, _ = results[path]
        low, high = bootstrap_interval(edits, units)
        cells.append(f"{edits.sum() / units.sum():.1%} ({low:.1%}-{high:.1%})")
    print(f"| all | {len(results[args.checkpoints[0]][0])} | " + " | ".join(cells) + " |")
    for name in names:
        row, count = [], 0
        for path in args.checkpoints:
            ids, edits, units, _ = results[path]
            mask = np.array([name in groups.get(i, []) for i in ids])
            count = int(mask.sum())
            row.append(f"{edits[mask].sum() / max(1, units[mask].sum()):.1%}")
        print(f"| {name} | {count} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
