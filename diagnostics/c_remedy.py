"""(c) The remedy: apply one fix at a time and watch the flags go away.

The essay's remedy is "sufficient data, weakly informative priors, and convergence
diagnostics". This study starts from a fit that has every problem at once and applies one
remedy per step, on the project's reference HMM (3 states, 5 symbols), running
``hmm_pyro.diagnose`` after each step:

0. the essay's situation: 30 observations, an overly informative emission prior
   (every row ~ Dirichlet(100, ..., 100)), and Pyro's default MAP start (``AutoDelta`` with
   ``init_to_median``: every state starts identical; ``fit_map(optimizer="adam")``, which is
   Pyro's SVI with that guide);
1. a symmetry-breaking start (``fit_map(init="auto")``: L-BFGS, 4 restarts);
2. a weak emission prior (Dirichlet(1)) with sticky transitions (stickiness 5);
3. more data (5 sequences of 200 symbols);
4. the posterior instead of a point: NUTS, 4 chains;
5. relabelling the draws (``hmm_pyro.relabel``).

    python diagnostics/c_remedy.py [--quick] [--out DIR] [--seed S]
"""

from __future__ import annotations

import warnings

import _common
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

import hmm_pyro as hp
from hmm_pyro.diagnostics import diagnose, relabel
from hmm_pyro.plots import plot_emissions
from hmm_pyro.simulate import REFERENCE_PARAMS
from hmm_pyro.starts import min_separation

STRONG = hp.Prior(B=100.0)
WEAK = hp.Prior(stickiness=5.0)


def recovery_error(fit) -> float:
    """Mean absolute error of the posterior-mean emission rows, rows matched to the truth."""
    estimate = fit.posterior_mean()["B"]
    truth = REFERENCE_PARAMS["B"]
    cost = torch.cdist(truth, estimate, p=1).numpy()
    rows, cols = linear_sum_assignment(cost)
    return float(np.abs(truth[rows].numpy() - estimate[cols].numpy()).mean())


def main(argv=None):
    args = _common.parse_args(__doc__, argv)
    report = _common.Report("c_remedy", "(c) The remedy, one step at a time", args, __doc__)
    small, (num_sequences, length) = 30, ((3, 100) if args.quick else (5, 200))
    chains, warmup, draws = (2, 20, 20) if args.quick else (4, 400, 400)
    steps = 300 if args.quick else 1500
    few, _ = hp.simulate(hp.HMM(3, hp.Categorical(5)), REFERENCE_PARAMS, small, seed=args.seed)
    many, _ = hp.simulate(
        hp.HMM(3, hp.Categorical(5)), REFERENCE_PARAMS, [length] * num_sequences, seed=args.seed + 1
    )

    def model(prior):
        return hp.HMM(3, hp.Categorical(5), prior=prior)

    point = {"restarts": 4, "steps": steps, "seed": args.seed, "progress": False}
    plan = [
        ("0. essay setup", "30 obs, Dirichlet(100) rows, Pyro's median start", None),
        ("1. symmetry-breaking start", "init='auto', 4 restarts (L-BFGS)", None),
        ("2. weak prior", "Dirichlet(1) rows, stickiness 5", None),
        ("3. more data", f"{num_sequences} x {length} observations", None),
        ("4. posterior (NUTS)", f"{chains} chains x ({warmup} + {draws})", None),
        ("5. relabel", "Stephens on the NUTS draws", None),
    ]
    fits = []
    pyro_start = {**point, "restarts": 1, "optimizer": "adam", "init": "median"}
    fits.append(hp.fit_map(model(STRONG), few, **pyro_start))
    fits.append(hp.fit_map(model(STRONG), few, **point))
    fits.append(hp.fit_map(model(WEAK), few, **point))
    fits.append(hp.fit_map(model(WEAK), many, **point))
    fits.append(
        hp.fit_nuts(
            model(WEAK),
            many,
            chains=chains,
            warmup=warmup,
            draws=draws,
            seed=args.seed,
            max_tree_depth=5 if args.quick else 10,
            parallel=not args.quick,
            progress=False,
            relabel=False,  # as sampled: diagnosed before and after relabel below
        )
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fits.append(relabel(fits[-1]))
    rows, results = [], []
    for (step, change, _), fit in zip(plan, fits, strict=True):
        result = diagnose(fit)
        results.append(result)
        distance = min_separation(fit.hmm, fit.flat_draws()).numpy()
        rows.append(
            {
                "step": step,
                "change": change,
                "flags": _common.flags(result),
                "errors": sum(flag.severity == "error" for flag in result.flags),
                "min H2 (median)": float(np.median(distance)),
                "B error": recovery_error(fit),
            }
        )
        print(rows[-1])
    report.add(
        "## Results",
        "`min H2`: smallest pairwise squared Hellinger distance between the states' emission "
        "laws (median over draws; the truth has "
        f"{float(min_separation(model(WEAK), REFERENCE_PARAMS)):.3f}). `B error`: mean absolute "
        "error of the (posterior-mean) emission matrix, rows matched to the truth.",
    )
    report.table(rows)
    report.add("## What `diagnose` says at each step")
    for (step, _, _), result in zip(plan, results, strict=True):
        report.lines.append(f"- **{step}**:")
        report.lines += _common.flag_lines(result)
    report.add("")
    if caught:
        report.add("Relabelling warnings:", *[f"- {item.message}" for item in caught])
    final = results[-1]
    report.add(
        "## Reading",
        f"- Step 0 raises {rows[0]['flags']}: the states are identical "
        f"(min H2 {rows[0]['min H2 (median)']:.2e}).",
        f"- The symmetry-breaking start (step 1) leaves flags {rows[1]['flags']} (min H2 "
        f"{rows[1]['min H2 (median)']:.3g})"
        + (
            ": the Dirichlet(100) prior alone holds the rows together with 30 observations."
            if rows[1]["min H2 (median)"] < 0.05
            else "."
        ),
        f"- The weak prior (step 2): flags {rows[2]['flags']} (min H2 "
        f"{rows[2]['min H2 (median)']:.3f}, B error {rows[2]['B error']:.3f}); more data "
        f"(step 3): flags {rows[3]['flags']} (B error {rows[3]['B error']:.3f}).",
        f"- NUTS (step 4): flags {rows[4]['flags']}; after relabelling (step 5): "
        f"{rows[5]['flags']}"
        + (
            " - every flag is gone."
            if final.ok
            else "; the remaining flags are listed above with their measured values."
        ),
    )
    figure, axes = plt.subplots(1, 3, figsize=(16, 3.6), constrained_layout=True)
    for ax, index in zip(axes, (0, 3, 5), strict=True):
        plot_emissions(fits[index], ax=ax)
        ax.set_title(plan[index][0])
    report.figure(
        figure,
        "emissions",
        "Emission rows per state at step 0 (identical), step 3 (MAP, enough data) and step 5 "
        "(relabelled posterior, 90% intervals).",
    )
    report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
