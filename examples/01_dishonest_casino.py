"""01 - The dishonest casino (Durbin, Eddy, Krogh & Mitchison 1998, section 3.2).

A casino mostly rolls a fair die but sometimes swaps in a loaded one, which shows a six half of
the time (every other face 1/10). It switches fair -> loaded with probability 0.05 per roll and
back with probability 0.10:

    A = [[0.95, 0.05],      B = [[1/6, 1/6, 1/6, 1/6, 1/6, 1/6],     (fair)
         [0.10, 0.90]]           [1/10, 1/10, 1/10, 1/10, 1/10, 1/2]]  (loaded)

We see only the faces (symbols 0..5 for faces 1..6). The script simulates rolls, fits a 2-state
categorical HMM by NUTS (hidden states marginalised, sticky transition prior), runs the
degeneracy diagnostics, relabels the chains if they disagree on which state is "loaded", decodes
when the loaded die was in play, and writes PNG plots.

    python examples/01_dishonest_casino.py            # 3 sequences of 300 rolls, 4 chains
    python examples/01_dishonest_casino.py --quick    # a smoke run (seconds)
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
from hmm_pyro.diagnostics import diagnose, relabel
from hmm_pyro.plots import plot_emissions, plot_state_distances, plot_state_probs

FAIR, LOADED = 0, 1
TRUE_PARAMS = {
    "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
    "A": torch.tensor([[0.95, 0.05], [0.10, 0.90]], dtype=torch.float64),
    "B": torch.tensor(
        [[1 / 6] * 6, [0.1, 0.1, 0.1, 0.1, 0.1, 0.5]],
        dtype=torch.float64,
    ),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny data and chains (smoke test)")
    parser.add_argument("--out", default="out/examples/01_dishonest_casino", help="PNG folder")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    num_sequences, length = (2, 150) if args.quick else (3, 300)
    chains, warmup, draws = (2, 20, 20) if args.quick else (4, 500, 500)

    # 1. Simulate --------------------------------------------------------------------------
    hmm = hp.HMM(
        num_states=2,
        emission=hp.Categorical(num_symbols=6),
        prior=hp.Prior(A=1.0, stickiness=10.0),  # regimes last: Dirichlet(11, 1) rows
    )
    data, states = hp.simulate(hmm, TRUE_PARAMS, [length] * num_sequences, seed=args.seed)
    loaded_share = float((states == LOADED)[data.mask].double().mean())
    print(f"Simulated {data}; the loaded die was used for {loaded_share:.1%} of the rolls.")

    # 2. Fit ---------------------------------------------------------------------------------
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

    # 3. Diagnose, and repair label switching ------------------------------------------------
    report = diagnose(fit)
    print(report)
    if report.flag("label_switching") is not None:
        fit = relabel(fit)
        print("Relabelled:", diagnose(fit).kinds or "no flags left")

    # Which fitted state is the loaded die? The one that rolls the most sixes.
    mean = fit.posterior_mean()
    loaded = int(mean["B"][:, 5].argmax())
    fair = 1 - loaded
    draws_b = fit.draws()["B"].reshape(-1, 2, 6)
    six = draws_b[:, loaded, 5]
    print(
        f"P(six | loaded) = {float(six.mean()):.3f} "
        f"(90% interval {float(six.quantile(0.05)):.3f}-{float(six.quantile(0.95)):.3f}; "
        f"truth 0.5)"
    )
    print(f"P(six | fair)   = {float(mean['B'][fair, 5]):.3f} (truth 0.167)")
    print(
        f"P(fair -> loaded) = {float(mean['A'][fair, loaded]):.3f} (truth 0.05), "
        f"P(loaded -> fair) = {float(mean['A'][loaded, fair]):.3f} (truth 0.10)"
    )

    # 4. Decode --------------------------------------------------------------------------------
    probs = fit.state_probs()[..., loaded]
    paths, _ = fit.viterbi()
    valid = data.mask
    viterbi_hit = float(((paths == loaded) == (states == LOADED))[valid].double().mean())
    posterior_hit = float(((probs > 0.5) == (states == LOADED))[valid].double().mean())
    print(
        f"Loaded-die periods recovered at {viterbi_hit:.1%} of rolls (Viterbi), "
        f"{posterior_hit:.1%} (posterior probability > 0.5)"
    )

    # 5. Plot ----------------------------------------------------------------------------------
    figure, axes = plt.subplots(
        3, 1, figsize=(11, 7.5), sharex=True, height_ratios=[2, 1, 1.2], layout="constrained"
    )
    plot_state_probs(fit, sequence=0, ax=axes[:2])
    axes[1].set_xlabel("")  # the rolls axis is labelled once, under the last panel
    axes[0].set_title(f"Rolls of sequence 0 (face - 1); the loaded die is state {loaded}")
    truth = (states[0, :length] == LOADED).double().numpy()
    axes[2].fill_between(range(length), truth, step="mid", alpha=0.3, color="C3", label="truth")
    axes[2].plot(probs[0, :length].numpy(), color="k", label="P(loaded | rolls)")
    axes[2].set_ylim(-0.02, 1.02)
    axes[2].set_xlabel("roll")
    axes[2].set_title("When was the loaded die in play?")
    axes[2].legend(fontsize="small", loc="upper right")
    figure.savefig(out / "casino_decoding.png", dpi=110)
    plt.close(figure)
    for name, plot in (("emissions", plot_emissions), ("distances", plot_state_distances)):
        ax = plot(fit)
        ax.figure.savefig(out / f"casino_{name}.png", dpi=110)
        plt.close(ax.figure)
    print(f"Plots written to {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
