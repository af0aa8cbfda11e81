"""Evaluation metrics: character / word error rates (ASR) and the area under the FA-FR curve (KWS).

Error rates count Levenshtein edits (substitutions + deletions + insertions) with `editdistance`.
- CER compares Unicode code points *including spaces* (as jiwer and most toolkits do; note that
  KoSpeech strips spaces before its CER, so its numbers are not directly comparable).
- WER compares whitespace-separated words (`str.split()`).
- The corpus rate is total edits / total reference units, not the mean of per-utterance rates:
  long utterances weigh more. Rates above 1.0 are possible when the hypothesis inserts a lot.
- An empty reference gives a per-utterance rate of 0.0 when the hypothesis is empty too and
  `inf` otherwise (edits over zero units); the same rule applies to the corpus totals.
- No references at all is a ValueError ("nothing to score"), not a rate: a 0.0 for an empty test
  set would read as a perfect score.

au-fa-fr follows the "Deep Learning in Audio" KWS seminar exactly (thresholds 0, the sorted scores,
1; FA and FR both divided by the number of ALL clips; area = -trapezoid(FR, x=FA)), computed in
O(N log N) with one sort and binary searches instead of the seminar's O(N^2) loop. It is undefined
without both keyword and other clips (FA or FR is then 0 at every threshold, so the area would be 0
whatever the scores): a ValueError with the counts, not a perfect-looking 0.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import editdistance
import numpy as np
import torch


@dataclass(frozen=True)
class ErrorRate:
    """Error counts of a set of utterances.

    rate: corpus-level rate, edits / ref_units.
    edits: total Levenshtein edits.
    ref_units: total reference units (characters or words).
    per_utterance: one rate per utterance, in input order.
    """

    rate: float
    edits: int
    ref_units: int
    per_utterance: list[float]


def _ratio(edits: int, units: int) -> float:
    if units == 0:
        return 0.0 if edits == 0 else float("inf")
    return edits / units


def error_rates(references: str | Sequence[str], hypotheses: str | Sequence[str],
                unit: str = "char") -> ErrorRate:
    """Edit-distance error rates over characters (`unit="char"`) or words (`unit="word"`).

    references, hypotheses: one string each, or equally long sequences of strings.
    """
    if unit not in ("char", "word"):
        raise ValueError(f"unit must be 'char' or 'word', got {unit!r}")
    if isinstance(references, str) != isinstance(hypotheses, str):
        raise ValueError("references and hypotheses must both be strings or both be sequences")
    if isinstance(references, str):
        references, hypotheses = [references], [hypotheses]
    if len(references) != len(hypotheses):
        raise ValueError(f"got {len(references)} references but {len(hypotheses)} hypotheses")
    if len(references) == 0:
        raise ValueError("nothing to score: 0 references")
    split = list if unit == "char" else str.split
    edits, units = [], []
    for ref, hyp in zip(references, hypotheses):
        ref_units, hyp_units = split(ref), split(hyp)
        edits.append(editdistance.eval(ref_units, hyp_units))
        units.append(len(ref_units))
    return ErrorRate(rate=_ratio(sum(edits), sum(units)), edits=sum(edits), ref_units=sum(units),
                     per_utterance=[_ratio(e, u) for e, u in zip(edits, units)])


def cer(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Corpus-level character error rate (spaces count as characters)."""
    return error_rates(references, hypotheses, unit="char").rate


def cer_without_spaces(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Character error rate with all whitespace removed first, so spacing errors do not count
    (KoSpeech's convention for Korean, whose spacing is loose)."""
    def squeeze(texts):
        return "".join(texts.split()) if isinstance(texts, str) else ["".join(t.split()) for t in texts]

    return cer(squeeze(references), squeeze(hypotheses))


def wer(references: str | Sequence[str], hypotheses: str | Sequence[str]) -> float:
    """Corpus-level word error rate (words split on whitespace)."""
    return error_rates(references, hypotheses, unit="word").rate


def _as_numpy(x: torch.Tensor | np.ndarray | Sequence[float], name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {x.shape}")
    return x


def fa_fr_curve(probs: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-alarm and false-reject rates swept over the seminar's thresholds.

    probs: (N,) keyword scores; labels: (N,) 0/1 (or bool) with 1 = keyword.
    Returns (thresholds, fa, fr), each (N + 2,) float64: thresholds are 0, the sorted scores, 1;
    at threshold t a clip is accepted when its score >= t, so tied scores flip together;
    fa = accepted negatives / N, fr = rejected positives / N.
    """
    # float32 -> float64 is exact, so every score >= threshold comparison is unchanged.
    scores = _as_numpy(probs, "probs").astype(np.float64)
    y = _as_numpy(labels, "labels")
    if len(scores) != len(y) or len(y) == 0:
        raise ValueError(f"probs and labels must be equally long and non-empty, "
                         f"got {len(scores)} and {len(y)}")
    if not np.isfinite(scores).all():
        raise ValueError("probs contain NaN or inf")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1")
    y = y.astype(bool)
    thresholds = np.concatenate(([0.0], np.sort(scores), [1.0]))
    negatives, positives = np.sort(scores[~y]), np.sort(scores[y])
    # Scores below t: searchsorted(side="left") counts them in O(log N) per threshold.
    accepted_negatives = len(negatives) - np.searchsorted(negatives, thresholds, side="left")
    rejected_positives = np.searchsorted(positives, thresholds, side="left")
    n = len(y)
    return thresholds, accepted_negatives / n, rejected_positives / n


def au_fa_fr(probs: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> float:
    """Area under the FA-FR curve of the KWS seminar (lower is better, 0 for a perfect ranking).

    probs: (N,) keyword scores, e.g. softmax(logits)[:, 1]; labels: (N,) 0/1.
    Raises ValueError when the labels hold only one class (the area is undefined).
    """
    _, fa, fr = fa_fr_curve(probs, labels)  # validates the inputs first
    n = len(fa) - 2
    positives = int(np.count_nonzero(_as_numpy(labels, "labels")))
    if positives == 0 or positives == n:
        raise ValueError(f"au-fa-fr is undefined without both keyword and other clips: {n} clips, "
                         f"{positives} positive (keyword), {n - positives} negative")
    # FA decreases as the threshold rises, hence the minus.
    return float(-np.trapezoid(fr, x=fa))
