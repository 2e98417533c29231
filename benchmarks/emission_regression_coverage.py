"""Coverage study: NUTS recovers planted emission-regression coefficients of an ``HMM``
(posterior 90% intervals cover the truth at a rate consistent with 90%).

Usage::

    PYTHONPATH=. python benchmarks/emission_regression_coverage.py
        [--family gaussian|poisson|categorical]
        [--replications 24] [--first 0] [--length 200] [--chains 1] [--warmup 150]
        [--draws 150] [--truth planted|prior] [--match sorted|intercept|nearest]

Model: 2 states with homogeneous transitions, the emission a regression on two covariates,
``hour`` (``sin(2 pi t / 24)``) and ``temp`` (a Gaussian AR(1) series, coefficient 0.9, new
each replication), both standardised (the covariates of ``benchmarks/covariate_coverage.py``).
``--family gaussian``: ``y_t | z_t = k ~ Normal(x_t . w_k, sigma_k)``, prior
``Prior(mu_loc=[-2, 2], mu_scale=1)`` (intercepts ``Normal(-+2, 1)``, which fixes the labels;
slopes ``Normal(0, 1)``), the default variance prior. ``--family poisson``: log rate
``x_t . w_k``, the default prior (intercepts Normal with the moments of the log of a
``Gamma(1, 0.1)`` rate, slopes ``Normal(0, 1)``). ``--family categorical``: 3 symbols, the
log-odds of symbols 1 and 2 against symbol 0 regressions ``x_t . W[k, v]``, the default prior
(intercepts ``Normal(0, 2)``, slopes ``Normal(0, 1)``).

Each replication (numbers ``--first`` on, which seed the covariates, the truth and the data)
simulates one sequence of ``--length`` steps from the fixed ``PLANTED`` parameters (slopes of
both signs and a null effect; ``--truth prior``: parameters drawn from the model's prior, new
each replication, where a calibrated posterior's coverage is nominal on average), runs NUTS
(``--chains`` chains of ``--warmup`` + ``--draws``, in this process, one thread), puts the
posterior's states in the truth's labelling and records whether the central 90% interval of
each coefficient (6; 12 for the categorical family) covers the truth.

Labelling (``--match``). ``sorted`` (default): the states of every posterior draw are ordered by
their first coefficient (an intercept), as the truth's are. That order is a function of the
parameters that does not depend on how the states are labelled, so under exact inference its
intervals cover at the nominal rate on average over prior draws, whichever labelling each chain
or draw is in. ``intercept``: one order for all draws, by the posterior means of the first
coefficient; ``nearest``: the labelling whose posterior means are nearest the truth's
coefficients. These two match one labelling per fit to the truth's order, which is not a
function of the parameters alone, so they carry no such guarantee where the states' intercepts
are close (the labelling of a fit, after Stephens' relabelling, need not follow the order of
the intercepts draw by draw). Each replication also records the covered counts under the other
two labellings of the same draws.

Statistics. Per coefficient the covered count is Binomial(R, 0.9) under nominal coverage (the
95% range is printed). The pooled count's two-sided binomial p-value treats the coefficients as
independent, but those of one fit share its data and miss together, so it overstates the
evidence; ``replication_t_p`` is a two-sided one-sample t-test of the per-replication covered
fractions against 0.9, with the replications (independent) as the units. For ``--truth prior``
also the rank of the truth's log joint density ``log p(y, theta)`` among the draws' (a
label-invariant statistic, uniform under exact inference; a Kolmogorov-Smirnov p-value), the
smallest bulk ESS of the coefficients per replication, and R-hat with several chains.

Writes the section ``--family`` (with ``(truth from the prior)`` for ``--truth prior``,
``(<match> labelling)`` for another ``--match`` and ``(replications a-b)`` for ``--first`` other
than 0) of ``benchmarks/results/emission_regression_coverage.json`` after every replication (a
partial run keeps what it finished; sections written meanwhile by other runs are kept), with
the command line, and prints a Markdown table. The machine is
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

import arviz as az
import numpy as np
import pyro
import torch
from scipy import stats

import hmm_pyro
from hmm_pyro import (
    HMM,
    CategoricalRegression,
    Covariates,
    GaussianRegression,
    PoissonRegression,
    Prior,
    Sequences,
    simulate,
)
from hmm_pyro._io import atomic_write
from hmm_pyro.labels.labelling import log_posterior
from hmm_pyro.labels.permutations import permute_params

RESULTS = Path(__file__).resolve().parent / "results" / "emission_regression_coverage.json"
LEVEL = 0.9
MATCHES = ("sorted", "intercept", "nearest")
NAMES = ("hour", "temp")
TERMS = ("intercept", *NAMES)
TRANSITIONS = {"pi": [0.5, 0.5], "A": [[0.9, 0.1], [0.15, 0.85]]}
PLANTED = {
    "gaussian": {**TRANSITIONS, "w": [[-2.0, 1.0, 0.0], [2.0, -0.5, 0.8]], "sigma": [1.0, 1.0]},
    "poisson": {**TRANSITIONS, "w": [[0.5, 0.5, 0.0], [2.0, -0.3, 0.4]]},
    "categorical": {
        **TRANSITIONS,
        "W": [[[1.5, 1.0, 0.0], [-1.0, 0.0, 0.5]], [[-1.0, -0.5, 0.0], [1.5, 0.5, -0.8]]],
    },
}


def model(family: str) -> HMM:
    """The fitted model of ``family``."""
    if family == "gaussian":
        return HMM(2, GaussianRegression(NAMES), prior=Prior(mu_loc=[-2.0, 2.0], mu_scale=1.0))
    if family == "categorical":
        return HMM(2, CategoricalRegression(3, NAMES))
    return HMM(2, PoissonRegression(NAMES))


def _covariates(length: int, generator: np.random.Generator) -> Covariates:
    steps = np.arange(length)
    temp = np.zeros(length)
    noise = generator.normal(size=length)
    for t in range(1, length):
        temp[t] = 0.9 * temp[t - 1] + noise[t]
    columns = np.column_stack([np.sin(2 * np.pi * steps / 24), temp])
    return Covariates([columns], list(NAMES))


def _matched(hmm: HMM, fit: hmm_pyro.Fit, name: str, planted: np.ndarray, match: str) -> np.ndarray:
    """Draws ``(S, 2, F)`` of coefficient ``name`` in the truth's labelling (``--match``)."""
    flat = fit.flat_draws()[name]  # (S, 2, ...)
    if match == "sorted":  # every draw's states ordered by their first coefficient
        perms = np.argsort(flat.reshape(flat.shape[0], 2, -1)[:, :, 0].numpy(), axis=1)
        matched = permute_params(hmm, {name: flat}, perms)[name]
    else:
        mean = fit.posterior_mean()[name].reshape(2, -1).numpy()
        if match == "intercept":  # one order, by the posterior means of the first coefficient
            order = np.argsort(mean[:, 0])
        else:  # the labelling whose posterior means are nearest the truth's coefficients
            gaps = [float(((mean[list(p)] - planted) ** 2).sum()) for p in ((0, 1), (1, 0))]
            order = np.array((0, 1) if gaps[0] <= gaps[1] else (1, 0))
        matched = flat.numpy()[:, order]
    return np.asarray(matched).reshape(flat.shape[0], 2, -1)


def _covers(draws: np.ndarray, planted: np.ndarray) -> np.ndarray:
    """Whether each central interval of ``draws (S, 2, F)`` covers ``planted (2, F)``."""
    low, high = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    return (low <= planted) & (planted <= high)


def dataset(
    replication: int, family: str, truth_kind: str, length: int
) -> tuple[HMM, dict[str, torch.Tensor], Sequences]:
    """The model, the truth and the data of one replication (seeded by its number)."""
    hmm = model(family)
    covariates = _covariates(length, np.random.default_rng(replication))
    if truth_kind == "prior":
        truth = hmm.sample_prior(seed=10_000 + replication)
    else:
        truth = {
            name: torch.tensor(value, dtype=torch.float64)
            for name, value in PLANTED[family].items()
        }
    data, _ = simulate(hmm, truth, covariates=covariates, seed=replication)
    return hmm, truth, data


def _replicate(replication: int, args: argparse.Namespace) -> dict:
    hmm, truth, data = dataset(replication, args.family, args.truth, args.length)
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
    name = "W" if args.family == "categorical" else "w"
    shape = tuple(truth[name].shape)
    if len(shape) == 3:  # (state, symbol with log-odds, term)
        labels = [f"symbol {v + 1} {term}" for v in range(shape[1]) for term in TERMS]
    else:
        labels = list(TERMS)
    planted = truth[name][torch.argsort(truth[name].reshape(2, -1)[:, 0])].reshape(2, -1).numpy()
    draws = _matched(hmm, fit, name, planted, args.match)
    hits = _covers(draws, planted)
    others = {
        match: int(_covers(_matched(hmm, fit, name, planted, match), planted).sum())
        for match in MATCHES
        if match != args.match
    }
    values, covered, means, sds = {}, {}, {}, {}
    for state in range(2):
        for k, label in enumerate(labels):
            key = f"{name}[{state}] {label}"
            values[key] = float(planted[state, k])
            covered[key] = bool(hits[state, k])
            means[key] = float(draws[:, state, k].mean())
            sds[key] = float(draws[:, state, k].std())
    sample_stats = fit.idata.sample_stats
    truth_log_joint = float(hmm.log_prior(truth) + hmm.log_likelihood(truth, data).sum())
    r_hat = float(az.rhat(fit.idata, var_names=[name])[name].max()) if args.chains > 1 else None
    return {
        "replication": replication,
        "truth": values,
        "covered": covered,
        "covered_count_other_labellings": others,
        "posterior_mean": means,
        "posterior_sd": sds,
        "seconds": seconds,
        "divergences": int(sample_stats["diverging"].sum()),
        "mean_leapfrog_steps": float(sample_stats["n_steps"].mean()),
        "min_ess_bulk": float(az.ess(fit.idata, var_names=[name])[name].min()),
        "max_r_hat": r_hat,
        "truth_log_joint_rank": float(np.mean(log_posterior(fit) < truth_log_joint)),
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
        if run["posterior_sd"][key] > 0  # a chain that never moved has no spread
    ]
    fractions = [np.mean([run["covered"][key] for key in keys]) for run in runs]
    spread = float(np.std(fractions, ddof=1)) if len(runs) > 1 else 0.0
    if spread > 0:
        replication_p = float(stats.ttest_1samp(fractions, LEVEL).pvalue)
    else:
        replication_p = float(np.mean(fractions) == LEVEL)
    ranks = [run["truth_log_joint_rank"] for run in runs]
    return {
        "replications": len(runs),
        "covered_per_coefficient": per_coefficient,
        "coefficient_range_95": [int(low), int(high)],
        "coefficients_outside_range": [
            key for key, value in per_coefficient.items() if not low <= value <= high
        ],
        "pooled_coverage": total / trials,
        "pooled_binomial_p": float(test.pvalue),
        "replication_t_p": replication_p,
        "truth_log_joint_rank_ks_p": float(stats.kstest(ranks, "uniform").pvalue),
        "min_ess_bulk": float(min(run["min_ess_bulk"] for run in runs)),
        "pooled_coverage_other_labellings": {
            match: sum(run["covered_count_other_labellings"][match] for run in runs) / trials
            for match in runs[0]["covered_count_other_labellings"]
        },
        "z_mean": float(np.mean(z)),
        "z_sd": float(np.std(z)),
        "median_seconds": float(np.median([run["seconds"] for run in runs])),
        "total_seconds": float(sum(run["seconds"] for run in runs)),
        "divergences": int(sum(run["divergences"] for run in runs)),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the study and write its JSON section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=tuple(PLANTED), default="gaussian")
    parser.add_argument("--replications", type=int, default=24)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--draws", type=int, default=150)
    parser.add_argument("--truth", choices=("planted", "prior"), default="planted")
    parser.add_argument("--match", choices=MATCHES, default="sorted")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    command = "PYTHONPATH=. python benchmarks/emission_regression_coverage.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    context = {
        "command": command.strip(),
        "settings": {**vars(args), "states": 2, "level": LEVEL, "covariates": list(NAMES)},
        "planted": PLANTED[args.family] if args.truth == "planted" else "drawn from the prior",
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cores_available": len(os.sched_getaffinity(0)),
            "load_average_at_start": list(os.getloadavg()),
            "note": "shared machine (about 6 sessions on 2 cores): times are indicative only",
        },
        "versions": {
            "hmm_pyro": hmm_pyro.__version__,
            "torch": torch.__version__,
            "pyro": pyro.__version__,
        },
    }
    section = args.family if args.truth == "planted" else f"{args.family} (truth from the prior)"
    if args.match != "sorted":
        section += f" ({args.match} labelling)"
    if args.first != 0:
        section += f" (replications {args.first}-{args.first + args.replications - 1})"
    runs = []
    for replication in range(args.first, args.first + args.replications):
        runs.append(_replicate(replication, args))
        print(f"{replication}: {runs[-1]['seconds']:.1f} s", flush=True)
        summary = {**context, **_summary(runs)}
        stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        stored[section] = summary  # sections written meanwhile by other runs are kept
        with atomic_write(RESULTS) as handle:
            handle.write(json.dumps(stored, indent=2) + "\n")
    print(
        "| family | replications | pooled coverage | binomial p | replication t p | "
        "log-joint rank KS p | z mean | z sd | outside 95% |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {args.family} | {summary['replications']} | {summary['pooled_coverage']:.3f} | "
        f"{summary['pooled_binomial_p']:.3f} | {summary['replication_t_p']:.3f} | "
        f"{summary['truth_log_joint_rank_ks_p']:.3f} | {summary['z_mean']:.2f} | "
        f"{summary['z_sd']:.2f} | {summary['coefficients_outside_range'] or 'none'} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
