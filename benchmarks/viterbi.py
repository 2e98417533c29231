"""Benchmark: Viterbi decoding, numba route against the torch loop (not a timed test).

Usage::

    PYTHONPATH=. python benchmarks/viterbi.py

Random float64 inputs (one shared ``log_A``), for one long sequence and two batches; CPU time of
``hmm_pyro.kernels.viterbi(..., backend=...)``, best of 3 calls after a warm-up, torch and numba
on one thread. Writes ``benchmarks/results/viterbi.json``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from hmm_pyro import kernels

RESULTS = Path(__file__).resolve().parent / "results" / "viterbi.json"
WORKLOADS = [(1, 7856, 2), (20, 500, 3), (100, 1000, 5)]


def best_cpu_seconds(function, repeats: int = 3) -> float:
    function()
    best = float("inf")
    for _ in range(repeats):
        began = time.process_time()
        function()
        best = min(best, time.process_time() - began)
    return best


def main() -> None:
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    rows = []
    for sequences, steps, states in WORKLOADS:
        log_pi = torch.randn(states, generator=generator).double().log_softmax(-1)
        log_A = torch.randn(states, states, generator=generator).double().log_softmax(-1)
        log_lik = torch.randn(sequences, steps, states, generator=generator).double()
        fast = kernels.viterbi(log_pi, log_A, log_lik, backend="numba")
        slow = kernels.viterbi(log_pi, log_A, log_lik, backend="torch")
        assert torch.equal(fast[0], slow[0])
        inputs = (log_pi, log_A, log_lik)
        seconds = {
            backend: best_cpu_seconds(
                lambda backend=backend, inputs=inputs: kernels.viterbi(*inputs, backend=backend)
            )
            for backend in ("numba", "torch")
        }
        rows.append(
            {
                "sequences": sequences,
                "steps": steps,
                "states": states,
                "cpu_ms": {name: 1e3 * value for name, value in seconds.items()},
                "torch_over_numba": seconds["torch"] / seconds["numba"],
            }
        )
        print(rows[-1], flush=True)
    payload = {
        "note": "CPU time, best of 3 after a warm-up; paths of both routes identical",
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "torch": torch.__version__,
        "results": rows,
    }
    RESULTS.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
