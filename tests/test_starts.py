"""Starting points never have identical states, also under strong symmetric priors."""

import pytest
import torch

from hmm_pyro import (
    HMM,
    Categorical,
    Gaussian,
    Poisson,
    Prior,
    Sequences,
    fit_map,
    fit_nuts,
    simulate,
)
from hmm_pyro.learning import initial_params
from hmm_pyro.starts import MIN_START_SEPARATION, derive_seeds, min_separation, window_start


@pytest.mark.parametrize(
    "emission", [Categorical(5), Gaussian(), Gaussian(dim=3), Poisson()], ids=repr
)
@pytest.mark.parametrize("method", ["auto", "prior", "data"])
def test_starts_are_distinct_valid_and_reproducible(emission, method):
    hmm = HMM(4, emission)
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), [50, 30], seed=0)
    for seed in range(5):
        start = initial_params(hmm, data, method, seed=seed)
        hmm.validate_params(start)
        assert float(min_separation(hmm, start)) > MIN_START_SEPARATION
        again = initial_params(hmm, data, method, seed=seed)
        assert all(torch.equal(start[name], again[name]) for name in start)


def test_data_start_puts_gaussian_means_inside_the_data():
    hmm = HMM(3, Gaussian())
    params = {
        "pi": torch.ones(3) / 3,
        "A": torch.full((3, 3), 1 / 3),
        "mu": torch.tensor([100.0, 105.0, 110.0]),
        "sigma": torch.ones(3),
    }
    data, _ = simulate(hmm, params, [200], seed=0)
    start = initial_params(hmm, data, "data", seed=1)
    assert bool(((start["mu"] > 95) & (start["mu"] < 115)).all())


def test_identical_states_in_a_given_start_are_rejected():
    hmm = HMM(2, Categorical(3))
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), 20, seed=0)
    symmetric = {
        "pi": torch.tensor([0.5, 0.5]),
        "A": torch.full((2, 2), 0.5),
        "B": torch.full((2, 3), 1 / 3),
    }
    with pytest.raises(ValueError, match=r"init: .*identical states"):
        initial_params(hmm, data, symmetric)


def test_unknown_method_names_the_argument():
    hmm = HMM(2, Categorical(3))
    data, _ = simulate(hmm, hmm.sample_prior(seed=0), 20, seed=0)
    with pytest.raises(ValueError, match="init"):
        initial_params(hmm, data, "kmeans++")


def test_derived_seeds_are_distinct_and_stable():
    seeds = derive_seeds(5, 8)
    assert len(set(seeds)) == 8
    assert seeds == derive_seeds(5, 8)
    assert seeds != derive_seeds(6, 8)


# ---------------------------------------------------------------- data-driven categorical starts
def _iid_symbols(length: int, seed: int) -> Sequences:
    """The essay's data: i.i.d. uniform symbols (no structure for states to find)."""
    generator = torch.Generator().manual_seed(seed)
    return Sequences([torch.randint(0, 2, (length,), generator=generator).numpy()])


STRONG = Prior(B=100.0)
"""Dirichlet(100, 100) rows on 2 symbols: prior draws of three rows are within about 0.04 of
(0.5, 0.5) and rarely 1e-3 apart in squared Hellinger distance."""


@pytest.mark.parametrize("method", ["auto", "data"])
def test_a_strong_symmetric_prior_gets_distinct_data_starts(method):
    hmm = HMM(3, Categorical(2), prior=STRONG)
    data = _iid_symbols(300, 0)
    for seed in range(5):
        start = initial_params(hmm, data, method, seed=seed)
        hmm.validate_params(start)
        assert float(min_separation(hmm, start)) > MIN_START_SEPARATION
        assert float(start["B"].min()) >= 0.05  # interior: 10% of the uniform law mixed in


def test_map_and_nuts_fit_a_strong_symmetric_prior():
    hmm = HMM(3, Categorical(2), prior=STRONG)
    data = _iid_symbols(200, 1)
    fit = fit_map(hmm, data, restarts=2, steps=100, seed=0, progress=False)
    assert fit.posterior_mean()["B"].shape == (3, 2)
    chains = fit_nuts(
        hmm,
        data,
        chains=1,
        warmup=10,
        draws=5,
        seed=0,
        progress=False,
        relabel=False,
        max_tree_depth=4,
    )
    assert chains.draws()["B"].shape == (1, 5, 3, 2)


def test_a_start_that_cannot_separate_names_the_prior():
    hmm = HMM(3, Categorical(2), prior=Prior(B=1e6))
    data = _iid_symbols(100, 2)
    with pytest.raises(ValueError, match=r"emission prior \(Categorical: B 1e\+06\)") as error:
        initial_params(hmm, data, "prior", seed=0)
    assert "init='data'" in str(error.value) and "squared Hellinger" in str(error.value)
    with pytest.raises(ValueError, match=r"init: .*'em'.*emission prior \(Categorical: B 1e\+06\)"):
        initial_params(hmm, data, "em", seed=0)
    start = initial_params(hmm, data, "data", seed=0)  # the data start still works
    assert float(min_separation(hmm, start)) > MIN_START_SEPARATION


@pytest.mark.parametrize(
    "values",
    [
        [0.0, 1.0] * 30,  # every window has the same histogram
        [1.0] * 60,  # one symbol only
        [0.0, 1.0, float("nan"), 1.0, 1.0, float("nan")] * 10,  # missing values
    ],
    ids=["alternating", "constant", "missing"],
)
def test_window_starts_separate_states_on_degenerate_data(values):
    hmm = HMM(4, Categorical(2))
    data = Sequences([values])
    start = window_start(hmm, data, torch.Generator().manual_seed(0))
    assert set(start) == {"B"}
    hmm.validate_params({**hmm.sample_prior(seed=0), **start})
    assert float(min_separation(hmm, start)) > MIN_START_SEPARATION


def test_window_starts_find_the_regimes_of_separated_states():
    hmm = HMM(2, Categorical(3))
    truth = {
        "pi": torch.tensor([0.5, 0.5], dtype=torch.float64),
        "A": torch.tensor([[0.98, 0.02], [0.02, 0.98]], dtype=torch.float64),
        "B": torch.tensor([[0.9, 0.05, 0.05], [0.05, 0.05, 0.9]], dtype=torch.float64),
    }
    data, _ = simulate(hmm, truth, [400], seed=3)
    start = window_start(hmm, data, torch.Generator().manual_seed(1))
    rows = start["B"][torch.argsort(start["B"][:, 0], descending=True)]
    assert torch.allclose(rows, truth["B"], atol=0.15)
