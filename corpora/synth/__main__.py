"""Make the synthetic corpora: python -m corpora.synth [--root data] [--only librispeech ...].

Each corpus is kept when it is already complete for the same spec (and text file), and remade
otherwise; --force remakes it regardless. --scale multiplies every corpus's utterance, speaker and
sentence counts, e.g. --scale 0.01 for a tiny corpus to smoke-test a pipeline: a spec with a
`scaled(factor)` method does it itself, otherwise its integer `n_*` count fields are multiplied.

Each corpus module provides CORPUS_DIR, MARKER (a JSON file holding the counts, written last),
`is_complete(root, spec)` and `make_X(root, spec, processes=...)`.

A folder synthesis did not make is never replaced (see corpora/synth/corpus_folder.py). Where
root/CORPUS_DIR holds such a corpus (a real download, e.g. data/LibriSpeech from
`./run.sh download librispeech`), that corpus is kept as it is, with one line saying so, and the
command goes on and exits 0, --force or not: the training stages that run this first
(`./run.sh asr_clean` ...) then train on the real corpus they find. An empty folder there holds
nothing to lose and is made into the synthetic corpus. Anything else that cannot be replaced (a
synthetic corpus holding files synthesis did not write, a link, a file) is an error: one line
`error: ...` naming the path, exit status 1.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

from corpora.synth import corpus_folder

# corpus name -> (module, make function, spec class)
CORPORA = {
    "librispeech": ("corpora.synth.librispeech", "make_librispeech", "LibriSpeechSpec"),
    "speech_commands": ("corpora.synth.speech_commands", "make_speech_commands",
                        "SpeechCommandsSpec"),
    "kspon": ("corpora.synth.kspon", "make_kspon", "KsponSpec"),
}


def scaled_spec(spec, factor: float):
    """`spec` with its counts times `factor` (at least 1 where the count was nonzero)."""
    if factor == 1.0:
        return spec
    if hasattr(spec, "scaled"):
        return spec.scaled(factor)
    counts = {f.name: getattr(spec, f.name) for f in fields(spec)
              if f.name.startswith("n_") and isinstance(getattr(spec, f.name), int)}
    if not counts:
        raise SystemExit(f"{type(spec).__name__} has neither scaled() nor n_* count fields: "
                         f"--scale cannot resize it")
    return replace(spec, **{name: max(1, round(n * factor)) if n else 0
                            for name, n in counts.items()})


def parse_overrides(items: list[str], spec_names: list[str]) -> dict:
    """{field: value} from FIELD=VALUE items (VALUE is JSON; lists become tuples); ValueError
    naming the item when it is malformed or no spec among `spec_names` has the field."""
    known = set()
    for name in spec_names:
        module_name = next(m for m, _, s in CORPORA.values() if s == name)
        known |= {f.name for f in fields(getattr(importlib.import_module(module_name), name))}
    overrides = {}
    for item in items:
        key, eq, text = item.partition("=")
        if not eq:
            raise ValueError(f"--set {item}: expected FIELD=VALUE")
        if key not in known or key == "seed":
            raise ValueError(f"--set {item}: no spec field {key!r} in {', '.join(spec_names)} "
                             f"(use --seed for the seed)")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"--set {item}: {text!r} is not a JSON value (strings need quotes: "
                             f"'{key}=\"...\"')") from None
        overrides[key] = _tuples(value)
    return overrides


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _disk_mb(path: Path) -> str:
    if not path.exists():
        return "nan"
    return f"{sum(p.stat().st_size for p in path.rglob('*') if p.is_file()) / 2 ** 20:.1f}"


def _counts(summary: dict) -> tuple[str, str]:
    """(utterances, hours) from a make_X result or marker; clips count as utterances."""
    utterances = summary.get("utterances", summary.get("clips", "?"))
    hours = summary.get("hours")
    return str(utterances), f"{hours:.2f}" if isinstance(hours, (int, float)) else "?"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m corpora.synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("data"), help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true",
                        help="remake complete synthetic corpora too (a corpus not made here is "
                             "always kept)")
    parser.add_argument("--processes", type=int, default=None,
                        help="worker processes (default min(2, cpus)); never changes the output")
    parser.add_argument("--text", type=Path, default=None,
                        help="speak these sentences (one per line) in the LibriSpeech corpus")
    parser.add_argument("--only", nargs="+", choices=list(CORPORA), default=list(CORPORA))
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply utterance/speaker/sentence counts (e.g. 0.01: tiny)")
    parser.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="set spec fields (JSON values), e.g. random_voice_share=0.5; each "
                             "applies to the --only corpora whose spec has that field")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error(f"--scale must be positive, got {args.scale}")
    if args.text is not None and not args.text.is_file():
        parser.error(f"--text {args.text}: no such file")

    try:
        args.overrides = parse_overrides(args.overrides, [CORPORA[name][2] for name in args.only])
    except ValueError as e:
        parser.error(str(e))
    if args.root.exists() and not args.root.is_dir():
        sys.exit(f"error: --root {args.root} is not a folder")

    rows = []
    for name in args.only:
        try:
            row = _make_one(name, args)
        except (ValueError, OSError) as e:  # NotOurs, a bad --text, an unwritable --root, ...
            sys.exit(f"error: {e}")
        rows.append(row)

    print(f"\n{'corpus':<24} {'utterances':>10} {'hours':>7} {'disk MB':>8} {'seconds':>8}")
    for name, utterances, hours, disk_mb, seconds in rows:
        print(f"{name:<24} {utterances:>10} {hours:>7} {disk_mb:>8} {seconds:>8.1f}")


def _make_one(name: str, args: argparse.Namespace) -> tuple[str, str, str, str, float]:
    """Keep or make one corpus; its summary row (name, utterances, hours, disk MB, seconds)."""
    module_name, make_name, spec_name = CORPORA[name]
    module = importlib.import_module(module_name)
    spec_class = getattr(module, spec_name)
    own = {key: value for key, value in args.overrides.items()
           if key in {f.name for f in fields(spec_class)}}
    spec = scaled_spec(replace(spec_class(), seed=args.seed, **own), args.scale)
    extra = {"text_file": args.text} if name == "librispeech" and args.text else {}
    folder = args.root / module.CORPUS_DIR
    start = time.time()
    if corpus_folder.holds_foreign_corpus(folder):
        # A real corpus (or anything not made here) is the user's: keep it, and let the stage
        # that called us go on with it rather than fail.
        print(f"[synth] {name}: {folder} was not made by corpora.synth (no "
              f"{corpus_folder.SYNTHETIC_MARKER} file): keeping it as it is, so training reads "
              f"that corpus (move it away to make the synthetic one)")
        return name + " (not synthetic)", "?", "?", "-", time.time() - start
    if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
        folder.rmdir()  # an empty folder holds nothing to lose; fresh_corpus_folder makes it anew
    if not args.force and module.is_complete(args.root, spec, **extra):
        print(f"[synth] {name}: complete for this spec, kept (--force remakes it)")
        summary = json.loads((folder / module.MARKER).read_text(encoding="utf-8"))
        return name + " (kept)", *_counts(summary), _disk_mb(folder), time.time() - start
    result = getattr(module, make_name)(args.root, spec, processes=args.processes, **extra)
    print(f"[synth] {name}: {json.dumps(result, default=str)}")
    return name, *_counts(result), _disk_mb(folder), time.time() - start


if __name__ == "__main__":
    main()
