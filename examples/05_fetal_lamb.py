"""05 - Movements of a fetal lamb: a quiet and an active state (Leroux & Puterman 1992).

Leroux & Puterman (1992) count the movements of a fetal lamb, seen by ultrasound, in 240
consecutive 5-second intervals: mostly zeros, with a few bursts of activity. A Poisson hidden
Markov model with two states (quiet and active) is their model for the series. The script
fits it by EM to maximum likelihood (flat Dirichlet priors, no emission prior, tight
tolerance) with the initial distribution estimated and stationary, and prints each optimum
beside the number computed independently of this package (a NumPy forward algorithm
maximised by SciPy, as in tests/datasets/; see docs/datasets.md):

    -177.4833   initial distribution estimated    (5 free parameters)
    -177.5188   chain starting in its stationary distribution  (4 free parameters)

It then compares one, two and three states by AIC and BIC, diagnoses the fit, decodes the
active intervals and plots them. The full run also samples the posterior by NUTS.

    python examples/05_fetal_lamb.py            # EM fits, then NUTS with 4 chains
    python examples/05_fetal_lamb.py --quick    # a smoke run (1 EM start, tiny NUTS chains)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import hmm_pyro as hp
from hmm_pyro.datasets import dataset
from hmm_pyro.diagnostics import diagnose, relabel
from hmm_pyro.fit import fit_statistics

INDEPENDENT = {"free": -177.4833, "stationary": -177.5188}
"""Maximum log likelihood of the two-state Poisson HMM, by direct numerical maximisation."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one EM start, tiny NUTS chains")
    parser.add_argument("--out", default="out/examples/05_fetal_lamb", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def fit_ml(data, num_states, initial, restarts, seed):
    """Maximum likelihood by EM: flat Dirichlet priors, no emission prior, tight tolerance."""
    hmm = hp.HMM(num_states=num_states, emission=hp.Poisson())
    return hp.fit_em(
        hmm,
        data,
        restarts=restarts,
        max_iter=2000,
        tol=1e-10,
        seed=seed,
        emission_prior=False,
        initial=initial,
        progress=False,
    )


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    restarts = 1 if args.quick else 5
    chains, warmup, draws = (2, 10, 10) if args.quick else (4, 300, 300)

    # 1. The data ------------------------------------------------------------------------------
    entry = dataset("fetal_lamb")
    table = entry.frame()
    data = entry.sequences()
    counts = table["count"].to_numpy()
    values, frequency = np.unique(counts, return_counts=True)
    print(entry.title)
    print(
        f"{counts.sum()} movements, mean {counts.mean():.3f} per interval, variance "
        f"{counts.var(ddof=1):.3f}; intervals with 0, 1, ... movements:"
    )
    print(f"  {dict(zip(values.tolist(), frequency.tolist(), strict=True))}")

    # 2. Two states by maximum likelihood, beside the independent optimum ---------------------
    fits = {}
    for initial in ("free", "stationary"):
        fits[initial] = fit_ml(data, 2, initial, restarts, args.seed)
        stats = fit_statistics(fits[initial])
        print(
            f"pi {initial:10s}: log likelihood {stats.log_likelihood:.4f} "
            f"(independent {INDEPENDENT[initial]:.4f}), {stats.num_params} free parameters"
        )
    fit = fits["stationary"]
    estimate = fit.posterior_mean()
    order = estimate["rate"].argsort()  # quiet state first
    rates = estimate["rate"][order]
    transition = estimate["A"][order][:, order]
    print(
        f"rates {rates[0]:.4f} (quiet) and {rates[1]:.4f} (active); "
        f"P(quiet -> active) {transition[0, 1]:.4f}, P(active -> quiet) {transition[1, 0]:.4f}"
    )

    # 3. How many states? ----------------------------------------------------------------------
    print("states  log likelihood  parameters      AIC      BIC")
    criteria = {}
    for num_states in (1, 2, 3):
        # one and three states: 5 starts even in quick mode (one start can stop at a local
        # optimum of three states below the two-state optimum)
        fit_k = fits["free"] if num_states == 2 else fit_ml(data, num_states, "free", 5, 0)
        stats = fit_statistics(fit_k)
        print(
            f"{num_states:6d}  {stats.log_likelihood:14.4f}  {stats.num_params:10d}  "
            f"{stats.aic:7.2f}  {stats.bic:7.2f}"
        )
        criteria[num_states] = (stats.aic, stats.bic)
    best_aic, best_bic = (min(criteria, key=lambda k: criteria[k][i]) for i in (0, 1))
    print(f"AIC prefers {best_aic} states, BIC {best_bic}")

    # 4. Diagnose and decode -------------------------------------------------------------------
    print(diagnose(fit))
    paths, _ = fit.viterbi()
    active = (paths[0] == int(order[1])).numpy()
    intervals = table["interval"].to_numpy()
    print(f"Active intervals (Viterbi): {intervals[active].tolist()}")

    # 5. The posterior under the default weak priors (NUTS) ------------------------------------
    began = time.perf_counter()
    posterior = hp.fit_nuts(
        hp.HMM(num_states=2, emission=hp.Poisson()),
        data,
        chains=chains,
        warmup=warmup,
        draws=draws,
        seed=args.seed,
        max_tree_depth=4 if args.quick else 10,
        parallel=not args.quick,
        progress=False,
    )
    print(f"NUTS: {chains} chains x ({warmup} + {draws}) in {time.perf_counter() - began:.1f} s")
    report = diagnose(posterior)
    print(report)
    if report.flag("label_switching") is not None:
        posterior = relabel(posterior)
    draws_rate = posterior.draws()["rate"].reshape(-1, 2).sort(dim=1).values
    for state, name in enumerate(("quiet", "active")):
        low, high = np.quantile(draws_rate[:, state].numpy(), [0.05, 0.95])
        print(f"{name:6s} rate: 90% interval {low:.3f}-{high:.3f} (ML {rates[state]:.3f})")

    # 6. Plot ----------------------------------------------------------------------------------
    probs = fit.state_probs()[0, :, int(order[1])].numpy()
    figure, axes = plt.subplots(
        2, 1, figsize=(11, 5), sharex=True, height_ratios=[2, 1], layout="constrained"
    )
    axes[0].bar(intervals, counts, color=np.where(active, "C3", "C0"), width=0.9)
    axes[0].set_ylabel("movements")
    axes[0].set_title("Movements per 5-second interval, coloured by the Viterbi state")
    axes[1].plot(intervals, probs, color="C3")
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].set_ylabel("P(active | counts)")
    axes[1].set_xlabel("5-second interval")
    figure.savefig(out / "lamb_states.png", dpi=110)
    plt.close(figure)
    print(f"Plot written to {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
