"""Our NumPy NUTS against Pyro's NUTS on the same potential (issue 19): cost per gradient
evaluation inside the sampler, and ESS per gradient evaluation.

Both samplers run :class:`hmm_pyro.inference.potential.Potential` (one numba call for value
and gradient) in this process, one torch and one numba thread:

- ``numpy``: :class:`hmm_pyro.inference.sampler.NUTS` on
  :meth:`Potential.numpy_value_and_gradient` (what ``fit_nuts`` runs);
- ``pyro``: Pyro's ``NUTS`` kernel with the potential as ``potential_fn``, driven step by step
  as ``fit_nuts`` ran it before (autograd wrapper around the closed-form gradient).

Step cost: CPU seconds per potential evaluation over short runs (warm-up included; a cap on
the tree depth keeps the large workload's runs short; the cost per evaluation does not depend
on it), and the bare cost of one evaluation (``numpy_value_and_gradient`` in a loop), on the
small (K=3, V=5, 20 x 500) and large (K=10, V=20, 100 x 1000) categorical workloads of
``benchmarks/speed.py``.

ESS per gradient: one chain per seed of each sampler on the small workload, started where
``fit_nuts(seed=seed, chains=1)`` starts it; min bulk ESS over every entry (draws in the
planted truth's labelling), gradient evaluations = leapfrog steps of the kept draws, CPU
seconds of the whole run. The two samplers run the same algorithm (multinomial NUTS, Stan's
windowed adaptation), so ESS per gradient should agree within seed-to-seed noise.

Run: ``python benchmarks/sampler_speed.py [--seeds 3] [--warmup 1000] [--draws 1000]``;
writes ``benchmarks/results/sampler_speed.{json,md}`` (``--output`` to change).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from pyro.infer.mcmc import NUTS as PyroNUTS  # noqa: E402

from benchmarks.ess_per_gradient import aligned  # noqa: E402
from benchmarks.speed import min_bulk_ess, workload  # noqa: E402
from hmm_pyro._io import atomic_write  # noqa: E402
from hmm_pyro.inference.potential import SITE, Potential  # noqa: E402
from hmm_pyro.inference.sampler import NUTS  # noqa: E402
from hmm_pyro.learning import initial_params  # noqa: E402
from hmm_pyro.starts import derive_seeds  # noqa: E402


def start_point(name: str, seed: int) -> tuple[Potential, np.ndarray, int, dict]:
    """The potential, fit_nuts's start for ``seed`` (one chain), the chain seed, the truth."""
    hmm, data, truth = workload(name)
    chain_seed = derive_seeds(seed, 1)[0]
    start = initial_params(hmm, data, "auto", seed=chain_seed)
    potential = Potential(hmm, data)
    return potential, potential.unconstrain(start)[SITE].numpy(), chain_seed, truth


def run_numpy(potential, start, seed, warmup, draws, max_tree_depth=10):
    """Our sampler: kept positions ``(draws, P)``, leapfrog steps per kept draw, step size and
    mean acceptance statistic of the draws."""
    sampler = NUTS(
        potential.numpy_value_and_gradient,
        start,
        seed,
        warmup=warmup,
        max_tree_depth=max_tree_depth,
    )
    kept = [sampler.step() for _ in range(warmup + draws)][warmup:]
    accept = float(np.mean([t.accept_stat for t in kept]))
    return (
        np.stack([t.position for t in kept]),
        np.array([t.n_steps for t in kept]),
        sampler.step_size,
        accept,
    )


def run_pyro(potential, start, seed, warmup, draws, max_tree_depth=10):
    """Pyro's NUTS as ``fit_nuts`` drove it before: the same outputs."""
    kernel = PyroNUTS(
        potential_fn=potential,
        adapt_step_size=True,
        adapt_mass_matrix=True,
        max_tree_depth=max_tree_depth,
    )
    kernel.initial_params = {SITE: torch.from_numpy(start)}
    positions, steps, accept = [], [], 0.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kernel.setup(warmup)
        params = kernel.initial_params
        for iteration in range(warmup + draws):
            before = potential.num_evaluations
            params = kernel.sample(params)
            if iteration >= warmup:
                positions.append(params[SITE].detach().numpy().copy())
                steps.append(potential.num_evaluations - before)
        accept = float(kernel._mean_accept_prob)  # Pyro's running mean over the draws
        kernel.cleanup()
    return np.stack(positions), np.array(steps), float(kernel.step_size), accept


RUNNERS = {"numpy": run_numpy, "pyro": run_pyro}


def step_cost(name: str, iterations: int, max_tree_depth: int) -> dict:
    """CPU ms per potential evaluation: bare, and inside each sampler."""
    potential, start, chain_seed, _ = start_point(name, 0)
    for _ in range(5):
        potential.numpy_value_and_gradient(start)
    repeats, began = 0, time.process_time()
    while time.process_time() - began < 2.0:
        potential.numpy_value_and_gradient(start)
        repeats += 1
    out = {"bare_ms": (time.process_time() - began) / repeats * 1e3}
    for sampler, run in RUNNERS.items():
        run(potential, start, chain_seed, 5, 5, max_tree_depth)  # warm the code paths
        before, began = potential.num_evaluations, time.process_time()
        run(potential, start, chain_seed, iterations, iterations, max_tree_depth)
        seconds = time.process_time() - began
        evaluations = potential.num_evaluations - before
        out[sampler] = {
            "ms_per_evaluation": seconds / evaluations * 1e3,
            "evaluations": evaluations,
            "cpu_seconds": seconds,
        }
    out["pyro_over_numpy"] = out["pyro"]["ms_per_evaluation"] / out["numpy"]["ms_per_evaluation"]
    return out


def ess_run(sampler: str, seed: int, warmup: int, draws: int) -> dict:
    potential, start, chain_seed, truth = start_point("small", seed)
    began = time.process_time()
    positions, steps, step_size, accept = RUNNERS[sampler](
        potential, start, chain_seed, warmup, draws
    )
    cpu = time.process_time() - began
    params = potential.constrain({SITE: torch.from_numpy(positions)})
    chain, switched = aligned({k: v.numpy() for k, v in params.items()}, truth["B"].numpy(), "B")
    ess = min_bulk_ess({k: v[None] for k, v in chain.items()})
    gradients = int(steps.sum())
    return {
        "seed": seed,
        "min_bulk_ess": ess,
        "gradient_evaluations": gradients,
        "ess_per_gradient": ess / gradients,
        "cpu_seconds": cpu,
        "ess_per_cpu_second": ess / cpu,
        "mean_leapfrog_steps": float(steps.mean()),
        "step_size": step_size,
        "mean_acceptance": accept,
        "switched_draw_fraction": switched,
    }


def markdown(results: dict) -> str:
    meta = results["metadata"]
    lines = [
        "# NUTS in NumPy against Pyro's NUTS, same potential",
        "",
        f"Commit {meta['commit']}; `{meta['command']}`; {meta['machine']}.",
        "",
        "## CPU milliseconds per potential evaluation",
        "",
        "| workload | bare evaluation | inside our NUTS | inside Pyro's NUTS | Pyro / ours |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in results.get("step_cost", {}).items():
        lines.append(
            f"| {name} | {row['bare_ms']:.3f} | {row['numpy']['ms_per_evaluation']:.3f} | "
            f"{row['pyro']['ms_per_evaluation']:.3f} | {row['pyro_over_numpy']:.2f} |"
        )
    if "ess" in results:
        lines += [
            "",
            f"## ESS per gradient, small workload, {results['ess']['settings']}",
            "",
            "| sampler | seed | min bulk ESS | gradients | ESS/gradient | CPU s | ESS/CPU s "
            "| leapfrog | step size | acceptance | switched |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for sampler, runs in results["ess"]["runs"].items():
            for run in runs:
                lines.append(
                    f"| {sampler} | {run['seed']} | {run['min_bulk_ess']:.0f} | "
                    f"{run['gradient_evaluations']} | {run['ess_per_gradient']:.4f} | "
                    f"{run['cpu_seconds']:.1f} | {run['ess_per_cpu_second']:.1f} | "
                    f"{run['mean_leapfrog_steps']:.1f} | {run['step_size']:.3f} | "
                    f"{run['mean_acceptance']:.3f} | {run['switched_draw_fraction']:.3f} |"
                )
        runs = results["ess"]["runs"]
        if len(runs["numpy"]) == len(runs["pyro"]) > 0:
            lines += ["", "| seed | ESS/gradient, ours / Pyro | ESS/CPU s, ours / Pyro |"]
            lines.append("|---:|---:|---:|")
            for ours, pyro in zip(runs["numpy"], runs["pyro"], strict=True):
                lines.append(
                    f"| {ours['seed']} | "
                    f"{ours['ess_per_gradient'] / pyro['ess_per_gradient']:.2f} | "
                    f"{ours['ess_per_cpu_second'] / pyro['ess_per_cpu_second']:.2f} |"
                )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--skip-ess", action="store_true")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/sampler_speed"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    commit = subprocess.run(
        ["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    results: dict = {
        "metadata": {
            "command": "python benchmarks/sampler_speed.py " + " ".join(argv),
            "commit": commit,
            "machine": f"{platform.machine()}, 2 cores shared with other users: CPU seconds",
        }
    }
    path = Path(args.output)

    def save() -> None:
        with atomic_write(path.with_suffix(".json")) as handle:
            handle.write(json.dumps(results, indent=1))
        with atomic_write(path.with_suffix(".md")) as handle:
            handle.write(markdown(results))

    if not args.skip_cost:
        results["step_cost"] = {}
        for name, iterations, depth in (("small", 150, 10), ("large", 25, 6)):
            results["step_cost"][name] = row = step_cost(name, iterations, depth)
            print(name, json.dumps(row), flush=True)
            save()
    if not args.skip_ess:
        results["ess"] = {
            "settings": f"{args.warmup} warm-up + {args.draws} draws, seeds 0-{args.seeds - 1}",
            "runs": {sampler: [] for sampler in RUNNERS},
        }
        for seed in range(args.seeds):
            for sampler in RUNNERS:
                run = ess_run(sampler, seed, args.warmup, args.draws)
                results["ess"]["runs"][sampler].append(run)
                print(sampler, json.dumps(run), flush=True)
                save()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
