"""PSIS-LOO over sequences or time blocks, and refits of fewer states by the fit's runner."""

import numpy as np
import pytest

from hmm_pyro import HMM, Fit, Poisson, simulate
from hmm_pyro.diagnostics import elpd
from hmm_pyro.diagnostics.elpd import can_refit, pointwise_elpd, posterior_refit
from hmm_pyro.diagnostics.folds import make_folds
from hmm_pyro.fit.inference_data import az
from tests.diagnostics.helpers import tensors

TIED = {"pi": np.array([0.3, 0.7]), "A": np.array([[0.3, 0.7], [0.3, 0.7]]), "rate": [2.0, 9.0]}


def _draws(params, chains, draws, seed, spread):
    rng = np.random.default_rng(seed)
    out = {
        name: np.broadcast_to(np.asarray(v, float), (chains, draws, *np.shape(v))).copy()
        for name, v in params.items()
    }
    out["rate"] = out["rate"] * np.exp(spread * rng.standard_normal(out["rate"].shape))
    return tensors(out)


def test_identical_draws_give_each_block_its_plug_in_density():
    """With one parameter value the weights are uniform and each block's ELPD is
    log p(y_b | y_rest); for an i.i.d. model (tied rows) the blocks then add up to the whole
    log likelihood: an independent check of the block terms."""
    hmm = HMM(2, Poisson())
    data, _ = simulate(hmm, tensors(TIED), [100], seed=0)
    fit = Fit.from_params(hmm, data, _draws(TIED, 2, 5, 0, 0.0), method="nuts")
    values, _, text = pointwise_elpd(fit)
    assert "leave-one-block-out (20" in text and values.shape == (20,)
    total = float(hmm.log_likelihood(tensors(TIED), data).sum())
    assert values.sum() == pytest.approx(total, abs=1e-8)
    split = make_folds(data, 20)
    assert len(split.units) == 20


def test_sequences_match_arviz_loo():
    hmm = HMM(2, Poisson())
    data, _ = simulate(hmm, tensors(TIED), [40] * 6, seed=1)
    fit = Fit.from_params(hmm, data, _draws(TIED, 1, 400, 2, 0.05), method="nuts")
    values, pareto_k, text = pointwise_elpd(fit)
    assert text == "PSIS-LOO over sequences"
    with pytest.warns(UserWarning, match="Pareto"):  # 6 sequences: a heavy tail is expected
        reference = az.loo(fit.idata, pointwise=True, var_name="y", reff=1.0)
    np.testing.assert_allclose(values, reference.loo_i.values, atol=1e-8)
    np.testing.assert_allclose(pareto_k, reference.pareto_k.values, atol=1e-8)


@pytest.mark.parametrize(
    ("method", "attrs", "expected"),
    [
        (
            "nuts",
            {
                "num_chains": 2,
                "num_warmup": 30,
                "num_draws": 40,
                "target_accept": 0.9,
                "max_tree_depth": 6,
                "seed": 7,
            },
            {
                "chains": 2,
                "warmup": 30,
                "draws": 40,
                "target_accept": 0.9,
                "max_tree_depth": 6,
                "parallel": False,
                "relabel": False,
            },
        ),
        (
            "svi",
            {"guide": "normal", "steps": 60, "lr": 0.05, "tol": 1e-4, "seed": 7},
            {
                "guide": "normal",
                "steps": 60,
                "lr": 0.05,
                "tol": 1e-4,
                "restarts": 1,
                "num_draws": 5,
            },
        ),
    ],
)
def test_fewer_states_are_refitted_by_the_fits_own_runner(monkeypatch, method, attrs, expected):
    """The recorded settings go to the same runner, every chain starting at the given point
    (probability rows moved off exact zeros: samplers need finite coordinates)."""
    hmm = HMM(3, Poisson())
    data, _ = simulate(HMM(2, Poisson()), tensors(TIED), [30], seed=0)
    three = {"pi": np.full(3, 1 / 3), "A": np.full((3, 3), 1 / 3), "rate": [2.0, 5.0, 9.0]}
    fit = Fit.from_params(hmm, data, _draws(three, 1, 5, 0, 0.01), method=method, attrs=attrs)
    assert can_refit(fit)
    assert not can_refit(Fit.from_params(hmm, data, _draws(three, 1, 5, 0, 0.01), method=method))
    calls = {}

    def runner(model, observed, **options):
        calls.update(options, model=model, data=observed)
        return "refit"

    monkeypatch.setattr(elpd, f"fit_{method}", runner)
    small = HMM(2, Poisson())
    start = tensors({"pi": [1.0, 0.0], "A": [[1.0, 0.0], [0.1, 0.9]], "rate": [2.0, 9.0]})
    assert posterior_refit(fit, small, start) == "refit"
    assert calls["model"] is small and calls["data"] is fit.data
    assert calls["seed"] == 7 and calls["progress"] is False
    assert {key: calls[key] for key in expected} == expected
    assert float(calls["init"]["pi"].min()) > 0 and float(calls["init"]["A"].min()) > 0
    np.testing.assert_allclose(calls["init"]["rate"].numpy(), [2.0, 9.0])
