"""Benchmark: Baum-Welch EM per-iteration time against hmmlearn, and the ``init="em"`` study.

Usage::

    PYTHONPATH=. python benchmarks/em.py speed [--repeats 5] [--iterations 20] [--threads 1]
    PYTHONPATH=. python benchmarks/em.py init [--seeds 3] [--map-seeds 8]

``speed``: categorical workloads (20 x 500 symbols, K=3, V=5; 100 x 1000, K=10, V=5), the same
data and the same start for every implementation, priors off, fixed iteration count (no
convergence test). Reported: median over repeats of wall time / iterations. Ours runs
``iterations`` M-steps and ``iterations + 1`` E-steps (it also evaluates the final point), so
the per-iteration figure slightly favours hmmlearn. The log-likelihood histories are compared
as a correctness check.

``init``: NUTS (1 chain, 300 warm-up + 300 draws) and MAP by Adam (``fit_map(optimizer="adam")``:
Pyro's SVI with ``AutoDelta``, 1 restart) on the small workload with ``init="auto"`` versus
``init="em"``: gradient evaluations during warm-up, divergences, step sizes, times; the MAP's
log posterior against the best optimum known (EM, 20 restarts). Adam, not ``fit_map``'s default
L-BFGS: the optimiser of the results in ``benchmarks/results/em.json``.

Both write their section of ``benchmarks/results/em.json`` (other sections are kept) and print
a Markdown table. Threads are set deliberately: ``torch.set_num_threads(threads)`` and
``numba.set_num_threads(threads)`` (hmmlearn is single-threaded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import hmmlearn
import numba
import numpy as np
import pyro
import torch
from hmmlearn.hmm import CategoricalHMM

import hmm_pyro
from hmm_pyro import HMM, Categorical, simulate
from hmm_pyro._io import atomic_write
from hmm_pyro.learning import run_em

RESULTS = Path(__file__).resolve().parent / "results" / "em.json"
WORKLOADS = [
    {"name": "20x500_K3_V5", "sequences": 20, "length": 500, "states": 3, "symbols": 5},
    {"name": "100x1000_K10_V5", "sequences": 100, "length": 1000, "states": 10, "symbols": 5},
]


def _machine(threads: int) -> dict:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "load_average_at_start": list(os.getloadavg()),
        "torch_threads": threads,
        "numba_threads": threads,
        "numba_threading_layer_requested": numba.config.THREADING_LAYER,
    }


def _versions() -> dict:
    return {
        "hmm_pyro": hmm_pyro.__version__,
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "hmmlearn": hmmlearn.__version__,
    }


def _problem(workload: dict, seed: int = 0) -> tuple:
    hmm = HMM(workload["states"], Categorical(workload["symbols"]))
    truth = hmm.sample_prior(seed=seed)
    data, _ = simulate(hmm, truth, [workload["length"]] * workload["sequences"], seed=seed + 1)
    data = hmm.prepare_data(data)
    start = hmm.sample_prior(seed=seed + 2)
    return hmm, data, start


def _hmmlearn_model(start: dict, workload: dict, iterations: int, implementation: str):
    model = CategoricalHMM(
        n_components=workload["states"],
        n_features=workload["symbols"],
        startprob_prior=1.0,
        transmat_prior=1.0,
        emissionprob_prior=1.0,
        init_params="",
        params="ste",
        n_iter=iterations,
        tol=-np.inf,
        implementation=implementation,
    )
    model.startprob_ = start["pi"].numpy().copy()
    model.transmat_ = start["A"].numpy().copy()
    model.emissionprob_ = start["B"].numpy().copy()
    return model


def _time_ours(hmm, data, start, iterations: int) -> tuple[float, list[float]]:
    began = time.perf_counter()
    run = run_em(hmm, data, start, max_iter=iterations, tol=0.0, emission_prior=False)
    seconds = time.perf_counter() - began
    return seconds / iterations, run.monitor.log_likelihood


def _time_hmmlearn(X, lengths, start, workload, iterations, implementation):
    model = _hmmlearn_model(start, workload, iterations, implementation)
    began = time.perf_counter()
    model.fit(X, lengths)
    seconds = time.perf_counter() - began
    return seconds / iterations, list(model.monitor_.history)


def speed(repeats: int, iterations: int, threads: int) -> dict:
    """Per-iteration medians, ours vs hmmlearn (scaling and log)."""
    rows = []
    for workload in WORKLOADS:
        hmm, data, start = _problem(workload)
        X = np.concatenate([row.astype(np.int64) for row in data.to_list()])[:, None]
        lengths = data.lengths.numpy()
        # Warm up: numba cache load, hmmlearn extension import.
        _time_ours(hmm, data, start, 2)
        _time_hmmlearn(X, lengths, start, workload, 2, "scaling")
        times = {"ours": [], "hmmlearn_scaling": [], "hmmlearn_log": []}
        histories = {}
        for _ in range(repeats):
            per_iter, histories["ours"] = _time_ours(hmm, data, start, iterations)
            times["ours"].append(per_iter)
            for implementation in ("scaling", "log"):
                per_iter, histories[implementation] = _time_hmmlearn(
                    X, lengths, start, workload, iterations, implementation
                )
                times[f"hmmlearn_{implementation}"].append(per_iter)
        ours = np.asarray(histories["ours"][:iterations])
        agreement = {
            impl: float(np.abs(ours - np.asarray(histories[impl])).max())
            for impl in ("scaling", "log")
        }
        medians = {key: statistics.median(values) * 1e3 for key, values in times.items()}
        rows.append(
            {
                "workload": workload,
                "iterations": iterations,
                "repeats": repeats,
                "median_ms_per_iteration": medians,
                "all_ms_per_iteration": {k: [v * 1e3 for v in vs] for k, vs in times.items()},
                "speedup_vs_hmmlearn_scaling": medians["hmmlearn_scaling"] / medians["ours"],
                "speedup_vs_hmmlearn_log": medians["hmmlearn_log"] / medians["ours"],
                "max_abs_history_difference": agreement,
            }
        )
    return {"machine": _machine(threads), "versions": _versions(), "results": rows}


def _speed_table(section: dict) -> str:
    lines = [
        f"EM ms/iteration (median of {section['results'][0]['repeats']}; torch and numba threads "
        f"= {section['machine']['torch_threads']})",
        "",
        "| workload | hmm_pyro | hmmlearn scaling | hmmlearn log | vs scaling | vs log | "
        "max |history diff| |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in section["results"]:
        med = row["median_ms_per_iteration"]
        diff = max(row["max_abs_history_difference"].values())
        lines.append(
            f"| {row['workload']['name']} | {med['ours']:.2f} | {med['hmmlearn_scaling']:.2f} | "
            f"{med['hmmlearn_log']:.2f} | {row['speedup_vs_hmmlearn_scaling']:.2f}x | "
            f"{row['speedup_vs_hmmlearn_log']:.2f}x | {diff:.1e} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------- init="em" study
def _nuts_run(hmm, data, init: str, seed: int, warmup: int, draws: int) -> dict:
    import hmm_pyro.inference.nuts as nuts_module

    # Count every gradient evaluation of the chain: wrap the potential class fit_nuts uses.
    original = nuts_module.Potential
    created: list = []

    class CountingPotential(original):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    nuts_module.Potential = CountingPotential
    try:
        began = time.perf_counter()
        fit = hmm_pyro.fit_nuts(
            hmm, data, chains=1, warmup=warmup, draws=draws, seed=seed, init=init, progress=False
        )
        seconds = time.perf_counter() - began
    finally:
        nuts_module.Potential = original
    stats = fit.idata.sample_stats
    sampling_evaluations = int(stats["n_steps"].values.sum())
    total = created[0].num_evaluations
    return {
        "seed": seed,
        "init": init,
        "warmup_gradient_evaluations": total - sampling_evaluations,
        "sampling_gradient_evaluations": sampling_evaluations,
        "divergences_after_warmup": int(stats["diverging"].values.sum()),
        "step_size": float(stats["step_size"].values[0, 0]),
        "mean_lp": float(stats["lp"].values.mean()),
        "seconds_total": seconds,
        "chain_seconds": fit.attrs["chain_seconds"][0],
    }


def _map_run(hmm, data, init: str, seed: int, steps: int) -> dict:
    began = time.perf_counter()
    fit = hmm_pyro.fit_map(
        hmm, data, "adam", steps=steps, restarts=1, seed=seed, init=init, progress=False
    )
    seconds = time.perf_counter() - began
    point = {name: value[0, 0] for name, value in fit.draws().items()}
    log_posterior = float(hmm.log_likelihood(point, data).sum() + hmm.log_prior(point))
    return {
        "seed": seed,
        "init": init,
        "log_posterior": log_posterior,
        "steps_run": fit.attrs["steps_run"][0],
        "converged": fit.attrs["converged"][0],
        "seconds": seconds,
    }


def init_study(seeds: int, map_seeds: int, warmup: int, draws: int, steps: int, threads: int):
    """NUTS warm-up and MAP (Adam) robustness with init="auto" vs "em" on the small workload."""
    from hmm_pyro.learning import fit_em

    hmm, data, _ = _problem(WORKLOADS[0])
    reference = fit_em(hmm, data, restarts=20, seed=123, tol=1e-10, max_iter=2000, progress=False)
    best = float(reference.idata.sample_stats["final_objective"].values.max())
    nuts = [
        _nuts_run(hmm, data, init, seed, warmup, draws)
        for seed in range(seeds)
        for init in ("auto", "em")
    ]
    points = [
        _map_run(hmm, data, init, seed, steps)
        for seed in range(map_seeds)
        for init in ("auto", "em")
    ]
    for row in points:
        row["gap_to_best_known_map"] = best - row["log_posterior"]
    started = time.perf_counter()
    for seed in range(seeds):
        hmm_pyro.learning.initial_params(hmm, data, "em", seed=seed)
    em_init_seconds = (time.perf_counter() - started) / seeds
    return {
        "machine": _machine(threads),
        "versions": _versions(),
        "workload": WORKLOADS[0],
        "nuts": {"warmup": warmup, "draws": draws, "chains": 1, "runs": nuts},
        "map": {"optimizer": "adam", "steps": steps, "restarts": 1, "runs": points},
        "best_known_log_posterior": best,
        "em_init_seconds": em_init_seconds,
    }


def _init_table(section: dict) -> str:
    lines = [
        f"NUTS, 1 chain, {section['nuts']['warmup']}+{section['nuts']['draws']}, "
        f"workload {section['workload']['name']}",
        "",
        "| seed | init | warm-up grad evals | sampling grad evals | divergences | step size | "
        "mean lp | seconds |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in section["nuts"]["runs"]:
        lines.append(
            f"| {row['seed']} | {row['init']} | {row['warmup_gradient_evaluations']} | "
            f"{row['sampling_gradient_evaluations']} | {row['divergences_after_warmup']} | "
            f"{row['step_size']:.3f} | {row['mean_lp']:.1f} | {row['seconds_total']:.1f} |"
        )
    lines += [
        "",
        f"MAP by Adam (Pyro SVI, AutoDelta), 1 restart, {section['map']['steps']} steps max; "
        "best known log posterior "
        f"{section['best_known_log_posterior']:.3f}",
        "",
        "| seed | init | gap to best MAP | steps | converged | seconds |",
        "|---:|---|---:|---:|---|---:|",
    ]
    for row in section["map"]["runs"]:
        lines.append(
            f"| {row['seed']} | {row['init']} | {row['gap_to_best_known_map']:.4f} | "
            f"{row['steps_run']} | {row['converged']} | {row['seconds']:.1f} |"
        )
    return "\n".join(lines)


def _write(section: str, payload: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing[section] = payload
    with atomic_write(RESULTS) as handle:
        handle.write(json.dumps(existing, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    speed_parser = sub.add_parser("speed")
    speed_parser.add_argument("--repeats", type=int, default=5)
    speed_parser.add_argument("--iterations", type=int, default=20)
    speed_parser.add_argument("--threads", type=int, default=1)
    init_parser = sub.add_parser("init")
    init_parser.add_argument("--seeds", type=int, default=3)
    init_parser.add_argument("--map-seeds", type=int, default=8)
    init_parser.add_argument("--warmup", type=int, default=300)
    init_parser.add_argument("--draws", type=int, default=300)
    init_parser.add_argument("--steps", type=int, default=2000)
    init_parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    if args.command == "speed":
        section = speed(args.repeats, args.iterations, args.threads)
        _write("speed", section)
        print(_speed_table(section))
    else:
        section = init_study(
            args.seeds, args.map_seeds, args.warmup, args.draws, args.steps, args.threads
        )
        _write("init_em", section)
        print(_init_table(section))


if __name__ == "__main__":
    main()
