"""(f) Too many states: a 3-state HMM fitted to data from 2 states.

The essay lists "the number of hidden states is relatively large compared to the available
data" among the causes of collapsed emissions. Theory for overfitted mixtures and HMMs
(Rousseau & Mengersen 2011; Gassiat & Rousseau 2014; van Havre et al. 2016) says the prior
decides what the redundant state does: it *merges* with a real state (two states with the same
emission law sharing the occupancy) or it *empties* (a state the data never visit, its emission
parameters left at the prior). Sparse transition priors favour emptying.

Data: a 2-state Gaussian HMM (mu = -1.5 and 1.5, sigma = 1, A[k, k] = 0.9). Fits by NUTS:

* ``K=2`` (the truth), transitions ~ Dirichlet(1 + 4 I);
* ``K=3 dense``: the same prior with a third state;
* ``K=3 sparse``: transitions ~ Dirichlet(0.05 off the diagonal, 5 on it).

Means ~ N(0, 3), variances ~ InvGamma(2, 1) in all three. For each fit: ``diagnose``'s flags,
the effective number of states, the sorted posterior-mean occupancy, the collapse evidence
(posterior vs prior probability that the closest pair is indistinguishable) and PSIS-LOO over
sequences (the data are several sequences).

    python diagnostics/f_too_many_states.py [--quick] [--out DIR] [--seed S]
"""

from __future__ import annotations

import warnings

import _common
import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import torch

import hmm_pyro as hp
from hmm_pyro.diagnostics import diagnose
from hmm_pyro.plots import plot_state_distances

TRUE_PARAMS = {
    "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
    "A": torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64),
    "mu": torch.tensor([-1.5, 1.5], dtype=torch.float64),
    "sigma": torch.tensor([1.0, 1.0], dtype=torch.float64),
}
EMISSION_PRIOR = {"mu_scale": 3.0, "variance_shape": 2.0, "variance_scale": 1.0}
SETTINGS = {
    "K=2": (2, hp.Prior(A=1.0, stickiness=4.0, **EMISSION_PRIOR)),
    "K=3 dense": (3, hp.Prior(A=1.0, stickiness=4.0, **EMISSION_PRIOR)),
    "K=3 sparse": (3, hp.Prior(A=0.05, stickiness=4.95, **EMISSION_PRIOR)),
}


def main(argv=None):
    args = _common.parse_args(__doc__, argv)
    report = _common.Report("f_too_many_states", "(f) Too many states", args, __doc__)
    num_sequences, length = (5, 30) if args.quick else (8, 100)
    chains, warmup, draws = (2, 20, 20) if args.quick else (4, 300, 300)
    truth = hp.HMM(2, hp.Gaussian())
    data, _ = hp.simulate(truth, TRUE_PARAMS, [length] * num_sequences, seed=args.seed)
    rows, results, fits = [], {}, {}
    for name, (num_states, prior) in SETTINGS.items():
        hmm = hp.HMM(num_states, hp.Gaussian(), prior=prior)
        began = _common.time.perf_counter()
        fit = hp.fit_nuts(
            hmm,
            data,
            chains=chains,
            warmup=warmup,
            draws=draws,
            seed=args.seed,
            max_tree_depth=5 if args.quick else 10,
            parallel=not args.quick,
            progress=False,
            relabel=False,  # diagnosed as sampled, as in the committed report
        )
        seconds = _common.seconds_since(began)
        result = diagnose(fit)
        results[name], fits[name] = result, fit
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pareto k warnings: reported in the table
            loo = az.loo(fit.idata, var_name="y")
        summary = _common.summary(result)
        collapse = result.measurements.get("collapse", {})
        occupancy = np.sort(np.asarray(summary.get("mean_occupancy", [])))
        rows.append(
            {
                "fit": name,
                "flags": _common.flags(result),
                "effective states": summary.get("effective_num_states"),
                "sorted occupancy": ", ".join(f"{value:.3f}" for value in occupancy),
                "P(collapsed) post / prior": f"{collapse.get('p_post', np.nan):.2f} / "
                f"{collapse.get('p_prior', np.nan):.2f}",
                "elpd_loo": float(loo.elpd_loo),
                "se": float(loo.se),
                "max Pareto k": float(np.max(loo.pareto_k.values)),
                "NUTS s": seconds,
            }
        )
        print(rows[-1])
    base = rows[0]["elpd_loo"]
    for row in rows:
        row["elpd - K=2"] = row["elpd_loo"] - base
    report.add(
        "## Results",
        f"Data: {num_sequences} sequences x {length} steps. NUTS: {chains} chains x ({warmup} "
        f"warm-up + {draws} draws). ELPD: PSIS-LOO over sequences.",
    )
    report.table(
        rows,
        [
            "fit",
            "flags",
            "effective states",
            "sorted occupancy",
            "P(collapsed) post / prior",
            "elpd_loo",
            "se",
            "elpd - K=2",
            "max Pareto k",
            "NUTS s",
        ],
    )
    report.add("## What `diagnose` says")
    for name, result in results.items():
        report.lines.append(f"- **{name}**:")
        report.lines += _common.flag_lines(result)
    report.add("")
    lines = ["## Reading"]
    for row, name in zip(rows[1:], list(SETTINGS)[1:], strict=True):
        result = results[name]
        if result.flag("empty_states") is not None:
            behaviour = "the redundant state *empties* (flag `empty_states`)"
        elif result.flag("emission_collapse") is not None:
            behaviour = (
                "the redundant state *merges* with a real one (flag `emission_collapse`, "
                f"cause: {_common.collapse_cause(result)})"
            )
        elif result.flag("prior_dominated") is not None:
            behaviour = (
                "the redundant state is nearly empty: it is not below the empty-state threshold, "
                "but its emission parameters are prior-dominated (flag `prior_dominated`)"
            )
        elif result.flag("too_many_states") is not None:
            behaviour = (
                "no state is collapsed, empty or prior-dominated, but a refitted model with "
                "fewer states fits as well (flag `too_many_states`)"
            )
        else:
            behaviour = "neither collapse nor an empty or prior-dominated state was flagged"
        lines.append(
            f"- `{name}`: {behaviour}; effective number of states "
            f"{row['effective states']:g}, sorted occupancy {row['sorted occupancy']}; ELPD "
            f"{row['elpd - K=2']:+.1f} against K=2 (se of each estimate about {row['se']:.1f})."
        )
    lines.append(
        "- The extra state buys no predictive accuracy (every ELPD difference is well within "
        "two standard errors); the flags name the redundant state and suggest fewer states."
        if all(row["elpd - K=2"] < 2 * row["se"] for row in rows[1:])
        else "- The ELPD differences are listed above; compare them with their standard errors."
    )
    report.add(*lines)
    figure, axes = plt.subplots(1, 2, figsize=(13, 3.6), constrained_layout=True)
    for ax, name in zip(axes, ("K=3 dense", "K=3 sparse"), strict=True):
        plot_state_distances(fits[name], ax=ax)
        ax.set_title(f"{name}: pairwise state distances")
    report.figure(
        figure,
        "distances",
        "Posterior of each pairwise squared Hellinger distance for the two 3-state fits "
        "(dashed: the prior's closest pair; vertical line: collapse threshold).",
    )
    report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
