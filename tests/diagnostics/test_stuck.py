"""Stuck chains: sampled draws that do not move are flagged, moving ones are not.

A frozen chain has undefined R-hat and ESS (and one chain gets none), so before this check a
fit whose only chain never left its start read "No degeneracy found". The move fraction is
exact arithmetic on the draws (no sampling noise): the boundary cases below are deterministic.
"""

import copy

import numpy as np
import pytest
import torch

from hmm_pyro import HMM, Poisson, diagnose, fit_nuts, simulate
from hmm_pyro.diagnostics.stuck import move_fractions, stuck_chains_flag
from hmm_pyro.diagnostics.thresholds import MIN_MOVE_FRACTION


@pytest.fixture(scope="module")
def fit():
    hmm = HMM(2, Poisson())
    truth = {
        "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "A": torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64),
        "rate": torch.tensor([2.0, 9.0], dtype=torch.float64),
    }
    data, _ = simulate(hmm, truth, [150], seed=0)
    return fit_nuts(hmm, data, chains=1, warmup=80, draws=60, seed=0, progress=False)


def _frozen(fit, upto):
    """A copy of ``fit`` whose chain 0 repeats its first draw at draws ``[0, upto)``."""
    frozen = copy.deepcopy(fit)
    for name in frozen.idata.posterior.data_vars:
        values = frozen.idata.posterior[name].values
        values[0, :upto] = values[0, :1]
        frozen.idata.posterior[name].values = values
    return frozen


def test_a_moving_chain_is_not_flagged_and_a_frozen_one_is(fit):
    assert diagnose(fit, deep=False).flag("stuck_chains") is None
    report = diagnose(_frozen(fit, fit.num_draws), deep=False)
    assert not report.ok
    flag = report.flags[0]  # before every other flag: nothing else means anything
    assert flag.kind == "stuck_chains" and flag.severity == "error"
    assert flag.cause_kind == "sampler"
    assert flag.measured["stuck_chains"] == [0] and flag.measured["move_fraction"] == [0.0]
    assert "chain 0 moved in 0% of its 59 transitions" in flag.summary


def test_the_threshold_is_on_the_fraction_of_transitions_that_moved():
    """Chains of 11 draws (10 transitions) moving in 4, 5 and 6 of them; a NaN repeated is no
    move; a change in any one entry of any parameter is a move."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 11, 2))
    for chain, still in enumerate((6, 5, 4)):  # the first `still` transitions repeat
        values[chain, 1 : still + 1] = values[chain, 0]
    other = np.zeros((3, 11))
    draws = {"mu": values, "constant": other}
    np.testing.assert_allclose(move_fractions(draws), [0.4, 0.5, 0.6])
    assert MIN_MOVE_FRACTION == 0.5
    assert stuck_chains_flag(draws).measured["stuck_chains"] == [0]
    one_entry = values.copy()
    one_entry[0, 1:, 1] += np.arange(1, 11)  # entry 1 of chain 0 moves at every transition
    assert move_fractions({"mu": one_entry})[0] == 1.0
    nan = np.full((1, 5, 1), np.nan)
    assert move_fractions({"mu": nan})[0] == 0.0
    assert stuck_chains_flag({"mu": values[:, :1]}) is None  # one draw: nothing to move
