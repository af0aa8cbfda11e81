"""What a corpus reader does with bad input: skip it and say so once, or stop at the first problem.

Real downloads have flaws (a truncated archive, a hand-edited list, a stray file), so every reader
takes `on_error`:

- "skip": drop the item, count it by kind, and log one summary line per split, e.g.
  `skipped 2 of 120 utterances in dev-clean: 1 transcript lines without audio (first: PATH), ...`
- "raise": raise at the first problem, one line naming the file and what was expected.

Structural problems (a missing split folder or list file) are not covered by the policy: the readers
always raise for those, because skipping them would silently return an empty split.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

ON_ERROR_CHOICES = ("skip", "raise")


@dataclass
class _Tally:
    count: int
    first: str


class BadInput:
    """Collects the problems found while listing one split; see the module docstring.

    `unit` is the plural noun of what the reader returns ("utterances", "clips"); `split` names the
    split in the summary line.
    """

    def __init__(self, on_error: str, *, split: str, unit: str) -> None:
        if on_error not in ON_ERROR_CHOICES:
            raise ValueError(f"on_error must be one of {ON_ERROR_CHOICES}, got {on_error!r}")
        self.on_error = on_error
        self.split = split
        self.unit = unit
        self._tallies: dict[str, _Tally] = {}

    def found(self, kind: str, where: str | Path, detail: str,
              error: type[Exception] = ValueError) -> None:
        """Record one problem, or raise `error("WHERE: DETAIL")` under on_error="raise".

        kind: plural phrase used in the summary ("transcript lines without audio").
        where: the file (optionally with ":LINE") the problem is in.
        detail: one-line description of what was expected.
        """
        if self.on_error == "raise":
            raise error(f"{where}: {detail}")
        tally = self._tallies.setdefault(kind, _Tally(0, str(where)))
        tally.count += 1

    @property
    def skipped(self) -> int:
        """Number of items dropped so far."""
        return sum(t.count for t in self._tallies.values())

    def counts(self) -> dict[str, int]:
        """Problems per kind, in the order they were first seen."""
        return {kind: t.count for kind, t in self._tallies.items()}

    def summary(self, kept: int) -> str | None:
        """The one-line summary for `kept` items returned, or None when nothing was skipped."""
        if not self._tallies:
            return None
        total = kept + self.skipped
        parts = ", ".join(f"{t.count} {kind} (first: {t.first})" for kind, t in self._tallies.items())
        return f"skipped {self.skipped} of {total} {self.unit} in {self.split}: {parts}"

    def log_summary(self, kept: int, logger: logging.Logger) -> None:
        """Log the summary as one warning; nothing when nothing was skipped."""
        line = self.summary(kept)
        if line is not None:
            logger.warning(line)
