"""``simulate``: reproducibility, lengths, and the statistics of simulated paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hmm_pyro as hp
from tests.helpers import FAMILIES


def _equal(a: hp.Sequences, b: hp.Sequences) -> bool:
    return torch.equal(a.lengths, b.lengths) and torch.equal(
        a.values.nan_to_num(-1.0), b.values.nan_to_num(-1.0)
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_draws_and_different_seeds_differ(make_hmm, family):
    hmm, params = make_hmm(family, num_states=3)
    data, states = hp.simulate(hmm, params, [30, 7, 12], seed=5)
    again, again_states = hp.simulate(hmm, params, [30, 7, 12], seed=5)
    assert _equal(data, again) and torch.equal(states, again_states)
    other, other_states = hp.simulate(hmm, params, [30, 7, 12], seed=6)
    assert not _equal(data, other)
    assert not torch.equal(states, other_states)


@pytest.mark.parametrize("family", FAMILIES)
def test_lengths_dimension_and_support_respected(make_hmm, family):
    hmm, params = make_hmm(family, num_states=3)
    lengths = [4, 1, 9, 9]
    data, states = hp.simulate(hmm, params, lengths, seed=0)
    assert data.lengths.tolist() == lengths
    assert data.dim == hmm.emission.dim and data.max_length == 9
    assert states.shape == (4, 9) and states.dtype == torch.int64
    valid = torch.arange(9) < torch.tensor(lengths)[:, None]
    assert torch.all(states[~valid] == -1)
    assert torch.all((states[valid] >= 0) & (states[valid] < 3))
    assert torch.equal(data.observed.all(-1), valid)  # no missing values inside sequences
    hmm.emission.validate_data(data)  # symbols / counts in the family's support
    assert torch.isfinite(hmm.log_likelihood(params, data)).all()


def test_int_length_gives_one_sequence(make_hmm):
    hmm, params = make_hmm("poisson")
    data, states = hp.simulate(hmm, params, 6, seed=1)
    assert data.lengths.tolist() == [6] and states.shape == (1, 6)
    data, states = hp.simulate(hmm, params, (np.int64(3), 2), seed=1)
    assert data.lengths.tolist() == [3, 2]


@pytest.mark.slow
def test_transition_frequencies_approach_A():
    A = torch.tensor([[0.8, 0.15, 0.05], [0.1, 0.6, 0.3], [0.25, 0.25, 0.5]], dtype=torch.float64)
    params = {
        "pi": torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64),
        "A": A,
        "B": torch.full((3, 2), 0.5, dtype=torch.float64),
    }
    hmm = hp.HMM(3, hp.Categorical(num_symbols=2))
    _, states = hp.simulate(hmm, params, 40_000, seed=2)
    path = states[0].numpy()
    counts = np.zeros((3, 3))
    np.add.at(counts, (path[:-1], path[1:]), 1)
    visits = counts.sum(1, keepdims=True)
    freq = counts / visits
    # given the visits to state i, the next states are multinomial(A[i]): SE sqrt(p (1 - p) / n_i)
    standard_error = np.sqrt(A.numpy() * (1 - A.numpy()) / visits)
    assert np.all(np.abs(freq - A.numpy()) < 5 * standard_error), freq


def test_first_state_frequencies_approach_pi_and_emissions_follow_B():
    pi = torch.tensor([0.1, 0.6, 0.3], dtype=torch.float64)
    B = torch.tensor([[0.9, 0.05, 0.05], [0.2, 0.5, 0.3], [0.0, 0.1, 0.9]], dtype=torch.float64)
    params = {"pi": pi, "A": torch.full((3, 3), 1 / 3, dtype=torch.float64), "B": B}
    hmm = hp.HMM(3, hp.Categorical(num_symbols=3))
    num = 20_000
    data, states = hp.simulate(hmm, params, [2] * num, seed=3)
    first = np.bincount(states[:, 0].numpy(), minlength=3) / num
    p = pi.numpy()
    assert np.all(np.abs(first - p) < 5 * np.sqrt(p * (1 - p) / num)), first
    symbols = data.values[..., 0].long().numpy().ravel()
    hidden = states.numpy().ravel()
    for k in range(3):
        emitted = symbols[hidden == k]
        freq = np.bincount(emitted, minlength=3) / len(emitted)
        probs = B[k].numpy()
        assert np.all(np.abs(freq - probs) <= 5 * np.sqrt(probs * (1 - probs) / len(emitted)))


def test_gaussian_observations_follow_their_state(make_hmm):
    hmm, params = make_hmm("gaussian2", num_states=2)
    data, states = hp.simulate(hmm, params, [5000, 5000], seed=4)
    values = data.values.numpy()
    for k in range(2):
        chosen = values[states.numpy() == k]
        mu, sigma = params["mu"][k].numpy(), params["sigma"][k].numpy()
        error = np.abs(chosen.mean(0) - mu)
        assert np.all(error < 5 * sigma / np.sqrt(len(chosen)))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"hmm": "hmm"}, TypeError, r"hmm: expected"),
        ({"lengths": []}, TypeError, r"lengths: expected an int or a non-empty list"),
        ({"lengths": "5"}, TypeError, r"lengths: expected"),
        ({"lengths": True}, TypeError, r"lengths: expected"),
        ({"lengths": 2.5}, TypeError, r"lengths: expected"),
        ({"lengths": 0}, ValueError, r"lengths\[0\]: expected an integer >= 1"),
        ({"lengths": [3, -1]}, ValueError, r"lengths\[1\]"),
        ({"lengths": [3, 2.0]}, TypeError, r"lengths\[1\]"),
        ({"seed": -1}, ValueError, r"seed"),
        ({"seed": 1.5}, TypeError, r"seed"),
    ],
)
def test_bad_arguments(make_hmm, kwargs, error, match):
    hmm, params = make_hmm("categorical")
    arguments = {"hmm": hmm, "params": params, "lengths": [3, 2], "seed": 0, **kwargs}
    with pytest.raises(error, match=match):
        hp.simulate(**arguments)


def test_bad_params(make_hmm):
    hmm, params = make_hmm("categorical", batch=(2,))
    with pytest.raises(ValueError, match="params: expected a single parameter set"):
        hp.simulate(hmm, params, [3], seed=0)
    single = {name: value[0] for name, value in params.items()}
    single["A"] = single["A"] * 2
    with pytest.raises(ValueError, match=r"params\['A'\]"):
        hp.simulate(hmm, single, [3], seed=0)
