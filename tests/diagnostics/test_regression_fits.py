"""``diagnose`` and relabelling on fits with emission regressions (Markov-switching regression).

Collapse: two states whose regressions coincide are one law at every covariate row, and the
reference-row distance (:mod:`hmm_pyro.emissions.regression`) is zero between them. Label
switching: the coefficient rows ``w[k, :]`` are permuted with the states.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates
from hmm_pyro.labels.permutations import permute_params

DTYPE = torch.float64
NAMES = ("hour", "temp")
TWO = {
    "pi": torch.tensor([0.5, 0.5], dtype=DTYPE),
    "A": torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=DTYPE),
    "w": torch.tensor([[-2.0, 1.0, 0.0], [2.0, -0.5, 0.8]], dtype=DTYPE),
    "sigma": torch.tensor([0.6, 0.8], dtype=DTYPE),
}


@pytest.fixture(scope="module")
def data() -> hp.Sequences:
    rng = np.random.default_rng(0)
    covariates = Covariates([rng.normal(size=(80, 2)) for _ in range(2)], names=list(NAMES))
    sequences, _ = hp.simulate(
        hp.HMM(2, hp.GaussianRegression(NAMES)), TWO, covariates=covariates, seed=0
    )
    return sequences


@pytest.mark.parametrize("transitions", ["homogeneous", "covariates"])
def test_states_with_the_same_regression_are_flagged_as_collapsed(data, transitions):
    """A 3-state point whose states 1 and 2 carry one planted regression (transitions split
    evenly), as a MAP fit with a surplus state ends: ``diagnose`` reports the pair (1, 2)."""
    emission = hp.GaussianRegression(NAMES)
    point = {
        "w": torch.cat([TWO["w"], TWO["w"][1:]]),
        "sigma": torch.cat([TWO["sigma"], TWO["sigma"][1:]]),
        "pi": torch.tensor([0.5, 0.25, 0.25], dtype=DTYPE),
    }
    if transitions == "homogeneous":
        hmm = hp.HMM(3, emission)
        point["A"] = torch.tensor(
            [[0.9, 0.05, 0.05], [0.1, 0.45, 0.45], [0.1, 0.45, 0.45]], dtype=DTYPE
        )
    else:
        hmm = hp.CovariateHMM(3, emission, ["hour"])
        beta = torch.zeros(3, 3, 2, dtype=DTYPE)
        beta[0, 1:, 0] = -2.9  # log(0.05 / 0.9)
        beta[1:, 0, 0] = -1.5  # log(0.1 / 0.45)
        beta[1, 2, 0] = beta[2, 1, 0] = 0.0
        point["beta_A"] = beta
    fit = hp.Fit.from_params(hmm, data, point, method="map")
    report = hp.diagnose(fit, deep=False)
    flag = report.flag("emission_collapse")
    assert flag is not None and flag.severity == "error", report.to_markdown()
    assert flag.measured["groups"] == [(1, 2)]
    assert flag.measured["effective_num_states"] == 2
    distinct = dict(point, w=torch.cat([TWO["w"], TWO["w"][1:] + torch.tensor([0.0, 1.5, 0.0])]))
    other = hp.diagnose(hp.Fit.from_params(hmm, data, distinct, method="map"), deep=False)
    assert other.flag("emission_collapse") is None, other.to_markdown()


def test_chains_in_swapped_labellings_are_flagged_and_relabelling_permutes_the_rows(data):
    """Chain 1 has the states swapped (``pi``, rows and columns of ``A``, rows of ``w`` and
    ``sigma``): diagnose flags label switching; relabelling brings chain 1's coefficient rows
    back onto chain 0's, draw by draw."""
    hmm = hp.HMM(2, hp.GaussianRegression(NAMES))
    generator = torch.Generator().manual_seed(0)
    draws = {}
    for name, value in TWO.items():
        noise = 0.02 * torch.randn((2, 40, *value.shape), generator=generator, dtype=DTYPE)
        if name in ("pi", "A"):
            moved = value + noise.abs()
            draws[name] = moved / moved.sum(-1, keepdim=True)
        else:
            draws[name] = value + (noise.abs() if name == "sigma" else noise)
    perms = np.zeros((2, 40, 2), dtype=int)
    perms[0], perms[1] = [0, 1], [1, 0]
    swapped = permute_params(hmm, {k: v.numpy() for k, v in draws.items()}, perms)
    assert np.array_equal(swapped["w"][1, :, 0], draws["w"][1, :, 1].numpy())
    fit = hp.Fit.from_params(
        hmm, data, {k: torch.as_tensor(v) for k, v in swapped.items()}, method="nuts"
    )
    report = hp.diagnose(fit, deep=False, predictive=0)
    flag = report.flag("label_switching")
    assert flag is not None and flag.severity == "error", report.to_markdown()
    assert report.flag("emission_collapse") is None
    aligned = hp.relabel(fit).draws()["w"]
    if aligned[0, 0, 0, 0] > 0:  # one global labelling, whichever it is
        aligned = aligned.flip(-2)
    torch.testing.assert_close(aligned, draws["w"], rtol=0, atol=0)
