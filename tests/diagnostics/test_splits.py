"""Split moves: a fit at a local optimum is found and named, a degenerate fit is left alone."""

import dataclasses

import numpy as np
import pytest
import torch

from hmm_pyro import HMM, Categorical, Fit, Gaussian, Poisson, fit_map, simulate
from hmm_pyro._random import make_generator
from hmm_pyro.diagnostics import Flag, Remedy, diagnose, evidence
from hmm_pyro.diagnostics.cause import apply_evidence
from hmm_pyro.diagnostics.evidence import gather_evidence
from hmm_pyro.diagnostics.refits import fewer_states, point_fit
from hmm_pyro.diagnostics.splits import SPLIT_GAIN_NATS, split_search, split_start
from tests.diagnostics.helpers import tensors

STAY = 0.85
FOUR = np.full((4, 4), (1 - STAY) / 3) + (STAY - (1 - STAY) / 3) * np.eye(4)
TRUTH = {"pi": np.full(4, 0.25), "A": FOUR, "mu": [-6.0, -2.0, 2.0, 6.0], "sigma": [1.0] * 4}
# the -6 and -2 states merged into one wide state, the spare state a near-copy of the 2 state
LOCAL = {"pi": np.full(4, 0.25), "A": FOUR, "mu": [-4.0, 1.8, 2.2, 6.0], "sigma": [2.2, 1, 1, 1]}


def _data(seed: int = 0):
    return simulate(HMM(4, Gaussian()), tensors(TRUTH), [60] * 8, seed=seed)[0]


def _local_optimum(seed: int = 0):
    hmm = HMM(4, Gaussian())
    data = hmm.prepare_data(_data(seed))
    return hmm, data, point_fit(hmm, data, tensors(LOCAL))


def test_split_start_keeps_the_other_states_and_splits_the_probabilities():
    hmm, data, point = _local_optimum()
    smaller = fewer_states(point, data)
    start = split_start(hmm, smaller, data, 0, make_generator(0))
    assert start is not None
    for name in ("mu", "sigma"):
        torch.testing.assert_close(start[name][1:3], smaller.params[name][1:3])
    assert start["mu"][0] != start["mu"][3]  # the halves are placed apart
    assert bool((start["sigma"] > 0).all())
    torch.testing.assert_close(start["pi"].sum(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(start["A"].sum(-1), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(start["pi"][0], start["pi"][3])
    torch.testing.assert_close(start["A"][0], start["A"][3])


def test_split_search_escapes_a_merged_local_optimum():
    _, data, point = _local_optimum()
    found = split_search(point, fewer_states(point, data), data)
    assert found is not None
    assert found.gain > 50.0  # the merged -6/-2 state costs far more than a few nats
    means = np.sort(found.point.params["mu"].numpy())
    np.testing.assert_allclose(means, TRUTH["mu"], atol=0.5)
    assert found.to_dict()["gain"] == pytest.approx(found.gain)
    # the split's own K - 1 refit is kept for diagnose's step down: it is fewer_states' result
    again = fewer_states(found.point, data)
    assert found.smaller is not None
    assert found.smaller.log_posterior == pytest.approx(again.log_posterior, abs=1e-9)


def test_diagnose_names_the_local_optimum_not_too_many_states(monkeypatch):
    hmm, data, point = _local_optimum()
    fit = Fit.from_params(hmm, data, point.params, method="map")
    refitted = []
    step_down = evidence.fewer_states
    monkeypatch.setattr(
        evidence, "fewer_states", lambda point, *a: refitted.append(point) or step_down(point, *a)
    )
    report = diagnose(fit)
    flag = report.flags[0]
    assert flag.kind == "local_optimum" and flag.severity == "error"
    assert flag.remedies[0].value == "more restarts"
    assert report.flag("too_many_states") is None
    gain = flag.measured["gain"]
    assert f"{gain:.1f} nats above the fit's mode" in flag.summary
    assert "the data support 4 state(s)" in flag.summary
    # the step down from the adopted split's solution reuses the K - 1 refit the split search
    # made: fewer states from the fit's mode, none from the split's solution
    better = torch.tensor(flag.measured["better_params"]["mu"], dtype=torch.float64)
    assert refitted and refitted[0].num_states == hmm.num_states
    assert not any(
        p.num_states == hmm.num_states and torch.allclose(p.params["mu"], better) for p in refitted
    )
    # the remedy works: fit_map started at the better solution ends clean
    refit = fit_map(hmm, data, init=flag.measured["better_params"], restarts=1, seed=0)
    means = np.sort(refit.posterior_mean()["mu"].numpy())
    np.testing.assert_allclose(means, TRUTH["mu"], atol=0.5)
    assert diagnose(refit).flags == ()


@pytest.mark.parametrize(
    ("emission", "truth", "states"),
    [
        (Gaussian(), {"mu": [0.5], "sigma": [1.0]}, 3),
        (Poisson(), {"rate": [4.0]}, 2),
        (Categorical(3), {"B": [[0.5, 0.3, 0.2]]}, 3),
    ],
)
def test_no_split_gain_when_the_data_have_one_state(emission, truth, states):
    """On one-state data fitted with too many states a split reaches other over-fitted solutions
    (up to a few nats higher), at which BIC still prefers fewer states: on 5 seeds per family no
    split may be returned. A rule on the gain alone fails here (Gaussian seeds 0 and 3 gain 5.5
    and 4.5 nats over the 2-nat threshold)."""
    found = []
    for seed in range(5):
        params = tensors(
            {"pi": [1.0], "A": [[1.0]], **{k: np.asarray(v) for k, v in truth.items()}}
        )
        data = simulate(HMM(1, emission), params, [300], seed=seed)[0]
        hmm = HMM(states, emission)
        data = hmm.prepare_data(data)
        start = hmm.sample_prior(seed=seed)
        point = point_fit(hmm, data, start)
        result = split_search(point, fewer_states(point, data), data)
        found.append(None if result is None else result.gain)
    assert found == [None] * 5, found
    assert SPLIT_GAIN_NATS == 2.0


def test_two_emptied_states_need_two_splits():
    """Three regimes (-3, 0, 3) fitted at the optimum of study j: two empty states and one
    state across all regimes. One split reaches only two regimes (BIC still prefers fewer
    states there); the second split reaches all three."""
    stay = np.full((3, 3), 0.025) + 0.925 * np.eye(3)
    truth = {"pi": np.full(3, 1 / 3), "A": stay, "mu": [-3.0, 0.0, 3.0], "sigma": [1.0] * 3}
    hmm = HMM(3, Gaussian())
    data = hmm.prepare_data(simulate(hmm, tensors(truth), [500], seed=0)[0])
    local = {
        "pi": np.array([0.0005, 0.0005, 0.999]),
        "A": np.full((3, 3), 1 / 3),
        "mu": [0.0, 0.0, 1.0],
        "sigma": [0.6, 0.6, 2.6],
    }
    point = point_fit(hmm, data, tensors(local))
    found = split_search(point, fewer_states(point, data), data)
    assert found is not None and found.rounds == 2
    assert found.gain > 100.0
    np.testing.assert_allclose(np.sort(found.point.params["mu"].numpy()), truth["mu"], atol=0.3)
    assert "2 splits in turn" in found.describe()


def test_a_misfit_found_at_a_local_optimum_names_the_optimizer_first():
    """The predictive checks of a fit at a local optimum test the optimizer's solution: the
    misspecification flag says so (cause kind, cause text with the split's gain) and puts
    "more restarts" first, keeping the model-level causes after it."""
    hmm, data, point = _local_optimum()
    fit = Fit.from_params(hmm, data, point.params, method="map")
    at_optimum = gather_evidence(fit, point.params, relevant=False)
    found = at_optimum.split
    assert found is not None
    misfit = Flag(
        "misspecification", "warning", "The model does not reproduce ...", {}, {},
        "the emission family does not describe the data's marginal law",
        (Remedy.OTHER_FAMILY, Remedy.FEWER_STATES),
    )  # fmt: skip
    plain = dataclasses.replace(at_optimum, split=None)
    before = apply_evidence([misfit], plain, fit, aligned=True)[0]
    assert before.cause_kind == "misspecification" and before.remedies[0] is Remedy.OTHER_FAMILY
    flag = next(f for f in apply_evidence([misfit], at_optimum, fit, True) if f.kind == misfit.kind)
    assert flag.cause_kind == "optimizer"
    assert flag.remedies[:2] == (Remedy.MORE_RESTARTS, Remedy.OTHER_FAMILY)
    assert f"{found.gain:.1f} nats above" in flag.cause
    assert flag.cause.endswith(misfit.cause)
