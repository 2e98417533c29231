"""06 - Old Faithful: short and long waits between eruptions (Azzalini & Bowman 1990).

Azzalini & Bowman (1990) recorded 299 successive eruptions of the Old Faithful geyser in
Yellowstone National Park, 1 to 15 August 1985. The waiting times between eruptions fall into
a short group (about an hour) and a long one (about 80 minutes), and they alternate: in this
record no short wait (under 68 minutes) is ever followed by another. A two-state Gaussian
hidden Markov model captures both: its maximum-likelihood transition matrix has probability 0
of short after short. The script fits it by EM to maximum likelihood (no emission prior,
flat Dirichlet priors, tight tolerance) and prints the optimum beside the number computed
independently of this package (a NumPy forward algorithm maximised by SciPy, as in
tests/datasets/; see docs/datasets.md):

    -1092.3995   initial distribution estimated   (7 free parameters)

It then diagnoses the fit, decodes short and long waits and compares the decoding with the
68-minute threshold. The full run also samples the posterior by NUTS under priors on the
scale of minutes.

    python examples/06_old_faithful.py            # EM fit, then NUTS with 4 chains
    python examples/06_old_faithful.py --quick    # a smoke run (1 EM start, tiny chains)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import hmm_pyro as hp
from hmm_pyro.datasets import dataset
from hmm_pyro.diagnostics import diagnose, relabel
from hmm_pyro.fit import fit_statistics
from hmm_pyro.plots import plot_emissions

INDEPENDENT = -1092.3995
"""Maximum log likelihood of the two-state Gaussian HMM (pi estimated), by direct maximisation."""
SHORT_WAIT = 68
"""Minutes: every wait in the record is either below this or above it, and no two waits
below it follow each other."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one EM start, tiny NUTS chains")
    parser.add_argument("--out", default="out/examples/06_old_faithful", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    restarts = 1 if args.quick else 5
    chains, warmup, draws = (2, 10, 10) if args.quick else (4, 300, 300)

    # 1. The data ------------------------------------------------------------------------------
    entry = dataset("old_faithful")
    table = entry.frame()
    data = entry.sequences()
    waiting = table["waiting"].to_numpy()
    short = waiting < SHORT_WAIT
    pairs = int(np.sum(short[:-1] & short[1:]))
    print(entry.title)
    print(
        f"waits of {waiting.min()}-{waiting.max()} minutes, mean {waiting.mean():.2f}; "
        f"{int(short.sum())} short (< {SHORT_WAIT} min), {pairs} of them in a row"
    )

    # 2. Maximum likelihood by EM, beside the independent optimum -----------------------------
    hmm = hp.HMM(num_states=2, emission=hp.Gaussian())
    fit = hp.fit_em(
        hmm,
        data,
        restarts=restarts,
        max_iter=2000,
        tol=1e-10,
        seed=args.seed,
        emission_prior=False,  # with the default flat Dirichlets: maximum likelihood
        progress=False,
    )
    stats = fit_statistics(fit)
    print(
        f"log likelihood {stats.log_likelihood:.4f} (independent {INDEPENDENT:.4f}), "
        f"{stats.num_params} free parameters"
    )
    estimate = fit.posterior_mean()
    order = estimate["mu"].argsort()  # short wait first
    mu, sigma = estimate["mu"][order], estimate["sigma"][order]
    transition = estimate["A"][order][:, order]
    for state, name in enumerate(("short", "long")):
        print(f"{name:5s} waits: mean {mu[state]:.2f} min, sd {sigma[state]:.2f} min")
    print(
        f"P(short -> short) {transition[0, 0]:.4f}, P(long -> short) {transition[1, 0]:.4f}, "
        f"P(long -> long) {transition[1, 1]:.4f}"
    )

    # 3. Diagnose and decode -------------------------------------------------------------------
    print(diagnose(fit))
    paths, _ = fit.viterbi()
    decoded_short = (paths[0] == int(order[0])).numpy()
    agree = float(np.mean(decoded_short == short))
    print(f"Viterbi short/long agrees with the {SHORT_WAIT}-minute threshold at {agree:.1%}")

    # 4. The posterior under priors on the scale of minutes (NUTS) -----------------------------
    prior = hp.Prior(mu_loc=70.0, mu_scale=20.0, variance_shape=2.0, variance_scale=100.0)
    began = time.perf_counter()
    posterior = hp.fit_nuts(
        hp.HMM(num_states=2, emission=hp.Gaussian(), prior=prior),
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
    posterior_draws = posterior.draws()
    short_state = posterior_draws["mu"].reshape(-1, 2).argmin(dim=1)  # per draw
    rows = torch.arange(len(short_state))
    stay = posterior_draws["A"].reshape(-1, 2, 2)[rows, short_state, short_state]
    low, high = np.quantile(stay.numpy(), [0.05, 0.95])
    print(f"P(short -> short): 90% interval {low:.3f}-{high:.3f} (ML {transition[0, 0]:.3f})")

    # 5. Plot ----------------------------------------------------------------------------------
    eruptions = table["eruption"].to_numpy()
    figure, ax = plt.subplots(figsize=(11, 3.5), layout="constrained")
    ax.plot(eruptions, waiting, color="0.6", linewidth=0.6)
    ax.scatter(eruptions, waiting, c=np.where(decoded_short, "C0", "C3"), s=10, zorder=3)
    ax.axhline(SHORT_WAIT, color="k", linestyle=":", linewidth=1)
    ax.set_xlabel("eruption")
    ax.set_ylabel("wait before it (min)")
    ax.set_title("Waits between eruptions, Viterbi state: short (blue) or long (red)")
    figure.savefig(out / "faithful_states.png", dpi=110)
    plt.close(figure)
    ax = plot_emissions(fit)
    ax.figure.savefig(out / "faithful_emissions.png", dpi=110)
    plt.close(ax.figure)
    print(f"Plots written to {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
