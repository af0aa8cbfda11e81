"""Evaluate an ASR checkpoint: CER/WER of greedy, beam search and beam search + word LM decoding.

    python -m asr.evaluate CHECKPOINT [--split S ...] [--root DIR] [--out DIR] [--lm ARPA] [--beam N]
                           [--alpha A --beta B] [--workers N]

A split (--split, default: the checkpoint's test and held-out splits) is a split name under the data root the
checkpoint was trained with (or --root), a path to a folder in LibriSpeech layout, or a path to a
plain folder of audio files with same-named .txt transcripts (`DIR/a.wav` + `DIR/a.txt`: your own
recordings, for example). The acoustic model runs once per split; every decoder then works on the
same log-probs. With --lm and no --alpha/--beta, the values tuned by `python -m asr.lm_tune` (saved
next to the LM) are used when present, with a note on stderr when they were tuned for another
checkpoint.

--out DIR writes what the table shows, to keep and to diff:
- `results.json`: the table, one row per split and decoder (cer and wer as fractions, with the
  edit and reference counts they are made of), and the decoder settings;
- `hyps.jsonl`: one line per utterance, sorted by split then id:
  {"split", "id", "ref", "ref_chars", "ref_words",
   "decoders": {"greedy" | "beam" | "beam_lm": {"hyp", "cer", "wer", "char_edits", "word_edits"}}}
  (an utterance's cer/wer is null where its reference is empty and its hypothesis is not).
Nothing is written when the evaluation fails.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from asr.config import TrainConfig
from asr.data import eval_loader, scored_splits
from asr.decode import BeamSearchDecoder, DecoderConfig, check_decoding, decode_dataset, default_workers, greedy
from asr.lm import WordLM, read_tuned, tuned_path
from asr.model import load_asr_checkpoint
from common.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from common.cli import fail
from common.config import from_dict
from common.metrics import cer, cer_without_spaces, error_rates, wer
from common.out_folder import check_out_folder, write_text_atomic

USAGE = ("python -m asr.evaluate CHECKPOINT [--split S ...] [--root DIR] [--out DIR] [--lm ARPA] [--beam N]\n"
         "                              [--alpha A --beta B] [--workers N]")


def as_text(hypothesis: str) -> str:
    """A decoded hypothesis as the text it stands for: words separated by single spaces.

    Greedy CTC over characters emits a space on each side of characters it then drops (" a  b");
    as text that is "a b", which is what the beam + LM decoder returns and what a reader sees.
    Every CER here is taken on this form, so training logs, tables and decoders agree.
    """
    return " ".join(hypothesis.split())


@torch.no_grad()
def evaluate(model: torch.nn.Module, features: torch.nn.Module, loader, tokenizer,
             device: torch.device) -> dict:
    """Greedy-decode every batch of `loader`; returns cer, cer_without_spaces, wer, refs, hyps (in
    loader order)."""
    model.eval()
    refs, hyps, skipped = [], [], 0
    for batch in loader:
        skipped += batch["skipped"]
        if batch["waves"].shape[0] == 0:
            continue
        feats, frames = features(batch["waves"].to(device), batch["wave_lengths"].to(device))
        log_probs, lengths = model(feats, frames)
        hyps += [as_text(tokenizer.decode(ids)) for ids in greedy(log_probs, lengths)]
        refs += batch["texts"]
    check_scored(loader, len(refs), skipped)
    return {"cer": cer(refs, hyps), "cer_without_spaces": cer_without_spaces(refs, hyps), "wer": wer(refs, hyps),
            "refs": refs, "hyps": hyps}


def check_scored(loader, scored: int, skipped: int) -> None:
    """Raise ValueError when no utterance of `loader` was scored: an error rate over nothing is no
    score (and would read as a perfect one). Names the folder of the loader's audio files."""
    if scored:
        return
    paths = [str(u.path) for u in getattr(loader.dataset, "utterances", [])]
    where = os.path.commonpath(paths) if paths else "evaluation data"
    raise ValueError(f"{where}: 0 utterances scored ({skipped} of {len(paths)} skipped for unreadable audio, "
                     f"see the warnings above)")


def write_examples(path: Path, step: int, refs: list[str], hyps: list[str], count: int = 10) -> None:
    """Append `count` reference/prediction pairs (spread over the split) under a step header."""
    stride = max(1, len(refs) // count)
    lines = [f"=== step {step} ===" if step >= 0 else "=== test ==="]
    for ref, hyp in list(zip(refs, hyps))[::stride][:count]:
        lines += [f"REF: {ref}", f"HYP: {hyp}", ""]
    with open(path, "a") as f:
        f.write("\n".join(lines) + "\n")


@dataclass
class SplitOutputs:
    """The acoustic model's output over one split, per scored utterance, in loader order:
    log-probs `(time_i, vocab)` float32, the normalized reference, the utterance id."""

    log_probs: list[np.ndarray]
    refs: list[str]
    ids: list[str]


@torch.no_grad()
def acoustic_outputs(model: torch.nn.Module, features: torch.nn.Module, loader, device: torch.device,
                     progress: bool = True) -> SplitOutputs:
    """Run the model over `loader` (batches of `asr.data.collate`); unreadable utterances are left
    out. ValueError naming the folder when none was scored (`check_scored`)."""
    model.eval()
    out, skipped = SplitOutputs([], [], []), 0
    utterances = loader.dataset.utterances
    for batch in tqdm(loader, desc="acoustic model", unit="batch", disable=not progress, leave=False):
        skipped += batch["skipped"]
        if batch["waves"].shape[0] == 0:
            continue
        feats, frames = features(batch["waves"].to(device), batch["wave_lengths"].to(device))
        log_probs, lengths = model(feats, frames)
        log_probs = log_probs.float().cpu().numpy()
        out.log_probs += [log_probs[i, :n] for i, n in enumerate(lengths.tolist())]
        out.refs += batch["texts"]
        out.ids += [utterances[i].id for i in batch["indices"]]
    check_scored(loader, len(out.refs), skipped)
    return out


def collect_log_probs(model: torch.nn.Module, features: torch.nn.Module, loader, device: torch.device,
                      progress: bool = True) -> tuple[list[np.ndarray], list[str]]:
    """Run the model over `loader`: per utterance log-probs `(time_i, vocab)` float32 and its reference."""
    out = acoustic_outputs(model, features, loader, device, progress)
    return out.log_probs, out.refs


def save_log_probs(path: str | Path, log_probs: list[np.ndarray], refs: list[str], tokenizer_state: dict,
                   split: str) -> None:
    """Store log-probs (as float16), references, the tokenizer and the split they are of (a name
    or folder, as given) for later decoding runs."""
    save_checkpoint(path, {"log_probs": [torch.from_numpy(x).half() for x in log_probs], "refs": list(refs),
                           "tokenizer": tokenizer_state, "split": split})


def load_log_probs(path: str | Path, split: str) -> tuple[list[np.ndarray], list[str], dict]:
    """(log-probs float32 `(time_i, vocab)`, references, tokenizer state) of `split`, saved by
    `save_log_probs`; a file saved for another split (or before files named theirs) is an error."""
    state = load_checkpoint(path)
    missing = [k for k in ("log_probs", "refs", "tokenizer") if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a saved log-probs file (missing {', '.join(missing)})")
    if not state["refs"]:
        raise CheckpointError(f"{path}: the saved log-probs hold 0 utterances")
    if state.get("split") != split:
        saved = f"split {state['split']!r}" if "split" in state else "a split it does not name"
        raise CheckpointError(f"{path}: the saved log-probs are of {saved}, not {split!r} "
                              f"(delete the file to rebuild it, or name another)")
    return [x.float().numpy() for x in state["log_probs"]], state["refs"], state["tokenizer"]


def lm_decoder_config(lm: str, beam: int, alpha: float | None, beta: float | None,
                      checkpoint: str | os.PathLike | None = None) -> DecoderConfig:
    """Decoder settings for beam + LM: alpha/beta given, else tuned next to the LM, else defaults.

    checkpoint: the acoustic model that will be decoded. When tuned values are used and the tuning
    (`asr.lm_tune`) was for another checkpoint, one note line says so on stderr: alpha/beta are
    tuned to one model's confidence and transfer to another only roughly.
    """
    cfg = DecoderConfig(beam_width=beam, lm=lm)
    tuned = read_tuned(lm) or {}
    cfg.alpha = alpha if alpha is not None else tuned.get("alpha", cfg.alpha)
    cfg.beta = beta if beta is not None else tuned.get("beta", cfg.beta)
    uses_tuned = bool(tuned) and (alpha is None or beta is None)
    tuned_for = tuned.get("checkpoint")  # absent from files written by hand or by older versions
    if uses_tuned and checkpoint is not None and isinstance(tuned_for, str) and not same_file(tuned_for, checkpoint):
        print(f"note: alpha {cfg.alpha:g}, beta {cfg.beta:g} from {tuned_path(lm)} were tuned for {tuned_for}"
              f"{' on ' + str(tuned['split']) if tuned.get('split') else ''}; used with {checkpoint}",
              file=sys.stderr, flush=True)
    return cfg


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether paths `a` and `b` name the same file (the same inode when both exist, else the same
    absolute path): `logs/x/best.pt` and `./logs/x/../x/best.pt` are one checkpoint."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).absolute().resolve() == Path(b).absolute().resolve()


def decoding_table(log_probs: list[np.ndarray], refs: list[str], tokenizer, beam: int,
                   lm_cfg: DecoderConfig | None, workers: int, lm=None) -> list[dict]:
    """CER/WER and decoding seconds of greedy, beam (if beam > 0) and beam + LM (if lm_cfg).

    lm: the loaded `asr.lm.WordLM` of `lm_cfg.lm`, when the caller has it already.
    Returns one dict per decoder: decoder (the table's label, settings included), key ("greedy",
    "beam" or "beam_lm": the same whatever the settings, so runs can be compared), hyps (as text,
    in `refs` order), seconds, cer, wer.
    """
    rows = []
    started = time.time()
    hyps = [tokenizer.decode(ids) for ids in
            (greedy(torch.from_numpy(x)[None], torch.tensor([len(x)]))[0] for x in log_probs)]
    rows.append({"decoder": "greedy", "key": "greedy", "hyps": hyps, "seconds": time.time() - started})
    configs = []
    if beam > 0:
        configs.append((f"beam {beam}", "beam", DecoderConfig(beam_width=beam), None))
    if lm_cfg is not None:
        configs.append((f"beam {lm_cfg.beam_width} + LM (alpha {lm_cfg.alpha:g}, beta {lm_cfg.beta:g})", "beam_lm",
                        lm_cfg, lm))
    for name, key, cfg, cfg_lm in configs:
        started = time.time()
        decoder = BeamSearchDecoder(tokenizer.vocab, cfg, lm=cfg_lm)
        ids = decode_dataset(log_probs, decoder, workers=workers, desc=name)
        rows.append({"decoder": name, "key": key, "hyps": [tokenizer.decode(x) for x in ids],
                     "seconds": time.time() - started})
    for row in rows:
        row["hyps"] = [as_text(h) for h in row["hyps"]]
        row["cer"], row["wer"] = cer(refs, row["hyps"]), wer(refs, row["hyps"])
    return rows


def _rate(value: float) -> float | None:
    """An error rate as JSON: None for inf (edits over an empty reference), which JSON cannot hold."""
    return value if math.isfinite(value) else None


def result_rows(split: str, refs: list[str], rows: list[dict]) -> list[dict]:
    """The `results.json` rows of one split: one per decoder row of `decoding_table`, with the
    edit and reference counts its CER and WER are made of (cer = char_edits / ref_chars)."""
    out = []
    for row in rows:
        chars, words = error_rates(refs, row["hyps"], "char"), error_rates(refs, row["hyps"], "word")
        out.append({"split": split, "decoder": row["key"], "label": row["decoder"], "utterances": len(refs),
                    "cer": _rate(chars.rate), "wer": _rate(words.rate), "seconds": row["seconds"],
                    "char_edits": chars.edits, "ref_chars": chars.ref_units,
                    "word_edits": words.edits, "ref_words": words.ref_units})
    return out


def utterance_records(split: str, ids: list[str], refs: list[str], rows: list[dict]) -> list[dict]:
    """The `hyps.jsonl` records of one split, sorted by id: reference, and per decoder the
    hypothesis and that utterance's CER/WER (None where undefined, see `_rate`) and edit counts."""
    records = []
    for i in sorted(range(len(ids)), key=lambda i: ids[i]):
        decoders = {}
        for row in rows:
            chars, words = error_rates(refs[i], row["hyps"][i], "char"), error_rates(refs[i], row["hyps"][i], "word")
            decoders[row["key"]] = {"hyp": row["hyps"][i], "cer": _rate(chars.rate), "wer": _rate(words.rate),
                                    "char_edits": chars.edits, "word_edits": words.edits}
        records.append({"split": split, "id": ids[i], "ref": refs[i], "ref_chars": len(refs[i]),
                        "ref_words": len(refs[i].split()), "decoders": decoders})
    return records


def write_results(out: Path, settings: dict, table: list[dict], forward_seconds: dict[str, float],
                  records: list[dict]) -> tuple[Path, Path]:
    """Write `out/results.json` ({**settings, "results": table, "acoustic_model_seconds"}) and
    `out/hyps.jsonl` (`records`, one per line); returns both paths."""
    out.mkdir(parents=True, exist_ok=True)
    hyps = write_text_atomic(out / "hyps.jsonl", "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n"
                                                          for r in records))
    results = {**settings, "results": table, "acoustic_model_seconds": forward_seconds}
    results_path = write_text_atomic(out / "results.json", json.dumps(results, indent=1, ensure_ascii=False,
                                                                      allow_nan=False) + "\n")
    return results_path, hyps


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of `main`; usage errors exit 2 with argparse's message."""
    parser = argparse.ArgumentParser(prog="python -m asr.evaluate", description=__doc__.splitlines()[0],
                                     usage=USAGE)
    parser.add_argument("checkpoint", metavar="CHECKPOINT")
    parser.add_argument("--split", dest="splits", nargs="+", metavar="S",
                        help="split names, LibriSpeech-layout folders or plain folders of audio files with "
                             "same-named .txt transcripts (default: the checkpoint's test and held-out splits)")
    parser.add_argument("--root", metavar="DIR", help="data root holding the splits (default: the one trained with)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="folder for results.json and hyps.jsonl")
    parser.add_argument("--lm", metavar="ARPA", help="word n-gram LM (ARPA) for a beam + LM row")
    parser.add_argument("--beam", type=int, default=32, metavar="N", help="beam width (0: greedy only; default 32)")
    parser.add_argument("--alpha", type=float, metavar="A",
                        help="LM weight (default: tuned value next to the LM, else 0.5)")
    parser.add_argument("--beta", type=float, metavar="B",
                        help="word bonus (default: tuned value next to the LM, else 1.0)")
    parser.add_argument("--workers", type=int, default=default_workers(), metavar="N", help="decoding processes")
    args, extra = parser.parse_known_args(argv)
    if extra:
        # Splits used to be positional: say how to write them now rather than just refuse them.
        if not any(a.startswith("-") for a in extra):
            parser.error(f"--split: got {' '.join(extra)} as positional arguments; splits are given with --split: "
                         f"--split {' '.join(extra)}")
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    for split in set(args.splits or ()):
        if args.splits.count(split) > 1:  # its utterances would be scored, and written, twice
            parser.error(f"--split: {split!r} given twice")
    try:
        check_decoding(args.lm, args.beam, args.alpha, args.beta, prefix="--")
    except ValueError as e:
        parser.error(str(e))
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        ckpt = load_asr_checkpoint(args.checkpoint, device)
        model, features, tokenizer = ckpt.model, ckpt.features, ckpt.tokenizer
        cfg = from_dict(TrainConfig, ckpt.config, source=args.checkpoint)
        lm_cfg = (lm_decoder_config(args.lm, max(args.beam, 1), args.alpha, args.beta, checkpoint=args.checkpoint)
                  if args.lm else None)
        lm = WordLM(args.lm) if args.lm else None  # loaded before any audio: a bad --lm fails fast
        if args.out is not None:
            check_out_folder(args.out)  # before the evaluation, which may take long
    except (CheckpointError, OSError, ValueError) as e:
        fail(e)
    if args.root:
        cfg.data.root = args.root
    splits = args.splits or scored_splits(cfg)[0]
    table, records, forward_seconds = [], [], {}
    print("| split | decoder | utterances | CER | WER | decoding s |\n|---|---|---|---|---|---|")
    for split in splits:
        started = time.time()
        try:
            outputs = acoustic_outputs(model, features, eval_loader(cfg, tokenizer, split), device)
            forward_seconds[str(split)] = time.time() - started
            rows = decoding_table(outputs.log_probs, outputs.refs, tokenizer, args.beam, lm_cfg, args.workers, lm=lm)
        except (FileNotFoundError, ValueError) as e:  # a missing or empty split, an LM that is not UTF-8
            fail(e)
        for row in rows:
            print(f"| {split} | {row['decoder']} | {len(outputs.refs)} | {row['cer']:.2%} | {row['wer']:.2%} "
                  f"| {row['seconds']:.1f} |", flush=True)
        print(f"| {split} | (acoustic model) | {len(outputs.refs)} | | | {forward_seconds[str(split)]:.1f} |",
              flush=True)
        table += result_rows(str(split), outputs.refs, rows)
        records += utterance_records(str(split), outputs.ids, outputs.refs, rows)
    if args.out is not None:
        settings = {"checkpoint": str(args.checkpoint), "root": str(cfg.data.root), "beam_width": args.beam,
                    "lm": None if lm_cfg is None else {"path": str(args.lm), "beam_width": lm_cfg.beam_width,
                                                       "alpha": lm_cfg.alpha, "beta": lm_cfg.beta}}
        try:
            written = write_results(args.out, settings, table, forward_seconds, records)
        except OSError as e:  # a disk that filled up during the evaluation
            fail(e)
        print(f"wrote {written[0]} and {written[1]}")


if __name__ == "__main__":
    main(sys.argv[1:])
