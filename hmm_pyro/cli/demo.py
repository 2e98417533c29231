"""The main job on generated data: simulate, decode, fit by MAP then NUTS, summarise, save.

Run it with ``hmm-pyro demo`` (or ``python -m hmm_pyro demo``); ``make demo`` bootstraps the
environment first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hmm_pyro.cli._options import EXIT_OK, add_command, library_default, set_only

if TYPE_CHECKING:
    import torch

    from hmm_pyro.fit import Fit

__all__ = ["add_parser", "run_demo"]

_RUN_DEMO = "hmm_pyro.cli.demo:run_demo"


def _print_matrix(name: str, matrix: torch.Tensor) -> None:
    print(f"{name} =")
    for row in matrix.tolist():
        print("   " + " ".join(f"{value:6.3f}" for value in row))


def _aligned(fit: Fit, truth: torch.Tensor) -> torch.Tensor:
    """Posterior-mean B with rows matched to the true rows (Hungarian on L1 distance)."""
    import torch
    from scipy.optimize import linear_sum_assignment

    estimate = fit.posterior_mean()["B"]
    rows, cols = linear_sum_assignment(torch.cdist(truth, estimate, p=1).numpy())
    return estimate[cols[rows.argsort()]]


def run_demo(out_dir: str | Path = "out", quick: bool = False, seed: int = 0) -> dict[str, Fit]:
    """Run the demo and return the fits.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder for the NetCDF results.
    quick : bool
        Smaller data and shorter chains (for smoke tests).
    seed : int
        Seed of the simulation and of both fits.

    Returns
    -------
    dict of Fit
        ``{"map": ..., "nuts": ...}``.
    """
    from hmm_pyro.diagnostics import diagnose, relabel
    from hmm_pyro.emissions import Categorical
    from hmm_pyro.inference import fit_map, fit_nuts
    from hmm_pyro.model import HMM
    from hmm_pyro.simulate import REFERENCE_PARAMS, simulate

    out_dir = Path(out_dir)
    num_sequences, length = (5, 100) if quick else (20, 500)
    warmup = draws = 50 if quick else 300
    hmm = HMM(num_states=3, emission=Categorical(num_symbols=5))
    data, states = simulate(hmm, REFERENCE_PARAMS, [length] * num_sequences, seed=seed)
    print(f"Simulated {data}: 3 states, 5 symbols.")

    log_lik = hmm.log_likelihood(REFERENCE_PARAMS, data)
    print(
        f"Log likelihood at the true parameters: {float(log_lik.sum()):.3f} "
        f"(per sequence {float(log_lik.mean()):.3f} on average)"
    )
    paths, _ = hmm.viterbi(REFERENCE_PARAMS, data)
    accuracy = float((paths == states)[data.mask].double().mean())
    print(
        f"Viterbi path at the true parameters matches the hidden states at {accuracy:.1%} of steps"
    )

    print("\n== MAP by L-BFGS (fit_map), symmetry-breaking start, 4 restarts ==")
    began = time.perf_counter()
    point = fit_map(hmm, data, restarts=4, seed=seed)
    finals = point.idata.sample_stats.final_loss.values.ravel().tolist()
    print(
        f"done in {time.perf_counter() - began:.1f} s; log p(y, theta) per restart: "
        f"{[round(-v, 1) for v in finals]}"
    )
    _print_matrix("B (MAP, rows matched to the truth)", _aligned(point, REFERENCE_PARAMS["B"]))

    print(
        f"\n== NUTS, 4 chains x ({warmup} warm-up + {draws} draws), hidden states marginalised =="
    )
    began = time.perf_counter()
    nuts = fit_nuts(hmm, data, chains=4, warmup=warmup, draws=draws, seed=seed)
    print(f"done in {time.perf_counter() - began:.1f} s")
    report = diagnose(nuts)
    print(f"\n== diagnose ==\n{report}")
    if report.flag("label_switching") is not None:
        # Chains started apart settle in different labellings of the same states: one labelling
        # for every draw makes per-state summaries meaningful again.
        nuts = relabel(nuts)
        print("\n== after relabel (Stephens' algorithm) ==")
    print(nuts.summary(var_names=["B"]).to_string())
    _print_matrix(
        "B (posterior mean, rows matched to the truth)", _aligned(nuts, REFERENCE_PARAMS["B"])
    )
    _print_matrix("B (truth)", REFERENCE_PARAMS["B"])

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, fit in (("map", point), ("nuts", nuts)):
        path = fit.save(out_dir / f"demo_{name}.nc")
        print(f"saved {path}")
    return {"map": point, "nuts": nuts}


def run(args: argparse.Namespace) -> int:
    """Run the demo with the options given."""
    run_demo(**set_only(out_dir=args.out, quick=args.quick or None, seed=args.seed))
    return EXIT_OK


def add_parser(commands: Any) -> None:
    """Register ``demo``."""
    parser = add_command(
        commands,
        "demo",
        run,
        help="simulate a 3-state categorical HMM, fit it by MAP and NUTS, print summaries",
        description="Simulate data from a known 3-state, 5-symbol HMM; decode; fit by MAP "
        "(L-BFGS, 4 restarts) and NUTS (4 chains); print an ArviZ summary; save NetCDF results.",
    )
    parser.add_argument(
        "--out", help=f"output folder (default: {library_default(_RUN_DEMO, 'out_dir')})"
    )
    parser.add_argument("--quick", action="store_true", help="small data and short chains")
    parser.add_argument(
        "--seed", type=int, help=f"random seed (default: {library_default(_RUN_DEMO, 'seed')})"
    )
