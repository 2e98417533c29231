"""Relabelling: recovered permutations checked against planted ones, draw by draw."""

import json
import warnings

import numpy as np
import pytest
import torch

from hmm_pyro import HMM, Categorical, Fit, Gaussian, Prior, simulate
from hmm_pyro.diagnostics import RelabelWarning, diagnose, find_permutations, relabel
from hmm_pyro.fit import MixedLabelsWarning
from hmm_pyro.labels.algorithms import (
    agreement,
    canonical_within_groups,
    ecr,
    stephens,
)
from hmm_pyro.labels.labelling import Labelling, prior_is_exchangeable
from hmm_pyro.labels.permutations import compose, identity, permute_params
from tests.diagnostics.helpers import TRUTH, crafted_fit, noisy_draws, planted_fit, tensors


def assert_recovers(planted, recovered):
    """``planted`` then ``recovered`` must be one global permutation for every draw."""
    total = compose(planted, recovered).reshape(-1, planted.shape[-1])
    assert (total == total[0]).all(), f"{(total != total[0]).any(-1).mean():.1%} draws wrong"


def between_and_within(chains=4, draws=120):
    planted = identity(3, (chains, draws))
    planted[1] = [1, 2, 0]
    planted[2] = [2, 1, 0]
    planted[3, draws // 2 :] = [1, 0, 2]  # chain 3 swaps states 0 and 1 halfway
    return planted


@pytest.mark.parametrize("method", ["stephens", "ecr"])
def test_between_and_within_chain_switches_are_recovered(workload_hmm, small_data, method):
    planted = between_and_within()
    fit = planted_fit(workload_hmm, small_data, planted)
    labelling = find_permutations(fit, method=method)
    assert_recovers(planted, labelling.perms)
    assert labelling.agreement == 1.0
    assert labelling.groups == []


def test_chain_alignment_recovers_whole_chain_permutations(workload_hmm, small_data):
    planted = identity(3, (4, 60))
    planted[1], planted[3] = [2, 0, 1], [0, 2, 1]
    fit = planted_fit(workload_hmm, small_data, planted, seed=3)
    assert_recovers(planted, find_permutations(fit, method="chains").perms)


def test_random_permutation_of_every_draw_four_states():
    hmm = HMM(4, Categorical(4))
    truth = {
        "pi": np.full(4, 0.25),
        "A": np.full((4, 4), 0.05) + 0.8 * np.eye(4),
        "B": np.array(
            [[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7]]
        ),
    }
    data, _ = simulate(hmm, tensors(truth), [150] * 4, seed=5)
    rng = np.random.default_rng(6)
    planted = np.stack([rng.permutation(4) for _ in range(2 * 80)]).reshape(2, 80, 4)
    clean = noisy_draws(truth, 2, 80, seed=7)
    fit = crafted_fit(hmm, data, permute_params(hmm, clean, planted))
    for method in ("stephens", "ecr"):
        assert_recovers(planted, find_permutations(fit, method=method).perms)


def test_gaussian_draws_are_recovered():
    hmm = HMM(2, Gaussian())
    truth = {"pi": torch.tensor([0.5, 0.5]), "A": torch.tensor([[0.9, 0.1], [0.2, 0.8]])}
    truth |= {"mu": torch.tensor([-2.0, 2.0]), "sigma": torch.tensor([1.0, 0.7])}
    truth = {k: v.double() for k, v in truth.items()}
    data, _ = simulate(hmm, truth, [200], seed=1)
    rng = np.random.default_rng(2)
    draws = {
        "pi": rng.dirichlet([50, 50], size=(2, 50)),
        "A": np.stack([rng.dirichlet([90, 10], (2, 50)), rng.dirichlet([20, 80], (2, 50))], 2),
        "mu": np.array([-2.0, 2.0]) + 0.1 * rng.standard_normal((2, 50, 2)),
        "sigma": np.array([1.0, 0.7]) * np.exp(0.05 * rng.standard_normal((2, 50, 2))),
    }
    planted = identity(2, (2, 50))
    planted[1, 25:] = [1, 0]
    fit = crafted_fit(hmm, data, permute_params(hmm, draws, planted))
    assert_recovers(planted, find_permutations(fit).perms)


def test_relabel_permutes_all_parameters_consistently(workload_hmm, small_data):
    planted = between_and_within()
    fit = planted_fit(workload_hmm, small_data, planted)
    relabelled = relabel(fit)
    perms = find_permutations(fit).perms
    before = {k: v.numpy() for k, v in fit.draws().items()}
    expected = permute_params(workload_hmm, before, perms)
    after = relabelled.draws()
    for name in workload_hmm.param_names:
        np.testing.assert_array_equal(after[name].numpy(), expected[name])
    # label-invariant groups are kept and still equal a fresh computation
    fresh = workload_hmm.log_likelihood(after, small_data).numpy()
    np.testing.assert_allclose(relabelled.idata.log_likelihood["y"].values, fresh, atol=1e-8)
    np.testing.assert_array_equal(
        relabelled.idata.log_likelihood["y"].values, fit.idata.log_likelihood["y"].values
    )
    record = relabelled.attrs["relabel"]
    assert record["method"] == "stephens" and record["agreement"] == 1.0
    assert record["exchangeable_prior"] is True


def test_relabel_is_idempotent_and_invariant_to_prepermutation(workload_hmm, small_data):
    planted = between_and_within()
    fit = planted_fit(workload_hmm, small_data, planted)
    once = relabel(fit)
    again = find_permutations(once).perms
    assert (again == again[0, 0]).all()
    # a random pre-permutation of every draw leads to the same labelling up to one global map
    rng = np.random.default_rng(9)
    shuffle = np.stack([rng.permutation(3) for _ in range(4 * 120)]).reshape(4, 120, 3)
    draws = {k: v.numpy() for k, v in fit.draws().items()}
    shuffled = crafted_fit(workload_hmm, small_data, permute_params(workload_hmm, draws, shuffle))
    b_once = once.draws()["B"].numpy()
    b_shuffled = relabel(shuffled).draws()["B"].numpy()
    mapping = np.argmin(
        [
            [np.abs(b_once[..., i, :] - b_shuffled[..., j, :]).sum() for j in range(3)]
            for i in range(3)
        ],
        axis=1,
    )
    np.testing.assert_array_equal(b_shuffled[..., mapping, :], b_once)


def test_relabel_records_the_alignment_and_is_idempotent(workload_hmm, small_data):
    fit = planted_fit(workload_hmm, small_data, between_and_within())
    assert fit.labelling == "unknown"
    once = relabel(fit)
    assert once.labelling == "aligned" and once.attrs["labels"] == "aligned"
    record = once.attrs["relabel"]
    assert record["raw_r_hat"]["B"] > 1.1  # the planted switches, before alignment
    assert record["r_hat"]["B"] < 1.01
    assert record["previous"] is None
    twice = relabel(once)
    for name in workload_hmm.param_names:
        assert torch.equal(twice.draws()[name], once.draws()[name])
    assert twice.attrs["relabel"]["permutations_per_chain"] == [[[0, 1, 2]]] * 4
    assert twice.attrs["relabel"]["previous"] == record
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # aligned: per-state results do not warn
        once.posterior_mean()
        once.viterbi()


def test_non_exchangeable_prior_recomputes_log_prior(small_data):
    prior = Prior(B=np.array([[5.0, 1, 1, 1, 1], [1, 1, 1, 1, 5], [1, 5, 3, 1, 1]]))
    hmm = HMM(3, Categorical(5), prior=prior)
    assert not prior_is_exchangeable(hmm)
    assert prior_is_exchangeable(HMM(3, Categorical(5), prior=Prior(stickiness=3.0)))
    planted = between_and_within(draws=40)
    fit = planted_fit(hmm, small_data, planted)
    relabelled = relabel(fit)
    assert relabelled.attrs["relabel"]["exchangeable_prior"] is False
    terms = hmm.log_prior_terms(relabelled.draws())
    for name, value in terms.items():
        np.testing.assert_allclose(relabelled.idata.log_prior[name].values, value.numpy())
    assert not np.allclose(relabelled.idata.log_prior["B"].values, fit.idata.log_prior["B"].values)


def test_collapsed_states_keep_their_order_and_warn(workload_hmm, small_data):
    truth = dict(TRUTH)
    truth["B"] = TRUTH["B"].copy()
    truth["B"][2] = truth["B"][1]  # states 1 and 2 share one emission law
    clean = noisy_draws(truth, 2, 60, seed=4, concentration=2000)
    fit = crafted_fit(workload_hmm, small_data, clean)
    with pytest.warns(RelabelWarning, match=r"collapsed .* not aligned .* fewer states"):
        relabelled = relabel(fit)
    record = relabelled.attrs["relabel"]
    assert record["collapsed_groups"] == [[1, 2]]
    labelling = find_permutations(fit)
    members = labelling.perms[..., [1, 2]]
    assert (np.diff(members, axis=-1) > 0).all()  # original order inside the group


def test_algorithms_directly():
    rng = np.random.default_rng(0)
    truth = rng.dirichlet(np.ones(3) * 0.3, size=300)  # (M, K), confident allocations
    planted = np.stack([rng.permutation(3) for _ in range(50)])
    probs = np.stack([truth[:, p] for p in planted])  # probs_n(t, j) = truth(t, p_n[j])
    perms, sweeps = stephens(probs)
    assert_recovers(planted[:, None], perms[:, None])
    assert sweeps <= 5
    allocations = probs.argmax(-1)
    perms_ecr, _ = ecr(allocations, 3, allocations[0])
    assert_recovers(planted[:, None], perms_ecr[:, None])
    assert agreement(perms, perms_ecr) == 1.0
    flipped = perms_ecr.copy()
    flipped[:10] = flipped[:10][:, [1, 0, 2]]
    assert agreement(perms, flipped) == pytest.approx(0.8)
    grouped = canonical_within_groups(flipped, [(0, 1)])
    assert (grouped[:, 0] < grouped[:, 1]).all()


def test_svi_restarts_are_aligned_to_the_kept_point(workload_hmm, small_data):
    b = TRUTH["B"]
    restarts = {
        "pi": [TRUTH["pi"].tolist()] * 3,
        "A": [TRUTH["A"].tolist()] * 3,
        "B": [b.tolist(), b[[2, 0, 1]].tolist(), b[[1, 0, 2]].tolist()],
    }
    fit = Fit.from_params(
        workload_hmm, small_data, tensors(TRUTH), method="svi", attrs={"restart_params": restarts}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        relabelled = relabel(fit)
    aligned = np.asarray(relabelled.attrs["restart_params"]["B"])
    np.testing.assert_allclose(aligned, np.broadcast_to(b, aligned.shape))
    assert relabelled.attrs["restart_permutations"] == [[0, 1, 2], [1, 2, 0], [1, 0, 2]]
    json.dumps(relabelled.attrs["relabel"])


def test_bad_arguments(workload_hmm, small_data):
    fit = planted_fit(workload_hmm, small_data, identity(3, (1, 2)))
    with pytest.raises(ValueError, match="method"):
        relabel(fit, method="sort")
    with pytest.raises(TypeError, match="fit"):
        relabel("fit")
    with pytest.raises(TypeError, match="fit"):
        diagnose(object())


def test_methods_disagreeing_on_weakly_separated_states_warn(workload_hmm):
    close = {name: value.copy() for name, value in TRUTH.items()}
    close["B"] = 0.5 * TRUTH["B"] + 0.5 * TRUTH["B"].mean(0)  # closest pair H2 = 0.06
    data, _ = simulate(workload_hmm, tensors(close), [60], seed=0)
    planted = identity(3, (2, 100))
    planted[1], planted[1, 50:] = [1, 2, 0], [2, 1, 0]
    draws = noisy_draws(close, 2, 100, seed=1, concentration=15)
    fit = crafted_fit(workload_hmm, data, permute_params(workload_hmm, draws, planted))
    with pytest.warns(RelabelWarning, match="agree on only"):
        relabelled = relabel(fit)
    assert relabelled.attrs["relabel"]["agreement"] < 0.95
    flag = diagnose(fit, deep=False).flag("labels_not_identifiable")
    assert flag is not None and flag.measured["agreement"] < 0.95


def test_posterior_predictive_state_paths_are_dropped(workload_hmm, small_data):
    fit = planted_fit(workload_hmm, small_data, identity(3, (2, 20)))
    with pytest.warns(MixedLabelsWarning, match=r"hmm_pyro\.relabel"):  # crafted: unknown
        fit.posterior_predictive(num_samples=2, seed=0)
    assert "posterior_predictive" in fit.idata.groups()
    relabelled = relabel(fit)
    assert "posterior_predictive" not in relabelled.idata.groups()
    assert "posterior_predictive" in fit.idata.groups()  # the input is left alone


def test_exactly_five_percent_disagreement_is_still_identifiable():
    perms = identity(3, (1, 40))
    assert Labelling(perms, "stephens", 1, [], 38 / 40, None).identifiable  # 2 of 40 differ
    assert not Labelling(perms, "stephens", 1, [], 37 / 40, None).identifiable
