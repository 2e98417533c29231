"""Benchmark: one long sequence (N = 1, T = 10^6), value + gradient on 1 thread and on 2.

Usage::

    PYTHONPATH=. python benchmarks/long_sequence.py [--steps 1000000] [--rounds 5]

For each workload (the table route with ``K`` = 2, 3, 5, and the categorical symbol route with
``K`` = 2, 3, 5 and 4 symbols), the value and gradient of the log likelihood through the public
kernels, numba backend (``kernels.log_likelihood`` on a ``(1, T, K)`` table, and
``kernels.categorical_log_likelihood`` on prepared ``SymbolLanes``, then ``torch.autograd.grad``
with respect to every input):

- ``one_thread``: ``numba.set_num_threads(1)``: the sequential lane sweeps;
- ``two_threads``: ``numba.set_num_threads(2)``: the forward and backward recursions on two
  threads at once (:mod:`hmm_pyro.kernels._numba.split`).

And the numba sweeps alone (no torch): ``lanes`` (the sequential kernel), ``split_serial`` (the
split passes one after the other, one thread) and ``split_threads`` (two threads), which
separate what the second thread gains from what the single-sequence passes gain by themselves.

Beside each workload, a control: two independent forward passes one after the other against
on two threads (``control_two_vs_one``, 2 on two idle cores) shows what a second thread could
gain at that moment.

On a shared machine the wall-time ratios say little (the control shows how little); so each
workload also records CPU times: ``one_thread_cpu_ms`` (the one-thread call, this thread's CPU
clock) and ``two_threads_critical_path_cpu_ms`` (the two-thread call's critical path: this
thread's CPU time plus, at each pairing of passes, how much longer the other thread's part ran),
and their ratio ``predicted_two_vs_one_thread``: the wall-time ratio to expect on two idle cores,
less memory contention and thread hand-over.

With one numba thread the dispatch runs the split passes one after the other (``split_serial``),
so ``two_vs_one_thread`` is what the second thread gains; ``split_serial_vs_lanes`` is what a
batch of one gained by leaving the lane sweeps.

A second part, ``crossover``, times the three sweeps (table route, ``K = 2``) on short sequences
to place :data:`~hmm_pyro.kernels._numba.split.SPLIT_MIN_WORK` (split passes against the lane
sweeps) and :data:`~hmm_pyro.kernels._numba.split.THREADS_MIN_WORK` (two threads against one).

Wall time (``time.perf_counter``), the best of ``rounds`` rounds, the variants interleaved within
each round; the one-minute load average (``os.getloadavg``) is recorded beside each workload,
before and after: with other processes on the cores, the two-thread times and ratios are
depressed. Results go to ``benchmarks/results/long_sequence.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
import torch

import hmm_pyro
from hmm_pyro import kernels
from hmm_pyro._io import atomic_write
from hmm_pyro.kernels._numba import lanes, split, symbols

RESULTS = Path(__file__).resolve().parent / "results" / "long_sequence.json"
STATES = (2, 3, 5)
NUM_SYMBOLS = 4
CROSSOVER_STEPS = (2**10, 2**12, 2**14, 2**15, 2**16, 2**17)


def _table_workload(steps: int, num_states: int) -> tuple[Callable, dict[str, Callable]]:
    generator = torch.Generator().manual_seed(num_states)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.float64, generator=generator)

    inputs = [
        normal(1, num_states).log_softmax(-1).requires_grad_(),
        normal(num_states, num_states).log_softmax(-1).requires_grad_(),
        normal(1, steps, num_states).requires_grad_(),
    ]

    def public() -> None:
        value = kernels.log_likelihood(*inputs, backend="numba")
        torch.autograd.grad(value.sum(), inputs)

    arrays = [np.ascontiguousarray(x.detach().numpy()) for x in inputs]
    arrays[1] = arrays[1][None]
    arrays.append(np.array([steps]))
    sweeps = {
        "lanes": lambda: lanes.forward_backward_lanes(*arrays),
        "split_serial": lambda: split.split_sweeps(*arrays, threads=False),
        "split_threads": lambda: split.split_sweeps(*arrays, threads=True),
    }
    return public, sweeps


def _categorical_workload(steps: int, num_states: int) -> tuple[Callable, dict[str, Callable]]:
    generator = torch.Generator().manual_seed(10 + num_states)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.float64, generator=generator)

    inputs = [
        normal(num_states).log_softmax(-1).requires_grad_(),
        normal(num_states, num_states).log_softmax(-1).requires_grad_(),
        normal(num_states, NUM_SYMBOLS).log_softmax(-1).requires_grad_(),
    ]
    values = torch.randint(0, NUM_SYMBOLS, (1, steps), generator=generator)
    prepared = kernels.SymbolLanes(values, NUM_SYMBOLS)

    def public() -> None:
        value = kernels.categorical_log_likelihood(*inputs, prepared, backend="numba")
        torch.autograd.grad(value.sum(), inputs)

    arrays = [np.ascontiguousarray(x.detach().numpy()) for x in inputs]
    arrays += [prepared.lanes, prepared.lane_lengths]
    sweeps = {
        "lanes": lambda: symbols.categorical_lanes(*arrays, True),
        "split_serial": lambda: split.split_categorical(*arrays, threads=False),
        "split_threads": lambda: split.split_categorical(*arrays, threads=True),
    }
    return public, sweeps


def _control(steps: int) -> dict[str, Callable[[], None]]:
    """Two independent forward passes (``K = 2``) one after the other, and on two threads.

    Their ratio is what a second thread can gain at the moment of measurement (2 on two idle
    cores): the yardstick for ``two_vs_one_thread`` on a shared machine.
    """
    rng = np.random.default_rng(0)
    emis = rng.uniform(0.1, 1.0, size=(steps, 2))
    pi, trans = (1.0, 1.0), (0.9, 0.1, 0.2, 0.8)
    outputs = [(np.empty((steps, 2)), np.empty(steps)) for _ in range(2)]

    def one(part: int) -> None:
        split._forward(pi, trans, emis, None, steps, *outputs[part])

    def threaded() -> None:
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(one, 1)
            one(0)
            future.result()

    return {"control_serial": lambda: (one(0), one(1)), "control_threads": threaded}


class _CriticalPath:
    """CPU time along the critical path of a call that pairs its passes on two threads.

    While active, :func:`hmm_pyro.kernels._numba.split._pair` times each of its two parts on
    its own thread's CPU clock (``time.thread_time``); a call's critical path is this thread's
    CPU time plus, for each pair, how much longer the other thread's part ran. On two idle
    cores that is the call's wall time, less memory contention and hand-over latency: a
    prediction that the machine's load does not disturb much (CPU clocks, not wall clocks).
    """

    def __init__(self) -> None:
        self.waited = 0.0
        self._original = split._pair

    def __enter__(self) -> _CriticalPath:
        def timed(pool, here, there):
            if pool is None:
                return self._original(pool, here, there)
            clocks = {}

            def clocked(name: str, function: Callable) -> Callable:
                def run():
                    began = time.thread_time()
                    try:
                        return function()
                    finally:
                        clocks[name] = time.thread_time() - began

                return run

            result = self._original(pool, clocked("here", here), clocked("there", there))
            self.waited += max(0.0, clocks["there"] - clocks["here"])
            return result

        split._pair = timed
        return self

    def __exit__(self, *exc: object) -> None:
        split._pair = self._original

    def best(self, function: Callable[[], None], rounds: int) -> float:
        """Smallest critical path (seconds) of ``function`` over ``rounds`` calls."""
        best = float("inf")
        for _ in range(rounds):
            self.waited = 0.0
            began = time.thread_time()
            function()
            best = min(best, time.thread_time() - began + self.waited)
        return best


def _best_cpu(function: Callable[[], None], rounds: int) -> float:
    """Smallest CPU time (seconds, this thread) of ``function`` over ``rounds`` calls."""
    best = float("inf")
    for _ in range(rounds):
        began = time.thread_time()
        function()
        best = min(best, time.thread_time() - began)
    return best


def _with_threads(count: int, function: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        numba.set_num_threads(count)
        try:
            function()
        finally:
            numba.set_num_threads(previous)

    previous = numba.get_num_threads()
    return run


def _measure(variants: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """Best wall seconds of each variant over ``rounds`` interleaved rounds (after a warm-up)."""
    for function in variants.values():
        function()  # compile, allocate
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, function in variants.items():
            began = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - began)
    return best


def main(argv: list[str] | None = None) -> None:
    """Run the workloads and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10**6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if numba.config.NUMBA_NUM_THREADS < 2:
        raise SystemExit("this benchmark needs numba with at least 2 threads")
    torch.set_num_threads(1)
    began = time.perf_counter()
    rows = []
    for route, build in (("table", _table_workload), ("categorical", _categorical_workload)):
        for num_states in STATES:
            public, sweeps = build(args.steps, num_states)
            load_before = os.getloadavg()[0]
            variants = {
                "one_thread": _with_threads(1, public),
                "two_threads": _with_threads(2, public),
                **{name: _with_threads(1, function) for name, function in sweeps.items()},
                **_control(args.steps),
            }
            best = _measure(variants, args.rounds)
            serial_cpu = _best_cpu(variants["one_thread"], args.rounds)
            with _CriticalPath() as path:
                critical = path.best(variants["two_threads"], args.rounds)
            row = {
                "route": route,
                "states": num_states,
                "steps": args.steps,
                "load_average_before": round(load_before, 2),
                "load_average_after": round(os.getloadavg()[0], 2),
                **{f"{name}_ms": round(1e3 * seconds, 2) for name, seconds in best.items()},
                "two_vs_one_thread": round(best["one_thread"] / best["two_threads"], 2),
                "split_threads_vs_serial": round(best["split_serial"] / best["split_threads"], 2),
                "split_serial_vs_lanes": round(best["lanes"] / best["split_serial"], 2),
                "control_two_vs_one": round(best["control_serial"] / best["control_threads"], 2),
                "one_thread_cpu_ms": round(1e3 * serial_cpu, 2),
                "two_threads_critical_path_cpu_ms": round(1e3 * critical, 2),
                "predicted_two_vs_one_thread": round(serial_cpu / critical, 2),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    crossover = []
    for steps in CROSSOVER_STEPS:
        _, sweeps = _table_workload(steps, 2)
        load_before = os.getloadavg()[0]
        best = _measure(sweeps, max(args.rounds, 20))
        row = {
            "states": 2,
            "steps": steps,
            "load_average_before": round(load_before, 2),
            **{f"{name}_us": round(1e6 * seconds, 1) for name, seconds in best.items()},
        }
        crossover.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "benchmark": "long_sequence",
        "description": (
            "N = 1 long sequence, value + gradient, wall time best of rounds (interleaved); "
            "one_thread / two_threads: public kernels with numba.set_num_threads(1 / 2); "
            "lanes / split_serial / split_threads: the numba sweeps alone"
        ),
        "hmm_pyro": hmm_pyro.__version__,
        "python": sys.version.split()[0],
        "numba": numba.__version__,
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "rounds": args.rounds,
        "seconds": round(time.perf_counter() - began, 1),
        "rows": rows,
        "crossover": crossover,
    }
    with atomic_write(args.output) as handle:
        handle.write(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.output} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
