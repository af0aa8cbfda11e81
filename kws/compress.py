"""The compression report: every model variant scored and costed the same way.

    python -m kws.compress [NAME=CHECKPOINT ...] [--out logs/kws] [--runs 200]

NAME=CHECKPOINT replaces a default source (baseline=..., student=..., pruned=...) or adds another
float model under a new name (e.g. `small=logs/kws_distill/grid_T5_a0.5/best.pt`).

`./run.sh kws_quantize` runs this command; `./run.sh kws_distill` ends with it. Float sources (paths
from `common.artifacts`; a variant is skipped, with a note, when its checkpoint is missing):
- baseline: logs/kws_baseline/default/best.pt (`./run.sh kws_baseline`),
- student:  logs/kws_distill/student/best.pt (distilled small CRNN, `./run.sh kws_distill`),
- pruned:   logs/kws_distill/pruned/best.pt (structured-pruned baseline, fine-tuned).
Each source also gives fp16, dynamic int8 (torch.ao: GRU + Linear) and weight-only int8 (every
weight, conv included, in one packed buffer; `kws.quantize`) variants.

For every variant: au-fa-fr on the test split (and on the held-out split, when the corpus has one:
`_heldout_/`, voices and channels no training clip has, docs/heldout.md), parameters, bytes of its saved state_dict file
(written to OUT/variants/; the size is taken as `kws.costs.saved_bytes` does), MACs per 1 s clip (thop; quantized
models counted as their float equivalent, since int8 does not skip multiply-accumulates), CPU
latency (median of `--runs` batch-1 forward passes, 1 thread, model only), ratios vs the baseline,
and whether it streams: `kws.stream.StreamingDetector` runs it over a track of test clips and its
probabilities are compared with `offline_reference` (max |difference|).

Writes OUT/compression.md (the table), OUT/compression.json, OUT/au_fa_fr_vs_macs.png and
OUT/au_fa_fr_vs_bytes.png (one point per variant, the 1.1 x baseline line drawn), OUT/env.json,
and OUT/detector.ts: the best qualifying variant as a streaming TorchScript detector (`kws.export`;
`python kws/stream_standalone.py OUT/detector.ts FILE.wav` runs it with only torch). The best is
the one with the most MAC savings, then byte savings, among the variants whose TEST au-fa-fr is
within the bound: the issue's target is stated on the test split, so the choice is made there.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from common.artifacts import KWS_BASELINE, KWS_DETECTOR, KWS_PRUNED, KWS_REPORT, KWS_STUDENT
from common.checkpoint import CheckpointError
from common.cli import add_check_flag, fail
from common.metrics import au_fa_fr
from common.readers.speech_commands import has_heldout
from common.runlog import environment, plt, save_figure
from kws import costs, export, quantize
from kws.data import glue_track
from kws.evaluate import check_scorable, eval_loader
from kws.model import KwsCheckpoint, keyword_probability, load_kws_checkpoint
from kws.stream import StreamingDetector, offline_reference, stream_wave

SOURCES = {"baseline": KWS_BASELINE, "student": KWS_STUDENT, "pruned": KWS_PRUNED}
QUALITY_MARGIN = 1.1  # a variant qualifies at au-fa-fr <= 1.1 x the baseline's (test split)


@dataclass
class Variant:
    name: str
    source: str  # the float variant it derives from
    scheme: str  # "float32", "fp16", "dynamic int8", "weight-only int8"
    model: nn.Module  # what runs (fp16 / packed int8: float modules holding the rounded weights)
    saved: dict  # what is stored: the state_dict as written to the file
    float_model: nn.Module  # for MACs: the float equivalent


def make_variants(name: str, ckpt: KwsCheckpoint) -> list[Variant]:
    """The float model of a checkpoint and its fp16, dynamic int8 and weight-only int8 versions."""
    model = ckpt.model.cpu().eval()
    half = quantize.fp16_state(model)
    packed = quantize.pack_int8(model)
    dyn = quantize.dynamic_int8(model)
    return [
        Variant(name, name, "float32", model, model.state_dict(), model),
        Variant(f"{name} fp16", name, "fp16", quantize.load_fp16(model, half), half, model),
        Variant(f"{name} dyn-int8", name, "dynamic int8", dyn, dyn.state_dict(), model),
        Variant(f"{name} int8", name, "weight-only int8", quantize.unpack_int8(model, packed), packed, model),
    ]


def load_test_features(ckpt: KwsCheckpoint, root: str, split: str = "testing") -> tuple[torch.Tensor, np.ndarray]:
    """Log-mel features `(N, n_mels, frames)` and labels `(N,)` of a split, computed once.

    Raises ValueError naming the split when it cannot give an au-fa-fr (`kws.evaluate.check_scorable`).
    """
    loader = eval_loader(root, split, ckpt.keyword, ckpt.features.cfg.sample_rate, ckpt.clip_samples)
    feats, labels = [], []
    with torch.inference_mode():
        for batch in tqdm(loader, desc=f"features of {split}", leave=False, dynamic_ncols=True):
            if batch["waves"].shape[0]:
                feats.append(ckpt.features(batch["waves"])[0])
                labels.append(batch["labels"])
    labels = torch.cat(labels).numpy() if labels else np.zeros(0)
    check_scorable(labels, ckpt.keyword, f"{root} {split} (readable clips)")
    return torch.cat(feats), labels


@torch.inference_mode()
def scores(model: nn.Module, feats: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Keyword probabilities `(N,)` of `model` on features `(N, n_mels, frames)`."""
    model.eval()
    return torch.cat([keyword_probability(model(feats[i:i + batch_size])).float()
                      for i in range(0, feats.shape[0], batch_size)]).numpy()


def stream_error(model: nn.Module, ckpt: KwsCheckpoint, track: torch.Tensor, clip_frames: int) -> float:
    """Max |streamed - offline| keyword probability of `model` over `track` (one clip of window)."""
    window = model.output_frames(clip_frames)  # one clip: the streaming window
    detector = StreamingDetector(model, ckpt.features, max_window_length=window)
    _, streamed = stream_wave(detector, track, chunk=160)
    offline = offline_reference(model, ckpt.features, track, window)[:streamed.shape[0]]
    return float((streamed - offline.float()).abs().max())


def evaluate_variants(variants: list[Variant], ckpt: KwsCheckpoint, feats: torch.Tensor, labels: np.ndarray,
                      track: torch.Tensor, out_dir: Path, runs: int,
                      heldout: tuple[torch.Tensor, np.ndarray] | None = None) -> list[dict]:
    """One table row per variant; each variant's saved state_dict goes to out_dir/variants/.

    heldout: features and labels of the held-out split, scored too when given (else None in the rows).
    """
    example = feats[:1]
    (out_dir / "variants").mkdir(parents=True, exist_ok=True)
    rows = []
    for v in tqdm(variants, desc="variants", dynamic_ncols=True):
        path = out_dir / "variants" / f"{v.name.replace(' ', '_')}.pt"
        torch.save(v.saved, path)
        median, p90 = costs.cpu_latency_ms(v.model, example, runs=runs, threads=1)
        rows.append({
            "variant": v.name, "source": v.source, "scheme": v.scheme,
            "au_fa_fr": au_fa_fr(scores(v.model, feats), labels),
            "heldout_au_fa_fr": None if heldout is None else au_fa_fr(scores(v.model, heldout[0]), heldout[1]),
            "params": costs.count_parameters(v.float_model),
            # The archive's root folder inside the file is named after the file, so the size of a
            # file named like kws.costs's temp files is taken: every variant is measured alike.
            "bytes": costs.saved_bytes(v.saved), "file": str(path),
            "macs": costs.count_macs(v.model, example),
            "float_macs": costs.count_macs(v.float_model, example),
            "latency_ms": median, "latency_p90_ms": p90,
            "stream_max_abs_diff": stream_error(v.model, ckpt, track, example.shape[-1]),
            "config": dict(vars(v.float_model.cfg)),
        })
    return rows


def _metric_ratio(value: float, baseline: float) -> float:
    """au-fa-fr over the baseline's; inf against a perfect (0) baseline."""
    return value / baseline if baseline > 0 else float("inf")


def add_ratios(rows: list[dict]) -> dict | None:
    """Ratios vs the baseline, int8 loss vs its float source, and the best qualifying variant."""
    base = next(r for r in rows if r["variant"] == "baseline")
    by_name = {r["variant"]: r for r in rows}
    for r in rows:
        r["macs_ratio"] = base["macs"] / r["macs"]
        r["bytes_ratio"] = base["bytes"] / r["bytes"]
        r["quality_ratio"] = _metric_ratio(r["au_fa_fr"], base["au_fa_fr"])
        r["qualifies"] = r["au_fa_fr"] <= QUALITY_MARGIN * base["au_fa_fr"]
        if base["heldout_au_fa_fr"] is not None:
            r["heldout_ratio"] = _metric_ratio(r["heldout_au_fa_fr"], base["heldout_au_fa_fr"])
        source = by_name[r["source"]]["au_fa_fr"]
        r["vs_float_source"] = (r["au_fa_fr"] - source) / source if source > 0 else 0.0
    good = [r for r in rows if r["qualifies"]]
    # Best: most MAC savings, then most byte savings.
    return max(good, key=lambda r: (r["macs_ratio"], r["bytes_ratio"])) if good else None


def write_table(rows: list[dict], best: dict | None, notes: list[str], out: Path) -> str:
    base = next(r for r in rows if r["variant"] == "baseline")
    heldout = base["heldout_au_fa_fr"] is not None
    lines = [
        "# KWS compression report", "",
        f"Test split: {base['clips']} clips ({base['positives']} keyword). Quality bound: au-fa-fr <= "
        f"{QUALITY_MARGIN} x baseline = {QUALITY_MARGIN * base['au_fa_fr']:.3e}. Bytes: size of the saved "
        "state_dict file. MACs: thop per 1 s clip, quantized models counted as their float equivalent. "
        "Latency: median of batch-1 forward passes, 1 thread, model only. Streams: max |streamed - "
        "offline| keyword probability over a track of test clips."
        + (f" Held-out: the `_heldout_` split ({base['heldout_clips']} clips, {base['heldout_positives']} keyword; "
           "voices and channels no training clip has, docs/heldout.md)." if heldout else ""), "",
        "| variant | au-fa-fr | vs baseline | vs float source | " + ("held-out au-fa-fr | vs baseline | " if heldout else "")
        + "params | bytes | bytes ratio | MACs | MACs ratio | latency ms | streams |",
        "|---|---|---|---|" + ("---|---|" if heldout else "") + "---|---|---|---|---|---|---|",
    ]
    for r in rows:
        mark = " **best**" if r is best else ""
        source = "" if r["scheme"] == "float32" else f"{r['vs_float_source']:+.1%}"
        lines.append(
            f"| {r['variant']}{mark} | {r['au_fa_fr']:.3e} | {r['quality_ratio']:.2f}x"
            f"{'' if r['qualifies'] else ' (over)'} | {source} | "
            + (f"{r['heldout_au_fa_fr']:.3e} | {r['heldout_ratio']:.2f}x | " if heldout else "")
            + f"{r['params']:,} | {r['bytes']:,} | "
            f"{r['bytes_ratio']:.1f}x | {r['macs']:,} | {r['macs_ratio']:.1f}x | {r['latency_ms']:.3f} | "
            f"yes ({r['stream_max_abs_diff']:.1e}) |")
    lines.append("")
    if best is not None:
        lines.append(f"Best variant within the quality bound: **{best['variant']}**: {best['macs_ratio']:.1f}x "
                     f"fewer MACs, {best['bytes_ratio']:.1f}x fewer bytes, au-fa-fr {best['au_fa_fr']:.3e} "
                     f"({best['quality_ratio']:.2f}x baseline).")
    else:
        lines.append("No compressed variant stays within the quality bound.")
    for r in rows:
        if r["scheme"] == "float32":
            lines.append(f"- {r['source']}: model {r['config']}")
    lines += [f"- {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    return text


def plot(rows: list[dict], key: str, xlabel: str, out_png: Path) -> Path:
    """au-fa-fr against `key` (log x), one point per variant, the quality bound drawn."""
    base = next(r for r in rows if r["variant"] == "baseline")
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=110)
    markers = {"float32": "o", "fp16": "s", "dynamic int8": "^", "weight-only int8": "D"}
    colors = {src: f"C{i}" for i, src in enumerate(dict.fromkeys(r["source"] for r in rows))}
    for r in rows:
        ax.scatter(r[key], r["au_fa_fr"], marker=markers[r["scheme"]], color=colors[r["source"]], s=40,
                   label=r["variant"])
        if r["scheme"] == "float32":  # one label per model; the legend tells the schemes apart
            ax.annotate(r["source"], (r[key], r["au_fa_fr"]), fontsize=8, xytext=(6, 6), textcoords="offset points")
    ax.axhline(QUALITY_MARGIN * base["au_fa_fr"], color="red", linestyle="--",
               label=f"{QUALITY_MARGIN} x baseline ({QUALITY_MARGIN * base['au_fa_fr']:.2e})")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("au-fa-fr (test)")
    ax.set_title(f"au-fa-fr vs {xlabel}")
    with plt.rc_context({"legend.fontsize": 7}):
        return save_figure(fig, ax, out_png)


def report(out_dir: Path, runs: int = 200, sources: dict[str, str] = SOURCES) -> list[dict]:
    """Everything in the module docstring; returns the rows."""
    torch.set_num_threads(1)
    notes, loaded = [], {}
    for name, path in sources.items():
        if Path(path).is_file():
            loaded[name] = load_kws_checkpoint(path)
        else:
            notes.append(f"{name}: {path} not found, skipped")
    if "baseline" not in loaded:
        raise CheckpointError(f"{sources['baseline']}: the baseline checkpoint is needed (./run.sh kws_baseline)")
    base = loaded["baseline"]
    root = base.config["data"]["root"]
    for name, ckpt in loaded.items():
        if ckpt.features.cfg != base.features.cfg or ckpt.keyword != base.keyword:
            raise CheckpointError(f"{ckpt.path}: features or keyword differ from the baseline's")
    feats, labels = load_test_features(base, root)
    heldout = load_test_features(base, root, "heldout") if has_heldout(root) else None
    out_dir.mkdir(parents=True, exist_ok=True)  # once every input has been checked
    track, _, _ = glue_track(root, base.keyword, negatives=3, positives=1,
                             sample_rate=base.features.cfg.sample_rate, clip_samples=base.clip_samples, seed=0)
    variants = [v for name, ckpt in loaded.items() for v in make_variants(name, ckpt)]
    rows = evaluate_variants(variants, base, feats, labels, track, out_dir, runs, heldout)
    for r in rows:
        r["clips"], r["positives"] = int(len(labels)), int(labels.sum())
        if heldout is not None:
            r["heldout_clips"], r["heldout_positives"] = int(len(heldout[1])), int(heldout[1].sum())
    best = add_ratios(rows)
    text = write_table(rows, best, notes, out_dir / "compression.md")
    (out_dir / "compression.json").write_text(json.dumps({"rows": rows, "best": best and best["variant"]},
                                                         indent=2) + "\n")
    (out_dir / "env.json").write_text(json.dumps(environment(seed=0, device="cpu"), indent=2) + "\n")
    if best is not None:
        chosen = next(v for v in variants if v.name == best["variant"])
        if chosen.scheme == "dynamic int8":  # torch.ao modules do not script; its float source does
            chosen = next(v for v in variants if v.name == chosen.source)
        window = chosen.model.output_frames(feats.shape[-1])
        path = export.export(chosen.model, base.features, window, out_dir / Path(KWS_DETECTOR).name)
        text += f"\nExported {chosen.name} as a streaming detector: {path} ({path.stat().st_size:,} bytes)\n"
        (out_dir / "compression.md").write_text(text)
    plot(rows, "macs", "MACs per 1 s clip", out_dir / "au_fa_fr_vs_macs.png")
    plot(rows, "bytes", "state_dict file bytes", out_dir / "au_fa_fr_vs_bytes.png")
    print(text)
    print(f"wrote {out_dir / 'compression.md'}, {out_dir / 'au_fa_fr_vs_macs.png'}, {out_dir / 'au_fa_fr_vs_bytes.png'}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kws.compress", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = ", ".join(f"{name}={path}" for name, path in SOURCES.items())
    parser.add_argument("sources", nargs="*", metavar="NAME=CHECKPOINT",
                        help=f"float models to report, besides or instead of the defaults ({defaults})")
    parser.add_argument("--out", type=Path, default=Path(KWS_REPORT), help="report folder (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=200, help="timed forward passes per variant")
    add_check_flag(parser)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be >= 1, got {args.runs}")
    sources = dict(SOURCES)
    for item in args.sources:
        name, sep, path = item.partition("=")
        if not sep or not name or not path or "/" in name:
            parser.error(f"{item!r}: expected NAME=CHECKPOINT, e.g. student=logs/kws_distill/student/best.pt")
        sources[name] = path
    if args.check:
        return 0
    try:
        report(args.out, args.runs, sources)
    except (ValueError, OSError) as e:  # a missing or foreign checkpoint, a test split that cannot be scored
        fail(e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
