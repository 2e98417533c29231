"""Chains side by side: 4 NUTS chains in the worker pool against the same chains one by one.

Workload: the small categorical workload of ``benchmarks/speed.py`` (K=3, V=5, 20 x 500),
300 warm-up + 300 draws per chain, master seed 0 (+ the repeat). Each repeat runs in a fresh
interpreter, so its first pool call is cold (worker processes started and their imports paid
inside the timed call), and measures, in this order:

1. ``one_chain``: 1 chain (in this process: one chain never goes to the pool), after an untimed
   short fit that loads the numba kernels here;
2. ``pool_cold``: 4 chains, default settings (``parallel=None``: the pool, started by this call);
3. ``pool_warm``: the same 4 chains again (the pool's workers kept from the call before);
4. ``sequential``: the same 4 chains with ``parallel=False``, one after the other here.

Beside each wall time, CPU seconds: the calling process's and each worker process's (with
``pool_cold``, the workers' imports included), and ``projected_idle_wall_seconds`` = the
caller's CPU + the busiest worker's CPU: the wall time on 2 idle cores if the processes never
waited for anything else (a projection from CPU time, not a measurement; it tells what the
wall times mean when other sessions take the cores); ``projected_ratio_*`` are the ratios of
these.

The chains of 2-4 are the same chains (bitwise-equal draws, so the same leapfrog steps).
Ratios: ``ratio_*`` = wall(4 chains) / (4 x wall(1 chain)) (the issue's target: <= 0.6), and
``vs_sequential_*`` = wall(4 chains in the pool) / wall(the same 4 chains one after the other),
which does not depend on how long chain 0 happens to be. A fifth measurement, in another fresh
interpreter, times the pool's start alone: from starting 2 workers to both having imported
torch, Pyro and hmm_pyro's NUTS module, and a first trivial task's round trip.

The machine may be shared: the 1-minute load average (``uptime``) is recorded before and after
each repeat, and before each repeat a control measures what parallelism the machine gives this
session at that moment: ``control_ratio`` = wall time of two independent single-threaded
CPU-bound processes run at once / run one after the other (0.5 on 2 idle cores, 1.0 when other
sessions take the cores: Linux shares the CPU between sessions, ``sched_autogroup``).

Run: ``PYTHONPATH=. python benchmarks/chains.py [--repeats 3]``; writes
``benchmarks/results/chains.json`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "chains.json"
ITERATIONS = 300


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


_SPIN = "x = 0\nfor i in range(15_000_000):\n    x += i\n"


def _control() -> float:
    """Wall time of two CPU-bound processes at once / one after the other."""

    def spin(count: int) -> float:
        began = time.perf_counter()
        processes = [subprocess.Popen([sys.executable, "-c", _SPIN]) for _ in range(count)]
        for process in processes:
            process.wait()
        return time.perf_counter() - began

    together = spin(2)
    apart = spin(1) + spin(1)
    return together / apart


def _repeat(seed: int) -> dict:
    """One repeat, in this (fresh) interpreter."""
    sys.path.insert(0, str(ROOT))
    import hmm_pyro as hp
    from benchmarks.speed import workload

    hmm, data, _ = workload("small")
    settings = {"warmup": ITERATIONS, "draws": ITERATIONS, "seed": seed, "progress": False}
    hp.fit_nuts(hmm, data, chains=1, warmup=5, draws=5, seed=seed, progress=False)  # untimed
    import psutil

    here = psutil.Process()

    def worker_cpu() -> dict[int, float]:
        """CPU seconds (user + system) of each worker process since it started."""
        seconds = {}
        for child in here.children():
            times = child.cpu_times()
            seconds[child.pid] = times.user + times.system
        return seconds

    result = {}
    for name, chains, parallel in (
        ("one_chain", 1, None),
        ("pool_cold", 4, None),
        ("pool_warm", 4, None),
        ("sequential", 4, False),
    ):
        workers_before, cpu_before = worker_cpu(), time.process_time()
        began = time.perf_counter()
        fit = hp.fit_nuts(hmm, data, chains=chains, parallel=parallel, **settings)
        wall = time.perf_counter() - began
        caller_cpu = time.process_time() - cpu_before
        workers = {
            pid: seconds - workers_before.get(pid, 0.0) for pid, seconds in worker_cpu().items()
        }
        workers = {pid: seconds for pid, seconds in workers.items() if seconds > 0.01}
        result[name] = {
            "wall_seconds": wall,
            "caller_cpu_seconds": caller_cpu,
            "worker_cpu_seconds": sorted(workers.values()),
            "projected_idle_wall_seconds": caller_cpu + max(workers.values(), default=0.0),
            "parallel": fit.attrs["parallel"],
            "chain_seconds": fit.attrs["chain_seconds"],
            "leapfrog_steps": int(fit.idata.sample_stats["n_steps"].sum()),
        }
        result[name + "_draws"] = {k: v.numpy().tolist() for k, v in fit.draws().items()}
    same = all(
        result["pool_cold_draws"] == result[other + "_draws"]
        for other in ("pool_warm", "sequential")
    )
    for name in ("one_chain", "pool_cold", "pool_warm", "sequential"):
        del result[name + "_draws"]
    result["pool_equals_sequential_bitwise"] = same
    return result


def _startup() -> dict:
    """Time the pool's start alone (fresh interpreter): imports, then a trivial round trip."""
    sys.path.insert(0, str(ROOT))
    from hmm_pyro._pool import get_pool

    pool = get_pool()
    began = time.perf_counter()
    pool.start(2, ["hmm_pyro.inference.nuts"])
    ready = 0
    while ready < 2:
        worker, message = pool._inbox.get()
        if message[0] != "ready":
            raise RuntimeError(f"pool worker: {worker.exit_message()}")
        worker.ready, ready = True, ready + 1
    imported = time.perf_counter() - began
    began = time.perf_counter()
    pool.run(_trivial, [0, 1], ["a", "b"], 2, lambda *_: None, lambda _: None)
    return {
        "workers_ready_seconds": imported,
        "trivial_round_trip_seconds": time.perf_counter() - began,
    }


def _trivial(task: int, reporter: object) -> int:
    return task


def _child(mode: str, seed: int) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--seed", str(seed)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", choices=["repeat", "startup"], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_repeat(args.seed) if args.child == "repeat" else _startup()))
        return
    from hmm_pyro._io import atomic_write
    from hmm_pyro._parallel import available_cores

    repeats = []
    for repeat in range(args.repeats):
        before = _load()
        control = _control()
        result = _child("repeat", repeat)
        result.update(seed=repeat, load_before=before, load_after=_load(), control_ratio=control)
        one = result["one_chain"]["wall_seconds"]
        for name in ("pool_cold", "pool_warm", "sequential"):
            result[f"ratio_{name}"] = result[name]["wall_seconds"] / (4 * one)
        projected = result["one_chain"]["projected_idle_wall_seconds"]
        for name in ("pool_cold", "pool_warm", "sequential"):
            ratio = result[name]["projected_idle_wall_seconds"] / (4 * projected)
            result[f"projected_ratio_{name}"] = ratio
        for name in ("pool_cold", "pool_warm"):
            sequential = result["sequential"]["wall_seconds"]
            result[f"vs_sequential_{name}"] = result[name]["wall_seconds"] / sequential
        repeats.append(result)
        print(
            json.dumps(
                {k: v for k, v in result.items() if "ratio" in k or "vs_" in k or "load" in k}
            )
        )
    before = _load()
    startup = _child("startup", 0)
    startup.update(load_before=before, load_after=_load())
    keys = [f"ratio_{n}" for n in ("pool_cold", "pool_warm", "sequential")]
    keys += ["vs_sequential_pool_cold", "vs_sequential_pool_warm", "control_ratio"]
    keys += [f"projected_ratio_{n}" for n in ("pool_cold", "pool_warm", "sequential")]
    summary = {key: statistics.median(r[key] for r in repeats) for key in keys}
    output = {
        "benchmark": "chains",
        "commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "command": "PYTHONPATH=. python " + " ".join(["benchmarks/chains.py", *sys.argv[1:]]),
        "machine": {"cores": available_cores(), "python": platform.python_version()},
        "workload": "small (K=3, V=5, 20 x 500), 300 warm-up + 300 draws per chain",
        "median": summary,
        "repeats": repeats,
        "pool_startup": startup,
    }
    with atomic_write(args.out) as handle:
        handle.write(json.dumps(output, indent=2) + "\n")
    print(json.dumps({"median": summary, "pool_startup": startup}, indent=2))


if __name__ == "__main__":
    main()
