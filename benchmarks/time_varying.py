"""Benchmark: the time-varying kernel (one transition matrix per step) against the homogeneous one.

Usage::

    PYTHONPATH=. python benchmarks/time_varying.py [--repeats 9] [--threads 1]

For each workload (sequences x steps x states), the value and gradient of the summed log
likelihood through the public kernel (``kernels.log_likelihood`` and ``torch.autograd.grad``
with respect to every input), numba backend:

- homogeneous: ``log_A (K, K)``, gradient ``(K, K)``;
- time-varying: ``log_A (N, T, K, K)``, one matrix per step, gradient ``(N, T, K, K)``.

Reported: CPU time (``time.process_time``, not wall time: the machine is shared with other
processes) per call and per sequence-step, the best of ``repeats`` rounds of a few calls each,
the two kernels alternating within a round; and their ratio. Also the same for the numba sweeps
alone (no torch conversion, no autograd). Results go to
``benchmarks/results/time_varying.json``, and a Markdown table is printed.

The time-varying kernel reads ``K**2`` inputs per step instead of ``K`` (and exponentiates
them) and writes a ``K**2`` gradient per step: it cannot be as cheap per step as the
homogeneous kernel, whose matrix stays in registers.
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
from hmm_pyro.kernels._numba.lanes import forward_backward_lanes
from hmm_pyro.kernels._numba.varying import varying_forward_backward

RESULTS = Path(__file__).resolve().parent / "results" / "time_varying.json"
WORKLOADS = [(20, 500, 2), (20, 500, 3), (100, 1000, 3), (100, 1000, 5), (50, 500, 8)]


def _inputs(num_sequences: int, num_steps: int, num_states: int) -> dict:
    generator = torch.Generator().manual_seed(0)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.float64, generator=generator)

    return {
        "log_pi": normal(num_sequences, num_states).log_softmax(-1).requires_grad_(),
        "log_A": normal(num_states, num_states).log_softmax(-1).requires_grad_(),
        "log_A_steps": normal(num_sequences, num_steps, num_states, num_states)
        .log_softmax(-1)
        .requires_grad_(),
        "log_lik": normal(num_sequences, num_steps, num_states).requires_grad_(),
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


def run_workload(num_sequences: int, num_steps: int, num_states: int, repeats: int) -> dict:
    """Time both kernels on one workload."""
    x = _inputs(num_sequences, num_steps, num_states)

    def homogeneous() -> None:
        value = kernels.log_likelihood(x["log_pi"], x["log_A"], x["log_lik"]).sum()
        torch.autograd.grad(value, (x["log_pi"], x["log_A"], x["log_lik"]))

    def varying() -> None:
        value = kernels.log_likelihood(
            x["log_pi"], x["log_A_steps"], x["log_lik"], time_varying=True
        ).sum()
        torch.autograd.grad(value, (x["log_pi"], x["log_A_steps"], x["log_lik"]))

    arrays = {name: value.detach().numpy() for name, value in x.items()}
    lengths = np.full(num_sequences, num_steps, dtype=np.int64)
    one_matrix = arrays["log_A"][None]

    def homogeneous_sweeps() -> None:
        forward_backward_lanes(arrays["log_pi"], one_matrix, arrays["log_lik"], lengths)

    def varying_sweeps() -> None:
        varying_forward_backward(
            arrays["log_pi"], arrays["log_A_steps"], arrays["log_lik"], lengths
        )

    calls = max(1, int(2e6 // (num_sequences * num_steps * num_states**2)))
    seconds = _best_seconds(
        {
            "homogeneous": homogeneous,
            "time_varying": varying,
            "homogeneous_sweeps": homogeneous_sweeps,
            "time_varying_sweeps": varying_sweeps,
        },
        repeats,
        calls,
    )
    steps = num_sequences * num_steps
    return {
        "sequences": num_sequences,
        "steps": num_steps,
        "states": num_states,
        "calls_per_round": calls,
        "cpu_ms_per_call": {name: 1e3 * value for name, value in seconds.items()},
        "cpu_ns_per_step": {name: 1e9 * value / steps for name, value in seconds.items()},
        "ratio_value_and_gradient": seconds["time_varying"] / seconds["homogeneous"],
        "ratio_sweeps_only": seconds["time_varying_sweeps"] / seconds["homogeneous_sweeps"],
    }


def main() -> None:
    """Run the workloads, write the JSON results and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    results = [run_workload(*workload, args.repeats) for workload in WORKLOADS]
    record = {
        "note": "CPU time (process_time), best of the rounds; the machine was shared with other "
        "processes, so wall times would not be meaningful",
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_average_at_start": list(os.getloadavg()),
            "torch_threads": args.threads,
            "numba_threads": args.threads,
        },
        "versions": {
            "hmm_pyro": hmm_pyro.__version__,
            "torch": torch.__version__,
            "numba": numba.__version__,
            "numpy": np.__version__,
        },
        "repeats": args.repeats,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(RESULTS) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    print("| N x T x K | homogeneous ns/step | time-varying ns/step | ratio | sweeps-only ratio |")
    print("|---|---|---|---|---|")
    for row in results:
        per_step = row["cpu_ns_per_step"]
        print(
            f"| {row['sequences']} x {row['steps']} x {row['states']} "
            f"| {per_step['homogeneous']:.1f} | {per_step['time_varying']:.1f} "
            f"| {row['ratio_value_and_gradient']:.2f} | {row['ratio_sweeps_only']:.2f} |"
        )


if __name__ == "__main__":
    main()
