"""``diagnose`` on fits of ``CovariateHMM`` (transitions that change with covariates).

The checks read the transition matrix at the covariates' means where a plain HMM has ``A``,
replicate the covariates with the data in the predictive checks, and skip the EM refits (EM
updates one transition matrix) with a note.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.covariates import Covariates
from hmm_pyro.labels.permutations import permute_params

BETA = torch.tensor([[[0.0, 0.0], [-2.0, 1.0]], [[-2.5, -1.0], [0.0, 0.0]]], dtype=torch.float64)


@pytest.fixture(scope="module")
def planted() -> tuple[hp.CovariateHMM, dict[str, torch.Tensor], hp.Sequences]:
    hmm = hp.CovariateHMM(2, hp.Gaussian(), ["hour"])
    truth = {
        "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "beta_A": BETA,
        "mu": torch.tensor([-2.0, 2.0], dtype=torch.float64),
        "sigma": torch.ones(2, dtype=torch.float64),
    }
    steps = np.arange(400)
    covariates = Covariates([np.sin(2 * np.pi * steps / 24)], ["hour"])
    data, _ = hp.simulate(hmm, truth, covariates=covariates, seed=3)
    return hmm, truth, data


def _draws(truth: dict[str, torch.Tensor], chains: int, draws: int, seed: int) -> dict:
    """Draws ``(chain, draw, ...)`` scattered around the truth (small Gaussian noise)."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, value in truth.items():
        noise = 0.02 * torch.randn((chains, draws, *value.shape), generator=generator)
        if name == "pi":
            out[name] = (value + noise.abs()).div((value + noise.abs()).sum(-1, keepdim=True))
        elif name == "beta_A":
            eye = torch.eye(value.shape[0], dtype=torch.bool)[..., None]
            out[name] = (value + noise).masked_fill(eye, 0.0)
        elif name == "sigma":
            out[name] = value + noise.abs()
        else:
            out[name] = value + noise
    return out


def test_point_estimate_of_separated_states_is_ok_and_says_the_refits_were_skipped(planted):
    hmm, _, data = planted
    fit = hp.fit_map(hmm, data, seed=0, restarts=2, progress=False)
    report = hp.diagnose(fit)
    assert report.ok, report.to_markdown()
    assert any("refits skipped: the transitions change with covariates" in n for n in report.notes)
    assert "predictive_checks" in report.measurements


def test_chains_in_permuted_labellings_are_flagged_on_the_coefficients(planted):
    """Chain 1 with the states swapped (rows and columns of beta_A, mu, sigma, pi): the
    per-state parameters disagree between chains while label-invariant quantities (the sorted
    self-transition probabilities at the covariates' means among them) agree."""
    hmm, truth, data = planted
    draws = _draws(truth, chains=2, draws=50, seed=0)
    planted_perm = np.zeros((2, 50, 2), dtype=int)
    planted_perm[0] = [0, 1]
    planted_perm[1] = [1, 0]
    swapped = permute_params(hmm, {k: v.numpy() for k, v in draws.items()}, planted_perm)
    fit = hp.Fit.from_params(
        hmm, data, {k: torch.as_tensor(v) for k, v in swapped.items()}, method="nuts"
    )
    report = hp.diagnose(fit, deep=False, predictive=0)
    flag = report.flag("label_switching")
    assert flag is not None and flag.severity == "error", report.to_markdown()
    assert report.flag("emission_collapse") is None
    invariant = report.measurements["convergence"]
    assert invariant is not None
