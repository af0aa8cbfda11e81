"""What every command does with a mistake in its input: one line on stderr, a non-zero exit.

Bad input (a config value, a missing file, a read-only folder, a full disk) must never reach the
user as a traceback; a bug still does, since only the error types listed by each command's `main`
are turned into a line.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn


def error_line(error: BaseException) -> str:
    """`error` as one line: `PATH: reason` for an OS error that names a path, else its message."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def add_check_flag(parser: argparse.ArgumentParser) -> None:
    """`--check`: the command validates its arguments and exits 0. `run.sh` calls a stage this way
    before it makes the data or trains the model the stage needs, so a typo costs nothing."""
    parser.add_argument("--check", action="store_true", help="only validate the arguments, then exit")


def fail(error: BaseException) -> NoReturn:
    """Exit with status 1 and `error: <one line>` on stderr."""
    raise SystemExit(f"error: {error_line(error)}")


def print_lines(lines: list[str]) -> None:
    """Print `lines` to stdout; a reader that stops early (`--help | head`) ends the command quietly.

    Python's own advice for a closed pipe: point stdout at /dev/null so the exit's flush cannot fail again.
    """
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None
