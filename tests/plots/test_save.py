"""``save_fit_plots``: one PNG per kind the fit can show (never clipped, never empty); the
others left out, with a reason."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.plots import FIT_PLOT_KINDS, save_fit_plots, skipped_plots
from hmm_pyro.simulate import REFERENCE_PARAMS
from tests.plots.render import checked_savefig

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def data() -> hp.Sequences:
    hmm = hp.HMM(3, hp.Categorical(5))
    return hp.simulate(hmm, REFERENCE_PARAMS, [40, 30], seed=2)[0]


@pytest.fixture(scope="module")
def svi_fit(data) -> hp.Fit:
    """A fit with draws (Gaussian guide) and a loss history: every kind can be drawn."""
    hmm = hp.HMM(3, hp.Categorical(5))
    return hp.fit_svi(
        hmm, data, guide="normal", steps=30, restarts=1, num_draws=20, seed=0, progress=False
    )


def test_every_kind_of_a_fit_with_draws_and_losses(svi_fit, tmp_path):
    assert skipped_plots(svi_fit) == {"covariates": "the model has no transition covariates"}
    before = set(plt.get_fignums())  # other tests in this worker may leave figures open
    with checked_savefig() as saved:  # every figure checked for clipped or colliding text
        paths = save_fit_plots(svi_fit, tmp_path / "plots", prefix="svi", sequence=1)
    kinds = [kind for kind in FIT_PLOT_KINDS if kind != "covariates"]
    assert paths == [tmp_path / "plots" / f"svi_{kind}.png" for kind in kinds]
    assert saved == [path.name for path in paths] and len(saved) == 7
    for path in paths:
        assert path.stat().st_size > 1000
    assert set(plt.get_fignums()) <= before  # every figure it opened is closed


def test_a_point_estimate_has_no_trace_and_no_loss(data, tmp_path):
    fit = hp.Fit.from_params(hp.HMM(3, hp.Categorical(5)), data, REFERENCE_PARAMS, method="em")
    assert skipped_plots(fit) == {
        "trace": "the fit has a single draw",
        "loss": "the fit has no loss history",
        "covariates": "the model has no transition covariates",
    }
    paths = save_fit_plots(fit, tmp_path)
    assert [path.name for path in paths] == [
        "fit_emissions.png",
        "fit_distances.png",
        "fit_states.png",
        "fit_paths.png",
        "fit_transitions.png",
    ]


def test_one_state_has_no_distances(tmp_path):
    ones = torch.ones(1, 1, dtype=torch.float64)
    params = {"pi": ones[0], "A": ones, "B": torch.tensor([[0.4, 0.6]], dtype=torch.float64)}
    fit = hp.Fit.from_params(hp.HMM(1, hp.Categorical(2)), [[0, 1, 1, 0]], params, method="em")
    assert skipped_plots(fit)["distances"] == "the model has one state"
    assert save_fit_plots(fit, tmp_path / "out", kinds=["distances"]) == []
    assert (tmp_path / "out").is_dir()


def test_unknown_kind(svi_fit, tmp_path):
    with pytest.raises(ValueError, match=r"kinds: expected some of emissions, .* got 'pie'"):
        save_fit_plots(svi_fit, tmp_path / "never", kinds=["emissions", "pie"])
    assert not (tmp_path / "never").exists()
    with pytest.raises(TypeError, match=r"fit: expected a hmm_pyro\.Fit"):
        save_fit_plots("fit.nc", tmp_path)
