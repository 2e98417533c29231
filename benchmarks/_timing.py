"""Timing helpers shared by the speed benchmarks (numpy only: JAX worker processes use it)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np

SAMPLE_SECONDS = 0.02
"""Each timing sample loops a call until it takes about this long (sub-millisecond calls
timed one at a time mostly measure the machine's noise)."""


def interleaved_samples(funcs: dict, repeats: int, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each function, ``repeats`` samples taken in turns.

    Taking turns means a slow spell of the (shared) machine hits every implementation alike,
    so the ratios between them hold even when the absolute times drift.
    """
    numbers = {}
    for name, func in funcs.items():
        for _ in range(warmup):
            func()
        began = time.perf_counter()
        func()
        numbers[name] = max(1, int(SAMPLE_SECONDS / max(time.perf_counter() - began, 1e-7)))
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, func in funcs.items():
            began = time.perf_counter()
            for _ in range(numbers[name]):
                func()
            samples[name].append((time.perf_counter() - began) / numbers[name])
    return samples


def interleaved_medians(funcs: dict, repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each function (:func:`interleaved_samples`)."""
    samples = interleaved_samples(funcs, repeats, warmup)
    return {name: float(np.median(values)) for name, values in samples.items()}


def median_time(func, repeats: int, warmup: int = 2) -> float:
    return interleaved_medians({"func": func}, repeats, warmup)["func"]


def provenance(script: str, arguments: list[str]) -> dict[str, object]:
    """Where a result comes from: the commit, whether tracked files differ from it, the command.

    ``script`` is the benchmark's path from the repository root (``benchmarks/x.py``) and
    ``arguments`` its command-line arguments (``sys.argv[1:]``).
    """
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True
        ).stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "command": "PYTHONPATH=. python " + " ".join([script, *arguments]),
    }
