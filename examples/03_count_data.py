"""03 - Activity levels from event counts (Poisson emissions), and a prior comparison.

Hourly counts of events (requests, calls, arrivals) from a system that moves between a quiet,
a normal and a busy level:

    rate = [2, 8, 20] events per hour,   A[k, k] = 0.9 (levels last about 10 hours)

The script simulates several days of counts, fits a 3-state Poisson HMM by NUTS, diagnoses the
fit, relabels if needed, decodes the activity level, and then compares two rate priors on the
same data with ``hmm_pyro.compare_priors``: the default weak ``Gamma(1, 0.1)`` and an overly
confident ``Gamma(200, 20)`` (every rate near 10 +/- 0.7), which contradicts the data. The
comparison shows the confident prior's lower predictive density, merged states and prior-data
conflict.

    python examples/03_count_data.py            # 6 days x 96 quarter-hours, 4 chains
    python examples/03_count_data.py --quick    # a smoke run (seconds)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

import hmm_pyro as hp
from hmm_pyro.compare import compare_priors
from hmm_pyro.diagnostics import diagnose, relabel
from hmm_pyro.plots import plot_emissions, plot_state_probs, plot_transitions, save_comparison

TRUE_PARAMS = {
    "pi": torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64),
    "A": torch.tensor(
        [[0.90, 0.08, 0.02], [0.05, 0.90, 0.05], [0.02, 0.08, 0.90]], dtype=torch.float64
    ),
    "rate": torch.tensor([2.0, 8.0, 20.0], dtype=torch.float64),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and chains (smoke test)")
    parser.add_argument("--out", default="out/examples/03_count_data", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    num_days, steps = (3, 60) if args.quick else (6, 96)
    chains, warmup, draws = (2, 20, 20) if args.quick else (4, 500, 500)

    # 1. Simulate ------------------------------------------------------------------------------
    hmm = hp.HMM(num_states=3, emission=hp.Poisson(), prior=hp.Prior(stickiness=5.0))
    data, states = hp.simulate(hmm, TRUE_PARAMS, [steps] * num_days, seed=args.seed)
    counts = data.values[data.observed]
    print(f"Simulated {data}: counts from {int(counts.min())} to {int(counts.max())}.")

    # 2. Fit -----------------------------------------------------------------------------------
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

    # 3. Diagnose ------------------------------------------------------------------------------
    report = diagnose(fit)
    print(report)
    if report.flag("label_switching") is not None:
        fit = relabel(fit)
        print("Relabelled:", diagnose(fit).kinds or "no flags left")
    rates = fit.draws()["rate"].reshape(-1, 3)
    order = rates.mean(0).argsort()
    for level, state in zip(("quiet", "normal", "busy"), order.tolist(), strict=True):
        column = rates[:, state]
        print(
            f"{level:6s} (state {state}): rate = {float(column.mean()):6.2f} "
            f"(90% interval {float(column.quantile(0.05)):.2f}-{float(column.quantile(0.95)):.2f})"
        )
    print(f"true rates: {TRUE_PARAMS['rate'].tolist()}")

    # 4. Decode --------------------------------------------------------------------------------
    paths, _ = fit.viterbi()
    rank = torch.empty(3, dtype=torch.long)
    rank[order] = torch.arange(3)
    decoded = rank[paths.clamp(min=0)]
    accuracy = float((decoded == states)[data.mask].double().mean())
    print(f"Activity level recovered at {accuracy:.1%} of steps (Viterbi)")

    # 5. Compare two rate priors -----------------------------------------------------------------
    priors = {
        "weak": hp.Prior(stickiness=5.0),
        "confident": hp.Prior(stickiness=5.0, rate_shape=200.0, rate_rate=20.0),
    }
    if args.quick:  # MAP fits (L-BFGS), 2-fold CV over the days (plug-in): a few seconds
        comparison = compare_priors(
            hmm, data, priors, method="map", folds=2, seed=args.seed, parallel=False
        )
    else:
        comparison = compare_priors(
            hmm, data, priors, method="nuts", seed=args.seed, chains=4, warmup=500, draws=500
        )
    print(comparison.format_table())
    save_comparison(comparison, out, prefix="rate_priors")

    # 6. Plot ----------------------------------------------------------------------------------
    figure, axes = plt.subplot_mosaic(
        [["counts", "A"], ["states", "A"]],
        figsize=(13, 4.5),
        width_ratios=[3, 1],
        height_ratios=[2, 1],
        layout="constrained",
    )
    plot_state_probs(fit, sequence=0, ax=[axes["counts"], axes["states"]])
    plot_transitions(fit, ax=axes["A"])
    figure.savefig(out / "counts_decoding.png", dpi=110)
    plt.close(figure)
    ax = plot_emissions(fit)
    ax.figure.savefig(out / "counts_emissions.png", dpi=110)
    plt.close(ax.figure)
    print(f"Plots and the prior comparison written to {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
