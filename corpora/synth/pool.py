"""Run synthesis jobs in fixed chunks, each chunk in a fresh process, results in job order.

eSpeak's output depends on the sequence of calls made earlier in the same process, and is the same
in any fresh process given the same sequence. So a corpus is byte-identical whatever the number of
processes only if the chunks are fixed (by `chunk_size`, never by the process count) and every
chunk starts in a process that has synthesized nothing before: hence `maxtasksperchild=1`.
Workers come from a fork server: a clean interpreter (not the caller, which may already have used
eSpeak) that imports the work function's module once, so each fresh worker starts in milliseconds.

A script calling `run_chunks` needs an `if __name__ == "__main__":` guard around that call: as
with 'spawn', every forkserver worker re-imports the script (as `__mp_main__`) before running its
chunk, so an unguarded call runs again in each worker, which fails with multiprocessing's
"bootstrapping phase" RuntimeError while the caller waits on the pool forever.
"""
from __future__ import annotations

import multiprocessing
import os
from typing import Any, Callable

from tqdm import tqdm

_PRELOAD = ["numpy", "scipy.signal", "soundfile", "tqdm", "corpora.synth.espeak",
            "corpora.synth.degrade"]


def _run_indexed(task: tuple[Callable[[list], list], int, list]) -> tuple[int, list]:
    work, index, chunk = task
    results = work(chunk)
    if len(results) != len(chunk):
        raise RuntimeError(f"{work.__name__} returned {len(results)} results for a chunk of "
                           f"{len(chunk)} jobs (expected one per job)")
    return index, results


def run_chunks(jobs: list, work: Callable[[list], list], *, chunk_size: int,
               processes: int | None = None, desc: str = "synth") -> list[Any]:
    """`work` applied to consecutive chunks of `chunk_size` jobs; one result per job, in order.

    work: a top-level (picklable) function taking a list of jobs, returning a list of results.
    processes: how many chunks run at once (default min(2, cpu count)); it never changes results.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if processes is None:
        processes = min(2, os.cpu_count() or 1)
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    chunks = [jobs[i:i + chunk_size] for i in range(0, len(jobs), chunk_size)]
    if not chunks:
        return []
    context = multiprocessing.get_context("forkserver")
    # Only the call that starts the server sets its preload, so it always includes the heavy
    # imports every synthesis worker needs; a worker then imports at most its own small module.
    context.set_forkserver_preload(_PRELOAD + [work.__module__])
    tasks = [(work, index, chunk) for index, chunk in enumerate(chunks)]
    by_chunk: list[list | None] = [None] * len(chunks)
    with context.Pool(min(processes, len(chunks)), maxtasksperchild=1) as pool, \
            tqdm(total=len(jobs), desc=desc, unit="utt") as bar:
        for index, results in pool.imap_unordered(_run_indexed, tasks):
            by_chunk[index] = results
            bar.update(len(results))
    return [result for results in by_chunk for result in results]
