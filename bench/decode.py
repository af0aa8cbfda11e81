"""CTC beam search decoders side by side on the same log-probs: ours, pyctcdecode, flashlight.

    python bench/decode.py --log-probs LOGPROBS.pt --lm LM.arpa        # saved by --save or asr.lm_tune
    python bench/decode.py --checkpoint CKPT [--split dev-clean] --lm LM.arpa [--save LOGPROBS.pt]
    python bench/decode.py --synthetic 300 --lm LM.arpa                # no model needed
    common options: [--beams 8 32 128] [--alpha A --beta B] [--limit N] [--workers 2] [--bpe 256]

Prints one table: WER, CER and utterances per CPU second of every decoder at every beam width, all
in this one process on one core (CPU time, so other load on the machine does not skew it); with
--workers 2 also ours with its 2-process pool, in utterances per wall-clock second. Needs the
benchmark-only extras: `.venv/bin/pip install --no-deps -r requirements-bench.txt`.

- ours: `asr.decode.BeamSearchDecoder` (open vocabulary, word LM fused at word ends).
- pyctcdecode 0.5.0: the same fusion rule (alpha ln P + beta per word, unk offset -10, partial words
  checked against the LM's unigrams); its own defaults for pruning (token_min_logp -5,
  beam_prune_logp -10).
- flashlight (torchaudio.models.decoder.ctc_decoder, flashlight-text 0.0.7), character vocabularies
  only. Given an ARPA file, lexicon-free flashlight treats every *token* as an LM word (it expects a
  token-level LM), so a word ARPA goes in two ways: lexicon-free with a Python callback LM that
  spells words and scores each at `|` (same fusion rule as ours; its speed is that of the Python
  callback, not of flashlight's C++, so it runs on the first --callback-limit utterances only),
  and lexicon-based (the ARPA's words spelled in characters;
  C++ KenLM; closed vocabulary: it can only output LM words). Without --lm: lexicon-free, no LM.

--synthetic makes peaked CTC log-probs for sentences of `corpora.synth.english` (each token a few
frames, blanks between, Gaussian logit noise, some tokens confused with another one; characters, or
BPE pieces with --bpe N), for developing without a trained model; the WER numbers then only say how
decoders compare.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from asr.config import TrainConfig  # noqa: E402
from asr.data import eval_loader  # noqa: E402
from asr.decode import (UNKNOWN_WORD_CHARACTERS, BeamSearchDecoder, DecoderConfig, decode_dataset,  # noqa: E402
                        greedy)
from asr.evaluate import collect_log_probs, load_log_probs, lm_decoder_config, save_log_probs  # noqa: E402
from asr.lm import WordLM, arpa_words  # noqa: E402
from asr.model import load_asr_checkpoint  # noqa: E402
from asr.text import BPETokenizer, CharTokenizer, TextConfig, tokenizer_from_dict  # noqa: E402
from common.config import from_dict  # noqa: E402
from common.metrics import cer, wer  # noqa: E402
from corpora.synth.english import sentences  # noqa: E402


def synthetic_log_probs(token_ids: list[list[int]], vocab_size: int, confusable: list[int], rng: np.random.Generator,
                        noise: float = 1.0, margin: float = 8.0, confusion: float = 0.08) -> list[np.ndarray]:
    """Peaked CTC log-probs `(time, vocab)` whose greedy path spells each token sequence with some errors.

    Each token gets 1-3 frames (0-2 blanks before it, one at least between repeats); logits are
    Gaussian noise (std `noise`) plus a margin ~N(`margin`, 2) for the frame's label. With
    probability `confusion` a token of `confusable` has its frames favour another random one of them
    by a small margin, so the true token stays second and an LM can bring it back.
    """
    confusable_set = set(confusable)
    out = []
    for tokens in token_ids:
        labels, winners = [], []
        prev = None
        for token in tokens:
            blanks = int(rng.integers(0, 3)) + (1 if token == prev else 0)
            labels += [0] * blanks
            winners += [0] * blanks
            swap = token in confusable_set and rng.random() < confusion
            span = int(rng.integers(1, 4))
            labels += [token] * span
            winners += [int(rng.choice(confusable)) if swap else token] * span
            prev = token
        labels += [0] * int(rng.integers(1, 4))
        winners += [0] * (len(labels) - len(winners))
        frames = len(labels)
        logits = noise * rng.standard_normal((frames, vocab_size))
        margins = rng.normal(margin, 2.0, frames)
        logits[np.arange(frames), labels] += margins
        swapped = np.flatnonzero(np.asarray(winners) != np.asarray(labels))
        logits[swapped, np.asarray(winners)[swapped]] += margins[swapped] + rng.uniform(0.3, 2.0, len(swapped))
        out.append((logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32))
    return out


def timed(fn, wall: bool = False) -> tuple[list[str], float]:
    """(fn(), seconds): CPU seconds of this process (steady on a busy machine), or wall seconds."""
    clock = time.perf_counter if wall else time.process_time
    started = clock()
    hyps = fn()
    return hyps, clock() - started


def ours(log_probs, tokenizer, cfg: DecoderConfig, workers: int, lm) -> list[str]:
    decoder = BeamSearchDecoder(tokenizer.vocab, cfg, lm=lm)
    ids = decode_dataset(log_probs, decoder, workers=workers, progress=False)
    return [tokenizer.decode(x) for x in ids]


def pyctcdecode_decoder(vocab: list[str], lm_path: str | None, alpha: float, beta: float):
    from pyctcdecode import build_ctcdecoder

    labels = ["" if i == 0 else token for i, token in enumerate(vocab)]
    if lm_path is None:
        return build_ctcdecoder(labels)
    return build_ctcdecoder(labels, kenlm_model_path=lm_path, unigrams=arpa_words(lm_path), alpha=alpha, beta=beta)


def flashlight_decoder(vocab: list[str], lm_path: str | None, alpha: float, beta: float, beam: int, workdir: Path,
                       lexicon: bool = False, word_lm: WordLM | None = None, unk_score: float = -10.0):
    """torchaudio's flashlight CTC decoder: lexicon-free without LM, lexicon-free with the word LM
    through a Python callback LM (word_lm), or lexicon-based with the ARPA (lexicon=True)."""
    from torchaudio.models.decoder import ctc_decoder

    tokens = ["-" if i == 0 else ("|" if t == " " else t) for i, t in enumerate(vocab)]
    lexicon_file = None
    if lexicon:
        lexicon_file = workdir / "lexicon.txt"
        allowed = set(tokens)
        words = [w for w in arpa_words(lm_path) if set(w) <= allowed]
        lexicon_file.write_text("".join(f"{w} {' '.join(w)} |\n" for w in words))
        lm = lm_path
    elif word_lm is not None:
        lm = flashlight_word_lm(word_lm, tokens, alpha, unk_score)
    else:
        lm = None
    return ctc_decoder(lexicon=str(lexicon_file) if lexicon_file else None, tokens=tokens, lm=lm, nbest=1,
                       beam_size=beam, beam_size_token=None, beam_threshold=25.0, lm_weight=alpha,
                       word_score=beta, sil_score=0.0 if lexicon else beta, sil_token="|", blank_token="-",
                       unk_word="<unk>")


def flashlight_word_lm(word_lm: WordLM, tokens: list[str], alpha: float, unk_score: float):
    """A token-level LM for flashlight's lexicon-free decoder that is really the word LM with our
    fusion rule: it spells words token by token, charges unknown (partial) words like
    `BeamSearchDecoder` does, and scores each word at the `|` token, the open word and </s> at the
    end. Flashlight multiplies what this returns by lm_weight (alpha) and adds sil_score at `|`."""
    from torchaudio.models.decoder import CTCDecoderLM, CTCDecoderLMState

    sil = tokens.index("|")
    prefixes = {w[:i] for w in arpa_words(word_lm.path) for i in range(1, len(w) + 1)}
    scale = 1.0 / alpha if alpha > 0 else 0.0

    def unknown_cost(word: str) -> float:
        return unk_score * max(1.0, len(word) / UNKNOWN_WORD_CHARACTERS) * scale

    def word_score(context: int, word: str, paid: bool) -> tuple[float, int]:
        lnp, after = word_lm.score(context, word)
        return lnp + (unknown_cost(word) if word not in word_lm and not paid else 0.0), after

    class WordLMCallback(CTCDecoderLM):
        def __init__(self) -> None:
            CTCDecoderLM.__init__(self)
            self.info: dict = {}  # state -> (LM state id, open word, unknown cost paid, score to get here)

        def start(self, start_with_nothing: bool):
            self.info.clear()
            state = CTCDecoderLMState()
            self.info[state] = (0, "", False, 0.0)
            return state

        def score(self, state, token: int):
            child = state.child(token)
            if child not in self.info:
                context, word, paid, _ = self.info[state]
                if token != sil:
                    grown = word + tokens[token]
                    if paid:
                        self.info[child] = (context, grown, True, unknown_cost(grown) - unknown_cost(word))
                    elif grown not in prefixes:
                        self.info[child] = (context, grown, True, unknown_cost(grown))
                    else:
                        self.info[child] = (context, grown, False, 0.0)
                elif not word:
                    self.info[child] = (context, "", False, 0.0)
                else:
                    value, after = word_score(context, word, paid)
                    self.info[child] = (after, "", False, value)
            return child, self.info[child][3]

        def finish(self, state):
            context, word, paid, _ = self.info[state]
            total = 0.0
            if word:
                total, context = word_score(context, word, paid)
            return state, total + word_lm.end_score(context)

    return WordLMCallback()


def flashlight_decode(decoder, log_probs: list[np.ndarray], vocab: list[str]) -> list[str]:
    hyps = []
    for x in log_probs:
        result = decoder(torch.from_numpy(np.ascontiguousarray(x))[None], torch.tensor([len(x)]))
        ids = result[0][0].tokens.tolist() if result[0] else []
        text = "".join(vocab[i] for i in ids if i != 0)
        hyps.append(" ".join(text.split()))
    return hyps


def load_inputs(args) -> tuple[list[np.ndarray], list[str], object]:
    if args.log_probs:
        log_probs, refs, tokenizer_state = load_log_probs(args.log_probs)
        return log_probs, refs, tokenizer_from_dict(tokenizer_state)
    if args.checkpoint:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        ckpt = load_asr_checkpoint(args.checkpoint, device)
        tokenizer = ckpt.tokenizer
        cfg = from_dict(TrainConfig, ckpt.config, source=args.checkpoint)
        log_probs, refs = collect_log_probs(ckpt.model, ckpt.features, eval_loader(cfg, tokenizer, args.split), device)
        if args.save:
            save_log_probs(args.save, log_probs, refs, tokenizer.to_dict())
        return log_probs, refs, tokenizer
    rng = np.random.default_rng(args.seed)
    refs = [" ".join(s.lower().split()) for s in sentences(args.synthetic, rng)]
    if args.bpe:
        corpus = [" ".join(s.lower().split()) for s in sentences(20000, np.random.default_rng(args.seed + 1))]
        tokenizer = BPETokenizer.train(corpus, args.bpe, TextConfig.alphabet)
        confusable = list(range(2, len(tokenizer.vocab)))  # not blank, not <unk>
    else:
        tokenizer = CharTokenizer(TextConfig.alphabet)
        confusable = [i for i, t in enumerate(tokenizer.vocab) if t.isalpha()]
    log_probs = synthetic_log_probs([tokenizer.encode(r) for r in refs], len(tokenizer.vocab), confusable, rng)
    if args.save:
        save_log_probs(args.save, log_probs, refs, tokenizer.to_dict())
    return log_probs, refs, tokenizer


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--log-probs", help="saved log-probs (asr.evaluate.save_log_probs format)")
    source.add_argument("--checkpoint", help="ASR checkpoint; its log-probs on --split are computed first")
    source.add_argument("--synthetic", type=int, help="this many synthetic utterances")
    parser.add_argument("--bpe", type=int, default=0, help="--synthetic with a BPE vocabulary of this size")
    parser.add_argument("--split", default="dev-clean")
    parser.add_argument("--save", help="also save the log-probs used here to this .pt file")
    parser.add_argument("--lm", help="word LM (ARPA); without it decoders run without LM")
    parser.add_argument("--alpha", type=float)
    parser.add_argument("--beta", type=float)
    parser.add_argument("--beams", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--limit", type=int, default=0, help="use only the first N utterances")
    parser.add_argument("--workers", type=int, default=1, help="> 1 adds a row for our process pool")
    parser.add_argument("--skip", nargs="*", default=[], choices=["pyctcdecode", "flashlight"])
    parser.add_argument("--callback-limit", type=int, default=50,
                        help="utterances for flashlight with the (slow) Python callback LM")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    log_probs, refs, tokenizer = load_inputs(args)
    if args.limit:
        log_probs, refs = log_probs[: args.limit], refs[: args.limit]
    vocab = tokenizer.vocab
    char_vocab = isinstance(tokenizer, CharTokenizer)
    lm_cfg = lm_decoder_config(args.lm, 1, args.alpha, args.beta) if args.lm else DecoderConfig()
    lm = WordLM(args.lm) if args.lm else None
    frames = sum(len(x) for x in log_probs)
    print(f"{len(refs)} utterances, {frames / len(refs):.0f} frames each on average, vocabulary {len(vocab)}"
          + (f"; LM {args.lm} (alpha {lm_cfg.alpha:g}, beta {lm_cfg.beta:g})" if lm else "; no LM"))

    rows = []

    def add(name: str, beam: int | str, hyps: list[str], seconds: float, counted: int = 0) -> None:
        """A table row; `counted` > 0: only the first `counted` hypotheses are real."""
        counted = counted or len(refs)
        hyps = [" ".join(h.split()) for h in hyps[:counted]]  # pyctcdecode does this itself; the others do not
        rows.append((name, beam, wer(refs[:counted], hyps), cer(refs[:counted], hyps), counted / seconds))
        print(f"  {name} beam {beam}: WER {rows[-1][2]:.2%} ({seconds:.1f} s)", file=sys.stderr, flush=True)

    add("greedy", "-", *timed(lambda: [tokenizer.decode(greedy(torch.from_numpy(x)[None], torch.tensor([len(x)]))[0])
                                       for x in log_probs]))
    with tempfile.TemporaryDirectory() as tmp:
        for beam in args.beams:
            cfg = DecoderConfig(beam_width=beam, lm=args.lm or "", alpha=lm_cfg.alpha, beta=lm_cfg.beta)
            add("ours", beam, *timed(lambda: ours(log_probs, tokenizer, cfg, 1, lm)))
            if args.workers > 1:
                add(f"ours ({args.workers} processes, wall clock)", beam,
                    *timed(lambda: ours(log_probs, tokenizer, cfg, args.workers, lm), wall=True))
            if "pyctcdecode" not in args.skip:
                decoder = pyctcdecode_decoder(vocab, args.lm, lm_cfg.alpha, lm_cfg.beta)
                add("pyctcdecode", beam, *timed(lambda: [decoder.decode(x, beam_width=beam) for x in log_probs]))
            if "flashlight" not in args.skip and char_vocab:
                if lm is None:
                    decoder = flashlight_decoder(vocab, None, 0.0, 0.0, beam, Path(tmp))
                    add("flashlight lexicon-free", beam, *timed(lambda: flashlight_decode(decoder, log_probs, vocab)))
                else:
                    decoder = flashlight_decoder(vocab, args.lm, lm_cfg.alpha, lm_cfg.beta, beam, Path(tmp),
                                                 word_lm=lm)
                    subset = log_probs[: args.callback_limit]
                    hyps, seconds = timed(lambda: flashlight_decode(decoder, subset, vocab))
                    add(f"flashlight lexicon-free + word LM (Python callback; first {len(subset)} utterances)",
                        beam, hyps + [""] * (len(log_probs) - len(subset)), seconds, counted=len(subset))
                    decoder = flashlight_decoder(vocab, args.lm, lm_cfg.alpha, lm_cfg.beta, beam, Path(tmp),
                                                 lexicon=True)
                    add("flashlight lexicon + LM (closed vocabulary)", beam,
                        *timed(lambda: flashlight_decode(decoder, log_probs, vocab)))

    print("\n| decoder | beam | WER | CER | utterances/s |\n|---|---|---|---|---|")
    for name, beam, w, c, speed in rows:
        print(f"| {name} | {beam} | {w:.2%} | {c:.2%} | {speed:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
