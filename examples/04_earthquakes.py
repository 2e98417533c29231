"""04 - Major earthquakes 1900-2006: the published two-state Poisson HMM, reproduced.

Zucchini & MacDonald (2009, Table 1.1) count the earthquakes of magnitude 7 or more in each
year from 1900 to 2006 and fit Poisson hidden Markov models by direct maximisation of the
likelihood. Their two-state model has maximum log likelihood

    -341.8787   initial distribution estimated    (5 free parameters)
    -342.3183   chain starting in its stationary distribution  (4 free parameters)

with rates 15.472 and 26.126 quakes a year. The script fits both by EM to maximum likelihood
(flat Dirichlet priors, no emission prior, tight tolerance), prints each optimum beside the
published number, diagnoses the fit, decodes the quiet and active years and plots them. The
full run then samples the posterior by NUTS under the default weak priors and sets the rates'
90% intervals beside the maximum-likelihood estimates.

    python examples/04_earthquakes.py            # EM fits, then NUTS with 4 chains
    python examples/04_earthquakes.py --quick    # a smoke run (1 EM start, tiny NUTS chains)
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
from hmm_pyro.plots import plot_emissions

PUBLISHED = {"free": -341.8787, "stationary": -342.3183}
"""Zucchini & MacDonald (2009): maximum log likelihood of the two-state model."""
PUBLISHED_RATES = (15.472, 26.126)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one EM start, tiny NUTS chains")
    parser.add_argument("--out", default="out/examples/04_earthquakes", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    restarts = 1 if args.quick else 5
    chains, warmup, draws = (2, 10, 10) if args.quick else (4, 300, 300)

    # 1. The data ------------------------------------------------------------------------------
    entry = dataset("earthquakes")
    table = entry.frame()
    data = entry.sequences()
    counts = table["count"].to_numpy()
    print(entry.title)
    print(
        f"{len(counts)} years, mean {counts.mean():.2f}, variance {counts.var(ddof=1):.2f} "
        "(far above the mean: one Poisson law does not fit)"
    )

    # 2. Maximum likelihood by EM, beside the published optimum --------------------------------
    hmm = hp.HMM(num_states=2, emission=hp.Poisson())  # flat Dirichlet priors on pi and A
    fits = {}
    for initial in ("free", "stationary"):
        fits[initial] = hp.fit_em(
            hmm,
            data,
            restarts=restarts,
            max_iter=1000,
            tol=1e-10,  # EM's default 1e-6 stops about 0.0003 short of the optimum
            seed=args.seed,
            emission_prior=False,  # with the flat Dirichlets: the maximum-likelihood estimate
            initial=initial,
            progress=False,
        )
        stats = fit_statistics(fits[initial])
        print(
            f"pi {initial:10s}: log likelihood {stats.log_likelihood:.4f} "
            f"(published {PUBLISHED[initial]:.4f}), {stats.num_params} free parameters"
        )
    fit = fits["stationary"]
    estimate = fit.posterior_mean()
    order = estimate["rate"].argsort()  # quiet state first
    rates = estimate["rate"][order]
    transition = estimate["A"][order][:, order]
    print(
        f"rates {rates[0]:.3f} and {rates[1]:.3f} (published {PUBLISHED_RATES[0]} and "
        f"{PUBLISHED_RATES[1]}); P(stay) {transition[0, 0]:.3f} and {transition[1, 1]:.3f}"
    )

    # 3. Diagnose and decode -------------------------------------------------------------------
    print(diagnose(fit))
    paths, _ = fit.viterbi()
    active = (paths[0] == int(order[1])).numpy()
    years = table["year"].to_numpy()
    print(f"Active years (Viterbi): {int(active.sum())} of {len(years)}, e.g. {years[active][:6]}")

    # 4. The posterior under the default weak priors (NUTS) ------------------------------------
    began = time.perf_counter()
    posterior = hp.fit_nuts(
        hmm,
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
        print(f"{name:6s} rate: 90% interval {low:.2f}-{high:.2f} (ML {rates[state]:.2f})")

    # 5. Plot ----------------------------------------------------------------------------------
    probs = fit.state_probs()[0, :, int(order[1])].numpy()
    figure, axes = plt.subplots(
        2, 1, figsize=(11, 5.5), sharex=True, height_ratios=[2, 1], layout="constrained"
    )
    axes[0].bar(years, counts, color=np.where(active, "C3", "C0"), width=0.8)
    for state, color in ((0, "C0"), (1, "C3")):
        axes[0].axhline(float(rates[state]), color=color, linestyle="--", linewidth=1)
    axes[0].set_ylabel("earthquakes (M >= 7)")
    axes[0].set_title("Yearly counts, coloured by the Viterbi state; dashed: the two rates")
    axes[1].plot(years, probs, color="C3")
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].set_ylabel("P(active | counts)")
    axes[1].set_xlabel("year")
    figure.savefig(out / "earthquakes_states.png", dpi=110)
    plt.close(figure)
    ax = plot_emissions(fit)
    ax.figure.savefig(out / "earthquakes_emissions.png", dpi=110)
    plt.close(ax.figure)
    print(f"Plots written to {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
