"""Benchmark: time-varying transitions against the homogeneous kernel.

Usage::

    PYTHONPATH=. python benchmarks/time_varying.py [--repeats 9] [--threads 1] [--covariates 3]

For each workload (sequences x steps x states), the value and the gradient of the summed log
likelihood through the public kernels (``torch.autograd.grad`` with respect to every input that
a fit differentiates), numba backend:

- ``homogeneous``: ``kernels.log_likelihood`` with ``log_A (K, K)``; gradients with respect to
  ``log_pi``, ``log_A`` and the emission table ``log_lik``;
- ``regression``: what a ``CovariateHMM`` fit runs, ``kernels.regression_log_likelihood``
  with transition rows ``softmax(x_t beta_i)`` from a design ``(N, T, P)`` (intercept and
  ``P - 1`` covariates) and coefficients ``(K, K, P)``; gradients with respect to ``log_pi``,
  the coefficients and ``log_lik``. This is the like-for-like comparison: both sides return
  what the fit needs;
- ``regression_unfused``: the same gradients by the route the model took before the fused
  kernel, ``log_A = log_softmax(x_t beta)`` in torch, ``kernels.log_likelihood(...,
  time_varying=True)``, autograd back to the coefficients;
- ``log_A_given``: ``kernels.log_likelihood(..., time_varying=True)`` on a given
  ``log_A (N, T, K, K)``, gradient ``(N, T, K, K)`` (the generic time-varying kernel).

- ``exponentials``: the ``K (K - 1)`` exponentials per step that the regression kernel takes
  and the homogeneous one does not, alone: :func:`fast_exp2` over that many logits in a loop
  compiled as the kernel's matrix builder compiles its own (widest vectors), a chunk that stays
  in the cache at a time. ``homogeneous + exponentials`` over ``homogeneous`` is what the
  regression kernel's ratio cannot go below with its exponentials at this cost, whatever the
  rest of it costs.

Reported: CPU time (``time.process_time``, not wall time: the machine is shared with other
processes) per call and per sequence-step, the best of ``repeats`` rounds of a few calls each,
all routes alternating within a round; and the ratios to ``homogeneous``. Also the numba sweeps
alone (no torch conversion, no autograd). Results go to ``benchmarks/results/time_varying.json``,
and a Markdown table is printed.

What a time-varying step costs beyond a homogeneous one is inherent: ``K (K - 1)``
exponentials per step (a row's softmax), and ``K**2`` numbers per step stored by the forward
sweep and read back by the backward one (or recomputed), against one ``K x K`` matrix that
stays in the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np
import torch

import hmm_pyro
from hmm_pyro import kernels
from hmm_pyro._io import atomic_write
from hmm_pyro.kernels._numba.fastexp import fast_exp2, prefer_wide_vectors
from hmm_pyro.kernels._numba.lanes import forward_backward_lanes
from hmm_pyro.kernels._numba.regression import regression_sweeps
from hmm_pyro.kernels._numba.varying import varying_forward_backward

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere: benchmarks._timing

from benchmarks._timing import provenance  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "time_varying.json"
WORKLOADS = [(20, 500, 2), (20, 500, 3), (100, 1000, 3), (100, 1000, 5), (50, 500, 8)]


def _inputs(num_sequences: int, num_steps: int, num_states: int, num_covariates: int) -> dict:
    generator = torch.Generator().manual_seed(0)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.float64, generator=generator)

    design = normal(num_sequences, num_steps, num_covariates)
    design[..., 0] = 1.0
    return {
        "log_pi": normal(num_sequences, num_states).log_softmax(-1).requires_grad_(),
        "log_A": normal(num_states, num_states).log_softmax(-1).requires_grad_(),
        "log_A_steps": normal(num_sequences, num_steps, num_states, num_states)
        .log_softmax(-1)
        .requires_grad_(),
        "log_lik": normal(num_sequences, num_steps, num_states).requires_grad_(),
        "coefficients": (0.5 * normal(num_states, num_states, num_covariates)).requires_grad_(),
        "design": design,
    }


def _best_seconds(functions: dict, repeats: int, calls: int) -> dict[str, float]:
    """Best CPU seconds per call of each function, the functions alternating in each round."""
    best = dict.fromkeys(functions, float("inf"))
    for function in functions.values():
        function()  # compile / warm up
    for _ in range(repeats):
        for name, function in functions.items():
            began = time.process_time()
            for _ in range(calls):
                function()
            best[name] = min(best[name], (time.process_time() - began) / calls)
    return best


def _routes(x: dict) -> dict:
    """Value and gradient of each route (see the module docstring)."""

    def homogeneous() -> None:
        value = kernels.log_likelihood(x["log_pi"], x["log_A"], x["log_lik"]).sum()
        torch.autograd.grad(value, (x["log_pi"], x["log_A"], x["log_lik"]))

    def regression() -> None:
        value = kernels.regression_log_likelihood(
            x["log_pi"], x["coefficients"], x["design"], x["log_lik"]
        ).sum()
        torch.autograd.grad(value, (x["log_pi"], x["coefficients"], x["log_lik"]))

    def regression_unfused() -> None:
        log_A = kernels.regression_log_transitions(x["coefficients"], x["design"])
        value = kernels.log_likelihood(x["log_pi"], log_A, x["log_lik"], time_varying=True)
        torch.autograd.grad(value.sum(), (x["log_pi"], x["coefficients"], x["log_lik"]))

    def log_A_given() -> None:
        value = kernels.log_likelihood(
            x["log_pi"], x["log_A_steps"], x["log_lik"], time_varying=True
        ).sum()
        torch.autograd.grad(value, (x["log_pi"], x["log_A_steps"], x["log_lik"]))

    return {
        "homogeneous": homogeneous,
        "regression": regression,
        "regression_unfused": regression_unfused,
        "log_A_given": log_A_given,
    }


@numba.njit(nogil=True, error_model="numpy", fastmath={"contract"})
def _exponentiate(logits: np.ndarray, out: np.ndarray, rounds: int) -> None:
    """``out = 2**logits`` ``rounds`` times over (a chunk in the cache, as the builder's)."""
    prefer_wide_vectors()
    for _ in range(rounds):
        for q in range(logits.size):
            out[q] = fast_exp2(logits[q])


def _exponentials(num_sequences: int, num_steps: int, num_states: int) -> dict:
    """The ``K (K - 1)`` exponentials per step alone (see the module docstring)."""
    chunk = 2**14  # 128 KiB of float64, the kernel's chunk size
    total = num_sequences * num_steps * num_states * (num_states - 1)
    rounds, rest = divmod(total, chunk)
    logits = np.random.default_rng(0).uniform(-3.0, 3.0, chunk)
    out = np.empty(chunk)

    def exponentials() -> None:
        _exponentiate(logits, out, rounds)
        _exponentiate(logits[:rest], out[:rest], 1)

    return {"exponentials": exponentials}


def _sweeps(x: dict) -> dict:
    """The numba sweeps alone, on float64 arrays (no torch, no autograd)."""
    arrays = {name: value.detach().numpy() for name, value in x.items()}
    num_sequences, num_steps, _ = arrays["log_lik"].shape
    lengths = np.full(num_sequences, num_steps, dtype=np.int64)
    one_matrix = arrays["log_A"][None]
    one_set = arrays["coefficients"][None]

    def homogeneous_sweeps() -> None:
        forward_backward_lanes(arrays["log_pi"], one_matrix, arrays["log_lik"], lengths)

    def regression_sweeps_only() -> None:
        regression_sweeps(
            arrays["log_pi"], one_set, arrays["design"], arrays["log_lik"], lengths, num_sequences
        )

    def log_A_given_sweeps() -> None:
        varying_forward_backward(
            arrays["log_pi"], arrays["log_A_steps"], arrays["log_lik"], lengths
        )

    return {
        "homogeneous_sweeps": homogeneous_sweeps,
        "regression_sweeps": regression_sweeps_only,
        "log_A_given_sweeps": log_A_given_sweeps,
    }


def run_workload(
    num_sequences: int, num_steps: int, num_states: int, num_covariates: int, repeats: int
) -> dict:
    """Time every route on one workload."""
    x = _inputs(num_sequences, num_steps, num_states, num_covariates)
    calls = max(1, int(2e6 // (num_sequences * num_steps * num_states**2)))
    exponentials = _exponentials(num_sequences, num_steps, num_states)
    seconds = _best_seconds({**_routes(x), **_sweeps(x), **exponentials}, repeats, calls)
    steps = num_sequences * num_steps
    ratios = {
        name: seconds[name] / seconds["homogeneous"]
        for name in ("regression", "regression_unfused", "log_A_given")
    }
    ratios.update(
        {
            name: seconds[name] / seconds["homogeneous_sweeps"]
            for name in ("regression_sweeps", "log_A_given_sweeps")
        }
    )
    ratios["homogeneous_plus_exponentials"] = (
        seconds["homogeneous"] + seconds["exponentials"]
    ) / seconds["homogeneous"]
    return {
        "sequences": num_sequences,
        "steps": num_steps,
        "states": num_states,
        "design_columns": num_covariates,
        "calls_per_round": calls,
        "cpu_ms_per_call": {name: 1e3 * value for name, value in seconds.items()},
        "cpu_ns_per_step": {name: 1e9 * value / steps for name, value in seconds.items()},
        "ratio_to_homogeneous": ratios,
    }


def main() -> None:
    """Run the workloads, write the JSON results and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--covariates", type=int, default=3, help="design columns P (intercept included)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    load = list(os.getloadavg())
    results = [run_workload(*workload, args.covariates, args.repeats) for workload in WORKLOADS]
    record = {
        "note": "CPU time (process_time), best of the rounds, the routes alternating within "
        "each round; the machine was shared with other processes, so wall times would not be "
        "meaningful",
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": load,
            "load_average_at_end": list(os.getloadavg()),
            "torch_threads": args.threads,
            "numba_threads": args.threads,
        },
        "versions": {
            "hmm_pyro": hmm_pyro.__version__,
            "torch": torch.__version__,
            "numba": numba.__version__,
            "numpy": np.__version__,
        },
        **provenance("benchmarks/time_varying.py", sys.argv[1:]),
        "repeats": args.repeats,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(RESULTS) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    print(
        "| N x T x K (P) | homogeneous ns/step | regression ns/step | ratio | unfused ratio "
        "| log_A given ratio | sweeps-only ratio (regression) | exponentials ns/step "
        "| (homogeneous + exponentials) / homogeneous |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in results:
        per_step, ratio = row["cpu_ns_per_step"], row["ratio_to_homogeneous"]
        print(
            f"| {row['sequences']} x {row['steps']} x {row['states']} ({row['design_columns']}) "
            f"| {per_step['homogeneous']:.1f} | {per_step['regression']:.1f} "
            f"| {ratio['regression']:.2f} | {ratio['regression_unfused']:.2f} "
            f"| {ratio['log_A_given']:.2f} | {ratio['regression_sweeps']:.2f} "
            f"| {per_step['exponentials']:.1f} | {ratio['homogeneous_plus_exponentials']:.2f} |"
        )


if __name__ == "__main__":
    main()
