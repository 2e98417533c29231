"""Benchmark: the NUTS run-time estimate that chooses worker processes, against the time taken.

Usage::

    PYTHONPATH=. python benchmarks/parallel_estimate.py [--chains 2] [--warmup 150] \
        [--draws 150] [--workloads small,reference,large,gaussian] [--out PATH]

``fit_nuts(parallel=None)`` runs its chains in worker processes when
``hmm_pyro.inference.nuts._estimated_sequential_seconds`` (iterations x leapfrog steps per
iteration, modelled from the number of parameters, x seconds per step, measured by a short pilot
run) reaches ``PARALLEL_MIN_SECONDS``. For each workload this script computes that estimate
exactly as ``fit_nuts`` does (same start, same settings), then runs the chains one after the
other in this process (``parallel=False``, what the estimate predicts) and records the sampling
time, the leapfrog steps actually taken per iteration (warm-up and draws) and the ratio
estimate / measured. One torch and one numba thread, as the chains run.

Workloads (simulated, seed 1): ``small`` categorical K=3, V=5, 10 x 200 (the README's
``data.csv``); ``reference`` categorical K=3, V=5, 20 x 500; ``large`` categorical K=6, V=8,
30 x 300; ``gaussian`` K=3, 10 x 300. Results (with the load average before and after each run:
on a shared machine the times are noisy, the step counts are not) go to
``benchmarks/results/parallel_estimate.json`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import ClassVar

import numba
import numpy as np
import torch

import hmm_pyro
from hmm_pyro import HMM, Categorical, Gaussian, Prior, fit_nuts, simulate
from hmm_pyro._io import atomic_write
from hmm_pyro.inference import nuts
from hmm_pyro.inference.coordinates import Coordinates
from hmm_pyro.learning import initial_params
from hmm_pyro.starts import derive_seeds

RESULTS = Path(__file__).resolve().parent / "results" / "parallel_estimate.json"


def _sticky(states: int) -> torch.Tensor:
    A = np.full((states, states), 0.2 / (states - 1))
    np.fill_diagonal(A, 0.8)
    return torch.tensor(A)


def _workload(name: str) -> tuple[HMM, dict[str, torch.Tensor], int, int]:
    """``(hmm, true parameters, sequences, length)``."""
    rng = np.random.default_rng(0)
    if name == "gaussian":
        states = 3
        params = {
            "pi": torch.full((states,), 1 / states, dtype=torch.float64),
            "A": _sticky(states),
            "mu": torch.tensor([-2.0, 0.0, 2.0], dtype=torch.float64),
            "sigma": torch.tensor([1.0, 0.7, 1.3], dtype=torch.float64),
        }
        return HMM(states, Gaussian(), prior=Prior(stickiness=5.0)), params, 10, 300
    states, symbols, sequences, length = {
        "small": (3, 5, 10, 200),
        "reference": (3, 5, 20, 500),
        "large": (6, 8, 30, 300),
    }[name]
    params = {
        "pi": torch.full((states,), 1 / states, dtype=torch.float64),
        "A": _sticky(states),
        "B": torch.tensor(rng.dirichlet(np.full(symbols, 0.5), size=states)),
    }
    hmm = HMM(states, Categorical(num_symbols=symbols), prior=Prior(stickiness=5.0))
    return hmm, params, sequences, length


class _Counting(nuts.Potential):
    """The chains' potential; the instances are kept to read their evaluation counts."""

    created: ClassVar[list[_Counting]] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _Counting.created.append(self)


def _run(name: str, chains: int, warmup: int, draws: int, seed: int) -> dict:
    hmm, params, sequences, length = _workload(name)
    data, _ = simulate(hmm, params, [length] * sequences, seed=1)
    start = initial_params(hmm, data, "auto", seed=derive_seeds(seed, chains)[0])
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    estimate = nuts._estimated_sequential_seconds(
        hmm, data, start, warmup + draws, chains, target_accept=0.8
    )
    estimate_cost = time.perf_counter() - began
    _Counting.created.clear()
    original, nuts.Potential = nuts.Potential, _Counting
    try:
        fit = fit_nuts(
            hmm,
            data,
            chains=chains,
            warmup=warmup,
            draws=draws,
            seed=seed,
            parallel=False,
            progress=False,
            relabel=False,
        )
    finally:
        nuts.Potential = original
    measured = float(fit.attrs["sampling_time"])
    evaluations = sum(potential.num_evaluations for potential in _Counting.created)
    draw_steps = float(fit.idata.sample_stats["n_steps"].values.mean())
    total_iterations = chains * (warmup + draws)
    warmup_steps = (evaluations - draw_steps * chains * draws) / max(1, chains * warmup)
    return {
        "workload": name,
        "states": hmm.num_states,
        "sequences": sequences,
        "length": length,
        "parameters": Coordinates(hmm).size,
        "chains": chains,
        "warmup": warmup,
        "draws": draws,
        "estimated_seconds": estimate,
        "estimate_cost_seconds": estimate_cost,
        "measured_seconds": measured,
        "ratio_estimate_over_measured": estimate / measured,
        "modelled_steps_per_iteration": nuts._STEPS_SCALE * Coordinates(hmm).size ** 0.5,
        "steps_per_iteration": evaluations / total_iterations,
        "steps_per_warmup_iteration": warmup_steps,
        "steps_per_draw": draw_steps,
        "measured_seconds_per_step": measured / evaluations,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--draws", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workloads", default="small,reference,large,gaussian")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    rows = []
    for name in args.workloads.split(","):
        row = _run(name, args.chains, args.warmup, args.draws, args.seed)
        rows.append(row)
        print(
            f"{name:10s} P={row['parameters']:3d}  estimate {row['estimated_seconds']:7.1f} s  "
            f"measured {row['measured_seconds']:7.1f} s  ratio "
            f"{row['ratio_estimate_over_measured']:.2f}  steps/iteration "
            f"{row['steps_per_iteration']:.1f} (modelled {row['modelled_steps_per_iteration']:.1f})"
            f"  load {row['load_average_before']:.1f}",
            flush=True,
        )
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "hmm_pyro": hmm_pyro.__version__,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cores_available": len(os.sched_getaffinity(0)),
            "torch_threads": 1,
            "numba_threads": 1,
        },
        "settings": {"chains": args.chains, "warmup": args.warmup, "draws": args.draws},
        "parallel_min_seconds": nuts.PARALLEL_MIN_SECONDS,
        "results": rows,
        "max_ratio": max(row["ratio_estimate_over_measured"] for row in rows),
        "min_ratio": min(row["ratio_estimate_over_measured"] for row in rows),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out) as handle:
        handle.write(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
