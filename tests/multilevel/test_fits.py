"""A short NUTS fit of a ``MultilevelHMM``: ArviZ output with a ``subject`` dimension, the
direction of planted group- and subject-level effects, diagnose, save and load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmm_pyro as hp

pytestmark = pytest.mark.xdist_group("multilevel_fits")

SUBJECT_MEANS = [-4.5, -3.5, -2.5, -1.5]
"""Planted means of state 0 in the four subjects (group mean -3, tau 1, z = -1.5 .. 1.5)."""


@pytest.fixture(scope="module")
def planted_fit():
    """4 subjects x 60 steps, states at -3 and +3 (sd 1), persistent chains; 2 chains x
    (40 warm-up + 30 draws), tree depth at most 4 (about 6 s of CPU)."""
    hmm = hp.MultilevelHMM(2, hp.Gaussian(), ["w", "x", "y", "z"])
    truth = {
        "pi": torch.tensor([0.5, 0.5]),
        "A": torch.tensor([[0.9, 0.1], [0.1, 0.9]]),
        "mu": torch.tensor([-3.0, 3.0]),
        "sigma": torch.ones(2),
        "tau_A": torch.full((2,), 0.2),
        "z_A": torch.zeros(4, 2, 2),
        "tau_mu": torch.tensor([1.0, 0.1]),
        "z_mu": torch.tensor([[-1.5, 0.0], [-0.5, 0.0], [0.5, 0.0], [1.5, 0.0]]),
    }
    truth = {name: value.double() for name, value in truth.items()}
    data, _ = hp.simulate(hmm, truth, [60] * 4, seed=5)
    fit = hp.fit_nuts(
        hmm,
        data,
        chains=2,
        warmup=40,
        draws=30,
        seed=3,
        max_tree_depth=4,
        parallel=False,
        progress=False,
    )
    return fit


def test_arviz_output_has_group_and_subject_levels(planted_fit, tmp_path):
    posterior = planted_fit.idata.posterior
    assert posterior["z_A"].dims == ("chain", "draw", "subject", "state", "state_to")
    assert posterior["A_subject"].dims == ("chain", "draw", "subject", "state", "state_to")
    assert posterior["mu_subject"].dims == ("chain", "draw", "subject", "state")
    assert posterior["tau_mu"].dims == ("chain", "draw", "state")
    assert list(posterior["subject"].values) == ["w", "x", "y", "z"]
    assert "A_subject" in planted_fit.idata.prior
    # stored subject-level values are the transform of the stored draws (after relabelling)
    recomputed = planted_fit.hmm.subject_params(planted_fit.draws())["mu"].numpy()
    assert np.allclose(posterior["mu_subject"].values, recomputed, atol=1e-12)
    back = hp.load(planted_fit.save(tmp_path / "fit.nc"))
    assert isinstance(back.hmm, hp.MultilevelHMM)
    assert np.array_equal(back.idata.posterior["A_subject"].values, posterior["A_subject"].values)


def test_planted_effects_are_recovered_in_direction(planted_fit):
    """Group means on either side of zero, persistent group transitions, and the subjects'
    state-0 means in their planted order (adjacent subjects 1 apart; the sd of a subject's
    state mean from ~30 steps is about 0.2, so a swapped pair is a > 3 sd event)."""
    mean = {name: value.mean((0, 1)) for name, value in planted_fit.draws().items()}
    low = int(torch.argmin(mean["mu"]))
    assert mean["mu"][low] < -1.5 and mean["mu"][1 - low] > 1.5
    assert (mean["A"].diagonal() > 0.6).all()
    subject_means = planted_fit.idata.posterior["mu_subject"].mean(("chain", "draw")).values
    assert list(np.argsort(subject_means[:, low])) == [0, 1, 2, 3], subject_means
    assert mean["tau_mu"][low] > mean["tau_mu"][1 - low]


def test_diagnose_runs_at_both_levels(planted_fit):
    report = hp.diagnose(planted_fit, deep=True, predictive=20)
    assert report.flag("subject_label_mismatch") is None
    assert report.flag("emission_collapse") is None
    assert set(report.measurements["subjects"]["p_collapsed"]) == {"w", "x", "y", "z"}
    assert any("refits skipped: each subject has its own parameters" in n for n in report.notes)
