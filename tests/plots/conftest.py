"""Tiny fits for the plot tests, built with ``Fit.from_params`` (no sampler runs).

* ``point_fit``: an EM-labelled point estimate of a 3-state, 27-symbol categorical HMM with
  named symbols (as text data have: the ``symbol`` coordinate holds the names), on one sequence of
  1500 steps (longer than a heat map's column limit) and two short ones (padding).
* ``draws_fit``: 2 chains x 6 draws around the reference parameters (5 symbols), recorded as
  NUTS draws in one labelling.
"""

from __future__ import annotations

import string

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.simulate import REFERENCE_PARAMS

matplotlib.use("Agg")

SYMBOLS = [*string.ascii_lowercase, "_"]
"""27 symbol names (letters and a space stand-in), as text data would have."""


@pytest.fixture(autouse=True)
def close_figures():
    """Every test starts and ends without open figures (they are checked one by one)."""
    plt.close("all")
    yield
    plt.close("all")


def _params27() -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(3)
    return {
        "pi": torch.full((3,), 1 / 3, dtype=torch.float64),
        "A": torch.tensor(
            [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]], dtype=torch.float64
        ),
        "B": torch.tensor(rng.dirichlet(np.full(27, 0.3), size=3)).clamp_min(1e-3),
    }


@pytest.fixture(scope="package")
def point_fit() -> hp.Fit:
    hmm = hp.HMM(3, hp.Categorical(27, symbols=SYMBOLS))
    params = _params27()
    params["B"] = params["B"] / params["B"].sum(-1, keepdim=True)
    data, _ = hp.simulate(hmm, params, [1500, 40, 25], seed=1)
    return hp.Fit.from_params(hmm, data, params, method="em")


@pytest.fixture(scope="package")
def draws_fit() -> hp.Fit:
    hmm = hp.HMM(3, hp.Categorical(5))
    data, _ = hp.simulate(hmm, REFERENCE_PARAMS, [60, 50], seed=0)
    rng = np.random.default_rng(0)
    rows = np.stack(
        [rng.dirichlet(200 * row, size=(2, 6)) for row in REFERENCE_PARAMS["B"].numpy()]
    )
    draws = {
        "pi": REFERENCE_PARAMS["pi"].expand(2, 6, 3),
        "A": REFERENCE_PARAMS["A"].expand(2, 6, 3, 3),
        "B": torch.tensor(rows.transpose(1, 2, 0, 3)),  # (chain, draw, state, symbol)
    }
    return hp.Fit.from_params(hmm, data, draws, method="nuts", attrs={"labels": "aligned"})
