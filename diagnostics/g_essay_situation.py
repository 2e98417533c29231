"""(g) The essay's own situation, end to end: 3 states, 2 symbols, i.i.d. data, pooled means.

The essay ("Why do all emission probabilities in my HMM converge to the same value in Pyro?")
fits 3 hidden states to a sequence of 2 symbols drawn i.i.d. uniformly, and reads the posterior
means of the emission probabilities pooled over all draws: they all come out near 0.5. Two
things produce that picture, and they must not be confused:

* its data have no hidden structure: every state *should* emit 0.5/0.5, and the right model
  has one state (an i.i.d. sequence is a 1-state HMM);
* posterior means pooled over chains (or draws) that use different labellings of the states
  average the states together: label switching makes even well-separated states look alike.

We fit the essay's model (3 states, 2 symbols, flat Dirichlet(1) priors) to its i.i.d. data
and, for contrast, to data from a 3-state HMM with distinct states (study a's truth), with 500
and 5,000 observations: NUTS (2 chains, kept as sampled), the pooled posterior means the essay
reads, per-chain and relabelled means, ``diagnose`` of the NUTS and of a MAP fit, and the
number of states BIC picks (MAP fits with 1 to 3 states).

    python diagnostics/g_essay_situation.py [--quick] [--out DIR] [--seed S]
"""

from __future__ import annotations

import warnings

import _common
import matplotlib.pyplot as plt
import numpy as np
import torch

import hmm_pyro as hp
from hmm_pyro.diagnostics import diagnose, relabel

STRUCTURED = {
    "pi": torch.full((3,), 1 / 3, dtype=torch.float64),
    "A": torch.full((3, 3), 0.05, dtype=torch.float64) + 0.85 * torch.eye(3, dtype=torch.float64),
    "B": torch.tensor([[0.95, 0.05], [0.50, 0.50], [0.05, 0.95]], dtype=torch.float64),
}


def essay_data(length: int, seed: int) -> hp.Sequences:
    """The essay's data: i.i.d. uniform symbols."""
    rng = np.random.default_rng(seed)
    return hp.Sequences([rng.integers(0, 2, length).astype(float)])


def first_column(params: dict) -> str:
    return ", ".join(f"{value:.2f}" for value in np.sort(params["B"][..., 0].numpy())[::-1])


def first_remedy(result) -> str:
    return result.flags[0].remedies[0].value if result.flags else "-"


def bic_states(data: hp.Sequences, seed: int, restarts: int) -> tuple[int, list[float]]:
    scores = []
    for states in (1, 2, 3):
        hmm = hp.HMM(states, hp.Categorical(2))
        fit = hp.fit_map(hmm, data, restarts=restarts, seed=seed, progress=False)
        log_lik = float(hmm.log_likelihood(fit.posterior_mean(), data).sum())
        scores.append(-2 * log_lik + hmm.num_free_params() * np.log(int(data.lengths.sum())))
    return int(np.argmin(scores)) + 1, scores


def main(argv=None):
    args = _common.parse_args(__doc__, argv)
    report = _common.Report("g_essay_situation", "(g) The essay's own situation", args, __doc__)
    lengths = (100,) if args.quick else (500, 5000)
    warmup, draws = (10, 10) if args.quick else (200, 200)
    restarts = 1 if args.quick else 3
    hmm = hp.HMM(3, hp.Categorical(2))
    rows, lines, pooled_draws = [], [], {}
    for kind in ("essay: i.i.d. uniform", "3 distinct states"):
        for length in lengths:
            if kind.startswith("essay"):
                data = essay_data(length, args.seed)
            else:
                data, _ = hp.simulate(hmm, STRUCTURED, length, seed=args.seed)
            began = _common.time.perf_counter()
            fit = hp.fit_nuts(
                hmm,
                data,
                chains=2,
                warmup=warmup,
                draws=draws,
                seed=args.seed,
                progress=False,
                parallel=False,
                max_tree_depth=3 if args.quick else 6,
                relabel=False,  # the draws as sampled, as the essay reads them
            )
            seconds = _common.seconds_since(began)
            draws_b = fit.draws()["B"][..., 0]  # (chain, draw, K): P(symbol 0 | state)
            pooled = {"B": fit.draws()["B"].mean((0, 1))}
            per_chain = "; ".join(
                first_column({"B": draws_b[c].mean(0)[:, None]}) for c in range(fit.num_chains)
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # relabel warns about collapsed states
                aligned = relabel(fit)
            result = diagnose(fit)
            point = hp.fit_map(hmm, data, restarts=restarts + 1, seed=args.seed, progress=False)
            point_result = diagnose(point)
            chosen, _ = bic_states(data, args.seed, restarts)
            pooled_draws[kind, length] = draws_b.reshape(-1, 3).numpy()
            rows.append(
                {
                    "data": kind,
                    "observations": length,
                    "pooled means B[:,0] (essay)": first_column(pooled),
                    "per-chain means": per_chain,
                    "relabelled means": first_column(aligned.posterior_mean()),
                    "MAP B[:,0]": first_column(point.posterior_mean()),
                    "BIC states": chosen,
                    "NUTS flags": _common.flags(result),
                    "NUTS first remedy": first_remedy(result),
                    "MAP flags": _common.flags(point_result),
                    "NUTS s": seconds,
                }
            )
            lines += [f"- **{kind}, {length} observations, NUTS:**", *_common.flag_lines(result)]
            lines += [f"- **{kind}, {length} observations, MAP:**"]
            lines += _common.flag_lines(point_result)
            print(rows[-1])
    report.add(
        "## Results",
        f"NUTS: 2 chains x ({warmup} warm-up + {draws} draws), draws as sampled. `B[:,0]` = "
        "P(symbol 0 | state), states sorted by it within each column. Structured truth: "
        "0.95, 0.50, 0.05. 'BIC states': the number of states (1-3) with the lowest BIC of MAP "
        "fits (3 restarts each).",
    )
    report.table(rows)
    report.add("## What `diagnose` says", *lines)
    essay = [row for row in rows if row["data"].startswith("essay")]
    structured = [row for row in rows if not row["data"].startswith("essay")]
    report.add(
        "## Reading",
        "- The essay's data: "
        + "; ".join(
            f"{row['observations']} observations: pooled means {row['pooled means B[:,0] (essay)']}"
            f", BIC picks {row['BIC states']} state(s)"
            for row in essay
        )
        + ". Identical rows are the right answer for i.i.d. symbols, and one state is the right "
        "model. What `diagnose` reports on the NUTS fits: "
        + "; ".join(
            f"{row['observations']}: {row['NUTS flags']} (first remedy: {row['NUTS first remedy']})"
            for row in essay
        )
        + "; on the MAP fits: "
        + "; ".join(f"{row['observations']}: {row['MAP flags']}" for row in essay)
        + ".",
        "- Distinct states, the same reading: "
        + "; ".join(
            f"{row['observations']} observations: pooled means {row['pooled means B[:,0] (essay)']}"
            f" vs relabelled {row['relabelled means']}"
            for row in structured
        )
        + ". Where chains (or draws) use different labellings, pooled means average the states "
        "towards each other; per-chain and relabelled means recover them. Flags: "
        + "; ".join(f"{row['observations']}: {row['NUTS flags']}" for row in structured)
        + ".",
    )
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
    edges = np.linspace(0, 1, 41)
    for ax, kind in zip(axes, ("essay: i.i.d. uniform", "3 distinct states"), strict=True):
        values = pooled_draws[kind, lengths[-1]]
        for state in range(3):
            ax.hist(
                values[:, state], bins=edges, density=True, histtype="step", label=f"label {state}"
            )
        ax.set_title(f"{kind}, {lengths[-1]} observations (draws as sampled)", fontsize="small")
        ax.set_xlabel("P(symbol 0 | state label)")
    axes[0].set_ylabel("density over all draws")
    axes[0].legend(fontsize="x-small")
    figure.tight_layout()
    report.figure(
        figure,
        "draws",
        "Draws of P(symbol 0 | state label) pooled over both chains, before relabelling.",
    )
    report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
