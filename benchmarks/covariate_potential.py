"""Benchmark: a covariate HMM's NUTS/MAP potential, numba route against the torch route.

Usage::

    PYTHONPATH=. python benchmarks/covariate_potential.py [--repeats 31] [--fit]

A :class:`~hmm_pyro.CovariateHMM` with Gaussian (or categorical, four symbols) emissions,
three states and two covariates, ``pi`` a simplex, data simulated from planted
coefficients. For each size, one value and gradient of
:meth:`~hmm_pyro.inference.potential.Potential.numpy_value_and_gradient` (what the sampler
calls), by the numba route
(:func:`~hmm_pyro.kernels._numba.regression_potential.regression_entry_potential`) and by the
torch route (the same model differentiated by autograd: what every covariate model ran
before; the model's numba log joint switched off), alternating within each round; wall time,
best of the rounds, one thread. With ``--fit``: ``fit_nuts`` (one chain, 300 warm-up + 300
draws, seed 0, in this process) by each route on the smaller Gaussian data, wall time of one
run each. Results go to ``benchmarks/results/covariate_potential.json`` with the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numba
import numpy as np
import torch

import hmm_pyro as hp
from hmm_pyro._io import atomic_write
from hmm_pyro.covariates import Covariates
from hmm_pyro.inference.potential import Potential

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from anywhere: benchmarks._timing

from benchmarks._timing import provenance  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "covariate_potential.json"
SIZES = [(20, 500), (100, 1000)]
STATES = 3


FAMILIES = ("gaussian", "categorical")


def _model_and_data(
    family: str, num_sequences: int, num_steps: int
) -> tuple[hp.CovariateHMM, hp.Sequences]:
    emission = hp.Gaussian() if family == "gaussian" else hp.Categorical(num_symbols=4)
    hmm = hp.CovariateHMM(STATES, emission, ["hour", "temp"])
    rng = np.random.default_rng(0)
    steps = np.arange(num_steps)
    columns = [
        np.column_stack([np.sin(2 * np.pi * (steps + 5 * n) / 24), rng.normal(size=num_steps)])
        for n in range(num_sequences)
    ]
    beta = torch.zeros(STATES, STATES, 3, dtype=torch.float64)
    for i in range(STATES):
        for j in range(STATES):
            if i != j:
                beta[i, j, 0], beta[i, j, 1] = -2.5, (1.0 if j > i else -1.0)
    truth = {
        "pi": torch.full((STATES,), 1.0 / STATES, dtype=torch.float64),
        "beta_A": beta,
        "mu": torch.tensor([-2.0, 0.0, 2.0], dtype=torch.float64),
        "sigma": torch.ones(STATES, dtype=torch.float64),
        "B": torch.tensor(
            [[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]],
            dtype=torch.float64,
        ),
    }
    truth = {name: truth[name] for name in hmm.param_names}
    data, _ = hp.simulate(hmm, truth, covariates=Covariates(columns, ["hour", "temp"]), seed=1)
    return hmm, data


@contextmanager
def _torch_route() -> Iterator[None]:
    """Inside: every CovariateHMM has no numba log joint, so its potential runs in torch.

    Set on the class, so that the model a chain task rebuilds from its configuration (in
    this process: the fits below run with ``parallel=False``) takes it too.
    """
    numba_route = hp.CovariateHMM.potential_terms
    hp.CovariateHMM.potential_terms = lambda self, data: None
    try:
        yield
    finally:
        hp.CovariateHMM.potential_terms = numba_route


def _potentials(family: str, num_sequences: int, num_steps: int, repeats: int) -> dict:
    hmm, data = _model_and_data(family, num_sequences, num_steps)
    numba_route = Potential(hmm, data)
    with _torch_route():
        routes = {"numba": numba_route, "torch": Potential(hmm, data)}
    assert [p.route for p in routes.values()] == ["numba", "torch"]
    point = routes["numba"].unconstrain(hmm.sample_prior(seed=2))["z"].numpy()
    values = {name: p.numpy_value_and_gradient(point) for name, p in routes.items()}
    difference = abs(values["numba"][0] - values["torch"][0])
    best = dict.fromkeys(routes, float("inf"))
    for _ in range(repeats):
        for name, potential in routes.items():
            began = time.perf_counter()
            potential.numpy_value_and_gradient(point)
            best[name] = min(best[name], time.perf_counter() - began)
    return {
        "emissions": family,
        "sequences": num_sequences,
        "steps": num_steps,
        "ms_per_evaluation": {name: 1e3 * value for name, value in best.items()},
        "speedup": best["torch"] / best["numba"],
        "value_difference": difference,
    }


def _fits() -> dict:
    hmm, data = _model_and_data("gaussian", *SIZES[0])
    results = {}
    options = {"chains": 1, "seed": 0, "parallel": False, "progress": False}
    for name in ("numba", "torch"):
        with _torch_route() if name == "torch" else nullcontext():
            hp.fit_nuts(hmm, data, warmup=20, draws=20, **options)  # compiles
            began = time.perf_counter()
            fit = hp.fit_nuts(hmm, data, warmup=300, draws=300, **options)
            seconds = time.perf_counter() - began
        mu = fit.idata.posterior["mu"].mean(("chain", "draw")).values
        steps = int(fit.idata.sample_stats["n_steps"].sum())
        results[name] = {
            "seconds": seconds,
            "leapfrog_steps_in_draws": steps,
            "posterior_mean_mu": mu.tolist(),
        }
    results["speedup"] = results["torch"]["seconds"] / results["numba"]["seconds"]
    return results


def main() -> None:
    """Time both routes, write the JSON results and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--fit", action="store_true", help="also time fit_nuts by each route")
    args = parser.parse_args()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    load = list(os.getloadavg())
    record = {
        **provenance("benchmarks/covariate_potential.py", sys.argv[1:]),
        "model": f"CovariateHMM({STATES}, Gaussian() or Categorical(4), ['hour', 'temp'])",
        "load_average_at_start": load,
        "potential": [
            _potentials(family, n, t, args.repeats) for family in FAMILIES for n, t in SIZES
        ],
    }
    if args.fit:
        record["fit_nuts"] = _fits()
    record["load_average_at_end"] = list(os.getloadavg())
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(RESULTS) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
