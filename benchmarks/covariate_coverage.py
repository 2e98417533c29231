"""Coverage study: NUTS recovers planted transition coefficients of a ``CovariateHMM``
(posterior 90% intervals cover the truth at a rate consistent with 90%), and a
simulation-based calibration (SBC) check on one small configuration.

Usage::

    PYTHONPATH=. python benchmarks/covariate_coverage.py [--replications 24] [--length 400]
        [--chains 2] [--warmup 200] [--draws 200] [--truth planted|prior]
    PYTHONPATH=. python benchmarks/covariate_coverage.py --truth sbc [--replications 60]
        [--length 200] [--chains 1] [--warmup 150] [--draws 190] [--ranks 19]

Model: 2 Gaussian states, transitions on two covariates, ``hour`` (a daily cycle,
``sin(2 pi t / 24)``) and ``temp`` (a Gaussian AR(1) series, coefficient 0.9, new each
replication), both standardised. Prior: the default ``CoefficientPrior`` (intercepts
``Normal(0, 2)``, slopes ``Normal(0, 1)``), ``mu ~ Normal([-2, 2], 0.5)`` (the state-specific
locations fix the labels), the default variance prior.

``--truth planted`` (default): every replication simulates one sequence of ``--length`` steps
from the fixed ``PLANTED`` parameters (slopes of both signs and a null ``temp`` effect out of
state 1); ``--truth prior``: every replication draws the parameters from the prior first, which
makes the coverage of a calibrated posterior exactly nominal on average. NUTS (``--chains``
chains of ``--warmup`` + ``--draws``, in this process), states matched to the truth by ``mu``,
then for each of the 6 off-diagonal coefficients whether the central 90% interval of its draws
covers the truth. Per coefficient the covered count is Binomial(R, 0.9) under nominal coverage;
the pooled count is reported with a two-sided binomial p-value that treats the coefficients as
independent (those of one fit share its data: a screen, not an exact test).

``--truth sbc``: every replication draws the parameters from the prior, simulates, fits and
keeps ``--ranks`` evenly thinned draws; the rank of the truth among them is uniform on
``0..L`` for a calibrated posterior (Talts et al. 2018). Ranks of each coefficient are put in
5 bins; a chi-square test per coefficient and pooled (coefficients of one fit share its data:
a screen). It detects a posterior whose scale is off by about a third or whose centre is off
by about half a posterior sd over 60 replications, not smaller miscalibrations.

Writes the section ``--truth`` of ``benchmarks/results/covariate_coverage.json`` after every
replication (a partial run keeps what it finished) and prints a Markdown table. The machine is
shared: times are CPU-bound wall times, indicative only.
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
from hmm_pyro import CovariateHMM, Covariates, Gaussian, Prior, simulate
from hmm_pyro._io import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "covariate_coverage.json"
LEVEL = 0.9
SBC_BINS = 5
NAMES = ("hour", "temp")
PLANTED = {
    "pi": [0.5, 0.5],
    # beta_A[i, j] = (intercept, hour, temp): log-odds of i -> j against staying
    "beta_A": [
        [[0.0, 0.0, 0.0], [-2.0, 1.0, 0.5]],
        [[-2.5, -1.0, 0.0], [0.0, 0.0, 0.0]],
    ],
    "mu": [-2.0, 2.0],
    "sigma": [1.0, 1.0],
}
PAIRS = ((0, 1), (1, 0))
TERMS = ("intercept", *NAMES)


def model() -> CovariateHMM:
    """The fitted model (its prior is the one ``--truth prior`` draws from)."""
    return CovariateHMM(2, Gaussian(), NAMES, prior=Prior(mu_loc=[-2.0, 2.0], mu_scale=0.5))


def _covariates(length: int, generator: np.random.Generator) -> Covariates:
    steps = np.arange(length)
    temp = np.zeros(length)
    noise = generator.normal(size=length)
    for t in range(1, length):
        temp[t] = 0.9 * temp[t - 1] + noise[t]
    columns = np.column_stack([np.sin(2 * np.pi * steps / 24), temp])
    return Covariates([columns], list(NAMES))


def _replicate(replication: int, args: argparse.Namespace) -> dict:
    hmm = model()
    generator = np.random.default_rng(replication)
    covariates = _covariates(args.length, generator)
    if args.truth in ("prior", "sbc"):
        truth = hmm.sample_prior(seed=10_000 + replication)
    else:
        truth = {name: torch.tensor(value, dtype=torch.float64) for name, value in PLANTED.items()}
    truth_order = torch.argsort(truth["mu"])
    data, _ = simulate(hmm, truth, covariates=covariates, seed=replication)
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
    order = torch.argsort(fit.posterior_mean()["mu"])
    beta = fit.draws()["beta_A"].reshape(-1, 2, 2, len(TERMS))[:, order][:, :, order].numpy()
    planted = truth["beta_A"][truth_order][:, truth_order].numpy()
    values, covered, means, sds, ranks = {}, {}, {}, {}, {}
    keep = np.unique(np.linspace(0, beta.shape[0] - 1, args.ranks).round().astype(int))
    for i, j in PAIRS:
        for k, term in enumerate(TERMS):
            key = f"{i}->{j} {term}"
            samples = beta[:, i, j, k]
            low, high = np.quantile(samples, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
            values[key] = float(planted[i, j, k])
            covered[key] = bool(low <= planted[i, j, k] <= high)
            means[key], sds[key] = float(samples.mean()), float(samples.std())
            ranks[key] = int((samples[keep] < planted[i, j, k]).sum())
    sample_stats = fit.idata.sample_stats
    return {
        "replication": replication,
        "truth": values,
        "rank": ranks,
        "thinned_draws": int(keep.size),
        "covered": covered,
        "posterior_mean": means,
        "posterior_sd": sds,
        "seconds": seconds,
        "divergences": int(sample_stats["diverging"].sum()),
        "mean_leapfrog_steps": float(sample_stats["n_steps"].mean()),
        "max_r_hat": (fit.attrs.get("relabel") or {}).get("r_hat"),
    }


def _summary(runs: list[dict]) -> dict:
    keys = list(runs[0]["covered"])
    per_coefficient = {key: int(sum(run["covered"][key] for run in runs)) for key in keys}
    total, trials = sum(per_coefficient.values()), len(keys) * len(runs)
    test = stats.binomtest(total, trials, LEVEL)
    low, high = stats.binom.ppf([0.025, 0.975], len(runs), LEVEL)
    z = [
        (run["posterior_mean"][key] - run["truth"][key]) / run["posterior_sd"][key]
        for run in runs
        for key in keys
    ]
    return {
        "replications": len(runs),
        "covered_per_coefficient": per_coefficient,
        "coefficient_range_95": [int(low), int(high)],
        "coefficients_outside_range": [
            key for key, value in per_coefficient.items() if not low <= value <= high
        ],
        "pooled_coverage": total / trials,
        "pooled_binomial_p": float(test.pvalue),
        "z_mean": float(np.mean(z)),
        "z_sd": float(np.std(z)),
        "median_seconds": float(np.median([run["seconds"] for run in runs])),
        "divergences": int(sum(run["divergences"] for run in runs)),
        "runs": runs,
    }


def _sbc_summary(runs: list[dict]) -> dict:
    """Chi-square tests of uniform ranks, per coefficient and pooled."""
    keys = list(runs[0]["rank"])
    size = runs[0]["thinned_draws"]
    edges = np.linspace(0, size + 1, SBC_BINS + 1)
    per_coefficient, pooled = {}, np.zeros(SBC_BINS)
    for key in keys:
        counts = np.histogram([run["rank"][key] for run in runs], bins=edges)[0]
        pooled += counts
        per_coefficient[key] = {
            "bin_counts": counts.tolist(),
            "chi2_p": float(stats.chisquare(counts).pvalue),
        }
    smallest = min(value["chi2_p"] for value in per_coefficient.values())
    return {
        "replications": len(runs),
        "thinned_draws": size,
        "rank_bins": SBC_BINS,
        "per_coefficient": per_coefficient,
        "pooled_bin_counts": pooled.astype(int).tolist(),
        "pooled_chi2_p": float(stats.chisquare(pooled).pvalue),
        "smallest_p": smallest,
        "smallest_p_bonferroni": min(1.0, smallest * len(keys)),
        "median_seconds": float(np.median([run["seconds"] for run in runs])),
        "divergences": int(sum(run["divergences"] for run in runs)),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the study and write its JSON section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=24)
    parser.add_argument("--length", type=int, default=400)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--truth", choices=("planted", "prior", "sbc"), default="planted")
    parser.add_argument("--ranks", type=int, default=19, help="sbc: thinned draws kept")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    context = {
        "settings": {**vars(args), "states": 2, "level": LEVEL, "covariates": list(NAMES)},
        "command": "PYTHONPATH=. python benchmarks/covariate_coverage.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "planted": PLANTED if args.truth == "planted" else "drawn from the prior",
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
        summarise = _sbc_summary if args.truth == "sbc" else _summary
        results[args.truth] = {**context, **summarise(runs)}
        with atomic_write(RESULTS) as handle:
            handle.write(json.dumps(results, indent=2) + "\n")
    summary = results[args.truth]
    if args.truth == "sbc":
        print("| replications | pooled bins | pooled chi2 p | smallest p (Bonferroni) |")
        print("|---|---|---|---|")
        print(
            f"| {summary['replications']} | {summary['pooled_bin_counts']} | "
            f"{summary['pooled_chi2_p']:.3f} | {summary['smallest_p']:.3f} "
            f"({summary['smallest_p_bonferroni']:.3f}) |"
        )
        return 0
    print("| truth | replications | pooled coverage | binomial p | z mean | z sd | outside 95% |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.truth} | {summary['replications']} | {summary['pooled_coverage']:.3f} | "
        f"{summary['pooled_binomial_p']:.3f} | {summary['z_mean']:.2f} | {summary['z_sd']:.2f} "
        f"| {summary['coefficients_outside_range'] or 'none'} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
