"""ESS per gradient evaluation and per CPU second of NUTS settings (issue 19, item 2).

Each run is one chain of our NUTS (:func:`hmm_pyro.inference._chain_task.run_chain`, the
runner ``fit_nuts`` hands each chain to, in this process, one torch and one numba thread),
started where ``fit_nuts(seed=seed, chains=1)`` starts it (``init="auto"``, the chain's child
seed). Variants (internal switches of the chain task, everything else at the defaults):

- ``default``: target acceptance 0.8, diagonal mass matrix, stick-breaking simplex rows;
- ``target 0.65`` / ``target 0.9``: step-size adaptation's target acceptance;
- ``dense mass``: a dense mass matrix, adapted in the same windows;
- ``isometric log-ratio``: simplex rows in isometric log-ratio coordinates (mapped to
  stick-breaking in torch before each evaluation: the same potential, another
  parameterisation; that map costs time per evaluation that a numba version would not);
- ``isometric log-ratio + dense mass``, ``dense mass + target 0.65``: both.

Warm-up windows are Stan's (a 75-iteration start buffer, windows of
25, 50, 100, ... iterations, a 50-iteration end buffer, step size re-searched after each
window), so they are not a variant.

Workloads: the reference categorical workload (``REFERENCE_PARAMS``: K=3, V=5, 20 sequences of
500), a Gaussian HMM (K=3, 2 x 500 steps) and a Poisson HMM (K=3, 2 x 400 steps), each
simulated once (seed 0) from a planted truth whose states are well apart; default priors.

Per run: min bulk ESS over every entry of every parameter (draws brought into the truth's
labelling by the chain mean of the emission parameters; the fraction of draws whose own
best labelling differs is reported and is 0 when label switching does not enter), gradient
evaluations of the kept draws (potential evaluations, which are the leapfrog steps; the
definition of ``benchmarks/speed_peers.py``), ESS per gradient, CPU seconds of the whole run
(warm-up included: the machine is shared, so CPU time, not wall time) and ESS per CPU second,
divergences, mean leapfrog steps, step size. Per workload and variant: the ratio to the
default per seed, and posterior means of the pooled seeds against the default's in MC-SE
units. Before the timed runs of a workload, one short untimed run of each variant loads the
compiled kernels.

Run: ``python benchmarks/ess_per_gradient.py [--seeds 3] [--warmup 1000] [--draws 1000]``;
writes ``benchmarks/results/ess_per_gradient.json`` (after every run) and a Markdown table.
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

import arviz as az  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

import hmm_pyro as hp  # noqa: E402
from benchmarks.speed import min_bulk_ess  # noqa: E402
from hmm_pyro._io import atomic_write  # noqa: E402
from hmm_pyro.inference._chain_task import ChainTask, run_chain  # noqa: E402
from hmm_pyro.learning import initial_params  # noqa: E402
from hmm_pyro.simulate import REFERENCE_PARAMS  # noqa: E402
from hmm_pyro.starts import derive_seeds  # noqa: E402

VARIANTS = {
    "default": {},
    "target 0.65": {"target_accept": 0.65},
    "target 0.9": {"target_accept": 0.9},
    "dense mass": {"dense_mass": True},
    "dense mass + target 0.65": {"dense_mass": True, "target_accept": 0.65},
    "isometric log-ratio": {"simplex": "isometric log-ratio"},
    "isometric log-ratio + dense mass": {"simplex": "isometric log-ratio", "dense_mass": True},
}
FIRST_ROUND = [v for v in VARIANTS if v != "dense mass + target 0.65"]
"""The variants of a run without ``--variants`` (the combination was measured after them)."""
EMISSION_PARAM = {"categorical": "B", "gaussian": "mu", "poisson": "rate"}


def _sticky(num: int, stay: float) -> torch.Tensor:
    matrix = torch.full((num, num), (1.0 - stay) / (num - 1), dtype=torch.float64)
    return matrix.fill_diagonal_(stay)


def workload(name: str) -> tuple[hp.HMM, hp.Sequences, dict[str, torch.Tensor]]:
    """The model, the data (simulated with seed 0) and the planted truth."""
    uniform = torch.full((3,), 1.0 / 3.0, dtype=torch.float64)
    if name == "categorical":
        hmm, params, lengths = hp.HMM(3, hp.Categorical(5)), REFERENCE_PARAMS, [500] * 20
    elif name == "gaussian":
        hmm, lengths = hp.HMM(3, hp.Gaussian()), [500] * 2
        params = {
            "pi": uniform,
            "A": _sticky(3, 0.9),
            "mu": torch.tensor([[-3.0], [0.0], [3.0]], dtype=torch.float64),
            "sigma": torch.tensor([[0.8], [1.0], [0.7]], dtype=torch.float64),
        }
    elif name == "poisson":
        hmm, lengths = hp.HMM(3, hp.Poisson()), [400] * 2
        params = {
            "pi": uniform,
            "A": _sticky(3, 0.9),
            "rate": torch.tensor([[1.0], [5.0], [15.0]], dtype=torch.float64),
        }
    else:
        raise ValueError(f"workload: unknown {name!r}")
    params = {k: v.reshape(hmm.param_shapes()[k]) for k, v in params.items()}
    data, _ = hp.simulate(hmm, params, lengths, seed=0)
    return hmm, data, params


class _Silent:
    def report(self, index: int, done: int) -> None:
        pass


def _permuted(draws: dict[str, np.ndarray], perm: np.ndarray) -> dict[str, np.ndarray]:
    """Draws ``(D, ...)`` with state ``j`` of the result being state ``perm[j]`` of the input."""
    out = {}
    for name, value in draws.items():
        value = value[:, perm]
        if name == "A":
            value = value[:, :, perm]
        out[name] = value
    return out


def _best_perm(estimate: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``perm`` such that ``estimate[perm]`` matches ``truth`` rows (least absolute cost)."""
    cost = np.abs(truth[:, None, :] - estimate[None, :, :]).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return cols[np.argsort(rows)]


def aligned(draws: dict[str, np.ndarray], truth: np.ndarray, key: str) -> tuple[dict, float]:
    """Draws in the truth's labelling, and the fraction of draws whose own labelling differs."""
    reference = truth.reshape(truth.shape[0], -1)
    perm = _best_perm(draws[key].mean(0).reshape(reference.shape), reference)
    out = _permuted(draws, perm)
    values = out[key].reshape(out[key].shape[0], *reference.shape)
    identity = np.arange(reference.shape[0])
    switched = np.mean([not np.array_equal(_best_perm(v, reference), identity) for v in values])
    return out, float(switched)


def one_run(name: str, variant: str, seed: int, warmup: int, draws: int) -> dict:
    """One chain of ``variant`` on workload ``name``; the draws in the truth's labelling."""
    hmm, data, truth = workload(name)
    chain_seed = derive_seeds(seed, 1)[0]
    start = initial_params(hmm, data, "auto", seed=chain_seed)
    settings = {"target_accept": 0.8, **VARIANTS[variant]}
    target = settings.pop("target_accept")
    task = ChainTask(
        index=0,
        hmm_config=hmm.to_config(),
        values=data.values.numpy(),
        lengths=data.lengths.numpy(),
        init={k: v.detach().numpy() for k, v in start.items()},
        warmup=warmup,
        draws=draws,
        seed=chain_seed,
        target_accept=target,
        max_tree_depth=10,
        **settings,
    )
    cpu, wall = time.process_time(), time.perf_counter()
    result = run_chain(task, _Silent())
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    key = EMISSION_PARAM[name]
    chain, switched = aligned(result.draws, truth[key].numpy(), key)
    ess = min_bulk_ess({k: v[None] for k, v in chain.items()})
    steps = result.stats["n_steps"]
    gradients = int(steps.sum())
    return {
        "seed": seed,
        "min_bulk_ess": ess,
        "gradient_evaluations": gradients,
        "ess_per_gradient": ess / gradients,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "ess_per_cpu_second": ess / cpu,
        "mean_leapfrog_steps": float(steps.mean()),
        "step_size": float(result.stats["step_size"][-1]),
        "divergences": int(result.stats["diverging"].sum()),
        "mean_acceptance": float(result.stats["acceptance_rate"].mean()),
        "switched_draw_fraction": switched,
        "draws": chain,
    }


def pooled(runs: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and MC-SEs of every entry, the seeds' chains pooled."""
    names = list(runs[0]["draws"])
    stacked = {k: np.stack([run["draws"][k] for run in runs]) for k in names}
    mcse = az.mcse(az.convert_to_dataset(stacked), method="mean")
    means = np.concatenate([stacked[k].mean((0, 1)).ravel() for k in names])
    errors = np.concatenate([mcse[k].values.ravel() for k in names])
    return means, errors


def summarise(runs: dict[str, list[dict]]) -> dict:
    """Per variant: per-seed ratios to the default, and means against the default's."""
    base = runs["default"]
    base_means, base_se = pooled(base)
    out = {}
    for variant, entry in runs.items():
        row = {"per_seed": [{k: v for k, v in run.items() if k != "draws"} for run in entry]}
        for key in ("ess_per_gradient", "ess_per_cpu_second"):
            values = [run[key] for run in entry]
            row[f"{key}_median"] = float(np.median(values))
            if variant != "default":
                ratios = [a[key] / b[key] for a, b in zip(entry, base, strict=True)]
                row[f"{key}_over_default"] = [round(r, 3) for r in ratios]
        if variant != "default":
            means, se = pooled(entry)
            z = (means - base_means) / np.sqrt(se**2 + base_se**2)
            row["means_vs_default"] = {
                "max_abs_z": float(np.abs(z).max()),
                "entries": int(z.size),
                "fraction_abs_z_below_3": float((np.abs(z) < 3).mean()),
            }
        out[variant] = row
    return out


def metadata(argv: list[str]) -> dict:
    commit = subprocess.run(
        ["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "command": "python benchmarks/ess_per_gradient.py " + " ".join(argv),
        "commit": commit,
        "machine": f"{platform.machine()}, shared by several users: CPU seconds, not wall",
        "torch_threads": torch.get_num_threads(),
    }


def markdown(results: dict) -> str:
    meta = results["metadata"]
    lines = [
        "# ESS per gradient evaluation: NUTS settings",
        "",
        f"Commit {meta['commit']}; `{meta['command']}`; {meta['machine']}. One chain per run "
        "(the chain runner of `fit_nuts`); min bulk ESS over every entry of every parameter, "
        "draws in the planted truth's labelling (switched draws: fraction of draws whose own "
        "best labelling differs); gradients = leapfrog steps of the kept draws; CPU seconds of "
        "warm-up and draws.",
    ]
    for name, block in results["workloads"].items():
        lines += [
            "",
            f"## {name}: {block['settings']}",
            "",
            "| variant | seed | ESS | gradients | ESS/gradient | x default | CPU s | ESS/CPU s "
            "| x default | leapfrog | step | div | switched |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for variant, row in block["variants"].items():
            for i, run in enumerate(row["per_seed"]):
                gradient_ratio = row.get("ess_per_gradient_over_default", [None] * 99)[i]
                second_ratio = row.get("ess_per_cpu_second_over_default", [None] * 99)[i]
                lines.append(
                    f"| {variant} | {run['seed']} | {run['min_bulk_ess']:.0f} | "
                    f"{run['gradient_evaluations']} | {run['ess_per_gradient']:.4f} | "
                    f"{'-' if gradient_ratio is None else f'{gradient_ratio:.2f}'} | "
                    f"{run['cpu_seconds']:.1f} | {run['ess_per_cpu_second']:.1f} | "
                    f"{'-' if second_ratio is None else f'{second_ratio:.2f}'} | "
                    f"{run['mean_leapfrog_steps']:.1f} | {run['step_size']:.3f} | "
                    f"{run['divergences']} | {run['switched_draw_fraction']:.3f} |"
                )
        lines += ["", "| variant | median ESS/gradient | median ESS/CPU s | max abs z of means |"]
        lines.append("|---|---:|---:|---:|")
        for variant, row in block["variants"].items():
            z = row.get("means_vs_default", {}).get("max_abs_z")
            lines.append(
                f"| {variant} | {row['ess_per_gradient_median']:.4f} | "
                f"{row['ess_per_cpu_second_median']:.1f} | {'-' if z is None else f'{z:.2f}'} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument(
        "--extra-iterations",
        type=int,
        default=None,
        help="warm-up = draws on the Gaussian and Poisson workloads (default: as categorical)",
    )
    parser.add_argument("--workloads", default="categorical,gaussian,poisson")
    parser.add_argument("--variants", default=",".join(FIRST_ROUND))
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/ess_per_gradient"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    variants = args.variants.split(",")
    if variants[0] != "default" or any(v not in VARIANTS for v in variants):
        raise SystemExit(f"--variants: 'default' first, then some of {list(VARIANTS)}")
    results = {"metadata": metadata(argv), "workloads": {}}
    path = Path(args.output)
    for name in args.workloads.split(","):
        warmup, draws = args.warmup, args.draws
        if name != "categorical" and args.extra_iterations is not None:
            warmup = draws = args.extra_iterations
        hmm, data, _ = workload(name)
        settings = (
            f"{hmm!r}, {data.num_sequences} x {int(data.lengths.max())} steps, "
            f"{warmup} warm-up + {draws} draws, seeds 0-{args.seeds - 1}"
        )
        for variant in variants:  # numba caches loaded, torch warmed: not timed
            one_run(name, variant, 0, 10, 10)
        runs: dict[str, list[dict]] = {v: [] for v in variants}
        for seed in range(args.seeds):  # variants take turns seed by seed
            for variant in variants:
                run = one_run(name, variant, seed, warmup, draws)
                runs[variant].append(run)
                print(
                    f"{name} seed {seed} {variant}: ESS/grad {run['ess_per_gradient']:.4f}, "
                    f"ESS/CPU s {run['ess_per_cpu_second']:.1f}, {run['cpu_seconds']:.1f} CPU s",
                    flush=True,
                )
        results["workloads"][name] = {"settings": settings, "variants": summarise(runs)}
        with atomic_write(path.with_suffix(".json")) as handle:
            handle.write(json.dumps(results, indent=1))
        with atomic_write(path.with_suffix(".md")) as handle:
            handle.write(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
