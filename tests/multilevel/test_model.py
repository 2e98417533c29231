"""``MultilevelHMM``: the likelihood per subject, the non-centred transform, the potential,
simulation and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pyro.infer.mcmc.util import initialize_model, potential_grad

import hmm_pyro as hp
from hmm_pyro.inference.potential import SITE, Potential

SUBJECTS = ["ann", "bob", "ann", "cy", "bob"]
"""Five sequences of three subjects, interleaved (the likelihood must follow the labels)."""
LENGTHS = [7, 5, 6, 4, 8]


def models() -> list[hp.MultilevelHMM]:
    return [
        hp.MultilevelHMM(3, hp.Gaussian(), SUBJECTS),
        hp.MultilevelHMM(2, hp.Categorical(4), SUBJECTS),
        hp.MultilevelHMM(2, hp.Gaussian(dim=2), SUBJECTS, random_effects=["mu"]),
        hp.MultilevelHMM(2, hp.Poisson(), SUBJECTS),  # transitions only
    ]


def plain_params(hmm: hp.MultilevelHMM, params: dict, subject: int) -> dict:
    """The plain HMM's parameters of one subject, from the numpy transform written out."""
    out = {"pi": params["pi"], **{name: params[name] for name in hmm.emission.param_names}}
    out["A"] = params["A"]
    for name in hmm.random_effects:
        tau = params[f"tau_{name}"].numpy()
        z = params[f"z_{name}"][subject].numpy()
        value = params[name].numpy()
        if name in ("A", "B"):  # probability rows: softmax(log row + tau_row * z)
            logits = np.log(value) + tau[:, None] * z
            rows = np.exp(logits - logits.max(-1, keepdims=True))
            out[name] = torch.tensor(rows / rows.sum(-1, keepdims=True))
        else:  # locations
            out[name] = torch.tensor(value + tau * z)
    return out


@pytest.mark.parametrize("index", range(4))
def test_log_likelihood_is_the_sum_of_each_subjects_plain_hmm(index):
    """Each sequence scores under its own subject's parameters, for one draw and a batch; the
    smoothed marginals and Viterbi paths are the plain HMM's too."""
    hmm = models()[index]
    params = hmm.sample_prior(seed=index)
    data, _ = hp.simulate(hmm, params, LENGTHS, seed=index + 10)
    plain = hp.HMM(hmm.num_states, hmm.emission)
    ours = hmm.log_likelihood(params, data)
    gamma = hmm.posterior_marginals(params, data)
    paths = hmm.viterbi(params, data)[0]
    for n, label in enumerate(SUBJECTS):
        own = plain_params(hmm, params, hmm.subject_names.index(label))
        one = data.select([n])
        expected = plain.log_likelihood(own, one)[0]
        assert abs(float(ours[n] - expected)) < 1e-10
        steps = LENGTHS[n]
        torch.testing.assert_close(gamma[n, :steps], plain.posterior_marginals(own, one)[0])
        assert torch.equal(paths[n, :steps], plain.viterbi(own, one)[0][0])
    draws = hmm.sample_prior(3, seed=index + 20)
    batch = hmm.log_likelihood(draws, data)
    for s in range(3):
        single = {name: value[s] for name, value in draws.items()}
        torch.testing.assert_close(batch[s], hmm.log_likelihood(single, data), rtol=0, atol=1e-10)


def test_subject_parameters_are_the_non_centred_transform():
    """``softmax(log A + tau z)`` row by row and ``mu + tau z``; at ``z = 0`` every subject is
    the group; a constant added to a row of ``z`` changes nothing (the softmax ignores it)."""
    hmm = hp.MultilevelHMM(3, hp.Gaussian(), SUBJECTS)
    params = hmm.sample_prior(seed=5)
    subject = hmm.subject_params(params)
    for s in range(hmm.num_subjects):
        expected = plain_params(hmm, params, s)
        torch.testing.assert_close(subject["A"][s], expected["A"], rtol=0, atol=1e-14)
        torch.testing.assert_close(subject["mu"][s], expected["mu"], rtol=0, atol=1e-14)
    zero = {**params, "z_A": torch.zeros_like(params["z_A"]), "z_mu": 0 * params["z_mu"]}
    at_zero = hmm.subject_params(zero)
    torch.testing.assert_close(at_zero["A"], params["A"].expand(3, 3, 3), rtol=0, atol=1e-14)
    torch.testing.assert_close(at_zero["mu"], params["mu"].expand(3, 3), rtol=0, atol=0)
    shifted = {**params, "z_A": params["z_A"] + torch.tensor([1.0, -2.0, 5.0])[:, None]}
    torch.testing.assert_close(hmm.subject_params(shifted)["A"], subject["A"], rtol=0, atol=1e-14)
    derived = hmm.derived_params(params)
    assert set(derived) == {"A_subject", "mu_subject"}
    assert hmm.derived_dims()["A_subject"] == ("subject", "state", "state_to")


@pytest.mark.parametrize("index", [0, 1])
def test_potential_equals_the_potential_pyro_builds(index):
    """Value and gradient (with and without the Jacobian) against ``initialize_model`` on
    :meth:`MultilevelHMM.model` (Pyro's priors, half-normal and normal sites, transforms)."""
    hmm = models()[index]
    data, _ = hp.simulate(hmm, hmm.sample_prior(seed=1), LENGTHS, seed=2)
    ours = Potential(hmm, data)
    assert ours.route == "torch"
    _, pyro_potential, _, _ = initialize_model(hmm.model, model_args=(ours.data,))
    for seed in range(2):
        params = hmm.sample_prior(seed=10 + seed)
        flat = ours.unconstrain(params)
        grads, value = potential_grad(ours, flat)
        expected_grads, expected = potential_grad(pyro_potential, ours.split(flat[SITE]))
        assert abs(float(value) - float(expected)) < 1e-9
        assert torch.allclose(grads[SITE], ours.join(expected_grads), atol=1e-8, rtol=0)
        back = ours.constrain(flat)
        for name in params:
            torch.testing.assert_close(back[name], params[name], rtol=0, atol=1e-10)
    value, _ = ours.value_and_gradient(flat[SITE], jacobian=False)
    objective = hmm.log_prior(params) + hmm.log_likelihood(params, data).sum()
    assert abs(float(value) - float(objective)) < 1e-9
    # where a line search or a divergent trajectory lands: -inf and a zero gradient, no error
    for point in (torch.full_like(flat[SITE], float("nan")), 1e6 * flat[SITE]):
        value, gradient = ours.value_and_gradient(point)
        assert value == -np.inf and not gradient.any()


def test_simulation_draws_each_subject_from_its_own_parameters():
    """Subject 0 stays put and emits around +20; subject 1 alternates and emits around -20:
    the empirical transition frequencies and means of 4000 steps per subject follow each
    subject's own parameters, not the group's (which would give 50% switches, means 0)."""
    hmm = hp.MultilevelHMM(2, hp.Gaussian(), [0, 1])
    params = {
        "pi": torch.tensor([0.5, 0.5]),
        "A": torch.full((2, 2), 0.5),
        "mu": torch.zeros(2),
        "sigma": torch.ones(2),
        "tau_A": torch.full((2,), 3.0),
        "z_A": torch.tensor([[[1.0, -1.0], [-1.0, 1.0]], [[-1.0, 1.0], [1.0, -1.0]]]),
        "tau_mu": torch.full((2,), 10.0),
        "z_mu": torch.tensor([[2.0, 2.0], [-2.0, -2.0]]),
    }
    data, states = hp.simulate(hmm, params, [4000, 4000], seed=0)
    switches = (states[:, 1:] != states[:, :-1]).double().mean(1)
    expected = 1.0 / (1.0 + np.exp(6.0))  # softmax of (+3, -3): the chance of a move
    assert abs(float(switches[0]) - expected) < 0.01
    assert abs(float(switches[1]) - (1.0 - expected)) < 0.01
    means = data.values[..., 0].mean(1)
    assert abs(float(means[0]) - 20.0) < 0.1 and abs(float(means[1]) + 20.0) < 0.1


def test_config_round_trip_and_copies():
    hmm = hp.MultilevelHMM(
        2, hp.Categorical(3), SUBJECTS, ["B"], subject_prior=hp.SubjectPrior(logit_scale=0.5)
    )
    back = hp.HMM.from_config(hmm.to_config())
    assert isinstance(back, hp.MultilevelHMM)
    assert back.to_config() == hmm.to_config()
    assert back.subject_names == ("ann", "bob", "cy")
    assert back.subject_index.tolist() == [0, 1, 0, 2, 1]
    twice = hmm.repeated(2)
    assert twice.subject_index.tolist() == [0, 1, 0, 2, 1] * 2 and twice.num_subjects == 3
    assert hmm.param_shapes() == {
        "pi": (2,),
        "A": (2, 2),
        "B": (2, 3),
        "tau_B": (2,),
        "z_B": (3, 2, 3),
    }
    # group: 1 + 2 + 4; tau_B: 2; z_B: 3 subjects x 2 rows x 2 free log-odds
    assert hmm.num_free_params() == 7 + 2 + 12


def test_bad_input_is_refused_in_one_line():
    gaussian = hp.Gaussian()
    with pytest.raises(TypeError, match="subjects: expected a number of subjects"):
        hp.MultilevelHMM(2, gaussian, "abc")
    with pytest.raises(ValueError, match="subjects: expected an int >= 1"):
        hp.MultilevelHMM(2, gaussian, 0)
    with pytest.raises(TypeError, match=r"subjects\[1\]: expected a subject label"):
        hp.MultilevelHMM(2, gaussian, ["a", 1.5])
    with pytest.raises(ValueError, match="random_effects: 'rate' cannot vary"):
        hp.MultilevelHMM(2, hp.Poisson(), 3, ["rate"])
    with pytest.raises(ValueError, match="random_effects: expected distinct names"):
        hp.MultilevelHMM(2, gaussian, 3, [])
    with pytest.raises(ValueError, match="location_scale: expected a number finite and > 0"):
        hp.SubjectPrior(location_scale=0.0)
    hmm = hp.MultilevelHMM(2, gaussian, 3)
    params = hmm.sample_prior(seed=0)
    with pytest.raises(ValueError, match=r"data: .* subjects of 3 sequences, got 2"):
        hmm.log_likelihood(params, [np.zeros(4), np.ones(3)])
    bad = {**params, "tau_A": -params["tau_A"]}
    with pytest.raises(ValueError, match=r"params\['tau_A'\]: expected scales > 0"):
        hmm.log_likelihood(bad, [np.zeros(4)] * 3)
    with pytest.raises(ValueError, match=r"params\['z_mu'\]: expected trailing shape \(3, 2\)"):
        hmm.log_likelihood({**params, "z_mu": torch.zeros(2, 2)}, [np.zeros(4)] * 3)
    with pytest.raises(ValueError, match=r"marginalize: .* use marginalize='forward'"):
        hmm.model([np.zeros(4)] * 3, marginalize="enumerate")
    with pytest.raises(ValueError, match="each subject has its own parameters; EM"):
        hp.fit_em(hmm, [np.zeros(4)] * 3)
