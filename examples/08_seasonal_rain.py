"""08 - Seasonal rain at Seattle: a hidden Markov model whose switching depends on the season.

Daily rain at Seattle from 2012 to 2015 (NOAA, 1461 days) in three classes (dry, light under
5 mm, heavy) comes in spells: wet weeks in winter, long dry spells in summer. A two-state HMM
finds a dry and a wet weather regime; with the season as a covariate of the transitions
(``CovariateHMM``, the day of the year on the unit circle: ``season_cos``, ``season_sin``) the
chance of switching between them changes through the year, the non-homogeneous HMM that
Hughes, Guttorp and Charles (1999) introduced for rainfall. The script

- fits the homogeneous and the seasonal model by MAP and compares them by BIC;
- prints the seasonal model's log likelihood at its posterior mode beside the one computed
  independently of this package: -1223.9147, by direct numerical maximisation of the same
  posterior density (NumPy forward recursion, SciPy's L-BFGS-B; see docs/datasets.md);
- samples the posterior by NUTS, diagnoses it and prints, for four dates, the probability of
  leaving each regime and the long-run share of the wet regime with 90% intervals;
- plots both against the day of the year, with the share of days the Viterbi path puts in the
  wet regime in each month.

    python examples/08_seasonal_rain.py            # MAP (5 restarts), NUTS 4 chains x (300 + 300)
    python examples/08_seasonal_rain.py --quick    # a smoke run (tiny NUTS chains)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import hmm_pyro as hp
from hmm_pyro.datasets import dataset
from hmm_pyro.diagnostics import diagnose
from hmm_pyro.fit import fit_statistics

INDEPENDENT = -1223.9147
"""Log likelihood at the posterior mode of the seasonal model, found without hmm_pyro."""
COVARIATES = ("season_cos", "season_sin")
DATES = {"15 January": 15, "15 April": 105, "15 July": 196, "15 October": 288}
"""Dates of the printed table and their day of the year."""


def season(day_of_year: np.ndarray) -> dict[str, np.ndarray]:
    """The covariates of a day of the year (a year of 365 days)."""
    angle = 2.0 * np.pi * (np.asarray(day_of_year, dtype=float) - 1.0) / 365.0
    return {"season_cos": np.cos(angle), "season_sin": np.sin(angle)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny NUTS chains")
    parser.add_argument("--out", default="out/examples/08_seasonal_rain", help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    restarts = 3 if args.quick else 5
    chains, warmup, draws = (2, 10, 10) if args.quick else (4, 300, 300)

    # 1. The data ------------------------------------------------------------------------------
    entry = dataset("seattle_weather")
    table = entry.frame()
    data = entry.sequences()  # one sequence of 1461 days, covariates standardised
    symbols = data.symbols
    print(entry.title)
    counts = table["rain"].value_counts()
    print(", ".join(f"{name} {counts[name]} days" for name in symbols))
    month = pd.to_datetime(table["date"]).dt.month.to_numpy()
    wet_share = table.groupby(month)["rain"].apply(lambda rain: float((rain != "dry").mean()))
    names = pd.to_datetime([f"2015-{m:02d}-01" for m in wet_share.index]).strftime("%B")
    low, high = int(wet_share.to_numpy().argmin()), int(wet_share.to_numpy().argmax())
    print(
        f"days with rain: {wet_share.iloc[low]:.0%} in {names[low]} to "
        f"{wet_share.iloc[high]:.0%} in {names[high]}"
    )

    # 2. Homogeneous and seasonal models at their posterior modes -----------------------------
    emission = hp.Categorical(len(symbols), symbols=symbols)
    plain = hp.fit_map(hp.HMM(2, emission), data, restarts=restarts, seed=args.seed, progress=False)
    hmm = hp.CovariateHMM(2, emission, transition_covariates=list(COVARIATES))
    fit = hp.fit_map(hmm, data, restarts=restarts, seed=args.seed, progress=False)
    plain_stats, stats = fit_statistics(plain), fit_statistics(fit)
    print(
        f"log likelihood {stats.log_likelihood:.4f} (independent {INDEPENDENT:.4f}) "
        f"at the seasonal model's posterior mode"
    )
    print(
        f"BIC: homogeneous {plain_stats.bic:.1f} ({plain_stats.num_params} parameters), "
        f"seasonal {stats.bic:.1f} ({stats.num_params}): lower is better"
    )
    mode = fit.posterior_mean()
    wet = int(mode["B"][:, symbols.index("dry")].argmin())  # the regime with fewer dry days
    dry = 1 - wet
    for state, name in ((dry, "dry"), (wet, "wet")):
        row = ", ".join(
            f"{s} {p:.2f}" for s, p in zip(symbols, mode["B"][state].tolist(), strict=True)
        )
        print(f"{name} regime: {row}")

    # 3. The posterior by NUTS -----------------------------------------------------------------
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
    print(diagnose(posterior))
    mean_b = posterior.posterior_mean()["B"]
    wet = int(mean_b[:, symbols.index("dry")].argmin())
    dry = 1 - wet

    # 4. Switching through the year ------------------------------------------------------------
    days = np.array(list(DATES.values()))
    matrices = posterior.transition_matrix(season(days))
    shares = posterior.stationary(season(days))
    header = ("P(dry -> wet)", "P(wet -> dry)", "long-run share wet")
    print(f"{'date':12s}  " + "  ".join(f"{name:18s}" for name in header))
    for row, date in enumerate(DATES):
        cells = [
            (
                matrices.mean[row, dry, wet],
                matrices.lower[row, dry, wet],
                matrices.upper[row, dry, wet],
            ),
            (
                matrices.mean[row, wet, dry],
                matrices.lower[row, wet, dry],
                matrices.upper[row, wet, dry],
            ),
            (shares.mean[row, wet], shares.lower[row, wet], shares.upper[row, wet]),
        ]
        text = "  ".join(f"{f'{m:.2f} ({lo:.2f}-{hi:.2f})':18s}" for m, lo, hi in cells)
        print(f"{date:12s}  {text}")

    # 5. Plot ----------------------------------------------------------------------------------
    grid = np.arange(1, 366)
    matrices = posterior.transition_matrix(season(grid))
    shares = posterior.stationary(season(grid))
    paths, _ = posterior.viterbi()
    decoded_wet = (paths[0] == wet).numpy()
    monthly = pd.Series(decoded_wet).groupby(month).mean()
    mid_month = pd.to_datetime([f"2015-{m:02d}-15" for m in monthly.index]).day_of_year
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    for i, j, label, colour in ((dry, wet, "dry -> wet", "C0"), (wet, dry, "wet -> dry", "C3")):
        axes[0].plot(grid, matrices.mean[:, i, j], color=colour, label=label)
        axes[0].fill_between(
            grid, matrices.lower[:, i, j], matrices.upper[:, i, j], color=colour, alpha=0.25
        )
    axes[0].set_ylim(0.0, 1.3 * float(matrices.upper.max()))  # room for the legend
    axes[0].set_xlabel("day of the year")
    axes[0].set_ylabel("probability of switching")
    axes[0].set_title("Daily switching between regimes (90% band)")
    axes[0].legend(loc="upper center")
    axes[1].plot(grid, shares.mean[:, wet], color="C3", label="long-run share (model)")
    axes[1].fill_between(grid, shares.lower[:, wet], shares.upper[:, wet], color="C3", alpha=0.25)
    axes[1].scatter(
        mid_month, monthly.to_numpy(), color="k", s=14, zorder=3, label="Viterbi, by month"
    )
    axes[1].set_ylim(0.0, 1.0)
    axes[1].set_xlabel("day of the year")
    axes[1].set_ylabel("share of days in the wet regime")
    axes[1].set_title("The wet regime through the year")
    axes[1].legend(loc="upper center")
    figure.savefig(out / "seasonal_switching.png", dpi=110)
    plt.close(figure)
    print(f"Plots written to {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
