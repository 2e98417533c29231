"""Calibration of ``MultilevelHMM`` fits: coverage of planted group-level parameters, and a
simulation-based calibration (SBC) check on one small configuration.

Usage::

    PYTHONPATH=. python benchmarks/multilevel_calibration.py --study coverage
        [--replications 20] [--subjects 6] [--length 80] [--chains 1] [--warmup 150]
        [--draws 150]
    PYTHONPATH=. python benchmarks/multilevel_calibration.py --study sbc
        [--replications 60] [--subjects 4] [--length 40] [--warmup 150] [--draws 190]

Model: 2 Gaussian states, one sequence per subject, random effects on the transition rows and
the state means (``MultilevelHMM`` defaults). Prior: ``mu ~ Normal([-2, 2], 0.5)`` (the
state-specific locations fix the labels), the default variance and Dirichlet priors,
``SubjectPrior(transition_scale=0.5, location_scale=0.3)`` (subjects' state means stay on
their side of zero, so labels mean the same regime in every subject).

``coverage``: every replication simulates ``--subjects`` sequences of ``--length`` steps from
the fixed ``PLANTED`` group-level parameters with new subject-level ``z ~ Normal(0, 1)``, fits
NUTS and records whether the central 90% interval of each of the 10 group-level quantities
(``A[0,0]``, ``A[1,1]``, ``mu``, ``sigma``, ``tau_A``, ``tau_mu``) covers the truth. Per quantity
the covered count is Binomial(R, 0.9) under nominal coverage; the pooled count is reported with
a two-sided binomial p-value (quantities of one fit share its data: a screen, not an exact test).

``sbc``: every replication draws all parameters from the prior, simulates, fits one chain and
keeps ``L`` evenly thinned draws; the rank of the truth among them is uniform on ``0..L`` for a
calibrated posterior (Talts et al. 2018). Ranks are put in 5 bins per quantity; a chi-square
test per quantity and pooled (quantities of one fit share its data: a screen).

Writes the section ``--study`` of ``benchmarks/results/multilevel_calibration.json`` after
every replication (a partial run keeps what it finished). The machine is shared: times are
indicative only.
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
from hmm_pyro import Gaussian, MultilevelHMM, Prior, SubjectPrior, simulate
from hmm_pyro._io import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "multilevel_calibration.json"
LEVEL = 0.9
SBC_BINS = 5
PLANTED = {
    "pi": [0.5, 0.5],
    "A": [[0.9, 0.1], [0.15, 0.85]],
    "mu": [-2.0, 2.0],
    "sigma": [1.0, 0.8],
    "tau_A": [0.4, 0.3],
    "tau_mu": [0.4, 0.2],
}
QUANTITIES = {
    "A[0,0]": ("A", (0, 0)),
    "A[1,1]": ("A", (1, 1)),
    "mu[0]": ("mu", (0,)),
    "mu[1]": ("mu", (1,)),
    "sigma[0]": ("sigma", (0,)),
    "sigma[1]": ("sigma", (1,)),
    "tau_A[0]": ("tau_A", (0,)),
    "tau_A[1]": ("tau_A", (1,)),
    "tau_mu[0]": ("tau_mu", (0,)),
    "tau_mu[1]": ("tau_mu", (1,)),
}


def model(subjects: int) -> MultilevelHMM:
    """The fitted model (its prior is the one ``sbc`` draws from)."""
    return MultilevelHMM(
        2,
        Gaussian(),
        subjects,
        prior=Prior(mu_loc=[-2.0, 2.0], mu_scale=0.5),
        subject_prior=SubjectPrior(transition_scale=0.5, location_scale=0.3),
    )


def _truth(hmm: MultilevelHMM, study: str, replication: int) -> dict[str, torch.Tensor]:
    if study == "sbc":
        return hmm.sample_prior(seed=10_000 + replication)
    prior = hmm.sample_prior(seed=20_000 + replication)  # new subject-level z
    planted = {name: torch.tensor(value, dtype=torch.float64) for name, value in PLANTED.items()}
    return {**prior, **planted}


def _values(draws: dict[str, torch.Tensor], name: str, index: tuple[int, ...]) -> np.ndarray:
    value = draws[name]
    return value[(slice(None), *index)].numpy() if value.dim() > len(index) else value.numpy()


def _replicate(replication: int, args: argparse.Namespace) -> dict:
    hmm = model(args.subjects)
    truth = _truth(hmm, args.study, replication)
    data, _ = simulate(hmm, truth, [args.length] * args.subjects, seed=replication)
    began = time.perf_counter()
    fit = hmm_pyro.fit_nuts(
        hmm,
        data,
        chains=args.chains,
        warmup=args.warmup,
        draws=args.draws,
        seed=replication,
        parallel=False,
        progress=False,
    )
    seconds = time.perf_counter() - began
    flat = fit.flat_draws()
    record: dict = {"replication": replication, "seconds": seconds}
    sample_stats = fit.idata.sample_stats
    record["divergences"] = int(sample_stats["diverging"].sum())
    record["mean_leapfrog_steps"] = float(sample_stats["n_steps"].mean())
    truths = {key: float(truth[name][index]) for key, (name, index) in QUANTITIES.items()}
    record["truth"] = truths
    if args.study == "coverage":
        record["covered"], record["posterior_mean"], record["posterior_sd"] = {}, {}, {}
        for key, (name, index) in QUANTITIES.items():
            samples = _values(flat, name, index)
            low, high = np.quantile(samples, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
            record["covered"][key] = bool(low <= truths[key] <= high)
            record["posterior_mean"][key] = float(samples.mean())
            record["posterior_sd"][key] = float(samples.std())
    else:
        total = next(iter(flat.values())).shape[0]
        keep = np.unique(np.linspace(0, total - 1, args.ranks).round().astype(int))
        thinned = {name: value[keep] for name, value in flat.items()}
        record["thinned_draws"] = int(keep.size)
        record["rank"] = {
            key: int((_values(thinned, name, index) < truths[key]).sum())
            for key, (name, index) in QUANTITIES.items()
        }
    return record


def _coverage_summary(runs: list[dict]) -> dict:
    keys = list(QUANTITIES)
    per_quantity = {key: int(sum(run["covered"][key] for run in runs)) for key in keys}
    total, trials = sum(per_quantity.values()), len(keys) * len(runs)
    low, high = stats.binom.ppf([0.025, 0.975], len(runs), LEVEL)
    return {
        "replications": len(runs),
        "covered_per_quantity": per_quantity,
        "quantity_range_95": [int(low), int(high)],
        "quantities_outside_range": [k for k, v in per_quantity.items() if not low <= v <= high],
        "pooled_coverage": total / trials,
        "pooled_binomial_p": float(stats.binomtest(total, trials, LEVEL).pvalue),
    }


def _sbc_summary(runs: list[dict]) -> dict:
    keys = list(QUANTITIES)
    size = runs[0]["thinned_draws"]
    edges = np.linspace(0, size + 1, SBC_BINS + 1)
    counts, p_values = {}, {}
    pooled = np.zeros(SBC_BINS)
    for key in keys:
        ranks = np.array([run["rank"][key] for run in runs])
        count = np.histogram(ranks, bins=edges)[0]
        expected = np.diff(edges) / (size + 1) * len(runs)
        counts[key] = count.tolist()
        p_values[key] = float(stats.chisquare(count, expected).pvalue)
        pooled += count
    expected = np.diff(edges) / (size + 1) * len(runs) * len(keys)
    return {
        "replications": len(runs),
        "thinned_draws": size,
        "rank_bins": SBC_BINS,
        "bin_counts": counts,
        "chi_square_p": p_values,
        "smallest_p": min(p_values.values()),
        "bonferroni_level_0.01": 0.01 / len(keys),
        "pooled_bin_counts": pooled.tolist(),
        "pooled_chi_square_p": float(stats.chisquare(pooled, expected).pvalue),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the study and write its JSON section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=("coverage", "sbc"), default="coverage")
    parser.add_argument("--replications", type=int, default=None)
    parser.add_argument("--subjects", type=int, default=None)
    parser.add_argument("--length", type=int, default=None)
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--draws", type=int, default=None)
    parser.add_argument("--ranks", type=int, default=19, help="SBC: thinned draws kept")
    args = parser.parse_args(argv)
    coverage = args.study == "coverage"
    defaults = {
        "replications": 20 if coverage else 60,
        "subjects": 6 if coverage else 4,
        "length": 80 if coverage else 40,
        "draws": 150 if coverage else 190,
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    torch.set_num_threads(1)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    context = {
        "settings": {**vars(args), "states": 2, "level": LEVEL},
        "planted": PLANTED if coverage else "drawn from the prior",
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
    runs = []
    for replication in range(args.replications):
        runs.append(_replicate(replication, args))
        print(f"{replication}: {runs[-1]['seconds']:.1f} s", flush=True)
        summary = _coverage_summary(runs) if coverage else _sbc_summary(runs)
        median = float(np.median([run["seconds"] for run in runs]))
        divergences = int(sum(run["divergences"] for run in runs))
        results[args.study] = {
            **context,
            **summary,
            "median_seconds": median,
            "divergences": divergences,
            "runs": runs,
        }
        with atomic_write(RESULTS) as handle:
            handle.write(json.dumps(results, indent=2) + "\n")
    summary = results[args.study]
    print(json.dumps({k: v for k, v in summary.items() if k not in ("runs", "machine")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
