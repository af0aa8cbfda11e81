"""Transcribe audio files with an ASR checkpoint (the command line of `asr.Transcriber`).

    python -m asr.transcribe CHECKPOINT FILE|FOLDER... [--json] [--plot] [--out DIR] [--lm ARPA]
                             [--beam N] [--alpha A --beta B]

Prints `FILE<TAB>TEXT` per file, or with --json one JSON object per line:
{"file", "text", "duration" (s), "words": [{"word", "start", "end", "confidence"}]} (and "plot"
with --plot): `asr.Transcript.to_dict()`, so the Python API gives the same numbers.
Any format soundfile reads (wav, flac, ogg, ...) and headerless 16-bit 16 kHz .pcm/.raw, any sample
rate and channel count: audio is averaged to mono and resampled to the model's rate. A FOLDER
stands for the audio files directly in it, sorted by name (a folder of recordings with same-named
.txt transcripts, as `asr.evaluate` scores, works as it is: the .txt files are not read here). A
file that cannot be read is reported on stderr in one line and skipped; the exit code is then 1,
after the other files are transcribed.

Decoding is greedy by default, beam search with --beam, and beam search + word LM with --lm (beam
32 unless --beam says otherwise; alpha/beta as tuned by `asr.lm_tune` unless given, with a note on
stderr when they were tuned for another checkpoint). Word times and confidences: see
`asr.transcriber`.

--plot draws, per file, `STEM.png` with three rows on one time axis: the features the model reads,
the CTC posteriorgram (output frames x tokens, the blank row included, the aligned path marked) and
the words of the forced alignment. The PNGs go to --out DIR, else to the current folder (as
whisper's --output_dir does), never next to the audio: that may be a dataset or a read-only folder.
Two files of one stem get STEM.png and STEM-2.png.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from asr.decode import check_decoding
from asr.transcriber import Analysis, Transcriber
from common.audio import RAW_SUFFIXES, AudioError
from common.checkpoint import CheckpointError
from common.out_folder import check_out_folder
from common.readers.plain_folder import AUDIO_SUFFIXES

FOLDER_SUFFIXES = (*AUDIO_SUFFIXES, *RAW_SUFFIXES)  # what a FOLDER argument stands for
TOKEN_ROWS = 64  # a posteriorgram shows every token up to this vocabulary size, else the likely ones


def audio_files(folder: Path) -> list[Path]:
    """The audio files directly in `folder` (by suffix, any case; hidden files left out), sorted.

    Raises AudioError naming the folder when it holds none: a typo'd or wrong folder must not pass
    as a run that had nothing to do.
    """
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() in FOLDER_SUFFIXES)
    if not files:
        raise AudioError(f"{folder}: no audio files ({', '.join(FOLDER_SUFFIXES)}) directly in this folder "
                         f"(subfolders are not read)")
    return files


def plot_analysis(analysis: Analysis, vocab: list[str], feature_kind: str, out_png: str | os.PathLike,
                  title: str) -> Path:
    """Features, CTC posteriorgram and word alignment of one file, on one time axis (seconds).

    Feature frame i is centred at i * feature_seconds (centred STFT); output frame i covers
    [i, i + 1) * frame_seconds, the convention of the word times.
    """
    from common.runlog import plt  # matplotlib with the Agg backend; only --plot pays for it

    feats, probs = analysis.features, np.exp(analysis.log_probs)  # (F, T_feat), (T_out, vocab)
    fs, hs = analysis.frame_seconds, analysis.feature_seconds
    duration = max(analysis.transcript.duration, len(probs) * fs, (feats.shape[1] - 0.5) * hs)
    # Rows of the posteriorgram: the whole vocabulary when it is small (characters), else the blank
    # and the tokens that reach 5% somewhere (a BPE vocabulary has hundreds of rows).
    rows = np.arange(len(vocab))
    if len(vocab) > TOKEN_ROWS:
        peak = probs.max(axis=0) if len(probs) else np.zeros(len(vocab))
        likely = [i for i in np.argsort(-peak)[:TOKEN_ROWS - 1] if i != 0 and peak[i] >= 0.05]
        rows = np.asarray([0, *sorted(likely)])
    labels = ["blank" if i == 0 else {" ": "space"}.get(vocab[i], vocab[i]) for i in rows]

    width = float(np.clip(3 + 1.2 * duration, 9, 30))
    heights = [2.4, 0.14 * len(rows) + 0.4, 1.0]
    fig = plt.figure(figsize=(width, sum(heights) + 0.9), dpi=110)
    # A narrow second column holds the colour bars, so the three time axes line up exactly.
    grid = fig.add_gridspec(3, 2, height_ratios=heights, width_ratios=[1, 0.012], wspace=0.01)
    ax_feat = fig.add_subplot(grid[0, 0])
    ax_post = fig.add_subplot(grid[1, 0], sharex=ax_feat)
    ax_words = fig.add_subplot(grid[2, 0], sharex=ax_feat)

    extent = [-hs / 2, (feats.shape[1] - 0.5) * hs, -0.5, feats.shape[0] - 0.5]
    image = ax_feat.imshow(feats, origin="lower", aspect="auto", extent=extent, cmap="viridis",
                           interpolation="nearest")
    ax_feat.set_ylabel(f"{feature_kind} bin")
    fig.colorbar(image, cax=fig.add_subplot(grid[0, 1]))
    ax_feat.set_title(title, fontsize=9, loc="left")
    ax_feat.tick_params(labelbottom=False)

    extent = [0, len(probs) * fs, -0.5, len(rows) - 0.5]
    image = ax_post.imshow(probs[:, rows].T if len(probs) else np.zeros((len(rows), 1)), origin="lower",
                           aspect="auto", extent=extent, cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(image, cax=fig.add_subplot(grid[1, 1]), label="p")
    aligned = np.flatnonzero(analysis.alignment >= 0)
    if len(aligned):  # the forced-alignment path over the non-blank tokens
        row_of = {token: r for r, token in enumerate(rows.tolist())}
        tokens = np.asarray(analysis.tokens)[analysis.alignment[aligned]]
        keep = [k for k, token in enumerate(tokens.tolist()) if token in row_of]
        ax_post.scatter((aligned[keep] + 0.5) * fs, [row_of[tokens[k]] for k in keep], s=7, color="tab:orange",
                        marker="s", linewidths=0, label="aligned token")
        ax_post.legend(loc="upper right", fontsize=7, frameon=True, framealpha=0.8)
    ax_post.set_yticks(range(len(rows)), labels, fontsize=6 if len(rows) > 32 else 7)
    ax_post.set_ylabel("token")
    ax_post.tick_params(labelbottom=False)

    inches_per_second = width * 0.85 / max(duration, 1e-3)
    for k, word in enumerate(analysis.transcript.words):
        ax_words.axvspan(word.start, word.end, ymin=0.08, ymax=0.92, color=("tab:blue", "tab:green")[k % 2],
                         alpha=0.25)
        narrow = (word.end - word.start) * inches_per_second < 0.075 * len(word.word)
        ax_words.text((word.start + word.end) / 2, 0.6, word.word, ha="center", va="center", fontsize=8,
                      rotation=90 if narrow else 0, clip_on=True)
        ax_words.text((word.start + word.end) / 2, 0.2, f"{word.confidence:.2f}", ha="center", va="center",
                      fontsize=6, color="0.35", clip_on=True)
    ax_words.set_yticks([])
    ax_words.set_ylim(0, 1)
    ax_words.set_ylabel("words")
    ax_words.set_xlabel("time (s)")
    ax_words.set_xlim(-hs / 2, duration)
    height = sum(heights) + 0.9
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.7 / width, bottom=0.5 / height, top=1 - 0.35 / height,
                        hspace=0.08)
    out_png = Path(out_png)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def plot_path(stem: str, out: Path, taken: set[str]) -> Path:
    """`out/STEM.png`, or STEM-2.png, STEM-3.png, ... when an earlier file of this run took the name."""
    name, n = f"{stem}.png", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}.png"
    taken.add(name)
    return out / name


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m asr.transcribe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="an asr.train checkpoint")
    parser.add_argument("inputs", nargs="+", metavar="FILE|FOLDER", help="audio files, or folders of them")
    parser.add_argument("--json", action="store_true", help="JSON lines with word times and confidences")
    parser.add_argument("--plot", action="store_true", help="a PNG per file: features, posteriorgram, words")
    parser.add_argument("--out", type=Path, metavar="DIR", help="folder of the --plot PNGs (default: the current folder)")
    parser.add_argument("--lm", metavar="ARPA", help="word n-gram LM (ARPA) for shallow fusion")
    parser.add_argument("--beam", type=int, default=None, metavar="N", help="beam width (default and 0: greedy; 32 with --lm)")
    parser.add_argument("--alpha", type=float, metavar="A", help="LM weight (default: tuned value next to the LM)")
    parser.add_argument("--beta", type=float, metavar="B", help="word bonus (default: tuned value next to the LM)")
    args = parser.parse_args(argv)
    try:
        check_decoding(args.lm, args.beam, args.alpha, args.beta, prefix="--")
    except ValueError as e:
        parser.error(str(e))
    if args.out is not None and not args.plot:
        parser.error("--out is the folder of the --plot PNGs: add --plot")
    out = Path(".") if args.out is None else args.out
    try:
        if args.plot:
            check_out_folder(out)  # before the model runs: a long run must not end in a failed write
        transcriber = Transcriber.from_checkpoint(args.checkpoint, lm=args.lm, beam=args.beam, alpha=args.alpha,
                                                  beta=args.beta)
    except (CheckpointError, OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    failed, taken = 0, set()
    for name in args.inputs:
        try:
            paths = audio_files(Path(name)) if Path(name).is_dir() else [name]
        except (AudioError, OSError) as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            failed += 1
            continue
        for path in paths:
            try:
                analysis = transcriber.analyze(path)
            except AudioError as e:
                print(f"error: {e}", file=sys.stderr, flush=True)
                failed += 1
                continue
            record = {"file": str(path), **analysis.transcript.to_dict()}
            if args.plot:
                png = plot_path(Path(path).stem, out, taken)
                text = analysis.transcript.text
                try:
                    out.mkdir(parents=True, exist_ok=True)  # made once there is something to put in it
                    plot_analysis(analysis, transcriber.tokenizer.vocab, transcriber.features.cfg.kind, png,
                                  f"{path} ({transcriber.decoding}): {text[:150] + ('...' if len(text) > 150 else '')}")
                except OSError as e:
                    print(f"error: {png}: cannot write the plot ({e.strerror or e})", file=sys.stderr, flush=True)
                    failed += 1
                else:
                    record["plot"] = str(png)
            if args.json:
                print(json.dumps(record), flush=True)
            else:
                print(f"{path}\t{record['text']}", flush=True)
                if "plot" in record:  # on stderr: stdout keeps one FILE<TAB>TEXT line per file
                    print(f"plot: {record['plot']}", file=sys.stderr, flush=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
