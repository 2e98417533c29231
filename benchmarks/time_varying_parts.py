"""Benchmark: where the time of the regression kernel's sweeps goes, part by part.

Usage::

    PYTHONPATH=. python benchmarks/time_varying_parts.py [--states 3 8] [--repeats 31]

One block of 24 sequences of 500 steps (the kernel's blocks are 24-32 lanes wide), ``P = 3``
design columns, float64, one thread. Each part of
:func:`hmm_pyro.kernels._numba.regression.regression_sweeps` is called on its own, in the order
the kernel calls them, the parts alternating within each round (wall time by
``time.perf_counter``, best of the rounds, in ns per sequence-step):

- ``emission table``: the shifted, exponentiated emission table (as the homogeneous kernel
  prepares it);
- ``design copy``: the covariates laid out by chunks of steps, lanes innermost;
- ``matrices built``: every chunk of transition matrices (logits, exponentials, normalising);
- ``forward sweep``: the forward sweep without its builder (its time minus the builder's);
- ``backward sweep``: the backward sweep without the covariate products (the same way); its
  input is copied before the timer starts;
- ``covariate products``: the gradient's products of the summands with the covariates;
- ``gamma copied out``: the block's gamma into the time-major output;
- ``all``: the whole kernel on the block, and ``homogeneous`` the homogeneous sweeps on it.

Results go to ``benchmarks/results/time_varying_parts.json`` (with the commit), and a Markdown
table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np

from hmm_pyro._io import atomic_write
from hmm_pyro.kernels._numba import regression, regression_build
from hmm_pyro.kernels._numba.lanes import lane_sweeps, prepare_emissions

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere: benchmarks._timing

from benchmarks._timing import provenance  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "time_varying_parts.json"
LANES, STEPS, COVARIATES = 24, 500, 3


def _parts(num_states: int) -> dict[str, tuple[Callable[[], None], Callable[[], None] | None]]:
    """Each part as (timed call, untimed set-up or None) on one block of lanes."""
    rng = np.random.default_rng(0)
    n, steps, p, k = LANES, STEPS, COVARIATES, num_states
    coefficients = 0.5 * rng.standard_normal((k, k, p))
    design = rng.standard_normal((n, steps, p))
    design[..., 0] = 1.0
    log_lik = rng.standard_normal((n, steps, k))
    log_pi = np.log(rng.dirichlet(np.ones(k), size=n))
    log_A = np.log(rng.dirichlet(np.ones(k), size=k))[None]
    lengths = np.full(n, steps, dtype=np.int64)
    chunk, chunks = regression._layout(steps, k, n, regression.CHUNK_BYTES)
    emis, alpha = np.empty((steps, k, n)), np.empty((steps, k, n))
    scale, gamma = np.empty((steps, n)), np.empty((steps, k, n))
    entries = np.empty((chunks, k, k, chunk, n))
    xt, sums = np.empty((chunks, p, chunk, n)), np.empty(chunk * n)
    summands, grad = np.empty((k, k, chunk, n)), np.zeros((k, k, p))
    log_z, dead, weights = np.empty(n), np.zeros(n, dtype=np.bool_), np.ones(n)
    work = np.empty_like(alpha)

    def table() -> None:
        prepare_emissions(log_pi, log_lik, lengths, emis, log_z, dead)
        regression._exp_in_place(emis)

    def build() -> None:
        for c in range(chunks):
            regression_build.build_chunk(
                coefficients, xt[c].reshape(p, chunk * n), entries[c].reshape(k, k, -1), sums
            )

    def forward() -> None:
        regression._forward(
            emis, coefficients, xt, entries, sums, lengths, alpha, scale, log_z, dead
        )

    def backward() -> None:
        regression._backward(emis, entries, xt, weights, lengths, work, scale, summands, grad)

    def products() -> None:
        for c in range(chunks):
            regression._covariate_products(
                summands.reshape(k, k, -1), xt[c].reshape(p, chunk * n), grad
            )

    def fresh() -> None:
        work[:] = alpha

    return {
        "emission table": (table, None),
        "design copy": (lambda: regression_build.design_block(design, 0, lengths, xt), None),
        "matrices built": (build, None),
        "forward sweep with builder": (forward, None),
        "backward sweep with products": (backward, fresh),
        "covariate products": (products, None),
        "gamma copied out": (lambda: regression._lanes_out(alpha, 0, gamma), None),
        "all": (
            lambda: regression.regression_sweeps(
                log_pi, coefficients[None], design, log_lik, lengths, n
            ),
            None,
        ),
        "homogeneous": (lambda: lane_sweeps(log_pi, log_A, log_lik, lengths), None),
    }


def run(num_states: int, repeats: int) -> dict[str, float]:
    """Best ns per sequence-step of every part (see the module docstring)."""
    parts = _parts(num_states)
    for call, setup in parts.values():  # compile, and fill the arrays in the kernel's order
        if setup is not None:
            setup()
        call()
    best = dict.fromkeys(parts, float("inf"))
    for _ in range(repeats):
        for name, (call, setup) in parts.items():
            if setup is not None:
                setup()
            began = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - began)
    per_step = {name: 1e9 * value / (LANES * STEPS) for name, value in best.items()}
    per_step["forward sweep"] = per_step["forward sweep with builder"] - per_step["matrices built"]
    per_step["backward sweep"] = (
        per_step["backward sweep with products"] - per_step["covariate products"]
    )
    return per_step


COLUMNS = [
    "emission table",
    "design copy",
    "matrices built",
    "forward sweep",
    "backward sweep",
    "covariate products",
    "gamma copied out",
    "all",
    "homogeneous",
]


def main() -> None:
    """Time the parts for each number of states, write the JSON and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, nargs="+", default=[3, 8])
    parser.add_argument("--repeats", type=int, default=31)
    args = parser.parse_args()
    numba.set_num_threads(1)
    load = list(os.getloadavg())
    results = {str(k): run(k, args.repeats) for k in args.states}
    record = {
        **provenance("benchmarks/time_varying_parts.py", sys.argv[1:]),
        "block": {"lanes": LANES, "steps": STEPS, "design_columns": COVARIATES},
        "load_average_at_start": load,
        "load_average_at_end": list(os.getloadavg()),
        "ns_per_step": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(RESULTS) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    print("| states | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for states, row in results.items():
        print(f"| {states} | " + " | ".join(f"{row[name]:.1f}" for name in COLUMNS) + " |")


if __name__ == "__main__":
    main()
