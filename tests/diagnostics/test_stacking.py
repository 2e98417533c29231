"""Stacking of chains (Yao, Vehtari & Gelman 2022): weights from leave-one-out predictive fit.

Crafted two-chain fits: chain 0 scattered around the truth, chain 1 around parameters whose
three states share one emission law (hundreds of nats worse on these data). The crafted draws
are few and not a real posterior, so PSIS warns about Pareto k; the warning is silenced here.
Each chain's ELPD over sequences is checked against ``arviz.loo`` on that chain alone (an
independent implementation of PSIS-LOO).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmm_pyro import Fit, simulate
from hmm_pyro.diagnostics import stack_chains, stacked_fit
from hmm_pyro.fit.inference_data import az
from tests.diagnostics.helpers import TRUTH, crafted_fit, noisy_draws, tensors


def _two_modes(draws: int = 30) -> dict[str, np.ndarray]:
    good = noisy_draws(TRUTH, 1, draws, seed=4)
    merged = {**TRUTH, "B": TRUTH["B"].copy()}
    merged["B"][:] = TRUTH["B"].mean(0)  # one emission law for all states: no structure
    bad = noisy_draws(merged, 1, draws, seed=5)
    return {name: np.concatenate([good[name], bad[name]]) for name in good}


@pytest.fixture(scope="module")
def many_sequences(workload_hmm):
    data, _ = simulate(workload_hmm, tensors(TRUTH), [40] * 12, seed=2)
    return data


@pytest.mark.filterwarnings("ignore:stack_chains. Pareto k")
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")
def test_sequences_are_the_units_and_the_worse_mode_gets_no_weight(workload_hmm, many_sequences):
    fit = crafted_fit(workload_hmm, many_sequences, _two_modes())
    stacking = stack_chains(fit, draws_per_chain=30)
    assert stacking.units == "sequences" and stacking.pointwise.shape == (2, 12)
    assert stacking.weights.sum() == pytest.approx(1.0)
    assert stacking.weights[0] > 0.9 and stacking.elpd[0] > stacking.elpd[1]
    for chain in range(2):
        one = az.from_dict(
            posterior={"x": np.zeros((1, 30))},
            log_likelihood={"y": fit.idata.log_likelihood["y"].values[chain : chain + 1]},
        )
        reference = az.loo(one, pointwise=True)
        np.testing.assert_allclose(stacking.elpd[chain], reference.elpd_loo, rtol=1e-6)
    assert stacking.stacked_elpd >= stacking.elpd.max() - 1e-6


@pytest.mark.filterwarnings("ignore:stack_chains. Pareto k")
def test_one_sequence_is_cut_into_blocks(workload_hmm):
    data, _ = simulate(workload_hmm, tensors(TRUTH), [300], seed=3)
    fit = crafted_fit(workload_hmm, data, _two_modes(20))
    stacking = stack_chains(fit, blocks=5, draws_per_chain=20)
    assert stacking.pointwise.shape == (2, 5) and stacking.units.startswith("5 time blocks")
    assert stacking.weights[0] > 0.9
    stacked = stacked_fit(fit, stacking, draws=50, seed=1)
    assert stacked.method == "stacked chains" and stacked.num_draws == 50
    assert "not the posterior" in stacked.attrs["stacking"]
    source = fit.draws()["B"].reshape(-1, 3, 5)
    picked = stacked.draws()["B"][0]
    matches = (picked[:, None] == source[None]).all(-1).all(-1)  # (50, 60)
    assert bool(matches.any(1).all())  # every stacked draw is one of the fit's draws


@pytest.mark.filterwarnings("ignore:stack_chains. Pareto k")
def test_bad_arguments_are_named(workload_hmm, many_sequences):
    one_chain = Fit.from_params(
        workload_hmm, many_sequences, {k: v[:1] for k, v in tensors(_two_modes()).items()}
    )
    with pytest.raises(ValueError, match="fit: stacking combines chains"):
        stack_chains(one_chain)
    data, _ = simulate(workload_hmm, tensors(TRUTH), [6], seed=3)
    with pytest.raises(ValueError, match="blocks: expected at most 6"):
        stack_chains(crafted_fit(workload_hmm, data, _two_modes(5)), blocks=8)
    fit = crafted_fit(workload_hmm, many_sequences, _two_modes(5))
    stacking = stack_chains(fit, draws_per_chain=5)
    stacking = type(stacking)(
        torch.ones(3).numpy() / 3, stacking.elpd, stacking.pointwise, stacking.pareto_k, "x"
    )
    with pytest.raises(ValueError, match="stacking: expected weights for 2 chains"):
        stacked_fit(fit, stacking)
