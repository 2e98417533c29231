"""NUTS interval coverage for the gamma, von Mises and full-covariance normal families.

Usage::

    PYTHONPATH=. python benchmarks/builtin_family_coverage.py [--replications 20]
        [--first-seed 0] [--length 250] [--warmup 150] [--draws 150]
        [--families gamma vonmises mvnormal]

For each family one planted two-state HMM (below) simulates ``replications`` data sets of one
sequence each (seeds ``first_seed``, ``first_seed + 1``, ...); ``fit_nuts`` (2 chains, default
prior, labels aligned across chains) fits each, the fitted states are matched to the planted
ones (the permutation with the smallest squared Hellinger distance between fitted posterior
means and truth), and the central 90% posterior interval of every emission parameter entry is
checked against the truth (von Mises mean directions on the circle: the draws' angular
differences to the truth must bracket zero). Coverage is reported per entry and pooled, with a
two-sided exact binomial p-value against 0.9 (entries of one fit are not independent, so the
pooled p-value is a rough guide; the per-entry counts are ``Binomial(replications, 0.9)`` under
calibration). With 20 replications a per-entry count of 15 or fewer has one-sided probability
0.043 under calibration: it flags an entry whose true coverage is 0.6 with probability 0.95
(0.76 at 0.7); the pooled count over all entries detects smaller shortfalls shared by the
entries.

Misses are counted by side (truth below or above the interval). Writes the families run into
``benchmarks/results/builtin_family_coverage.json`` (key ``family``, or ``family@first_seed``
for another seed range; other entries are kept) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

import hmm_pyro
from hmm_pyro import HMM, Gamma, MultivariateNormal, VonMises, fit_nuts, simulate
from hmm_pyro._io import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "builtin_family_coverage.json"
LEVEL = 0.9
TRANSITIONS = {"pi": [0.5, 0.5], "A": [[0.9, 0.1], [0.15, 0.85]]}
PLANTED = {
    "gamma": (
        Gamma(),
        {"concentration": [2.0, 5.0], "rate": [2.0, 0.5]},
    ),
    "vonmises": (
        VonMises(),
        {"mu": [0.0, 3.0], "kappa": [5.0, 1.0]},
    ),
    "mvnormal": (
        MultivariateNormal(dim=2),
        {
            "mu": [[0.0, 0.0], [2.5, 1.5]],
            "sigma": [[1.0, 0.5], [0.7, 1.2]],
            "corr": [[[1.0, 0.6], [0.6, 1.0]], [[1.0, -0.4], [-0.4, 1.0]]],
        },
    ),
}


def _truth(family: str) -> tuple[HMM, dict[str, torch.Tensor]]:
    emission, values = PLANTED[family]
    params = {name: torch.tensor(value, dtype=torch.float64) for name, value in TRANSITIONS.items()}
    params |= {name: torch.tensor(value, dtype=torch.float64) for name, value in values.items()}
    return HMM(2, emission), params


def _entries(family: str, name: str, value: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(label, values over draws)`` of each free entry; ``value`` is ``(draws, *shape)``."""
    if name == "corr":
        return [
            (f"corr[{k}][{i},{j}]", value[:, k, i, j])
            for k in range(value.shape[1])
            for i in range(value.shape[2])
            for j in range(i)
        ]
    flat = value.reshape(value.shape[0], value.shape[1], -1)
    labels = [
        f"{name}[{k}]" if flat.shape[-1] == 1 else f"{name}[{k},{d}]"
        for k in range(flat.shape[1])
        for d in range(flat.shape[-1])
    ]
    columns = [flat[:, k, d] for k in range(flat.shape[1]) for d in range(flat.shape[-1])]
    return list(zip(labels, columns, strict=True))


def _side(family: str, name: str, draws: np.ndarray, truth: float) -> str:
    """``"covered"``, or ``"below"`` / ``"above"``: where the truth lies against the interval."""
    if family == "vonmises" and name == "mu":
        draws = np.angle(np.exp(1j * (draws - truth)))  # angular difference in (-pi, pi]
        truth = 0.0
    low, high = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return "below" if truth < low else "above" if truth > high else "covered"


def _match(hmm: HMM, draws: dict[str, torch.Tensor], truth: dict[str, torch.Tensor]) -> list[int]:
    """State order of the fit that best matches the truth (smallest summed distance)."""
    names = hmm.emission.param_names
    means = {name: draws[name].mean(0) for name in names}
    if isinstance(hmm.emission, VonMises):  # circular mean of the mean directions
        angles = draws["mu"]
        means["mu"] = torch.atan2(torch.sin(angles).mean(0), torch.cos(angles).mean(0))
    if isinstance(hmm.emission, MultivariateNormal):
        means["corr"] = MultivariateNormal._tidy(means["corr"])
    best, order = math.inf, [0, 1]
    for perm in itertools.permutations(range(hmm.num_states)):
        joined = {name: torch.cat([means[name][list(perm)], truth[name]], 0) for name in names}
        distances = hmm.emission.hellinger(joined)
        cost = float(sum(distances[k, hmm.num_states + k] for k in range(hmm.num_states)))
        if cost < best:
            best, order = cost, list(perm)
    return order


def run_family(family: str, args: argparse.Namespace) -> dict:
    hmm, truth = _truth(family)
    counts: dict[str, int] = {}
    misses: dict[str, dict[str, int]] = {}
    seconds, divergent, rhat, ess = [], 0, [], []
    seeds = range(args.first_seed, args.first_seed + args.replications)
    for replication in seeds:
        data, _ = simulate(hmm, truth, [args.length], seed=replication)
        start = time.perf_counter()
        fit = fit_nuts(
            hmm,
            data,
            chains=2,
            warmup=args.warmup,
            draws=args.draws,
            seed=1000 + replication,
            progress=False,
            parallel=False,
        )
        seconds.append(time.perf_counter() - start)
        divergent += int(fit.idata.sample_stats["diverging"].values.sum())
        summary = fit.summary()
        rhat.append(float(summary["r_hat"].max()))
        ess.append(float(summary["ess_bulk"].min()))
        draws = {name: value.reshape(-1, *value.shape[2:]) for name, value in fit.draws().items()}
        order = _match(hmm, draws, truth)
        for name in hmm.emission.param_names:
            value = draws[name][:, order].numpy()
            for (label, column), (_, true_column) in zip(
                _entries(family, name, value),
                _entries(family, name, truth[name].numpy()[None]),
                strict=True,
            ):
                side = _side(family, name, column, float(true_column[0]))
                counts[label] = counts.get(label, 0) + int(side == "covered")
                sides = misses.setdefault(label, {"below": 0, "above": 0})
                if side != "covered":
                    sides[side] += 1
        print(f"{family} replication {replication}: {seconds[-1]:.1f} s", flush=True)
    total_hits, total = sum(counts.values()), len(counts) * args.replications
    return {
        "planted": {name: value.tolist() for name, value in truth.items()},
        "replications": args.replications,
        "seeds": [seeds.start, seeds.stop - 1],
        "covered": counts,
        "misses": misses,
        "coverage": {label: hits / args.replications for label, hits in counts.items()},
        "per_entry_p_value": {
            label: float(stats.binomtest(hits, args.replications, LEVEL).pvalue)
            for label, hits in counts.items()
        },
        "pooled_coverage": total_hits / total,
        "pooled_p_value": float(stats.binomtest(total_hits, total, LEVEL).pvalue),
        "divergences": divergent,
        "max_r_hat": max(rhat),
        "min_ess_bulk": min(ess),
        "median_fit_seconds": float(np.median(seconds)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--length", type=int, default=250)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--draws", type=int, default=150)
    parser.add_argument("--families", nargs="+", default=list(PLANTED), choices=list(PLANTED))
    args = parser.parse_args()
    torch.set_num_threads(1)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    families = previous.get("families", {})
    for family in args.families:
        key = family if args.first_seed == 0 else f"{family}@{args.first_seed}"
        families[key] = run_family(family, args)
    results = {
        "settings": {
            "length": args.length,
            "sequences": 1,
            "states": 2,
            "chains": 2,
            "warmup": args.warmup,
            "draws": args.draws,
            "level": LEVEL,
            "prior": "Prior() defaults",
        },
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "hmm_pyro": hmm_pyro.__version__,
            "note": "shared 2-core machine; times are indicative only",
        },
        "families": families,
    }
    with atomic_write(RESULTS) as handle:
        handle.write(json.dumps(results, indent=2) + "\n")
    print("| family | pooled coverage | pooled p | worst entry | divergences | max R-hat |")
    print("|---|---|---|---|---|---|")
    for family, result in results["families"].items():
        worst = min(result["coverage"].items(), key=lambda item: item[1])
        print(
            f"| {family} | {result['pooled_coverage']:.3f} | {result['pooled_p_value']:.3f} | "
            f"{worst[0]} {worst[1]:.2f} | {result['divergences']} | {result['max_r_hat']:.3f} |"
        )


if __name__ == "__main__":
    main()
