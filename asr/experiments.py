"""Experiment tables: train a grid of ASR configs with one step budget each, tabulate and plot.

    python -m asr.experiments [configs/asr/experiments/X.json ...] [key=value ...]

With no file, every `configs/asr/experiments/*.json` runs, in name order. key=value overrides apply
to every experiment file, e.g. `max_steps=2000` (a bigger budget) or `seeds=[0,1,2]`.
`--no-train` only rewrites the tables from the rows already finished.

An experiment file names a base training config, overrides shared by its rows, the rows (a name and
their own overrides), the seeds, the optimizer-step budget (`max_steps`, the same for every row, so
the comparison is fair) and optionally a word LM: rows then also report beam search + LM.

Each (row, seed) trains in `logs/asr_experiments/runs/<experiment>-<row>-s<seed>-<hash8>/`
(e.g. `features-logmel-s0-3f2a9c1e`), readable in a listing and in TensorBoard
(`tensorboard --logdir logs/asr_experiments`). The hash is that of the run's resolved training
config (run name and stage left out), and it alone identifies the run: a row of another table with
the same settings finds the run by its hash and reuses it under the name of the table that trained
it first, so identical rows of two tables train once, and changing a setting trains a new run
instead of reusing a stale one. A run folder holding `result.json` is finished and never rerun; an
interrupted one resumes from its `last.pt`. Runs made before the readable names sit in
`runs/<hash12>/`: they are found and reused there, not renamed, since a run folder keeps the name
it was made with (its checkpoints hold it, and resuming under another name is refused as a changed
config). The tables go to
`logs/asr_experiments/<experiment>/results.md` (+ `bars.png`) and all of them to
`logs/asr_experiments/results.md`.
"""
from __future__ import annotations

import hashlib
import json
import statistics
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from asr.config import TrainConfig
from asr.data import eval_loader
from asr.decode import DecoderConfig
from asr.evaluate import collect_log_probs, decoding_table
from asr.model import load_asr_checkpoint
from asr.train import train
from common.config import ConfigError, apply_overrides, from_dict, read_json_tree, to_dict
from common.runlog import RunLog

EXPERIMENTS_DIR = Path("configs/asr/experiments")
RESULT_FILE = "result.json"
GREEDY = "greedy"


@dataclass
class RowConfig:
    """One table row: a name and its settings as key=value overrides of the base training config."""

    name: str = ""
    overrides: list[str] = field(default_factory=list)


@dataclass
class ExperimentConfig:
    name: str = "experiment"  # output folder logs/asr_experiments/<name>
    title: str = ""  # table heading
    base: str = "../ko.json"  # training config every row starts from, relative to the experiment file
    overrides: list[str] = field(default_factory=list)  # key=value for every row, before the row's own
    rows: list[RowConfig] = field(default_factory=list)  # the table's rows: {name, overrides}
    seeds: list[int] = field(default_factory=lambda: [0, 1])  # every row runs once per seed
    max_steps: int = 800  # optimizer steps per row: the budget that makes rows comparable
    lm: str = ""  # word n-gram LM (ARPA): each row is also decoded with beam search + this LM
    beam: int = 16  # beam width of the LM rows
    lm_alpha: float = 0.5  # LM weight of the LM rows
    lm_beta: float = 1.0  # word bonus of the LM rows


def load_experiment(path: str | Path, overrides: list[str] = ()) -> ExperimentConfig:
    """The experiment file with overrides applied; `base` made relative to the working directory."""
    path = Path(path)
    tree = apply_overrides(read_json_tree(path), list(overrides)) if overrides else read_json_tree(path)
    exp = from_dict(ExperimentConfig, tree, source=str(path))
    if not exp.rows:
        raise ConfigError(f"{path}: 'rows' is empty (expected a list of {{name, overrides}})")
    names = [row.name for row in exp.rows]
    if "" in names or len(set(names)) != len(names):
        raise ConfigError(f"{path}: every row needs a distinct non-empty 'name', got {names}")
    if not exp.seeds:
        raise ConfigError(f"{path}: 'seeds' is empty")
    exp.base = str(path.parent / exp.base)
    return exp


def row_config(exp: ExperimentConfig, row: RowConfig, seed: int) -> tuple[TrainConfig, list[str]]:
    """The training config of (row, seed) and the test splits the runner scores.

    Training itself scores no test split (the runner does, once per decoder, on the best
    checkpoint); the budget is `max_steps` whatever the epochs.
    """
    tree = apply_overrides(read_json_tree(exp.base), [*exp.overrides, *row.overrides])
    cfg = from_dict(TrainConfig, tree, source=f"{exp.base} + {exp.name}/{row.name}")
    test_splits = list(cfg.data.test_splits)
    cfg.seed, cfg.max_steps, cfg.data.test_splits = seed, exp.max_steps, []
    cfg.data.heldout_splits = []  # the tables score their base's test splits only
    cfg.epochs = max(cfg.epochs, exp.max_steps)  # never the binding limit: max_steps is
    cfg.stage, cfg.name = "", ""
    return cfg, test_splits


# Options added after runs were made, with the default that reproduces those runs. At that default
# they stay out of the key, so adding an option does not orphan every finished run.
# `attention_lr_scale` only acts on self-attention models: those runs made before it (at scale 1)
# were deleted by hand, since their keys now name runs at 0.1.
LATER_OPTIONS = {("model", "frame_stack"): 1, ("optim", "attention_lr_scale"): 0.1,
                 ("data", "heldout_splits"): [],
                 # the voice and channel levers of #18
                 ("augment", "vtlp_p"): 0.0, ("augment", "vtlp_range"): [0.9, 1.1],
                 ("augment", "pitch_shift_p"): 0.0, ("augment", "pitch_shift_semitones"): [-3.0, 3.0],
                 ("augment", "eq_p"): 0.0, ("augment", "eq_gain_db"): [-12.0, 12.0],
                 ("augment", "filter_p"): 0.0, ("augment", "distortion_p"): 0.0,
                 ("augment", "gain_transition_p"): 0.0}


def run_key(cfg: TrainConfig, test_splits: list[str]) -> str:
    """Hash of everything that makes a run's numbers (run name and stage excluded)."""
    train = to_dict(cfg)
    for (section, key), default in LATER_OPTIONS.items():
        if train[section][key] == default:
            del train[section][key]
    state = {"train": train, "test_splits": test_splits}
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:12]


def run_name(exp: ExperimentConfig, row: RowConfig, seed: int, key: str) -> str:
    """The folder name of (row, seed) under runs/: `<experiment>-<row>-s<seed>-<first 8 of key>`.

    Row names are free text ("ds2+attention"); a '/' or '\\' would make a subfolder, so it becomes '_'.
    """
    readable = f"{exp.name}-{row.name}-s{seed}".replace("/", "_").replace("\\", "_")
    return f"{readable}-{key[:8]}"


def find_run(runs: Path, name: str, key: str) -> Path:
    """The folder that holds the run of `key`, or where it is to be made (`runs / name`).

    In order: `name` itself; the bare-hash folder of runs made before readable names
    (`runs/<key>`); the same run trained for another table (`*-<key[:8]>`, not another run whose
    key shares the 8 characters: a finished run's result.json names its full key).
    """
    for folder in (runs / name, runs / key):
        if folder.is_dir():
            return folder
    for folder in sorted(runs.glob(f"*-{key[:8]}")):
        result = folder / RESULT_FILE
        if folder.is_dir() and (not result.is_file() or json.loads(result.read_text()).get("key") == key):
            return folder
    return runs / name


def decoder_key(exp: ExperimentConfig) -> str | None:
    """Name of the LM decoder an experiment asks for (None: greedy only)."""
    if not exp.lm:
        return None
    return f"beam {exp.beam} + LM {exp.lm} (alpha {exp.lm_alpha:g}, beta {exp.lm_beta:g})"


RowRunner = Callable[[TrainConfig, list[str], Path, ExperimentConfig], dict]


def train_and_score(cfg: TrainConfig, test_splits: list[str], run_dir: Path, exp: ExperimentConfig) -> dict:
    """Train (or resume) one run, then score its best checkpoint on dev and the test splits.

    Returns {"params", "train_seconds", "steps", "splits": {split: {decoder: {"cer", "wer"}}}}.
    """
    started = time.time()
    train(cfg, log_root=run_dir.parent.parent)
    train_seconds = time.time() - started
    result = {"params": 0, "train_seconds": train_seconds, "steps": cfg.max_steps, "splits": {}}
    return score(cfg, test_splits, run_dir, exp, result)


def score(cfg: TrainConfig, test_splits: list[str], run_dir: Path, exp: ExperimentConfig, result: dict) -> dict:
    """Add the greedy (and, when the experiment has an LM, beam + LM) error rates of `best.pt`."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    ckpt = load_asr_checkpoint(run_dir / "best.pt", device)
    model, features, tokenizer = ckpt.model, ckpt.features, ckpt.tokenizer
    result["params"] = sum(p.numel() for p in model.parameters())
    lm_name = decoder_key(exp)
    lm_cfg = DecoderConfig(beam_width=exp.beam, lm=exp.lm, alpha=exp.lm_alpha, beta=exp.lm_beta) if exp.lm else None
    for split in [cfg.data.dev_split, *test_splits]:
        scored = result["splits"].setdefault(split, {})
        if GREEDY in scored and (lm_name is None or lm_name in scored):
            continue
        log_probs, refs = collect_log_probs(model, features, eval_loader(cfg, tokenizer, split), device)
        rows = decoding_table(log_probs, refs, tokenizer, 0, lm_cfg if lm_name not in scored else None, workers=1)
        scored[GREEDY] = {"cer": rows[0]["cer"], "wer": rows[0]["wer"], "utterances": len(refs)}
        if len(rows) > 1:
            scored[lm_name] = {"cer": rows[1]["cer"], "wer": rows[1]["wer"], "utterances": len(refs)}
    return result


def run_experiment(exp: ExperimentConfig, log_root: str | Path = "logs/asr_experiments", *,
                   runner: RowRunner = train_and_score, rescore: Callable = score, train: bool = True) -> str:
    """Run every (row, seed) not finished yet, then write the table and the bar chart; returns the
    table as markdown."""
    log_root = Path(log_root)
    runs = log_root / "runs"
    jobs = [(row, seed) for row in exp.rows for seed in exp.seeds]
    results: dict[tuple[str, int], dict] = {}
    lm_name = decoder_key(exp)
    for row, seed in tqdm(jobs, desc=f"{exp.name} rows", unit="run", disable=not train):
        cfg, test_splits = row_config(exp, row, seed)
        key = run_key(cfg, test_splits)
        run_dir = find_run(runs, run_name(exp, row, seed, key), key)
        cfg.stage, cfg.name = runs.name, run_dir.name  # the folder's own name: a resumed run keeps it
        result_path = run_dir / RESULT_FILE
        if result_path.is_file():
            result = json.loads(result_path.read_text())
            missing_lm = lm_name is not None and any(lm_name not in s for s in result["splits"].values())
            if missing_lm and train:  # trained for another table without this LM: decode only
                result = rescore(cfg, test_splits, run_dir, exp, result)
                _write_json(result_path, result)
        elif train:
            result = runner(cfg, test_splits, run_dir, exp)
            result["row"], result["seed"], result["key"] = row.name, seed, key
            _write_json(result_path, result)
        else:
            continue
        results[(row.name, seed)] = result
    table = results_table(exp, results)
    out = log_root / exp.name
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(table + "\n")
    (out / "experiment.json").write_text(json.dumps(to_dict(exp), indent=2) + "\n")
    plot_bars(exp, results, out / "bars.png")
    return table


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)  # atomic: a result file is complete or absent


def spread(values: list[float]) -> str:
    """Percent mean ± half the range over seeds (just the value for one seed)."""
    if not values:
        return "—"
    mean = 100 * statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {50 * (max(values) - min(values)):.1f}"


def _decoders(exp: ExperimentConfig) -> list[tuple[str, str]]:
    """(decoder key in results, label suffix in the table)."""
    lm_name = decoder_key(exp)
    return [(GREEDY, "")] + ([(lm_name, " + LM")] if lm_name else [])


def _split_names(exp: ExperimentConfig, results: dict) -> tuple[str | None, str | None]:
    """(dev split, first test split) as the finished results name them."""
    for result in results.values():
        splits = list(result["splits"])
        return splits[0], (splits[1] if len(splits) > 1 else None)
    return None, None


def results_table(exp: ExperimentConfig, results: dict[tuple[str, int], dict]) -> str:
    """Markdown: one line per row (and decoder), mean ± half-range over the finished seeds."""
    dev, test = _split_names(exp, results)
    lines = [f"### {exp.title or exp.name}", "",
             f"{exp.max_steps} optimizer steps per run, seeds {exp.seeds}; error rates in %, "
             f"mean ± half the range over seeds; dev = {dev or 'dev'}, test = {test or 'test'}"
             + (f"; LM rows: beam {exp.beam}, word LM `{exp.lm}`, α {exp.lm_alpha:g}, β {exp.lm_beta:g}"
                if exp.lm else "") + ".", "",
             "| row | seeds done | dev CER | dev WER | test CER | test WER | params | train min |",
             "|---|---|---|---|---|---|---|---|"]
    for row in exp.rows:
        done = [results[(row.name, s)] for s in exp.seeds if (row.name, s) in results]
        for decoder, suffix in _decoders(exp):
            def rates(split: str | None, metric: str) -> list[float]:
                return [r["splits"][split][decoder][metric] for r in done
                        if split in r["splits"] and decoder in r["splits"][split]]
            params = f"{done[0]['params'] / 1e6:.2f} M" if done else "—"
            minutes = f"{statistics.fmean(r['train_seconds'] for r in done) / 60:.1f}" if done else "—"
            lines.append(f"| {row.name}{suffix} | {len(done)}/{len(exp.seeds)} | {spread(rates(dev, 'cer'))} "
                         f"| {spread(rates(dev, 'wer'))} | {spread(rates(test, 'cer'))} "
                         f"| {spread(rates(test, 'wer'))} | {params} | {minutes} |")
    return "\n".join(lines)


def plot_bars(exp: ExperimentConfig, results: dict[tuple[str, int], dict], out_png: Path) -> Path:
    """Test CER per row (and decoder): bars at the seed mean, whiskers at min/max, dots per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dev, test = _split_names(exp, results)
    split = test or dev
    labels, values = [], []
    for row in exp.rows:
        for decoder, suffix in _decoders(exp):
            labels.append(row.name + suffix)
            values.append([100 * results[(row.name, s)]["splits"][split][decoder]["cer"] for s in exp.seeds
                           if (row.name, s) in results and decoder in results[(row.name, s)]["splits"].get(split, {})])
    fig, ax = plt.subplots(figsize=(max(6.5, 1.1 * len(labels)), 4.2), dpi=110)
    xs = range(len(labels))
    means = [statistics.fmean(v) if v else 0.0 for v in values]
    errors = [[m - min(v) if v else 0 for m, v in zip(means, values)],
              [max(v) - m if v else 0 for m, v in zip(means, values)]]
    colors = ["tab:orange" if label.endswith(" + LM") else "tab:blue" for label in labels]
    ax.bar(xs, means, yerr=errors, capsize=4, color=colors, alpha=0.7)  # whiskers: min/max over seeds
    for x, v in zip(xs, values):
        ax.plot([x] * len(v), v, "k.", markersize=6)
        if not v:  # an empty bar would read as 0% CER
            ax.text(x, 0, "not run", ha="center", va="bottom", fontsize=8, color="0.4")
    ax.set_xticks(list(xs), labels, rotation=30, ha="right")
    ax.set_ylabel(f"{split or 'test'} CER (%)")
    ax.set_title(textwrap.fill(exp.title or exp.name, 70), fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def main(argv: list[str]) -> None:
    train = "--no-train" not in argv
    check_only = "--check" in argv  # validate every file and row config, then exit (run.sh, before data)
    argv = [a for a in argv if a not in ("--no-train", "--check")]
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    files = [a for a in argv if a.endswith(".json")] or sorted(map(str, EXPERIMENTS_DIR.glob("*.json")))
    overrides = [a for a in argv if not a.endswith(".json")]
    try:
        experiments = [load_experiment(f, overrides) for f in files]
        for exp in experiments:
            for row in exp.rows:
                row_config(exp, row, exp.seeds[0])
    except (ConfigError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    if check_only:
        return
    for exp in experiments:
        if exp.lm and train and not Path(exp.lm).is_file():
            sys.exit(f"error: {exp.name}: lm {exp.lm} does not exist (./run.sh asr_lm makes it)")
    root = Path("logs/asr_experiments")
    run = RunLog("asr_experiments", "tables", {"files": files, "overrides": overrides,
                                               "experiments": [to_dict(e) for e in experiments]},
                 seed=experiments[0].seeds[0] if experiments else 0, device="cpu", root="logs")
    tables = []
    for exp in experiments:
        tables.append(run_experiment(exp, root, train=train))
        run.info(tables[-1])
    (root / "results.md").write_text("\n\n".join(tables) + "\n")
    run.info(f"tables: {root / 'results.md'}; bar charts: {root}/<experiment>/bars.png")
    run.close()


if __name__ == "__main__":
    main(sys.argv[1:])
