"""02 - Calm and volatile regimes in daily returns (Gaussian emissions).

Returns-like data: a calm regime (mean +0.05%, sd 0.6%) and a volatile regime (mean -0.10%,
sd 2.0%) that persist for weeks:

    A = [[0.98, 0.02],     mu = [0.05, -0.10],   sigma = [0.6, 2.0]   (percent per day)
         [0.05, 0.95]]

The regimes overlap heavily in their means; they differ in volatility, which only a model of
the whole sequence can see. The script simulates one long series of daily returns, fits a
2-state Gaussian HMM by NUTS (sticky transitions, a prior on the scale of daily returns in
percent), diagnoses the fit, relabels if the chains disagree, compares with the EM point
estimate, and plots the series with the posterior probability of the volatile regime.

    python examples/02_regime_switching.py            # 1,000 trading days, 4 chains
    python examples/02_regime_switching.py --quick    # a smoke run (seconds)
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
from hmm_pyro.diagnostics import diagnose, relabel
from hmm_pyro.plots import plot_emissions

CALM, VOLATILE = 0, 1
TRUE_PARAMS = {
    "pi": torch.tensor([0.8, 0.2], dtype=torch.float64),
    "A": torch.tensor([[0.98, 0.02], [0.05, 0.95]], dtype=torch.float64),
    "mu": torch.tensor([0.05, -0.10], dtype=torch.float64),
    "sigma": torch.tensor([0.6, 2.0], dtype=torch.float64),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and chains (smoke test)")
    parser.add_argument("--out", default="out/examples/02_regime_switching", help="PNG folder")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    days = 200 if args.quick else 1000
    chains, warmup, draws = (2, 20, 20) if args.quick else (4, 500, 500)

    # 1. Simulate ------------------------------------------------------------------------------
    prior = hp.Prior(
        stickiness=20.0,  # regimes last weeks
        mu_loc=0.0,
        mu_scale=1.0,  # daily mean returns within a few percent
        variance_shape=2.0,
        variance_scale=1.0,  # prior mean variance 1 (sd about 1%)
    )
    hmm = hp.HMM(num_states=2, emission=hp.Gaussian(), prior=prior)
    data, states = hp.simulate(hmm, TRUE_PARAMS, days, seed=args.seed)
    returns = data[0]
    volatile_share = float((states[0] == VOLATILE).double().mean())
    print(
        f"Simulated {days} daily returns: overall sd {returns.std():.2f}%, "
        f"{volatile_share:.1%} of days volatile."
    )

    # 2. Fit: NUTS, and EM for comparison ------------------------------------------------------
    began = time.perf_counter()
    fit = hp.fit_nuts(
        hmm,
        data,
        chains=chains,
        warmup=warmup,
        draws=draws,
        seed=args.seed,
        max_tree_depth=5 if args.quick else 10,
        parallel=not args.quick,
        progress=not args.quick,
    )
    print(f"NUTS: {chains} chains x ({warmup} + {draws}) in {time.perf_counter() - began:.1f} s")
    em = hp.fit_em(hmm, data, restarts=3, seed=args.seed, progress=False)

    # 3. Diagnose ------------------------------------------------------------------------------
    report = diagnose(fit)
    print(report)
    if report.flag("label_switching") is not None:
        fit = relabel(fit)
        print("Relabelled:", diagnose(fit).kinds or "no flags left")

    draws_sigma = fit.draws()["sigma"].reshape(-1, 2)
    volatile = int(draws_sigma.mean(0).argmax())
    calm = 1 - volatile
    for name, state, truth in (("calm", calm, CALM), ("volatile", volatile, VOLATILE)):
        mu = fit.draws()["mu"].reshape(-1, 2)[:, state]
        sigma = draws_sigma[:, state]
        print(
            f"{name:8s}: mu = {float(mu.mean()):+.3f} +/- {float(mu.std()):.3f} "
            f"(truth {float(TRUE_PARAMS['mu'][truth]):+.2f}), sigma = {float(sigma.mean()):.3f} "
            f"+/- {float(sigma.std()):.3f} (truth {float(TRUE_PARAMS['sigma'][truth]):.1f})"
        )
    em_sigma = em.posterior_mean()["sigma"].sort().values
    print(f"EM point estimate: sigma = {[round(float(s), 3) for s in em_sigma]}")

    # 4. Decode --------------------------------------------------------------------------------
    probs = fit.state_probs()[0, :, volatile].numpy()
    truth = (states[0] == VOLATILE).numpy()
    accuracy = float(np.mean((probs > 0.5) == truth))
    print(f"Volatile days recovered at {accuracy:.1%} of days (posterior probability > 0.5)")

    # 5. Plot ----------------------------------------------------------------------------------
    figure, axes = plt.subplots(2, 1, figsize=(11, 6), sharex=True, constrained_layout=True)
    time_axis = np.arange(days)
    axes[0].plot(time_axis, returns, color="0.3", linewidth=0.6)
    axes[0].fill_between(
        time_axis,
        returns.min(),
        returns.max(),
        where=truth,
        color="C3",
        alpha=0.12,
        step="mid",
        label="volatile (truth)",
    )
    axes[0].set_ylabel("daily return (%)")
    axes[0].legend(fontsize="small", loc="upper right")
    axes[0].set_title("Simulated returns")
    axes[1].plot(time_axis, probs, color="C3")
    axes[1].set_ylim(-0.02, 1.02)
    axes[1].set_ylabel("P(volatile | returns)")
    axes[1].set_xlabel("trading day")
    figure.savefig(out / "regimes.png", dpi=110)
    plt.close(figure)
    ax = plot_emissions(fit)
    ax.figure.tight_layout()
    ax.figure.savefig(out / "regimes_emissions.png", dpi=110)
    plt.close(ax.figure)
    print(f"Plots written to {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
