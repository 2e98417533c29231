"""Subject-level checks of ``diagnose`` on multilevel fits (draws built by hand)."""

from __future__ import annotations

import pytest
import torch

import hmm_pyro as hp


def fit_with(z_mu: torch.Tensor, random_effects=("A", "mu")) -> hp.Fit:
    """3 subjects, states at -4 and +4 in the group; ``z_mu`` moves each subject's means.

    2 chains x 8 draws jittered by 0.01 around the values (declared aligned).
    """
    hmm = hp.MultilevelHMM(2, hp.Gaussian(), 3, list(random_effects))
    params = {
        "pi": torch.tensor([0.5, 0.5]),
        "A": torch.tensor([[0.9, 0.1], [0.1, 0.9]]),
        "mu": torch.tensor([-4.0, 4.0]),
        "sigma": torch.ones(2),
        "tau_A": torch.full((2,), 0.3),
        "z_A": torch.zeros(3, 2, 2),
        "tau_mu": torch.full((2,), 4.0),
        "z_mu": z_mu,
    }
    params = {name: params[name].double() for name in hmm.param_names}
    data, _ = hp.simulate(hmm, params, [40, 40, 40], seed=0)
    jitter = 0.01 * torch.randn(2, 8, generator=torch.Generator().manual_seed(1)).double()
    draws = {
        name: value + (jitter.reshape(2, 8, *[1] * value.dim()) if name.startswith("z") else 0)
        for name, value in params.items()
    }
    draws = {name: value.expand(2, 8, *params[name].shape).clone() for name, value in draws.items()}
    return hp.Fit.from_params(hmm, data, draws, method="nuts", attrs={"labels": "aligned"})


def test_swapped_and_collapsed_subjects_are_flagged():
    """Subject 1's means are swapped (+4, -4 for states 0, 1) and subject 2's states both sit
    at 0: the two warnings name them, subject 0 (the group's order) is in neither."""
    z_mu = torch.tensor([[0.1, -0.1], [2.0, -2.0], [1.0, -1.0]])
    report = hp.diagnose(fit_with(z_mu), deep=False, predictive=0)
    mismatch = report.flag("subject_label_mismatch")
    collapse = report.flag("subject_collapse")
    assert mismatch is not None and collapse is not None, str(report)
    assert "Subjects 1:" in mismatch.summary and "Subjects 2:" in collapse.summary
    measured = report.measurements["subjects"]
    assert measured["p_label_mismatch"] == pytest.approx({"0": 0.0, "1": 1.0, "2": 0.0}, abs=0.5)
    assert measured["p_label_mismatch"]["1"] == 1.0 and measured["p_label_mismatch"]["0"] == 0.0
    assert measured["p_collapsed"]["2"] == 1.0 and measured["p_collapsed"]["0"] == 0.0


def test_subjects_in_the_groups_order_raise_nothing_and_shared_emissions_are_noted():
    z_mu = torch.tensor([[0.1, -0.1], [-0.2, 0.2], [0.0, 0.3]])
    report = hp.diagnose(fit_with(z_mu), deep=False, predictive=0)
    assert report.flag("subject_label_mismatch") is None
    assert report.flag("subject_collapse") is None
    shared = hp.diagnose(fit_with(z_mu, ["A"]), deep=False, predictive=0)
    assert "subjects" not in shared.measurements
    assert any("shared by all subjects" in note for note in shared.notes)
