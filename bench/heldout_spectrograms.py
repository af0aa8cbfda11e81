"""Log-mel spectrograms of test-heldout utterances beside training ones, in one PNG.

    python bench/heldout_spectrograms.py [--root data/LibriSpeech] [--out logs/heldout_spectrograms.png]
    python bench/heldout_spectrograms.py --root data/speech_commands [--keyword sheila] [--out ...]

Left column: training speech (a plain packaged voice from train-clean-100; a generated voice when
the corpus has them; a train-other recording). Right column: one test-heldout utterance per
held-out kind (a packaged Klatt-engine variant, a generated voice below and one above the training
formant scales), each titled with its voice and held-out channels (HELDOUT.TXT). Every panel shows
the first 3 s on the same colour scale, after per-utterance normalization, as the model sees it.

With a Speech Commands folder (one holding `_heldout_/`): the keyword's first training clips
beside one held-out clip per held-out kind (`_heldout_/HELDOUT.TXT`), the whole second, as 40
raw log-mels (the KWS input) over the 80 dB below each clip's peak.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.heldout_breakdown import read_generated_voices  # noqa: E402
from common.audio import load  # noqa: E402
from common.features import FeatureConfig, make_features  # noqa: E402
from common.readers.librispeech import corpus_root  # noqa: E402

SECONDS = 3.0


def speaker_voices(corpus: Path) -> dict[str, tuple[str, str]]:
    """{speaker id: (subset, voice name)} from SPEAKERS.TXT."""
    voices = {}
    for line in (corpus / "SPEAKERS.TXT").read_text().splitlines():
        if not line.startswith(";"):
            speaker, _, subset, _, name = (field.strip() for field in line.split("|"))
            voices[speaker] = (subset, name.split()[0])
    return voices


def first_utterance(corpus: Path, subset: str, speaker: str) -> Path:
    return min((corpus / subset / speaker).rglob("*.flac"))


def pick(corpus: Path) -> list[tuple[str, Path]]:
    """[(panel title, audio path)]: training panels first, then held-out ones."""
    voices = speaker_voices(corpus)
    generated = read_generated_voices(corpus / "VOICES.TXT")
    channels = {line.split(" ")[0]: line.split(" ")[2] for line in
                (corpus / "HELDOUT.TXT").read_text().splitlines() if not line.startswith(";")}
    train, heldout = [], []

    def first(subset: str, test) -> str | None:
        return next((s for s, (sub, voice) in voices.items() if sub == subset and test(voice)), None)

    for title, subset, test in (
            ("train-clean-100, packaged voice", "train-clean-100", lambda v: "+rv" not in v),
            ("train-clean-100, generated voice", "train-clean-100", lambda v: "+rv" in v),
            ("train-other-500", "train-other-500", lambda v: True)):
        speaker = first(subset, test)
        if speaker:
            train.append((f"{title}: {voices[speaker][1]}", first_utterance(corpus, subset, speaker)))

    def scale(voice: str) -> float:
        return generated.get(voice.partition("+")[2], (1.0, False))[0]
    for title, test in (("Klatt-engine variant", lambda v: "+hv" not in v),
                        ("generated, formant scale < 0.88", lambda v: "+hv" in v and scale(v) < 1.0),
                        ("generated, formant scale > 1.15", lambda v: "+hv" in v and scale(v) > 1.0)):
        speaker = first("test-heldout", test)
        if speaker:
            path = first_utterance(corpus, "test-heldout", speaker)
            heldout.append((f"test-heldout, {title}: {voices[speaker][1]} "
                            f"({channels.get(path.stem, '?')})", path))
    return train + heldout


def pick_keyword(root: Path, keyword: str) -> list[tuple[str, Path]]:
    """[(panel title, audio path)] for a Speech Commands folder: three training clips of `keyword`,
    then one held-out clip of it per held-out voice kind."""
    heldout_dir = root / "_heldout_"
    generated = read_generated_voices(heldout_dir / "VOICES.TXT")
    entries = [line.split(" ") for line in (heldout_dir / "HELDOUT.TXT").read_text().splitlines()
               if not line.startswith(";")]
    listed = {entry for name in ("validation_list.txt", "testing_list.txt")
              for entry in (root / name).read_text().split()}
    train = [(f"training: {keyword}/{path.name}", path) for path in sorted((root / keyword).glob("*.wav"))
             if f"{keyword}/{path.name}" not in listed][:3]

    def scale(voice: str) -> float:
        return generated.get(voice.partition("+")[2], (1.0, False))[0]
    heldout = []
    for title, test in (("Klatt-engine variant", lambda v: "+hv" not in v),
                        ("generated, formant scale < 0.88", lambda v: "+hv" in v and scale(v) < 1.0),
                        ("generated, formant scale > 1.15", lambda v: "+hv" in v and scale(v) > 1.0)):
        found = next(((entry, voice, channels) for entry, voice, channels in entries
                      if entry.startswith(f"{keyword}/") and test(voice)), None)
        if found:
            entry, voice, channels = found
            heldout.append((f"test-heldout, {title}: {voice} ({channels})", heldout_dir / entry))
    return train + heldout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="data/LibriSpeech")
    parser.add_argument("--out", type=Path, default=Path("logs/heldout_spectrograms.png"))
    parser.add_argument("--keyword", default="sheila", help="the word shown for a Speech Commands folder")
    args = parser.parse_args(argv)
    keywords = (Path(args.root) / "_heldout_").is_dir()
    corpus = Path(args.root) if keywords else corpus_root(args.root)
    listing = corpus / "_heldout_" / "HELDOUT.TXT" if keywords else corpus / "HELDOUT.TXT"
    if not listing.is_file():
        sys.exit(f"error: {listing}: missing (make the corpus with ./run.sh data)")
    panels = pick_keyword(corpus, args.keyword) if keywords else pick(corpus)
    seconds = 1.0 if keywords else SECONDS
    # As each model sees its input: ASR 64 normalized log-mels; KWS 40 raw log-mels, shown over the
    # 80 dB below each clip's peak.
    features = make_features(FeatureConfig(kind="logmel", n_mels=40) if keywords else
                             FeatureConfig(kind="logmel", n_mels=64, normalize="utterance"))
    rows = max(sum(1 for t, _ in panels if not t.startswith("test-heldout")),
               sum(1 for t, _ in panels if t.startswith("test-heldout")))
    fig, axes = plt.subplots(rows, 2, figsize=(13, 2.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    counts = [0, 0]
    for title, path in panels:
        column = int(title.startswith("test-heldout"))
        wave = load(path, 16000)[: int(seconds * 16000)]
        feats, _ = features(wave)
        ax = axes[counts[column], column]
        counts[column] += 1
        ax.axis("on")
        low, high = (float(feats.max()) - 8 * math.log(10), float(feats.max())) if keywords else (-3, 3)
        ax.imshow(feats.numpy(), origin="lower", aspect="auto", vmin=low, vmax=high, cmap="magma",
                  extent=(0, wave.numel() / 16000, 0, feats.shape[0]))
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("mel band", fontsize=7)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    # A 64-colour palette: a third of the bytes, and a spectrogram looks the same.
    Image.open(args.out).convert("RGB").quantize(colors=64).save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    with torch.no_grad():
        main()
