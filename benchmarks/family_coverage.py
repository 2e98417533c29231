"""Coverage study: NUTS recovers planted parameters of the negative binomial, Student-t and
product families (posterior 90% intervals cover the truth at a rate consistent with 90%).

Usage::

    PYTHONPATH=. python benchmarks/family_coverage.py [--replications 20] [--length 200]
        [--warmup 150] [--draws 150] [--families negative_binomial student_t product]

Each replication simulates one sequence of ``--length`` steps from a fixed 2-state model of the
family (``PLANTED``, seed = replication), fits NUTS (one chain, ``--warmup`` + ``--draws``,
``init="auto"``, in this process) with the family's default prior, matches the fitted states to
the planted ones by their location (the planted states are in increasing order of it), and
records, for every emission parameter entry, whether the central 90% interval of its draws
covers the planted value. Per entry the covered count is Binomial(R, 0.9) under nominal
coverage (R replications); the pooled count over entries is reported with the two-sided
binomial p-value that treats entries as independent (they are not quite: entries of one fit
share its data), so it is a screen, not an exact test. At a fixed truth a Bayesian interval's
coverage is nominal only approximately (exactly when averaged over the prior); with 100 steps
per state the data dominate these priors.

Run for the recorded results: the defaults for ``negative_binomial`` and ``product``;
``--families student_t --length 1000`` (and, kept as ``student_t_length200``, the defaults:
``df`` then undercovers, the prior dominating it; docs/emissions.md#coverage-of-nuts-intervals).

Writes the families' sections of ``benchmarks/results/family_coverage.json`` (each with its
settings, machine and versions; sections of other families are kept, so families can be run
with different settings) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pyro
import torch
from scipy import stats

import hmm_pyro
from hmm_pyro import HMM, NegativeBinomial, Poisson, Product, StudentT, simulate
from hmm_pyro._io import atomic_write
from hmm_pyro.emissions import Gaussian

RESULTS = Path(__file__).resolve().parent / "results" / "family_coverage.json"
TRANSITIONS = {"pi": [0.5, 0.5], "A": [[0.9, 0.1], [0.1, 0.9]]}
PLANTED = {
    "negative_binomial": (NegativeBinomial(), {"rate": [3.0, 15.0], "dispersion": [2.0, 8.0]}),
    "student_t": (StudentT(), {"mu": [-2.0, 2.0], "sigma": [1.0, 0.7], "df": [3.0, 6.0]}),
    "product": (
        Product(counts=Poisson(), level=Gaussian()),
        {"counts_rate": [2.0, 10.0], "level_mu": [0.0, 2.0], "level_sigma": [1.0, 0.6]},
    ),
}
LEVEL = 0.9


def _replicate(family: str, replication: int, args: argparse.Namespace) -> dict:
    emission, planted = PLANTED[family]
    hmm = HMM(2, emission)
    truth = {
        name: torch.tensor(value, dtype=torch.float64)
        for name, value in {**TRANSITIONS, **planted}.items()
    }
    data, _ = simulate(hmm, truth, [args.length], seed=replication)
    began = time.perf_counter()
    fit = hmm_pyro.fit_nuts(
        hmm,
        data,
        chains=1,
        warmup=args.warmup,
        draws=args.draws,
        seed=replication,
        parallel=False,
        progress=False,
    )
    seconds = time.perf_counter() - began
    draws = fit.draws()
    order = torch.argsort(emission.location(fit.posterior_mean()))  # fitted state of rank r
    covered, means = {}, {}
    for name in emission.param_names:
        samples = draws[name].reshape(-1, *draws[name].shape[2:])[:, order].numpy()
        low, high = np.quantile(samples, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
        value = truth[name].numpy()
        covered[name] = ((low <= value) & (value <= high)).tolist()
        means[name] = samples.mean(0).tolist()
    stats_ = fit.idata.sample_stats
    return {
        "replication": replication,
        "covered": covered,
        "posterior_mean": means,
        "seconds": seconds,
        "divergences": int(stats_["diverging"].sum()),
        "mean_leapfrog_steps": float(stats_["n_steps"].mean()),
    }


def _summary(family: str, runs: list[dict]) -> dict:
    _, planted = PLANTED[family]
    per_entry = {
        f"{name}[{k}]": int(sum(run["covered"][name][k] for run in runs))
        for name in planted
        for k in range(2)
    }
    total, trials = sum(per_entry.values()), len(per_entry) * len(runs)
    test = stats.binomtest(total, trials, LEVEL)
    low, high = stats.binom.ppf([0.025, 0.975], len(runs), LEVEL)
    return {
        "replications": len(runs),
        "covered_per_entry": per_entry,
        "entry_range_95": [int(low), int(high)],
        "entries_outside_range": [k for k, v in per_entry.items() if not low <= v <= high],
        "pooled_coverage": total / trials,
        "pooled_binomial_p": float(test.pvalue),
        "median_seconds": float(np.median([run["seconds"] for run in runs])),
        "divergences": int(sum(run["divergences"] for run in runs)),
        "mean_leapfrog_steps": float(np.mean([run["mean_leapfrog_steps"] for run in runs])),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the study and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--draws", type=int, default=150)
    parser.add_argument("--families", nargs="+", default=list(PLANTED), choices=list(PLANTED))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    context = {
        "settings": {
            **{key: value for key, value in vars(args).items() if key != "families"},
            "chains": 1,
            "states": 2,
            "level": LEVEL,
        },
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cores_available": len(os.sched_getaffinity(0)),
            "load_average_at_start": list(os.getloadavg()),
            "note": "shared machine: times are indicative only",
        },
        "versions": {
            "hmm_pyro": hmm_pyro.__version__,
            "torch": torch.__version__,
            "pyro": pyro.__version__,
        },
    }
    for family in args.families:
        runs = []
        for replication in range(args.replications):
            runs.append(_replicate(family, replication, args))
            print(f"{family} {replication}: {runs[-1]['seconds']:.1f} s", flush=True)
        planted = {**TRANSITIONS, **PLANTED[family][1]}
        results[family] = {**context, "planted": planted, **_summary(family, runs)}
        with atomic_write(RESULTS) as handle:
            handle.write(json.dumps(results, indent=2))
    print("| family | replications | pooled coverage | binomial p | entries outside 95% range |")
    print("|---|---|---|---|---|")
    for family in args.families:
        summary = results[family]
        print(
            f"| {family} | {summary['replications']} | {summary['pooled_coverage']:.3f} | "
            f"{summary['pooled_binomial_p']:.3f} | {summary['entries_outside_range'] or 'none'} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
