"""(k) Chains in different modes: the gap in nats, and the remedies that work.

Label switching gives chains K! equally good copies of one mode. Chains can also sit in modes
that are *not* copies. Here the data come from 4 regimes (Gaussian means -6, -2, 2, 6, sd 1,
staying probability 0.95) and the model has 3 states, so it must merge two regimes into one
state, and every choice of which two is a mode of its own: all states in use, each mode a local
maximum separated from the others by a deep valley (a whole regime would have to change state).
NUTS does not cross such a valley in any practical run, and R-hat alone says only "not
converged". On real text data chains 2,350 nats apart were reported as "run longer / fewer
states"; ``hmm_pyro.diagnose`` now names the gap.

MAP restarts (data-driven starts) end in several of these modes. NUTS chain 0 starts at the
best restart, chain 1 at the best restart of another mode (sorted means more than 1 apart from
the best's): a chain that wandered into a worse mode. We report each chain's mean log posterior
and log likelihood, what ``diagnose`` says, the stacking weights of the chains (Yao, Vehtari &
Gelman 2022: leave-one-out predictive weights, a predictive combination, not the posterior),
and two remedies: a three times longer warm-up from the same starts, and
``fit_nuts(init=map_fit)``, every chain started at the best MAP restarts.

    python diagnostics/k_chain_modes.py [--quick] [--out DIR] [--seed S]
"""

from __future__ import annotations

import _common
import matplotlib.pyplot as plt
import numpy as np
import torch

import hmm_pyro as hp
from hmm_pyro.diagnostics import diagnose, stack_chains
from hmm_pyro.labels.labelling import log_posterior

TRUTH = {
    "pi": torch.full((4,), 0.25, dtype=torch.float64),
    "A": torch.full((4, 4), 0.05 / 3, dtype=torch.float64)
    + (0.95 - 0.05 / 3) * torch.eye(4, dtype=torch.float64),
    "mu": torch.tensor([-6.0, -2.0, 2.0, 6.0], dtype=torch.float64),
    "sigma": torch.ones(4, dtype=torch.float64),
}


def restart_points(fit) -> tuple[list[dict], np.ndarray]:
    """Every restart's parameters and its log posterior ``log p(y, theta)``."""
    params = fit.attrs["restart_params"]
    count = len(params["mu"])
    points = [
        {name: torch.as_tensor(params[name][r], dtype=torch.float64) for name in params}
        for r in range(count)
    ]
    losses = np.asarray(fit.idata.sample_stats["final_loss"].values).ravel()
    return points, -losses


def means(point: dict) -> str:
    return ", ".join(f"{m:.2f}" for m in np.sort(point["mu"].numpy()))


def main(argv=None):
    args = _common.parse_args(__doc__, argv)
    report = _common.Report("k_chain_modes", "(k) Chains in different modes", args, __doc__)
    length = 200 if args.quick else 600
    warmup, draws = (15, 15) if args.quick else (150, 150)
    restarts = 3 if args.quick else 10
    hmm = hp.HMM(3, hp.Gaussian())
    data, _ = hp.simulate(hp.HMM(4, hp.Gaussian()), TRUTH, length, seed=args.seed)
    nuts = dict(
        warmup=warmup,
        draws=draws,
        seed=args.seed,
        progress=False,
        parallel=False,
        max_tree_depth=3 if args.quick else 6,
    )
    began = _common.time.perf_counter()
    map_fit = hp.fit_map(hmm, data, restarts=restarts, seed=args.seed, progress=False)
    map_seconds = _common.seconds_since(began)
    points, values = restart_points(map_fit)
    order = np.argsort(-values)
    top = int(order[0])
    reference = np.sort(points[top]["mu"].numpy())
    others = [
        int(r) for r in order if np.abs(np.sort(points[r]["mu"].numpy()) - reference).max() > 1.0
    ]
    pick = others[0] if others else int(order[-1])
    starts = [points[top], points[pick]]
    stuck = hp.fit_nuts(hmm, data, chains=2, init=starts, **nuts)
    result = diagnose(stuck, predictive=0)
    modes = result.measurements.get("chain_modes", {})
    flag = result.flag("chains_in_different_modes")
    stacking = stack_chains(stuck, blocks=10, draws_per_chain=min(draws, 100))
    longer = hp.fit_nuts(hmm, data, chains=2, init=starts, **{**nuts, "warmup": 3 * warmup})
    longer_report = diagnose(longer, predictive=0)
    fixed = hp.fit_nuts(hmm, data, chains=2, init=map_fit, **nuts)
    after = diagnose(fixed, predictive=0)
    report.add(
        "## Results",
        f"{length} observations from 4 regimes (means -6, -2, 2, 6), fitted with 3 states. MAP: "
        f"{restarts} L-BFGS restarts from data-driven starts ({map_seconds:.0f} s). NUTS: 2 "
        f"chains x ({warmup} warm-up + {draws} draws).",
    )
    report.add("### Where the MAP restarts end (log posterior `log p(y, theta)`)")
    report.table(
        [
            {"restart": r, "log posterior": values[r], "sorted means": means(points[r])}
            for r in order.tolist()
        ]
    )
    report.add(
        "### Chains started in two different modes",
        f"Chain 0 starts at the best restart (log posterior {values[top]:.1f}, means "
        f"{means(points[top])}), chain 1 at another mode ({values[pick]:.1f}, means "
        f"{means(points[pick])}).",
    )
    gap = modes.get("gap_nats", [np.nan, np.nan])
    report.table(
        [
            {
                "chain": chain,
                "mean log posterior": modes["chain_log_posterior"][chain],
                "mean log likelihood": modes["chain_log_likelihood"][chain],
                "nats below best chain": gap[chain],
                "stacking weight": stacking.weights[chain],
                "chain ELPD (blocked PSIS-LOO)": stacking.elpd[chain],
            }
            for chain in range(2)
        ]
        if modes
        else [{"chain": "-", "mean log posterior": "too few draws"}]
    )
    report.add(
        "## What `diagnose` says",
        "- **chains in two modes:**",
        *_common.flag_lines(result),
        f"- **the same starts, warm-up {3 * warmup} instead of {warmup}:**",
        *_common.flag_lines(longer_report),
        "- **after `fit_nuts(hmm, data, init=map_fit)`** (both chains at the best MAP restarts):",
        *_common.flag_lines(after),
    )
    after_gap = max(after.measurements.get("chain_modes", {}).get("gap_nats", [np.nan]))
    longer_gap = max(longer_report.measurements.get("chain_modes", {}).get("gap_nats", [np.nan]))
    weights = ", ".join(f"chain {c}: {w:.3f}" for c, w in enumerate(stacking.weights))
    pareto = ", ".join(f"{k:.2f}" for k in stacking.pareto_k)
    if flag is not None:
        better = stacking.stacked_elpd > stacking.elpd.max() + 1.0
        stacking_text = (
            f"- Stacking weights ({stacking.units}): {weights}; largest Pareto k per chain "
            f"{pareto}. Chain ELPDs {stacking.elpd[0]:.1f} and {stacking.elpd[1]:.1f}, stacked "
            f"{stacking.stacked_elpd:.1f}. "
            + (
                "The two modes merge different pairs of regimes, so each predicts some blocks "
                "better than the other, and the stacked mixture predicts better than either "
                "chain alone: stacking keeps both modes, weighted by what they predict, where "
                "pooling would weigh them by the number of chains that landed in each."
                if better
                else f"Stacking gives the worse mode weight {stacking.weights[1]:.3f}, where "
                "pooling the chains gives it half."
            )
        )
    else:
        stacking_text = (
            "- The chains met, so stacking has nothing to choose: any weights predict alike and "
            f"the weights ({weights}) are arbitrary."
        )
    report.add(
        "## Reading",
        (
            f"- The flag names the gap: {flag.summary} First remedy: {flag.remedies[0].value}."
            if flag is not None
            else "- No chain was flagged as being in a worse mode: chain 1 left its mode during "
            "the warm-up."
        ),
        stacking_text,
        f"- A warm-up three times longer from the same starts: largest gap to the best chain "
        f"{longer_gap:.3g} nats; flags {_common.flags(longer_report)}.",
        f"- Started at the best MAP restarts (`init=map_fit`), the chains agree: largest gap to "
        f"the best chain {after_gap:.3g} nats; flags {_common.flags(after)}.",
    )
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.2), sharey=True)
    for ax, fit, title in (
        (axes[0], stuck, "chains started in two modes"),
        (axes[1], longer, f"the same starts, warm-up {3 * warmup}"),
        (axes[2], fixed, "chains started at the best MAP restarts"),
    ):
        values_ = log_posterior(fit)
        for chain in range(values_.shape[0]):
            ax.plot(values_[chain], color=f"C{chain}", label=f"chain {chain}", linewidth=0.8)
        ax.set_title(title, fontsize="small")
        ax.set_xlabel("draw")
    axes[0].set_ylabel("log posterior log p(y, theta)")
    axes[0].legend(fontsize="x-small")
    figure.tight_layout()
    report.figure(figure, "traces", "Log posterior of every draw, per chain.")
    report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
