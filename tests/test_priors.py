"""``Prior``: resolution to tensors, description, validation, and the HMM's prior density."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import stats

import hmm_pyro as hp
from hmm_pyro.priors import describe_prior

FIELDS = [field.name for field in dataclasses.fields(hp.Prior)]
POSITIVE = [
    name
    for name in FIELDS
    if name not in ("stickiness", "mu_loc", "angle_loc", "angle_concentration")
]
F64 = torch.float64


# ---------------------------------------------------------------------- resolution
def test_defaults():
    prior = hp.Prior()
    assert torch.equal(prior.resolve_initial(3), torch.ones(3, dtype=F64))
    assert torch.equal(prior.resolve_transitions(3), torch.ones(3, 3, dtype=F64))
    assert prior.to_dict() == {
        "pi": 1.0,
        "A": 1.0,
        "B": 1.0,
        "stickiness": 0.0,
        "mu_loc": 0.0,
        "mu_scale": 10.0,
        "variance_shape": 2.0,
        "variance_scale": 1.0,
        "rate_shape": 1.0,
        "rate_rate": 0.1,
        "concentration_shape": 1.0,
        "concentration_rate": 0.1,
        "angle_loc": 0.0,
        "angle_concentration": 0.0,
        "kappa_shape": 1.0,
        "kappa_rate": 0.1,
        "lkj_concentration": 1.0,
        "dispersion_shape": 2.0,
        "dispersion_rate": 0.1,
        "df_shape": 2.0,
        "df_rate": 0.1,
    }


def test_initial_concentration_shapes():
    assert hp.Prior(pi=2.5).resolve_initial(3).tolist() == [2.5, 2.5, 2.5]
    assert hp.Prior(pi=[1.0, 2.0, 3.0]).resolve_initial(3).tolist() == [1.0, 2.0, 3.0]
    assert hp.Prior(pi=torch.tensor([1.0, 2.0])).resolve_initial(2, torch.float32).dtype == (
        torch.float32
    )
    with pytest.raises(ValueError, match="pi"):
        hp.Prior(pi=[1.0, 2.0]).resolve_initial(3)
    with pytest.raises(ValueError, match="pi"):
        hp.Prior(pi=np.ones((3, 3))).resolve_initial(3)


def test_transition_concentration_scalar_and_matrix():
    assert torch.equal(hp.Prior(A=2.0).resolve_transitions(2), torch.full((2, 2), 2.0, dtype=F64))
    matrix = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    assert np.array_equal(hp.Prior(A=matrix).resolve_transitions(3).numpy(), matrix)


def test_transition_concentration_vector_is_one_value_per_row():
    """Documented: ``A`` of shape ``(K,)`` gives one value per row, ``A[k] ~ Dir(a_k 1)``."""
    resolved = hp.Prior(A=[1.0, 2.0, 3.0]).resolve_transitions(3).numpy()
    expected = np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]])
    assert np.array_equal(resolved, expected)


@pytest.mark.parametrize("bad", [[1.0, 2.0], np.ones((2, 3)), np.ones((3, 3, 3))])
def test_transition_concentration_wrong_shape(bad):
    with pytest.raises(ValueError, match=r"^A: "):
        hp.Prior(A=bad).resolve_transitions(3)


def test_stickiness_lands_on_the_diagonal():
    sticky = hp.Prior(A=0.5, stickiness=10.0).resolve_transitions(3).numpy()
    assert np.array_equal(sticky, np.full((3, 3), 0.5) + 10.0 * np.eye(3))
    per_state = hp.Prior(A=np.ones((3, 3)), stickiness=[0.0, 1.0, 5.0]).resolve_transitions(3)
    assert np.array_equal(per_state.numpy(), np.ones((3, 3)) + np.diag([0.0, 1.0, 5.0]))
    with pytest.raises(ValueError, match="stickiness"):
        hp.Prior(stickiness=[1.0, 2.0]).resolve_transitions(3)
    with pytest.raises(ValueError, match="stickiness"):
        hp.Prior(stickiness=np.ones((3, 3))).resolve_transitions(3)


def test_emission_concentration_shapes():
    prior = hp.Prior(B=[1.0, 2.0, 3.0, 4.0])  # (V,): shared by every state
    assert np.array_equal(
        prior.resolve_emission("B", 2, 4).numpy(), np.tile([1.0, 2.0, 3.0, 4.0], (2, 1))
    )
    per_state = hp.Prior(B=[1.0, 5.0])  # (K,) with K != V: one value per state
    assert np.array_equal(per_state.resolve_emission("B", 2, 4).numpy(), [[1.0] * 4, [5.0] * 4])
    full = np.arange(1.0, 9.0).reshape(2, 4)
    assert np.array_equal(hp.Prior(B=full).resolve_emission("B", 2, 4).numpy(), full)
    assert np.array_equal(hp.Prior(B=3.0).resolve_emission("B", 2, 4).numpy(), np.full((2, 4), 3))
    with pytest.raises(ValueError, match=r"^B: "):
        hp.Prior(B=[1.0, 2.0, 3.0]).resolve_emission("B", 2, 4)
    with pytest.raises(ValueError, match=r"^B: "):
        hp.Prior(B=np.ones((4, 2))).resolve_emission("B", 2, 4)


@pytest.mark.parametrize("name", ["B", "mu_loc", "mu_scale", "rate_shape"])
def test_one_dimensional_value_is_ambiguous_when_K_equals_the_width(name):
    with pytest.raises(ValueError, match=f"^{name}: .*ambiguous"):
        hp.Prior(**{name: [1.0, 2.0, 3.0]}).resolve_emission(name, 3, 3)
    # a full matrix or a scalar is fine
    assert hp.Prior(**{name: np.ones((3, 3))}).resolve_emission(name, 3, 3).shape == (3, 3)


def test_ambiguity_is_caught_when_the_hmm_is_built():
    with pytest.raises(ValueError, match=r"^B: .*ambiguous"):
        hp.HMM(3, hp.Categorical(num_symbols=3), prior=hp.Prior(B=[1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"^mu_loc: .*ambiguous"):
        hp.HMM(2, hp.Gaussian(dim=2), prior=hp.Prior(mu_loc=[0.0, 1.0]))
    # univariate: width 1, so (K,) is unambiguously one value per state
    hmm = hp.HMM(2, hp.Gaussian(), prior=hp.Prior(mu_loc=[-5.0, 5.0]))
    assert hmm.prior_distributions()["mu"].base_dist.loc.tolist() == [-5.0, 5.0]


def test_gaussian_hyperparameters_per_state_and_dimension():
    loc = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    prior = hp.Prior(mu_loc=loc, mu_scale=[1.0, 2.0])  # (K, D) and (D,) with K=3, D=2
    assert np.array_equal(prior.resolve_emission("mu_loc", 3, 2).numpy(), loc)
    assert np.array_equal(prior.resolve_emission("mu_scale", 3, 2).numpy(), [[1.0, 2.0]] * 3)
    by_state = hp.Prior(variance_shape=[2.0, 3.0, 4.0]).resolve_emission("variance_shape", 3, 2)
    assert np.array_equal(by_state.numpy(), [[2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])


def test_resolve_emission_rejects_non_emission_names():
    for name in ("pi", "A", "stickiness", "nonsense"):
        with pytest.raises(ValueError, match="name"):
            hp.Prior().resolve_emission(name, 2, 2)


def test_wrong_shape_fails_when_the_hmm_is_built():
    with pytest.raises(ValueError, match=r"^pi: "):
        hp.HMM(3, hp.Poisson(), prior=hp.Prior(pi=[1.0, 1.0]))
    with pytest.raises(ValueError, match=r"^rate_rate: "):
        hp.HMM(3, hp.Poisson(), prior=hp.Prior(rate_rate=[1.0, 1.0]))
    with pytest.raises(ValueError, match=r"^variance_scale: "):
        hp.HMM(2, hp.Gaussian(dim=3), prior=hp.Prior(variance_scale=np.ones((3, 2))))


# ---------------------------------------------------------------------- description
def test_describe_prior():
    assert describe_prior(hp.Prior()) == "defaults"
    assert describe_prior(hp.Prior(B=100.0, stickiness=5.0)) == "B=100, stickiness=5"
    assert describe_prior(hp.Prior(B=[[1.0, 2.0]])) == "B=[[1.0, 2.0]]"


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("bad", [float("inf"), float("nan"), [1.0, float("nan")], -float("inf")])
def test_non_finite_values_are_rejected(name, bad):
    with pytest.raises(ValueError, match=f"^{name}: .*finite"):
        hp.Prior(**{name: bad})


@pytest.mark.parametrize("name", POSITIVE)
@pytest.mark.parametrize("bad", [0.0, -1.0, [1.0, 0.0], [[1.0, -2.0]]])
def test_positive_fields_reject_zero_and_negative(name, bad):
    with pytest.raises(ValueError, match=f"^{name}: expected values > 0"):
        hp.Prior(**{name: bad})


def test_angle_prior_fields():
    hp.Prior(angle_loc=[-4.0, 0.0, 7.0], angle_concentration=0.0)
    with pytest.raises(ValueError, match=r"^angle_concentration: expected values >= 0"):
        hp.Prior(angle_concentration=-0.1)


def test_stickiness_may_be_zero_but_not_negative():
    hp.Prior(stickiness=0.0)
    hp.Prior(stickiness=[0.0, 2.0])
    with pytest.raises(ValueError, match=r"^stickiness: expected values >= 0"):
        hp.Prior(stickiness=-0.1)


def test_mu_loc_may_be_any_real():
    prior = hp.Prior(mu_loc=[-100.0, 0.0, 3.0])
    assert prior.resolve_emission("mu_loc", 3, 1)[:, 0].tolist() == [-100.0, 0.0, 3.0]


@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("bad", [True, "one", [1.0, "x"], {"a": 1}, [[1.0], [1.0, 2.0]]])
def test_non_numeric_values_are_type_errors(name, bad):
    with pytest.raises(TypeError, match=f"^{name}: "):
        hp.Prior(**{name: bad})


def test_replace_and_to_dict_round_trip():
    prior = hp.Prior(A=np.eye(2) + 1, stickiness=[1.0, 2.0], mu_loc=torch.tensor([0.5, -0.5]))
    changed = prior.replace(rate_rate=3.0)
    assert changed.to_dict()["rate_rate"] == 3.0 and prior.to_dict()["rate_rate"] == 0.1
    rebuilt = hp.Prior(**prior.to_dict())
    assert rebuilt.to_dict() == prior.to_dict()
    assert prior.to_dict()["A"] == [[2.0, 1.0], [1.0, 2.0]]
    with pytest.raises(dataclasses.FrozenInstanceError):
        prior.pi = 3.0


# ---------------------------------------------------------------------- prior density
def _categorical_hand(params, prior_pi, prior_A, prior_B):
    total = stats.dirichlet.logpdf(params["pi"].numpy(), prior_pi)
    for k in range(prior_A.shape[0]):
        total += stats.dirichlet.logpdf(params["A"][k].numpy(), prior_A[k])
        total += stats.dirichlet.logpdf(params["B"][k].numpy(), prior_B[k])
    return total


def test_log_prior_categorical_matches_scipy(make_hmm):
    # K = 2 states, V = 3 symbols: B given as (V,) is shared by both states
    prior = hp.Prior(pi=[1.0, 2.5], A=[[1.0, 2.0]] * 2, B=[0.7, 1.3, 2.0], stickiness=4.0)
    hmm, params = make_hmm("categorical", num_states=2, prior=prior)
    conc_A = np.array([[1.0, 2.0]] * 2) + 4.0 * np.eye(2)
    conc_B = np.tile([0.7, 1.3, 2.0], (2, 1))
    expected = _categorical_hand(params, [1.0, 2.5], conc_A, conc_B)
    assert abs(hmm.log_prior(params).item() - expected) < 1e-9
    terms = hmm.log_prior_terms(params)
    assert set(terms) == {"pi", "A", "B"}
    assert abs(terms["pi"].item() - stats.dirichlet.logpdf(params["pi"].numpy(), [1, 2.5])) < 1e-9


@pytest.mark.parametrize("family", ["gaussian", "gaussian2"])
def test_log_prior_gaussian_matches_scipy(make_hmm, family):
    # per-state hyperparameters: (K,) univariate, (K, D) for D = 2 (a (K,) value is ambiguous)
    loc, shape = np.array([-1.0, 2.0]), np.array([2.5, 4.0])
    if family == "gaussian2":
        loc, shape = np.stack([loc, loc + 1], -1), np.stack([shape, shape * 2], -1)
    prior = hp.Prior(mu_loc=loc, mu_scale=3.0, variance_shape=shape, variance_scale=1.5)
    hmm, params = make_hmm(family, num_states=2, prior=prior)
    mu, sigma = params["mu"].numpy(), params["sigma"].numpy()
    expected = stats.dirichlet.logpdf(params["pi"].numpy(), [1.0, 1.0])
    expected += sum(stats.dirichlet.logpdf(params["A"][k].numpy(), [1.0, 1.0]) for k in range(2))
    expected += stats.norm.logpdf(mu, loc, 3.0).sum()
    # sigma = sqrt(v), v ~ InverseGamma(a, b): p(sigma) = p_v(sigma**2) * |d v / d sigma| = 2 sigma
    expected += (stats.invgamma.logpdf(sigma**2, shape, scale=1.5) + np.log(2 * sigma)).sum()
    assert abs(hmm.log_prior(params).item() - expected) < 1e-9


@pytest.mark.parametrize("family", ["poisson", "poisson2"])
def test_log_prior_poisson_matches_scipy(make_hmm, family):
    prior = hp.Prior(pi=2.0, A=np.array([[1.0, 2.0], [3.0, 4.0]]), rate_shape=2.0, rate_rate=0.5)
    hmm, params = make_hmm(family, num_states=2, prior=prior)
    expected = stats.dirichlet.logpdf(params["pi"].numpy(), [2.0, 2.0])
    expected += stats.dirichlet.logpdf(params["A"][0].numpy(), [1.0, 2.0])
    expected += stats.dirichlet.logpdf(params["A"][1].numpy(), [3.0, 4.0])
    expected += stats.gamma.logpdf(params["rate"].numpy(), 2.0, scale=1 / 0.5).sum()
    assert abs(hmm.log_prior(params).item() - expected) < 1e-9


def test_log_prior_over_draws_equals_loop(make_hmm):
    hmm, params = make_hmm("gaussian2", num_states=3, batch=(4,))
    batched = hmm.log_prior(params)
    assert batched.shape == (4,)
    for s in range(4):
        single = hmm.log_prior({name: value[s] for name, value in params.items()})
        assert abs(batched[s].item() - single.item()) < 1e-12


def test_log_prior_validates_params(make_hmm):
    hmm, params = make_hmm("poisson")
    params["rate"] = -params["rate"]
    with pytest.raises(ValueError, match=r"params\['rate'\]"):
        hmm.log_prior(params)


# ---------------------------------------------------------------------- prior sampling
NUM_PRIOR_DRAWS = 40_000


def test_sample_prior_moments():
    """Prior draws have the analytic means (5 standard errors, from the analytic variances)."""
    prior = hp.Prior(
        pi=[1.0, 2.0, 3.0], A=1.0, stickiness=3.0, variance_shape=4.0, variance_scale=6.0
    )
    hmm = hp.HMM(3, hp.Gaussian(), prior=prior)
    draws = hmm.sample_prior(num_samples=NUM_PRIOR_DRAWS, seed=0)
    n = NUM_PRIOR_DRAWS

    def check(samples, mean, var):
        error = np.abs(samples.mean(0).numpy() - mean)
        assert np.all(error < 5 * np.sqrt(var / n)), (samples.mean(0), mean)

    alpha = np.array([1.0, 2.0, 3.0])
    total = alpha.sum()
    check(draws["pi"], alpha / total, alpha * (total - alpha) / (total**2 * (total + 1)))
    row = np.array([4.0, 1.0, 1.0])  # sticky row 0: Dir(1 + 3, 1, 1)
    check(draws["A"][:, 0], row / 6.0, row * (6.0 - row) / (36.0 * 7.0))
    check(draws["mu"], np.zeros(3), np.full(3, 100.0))
    # sigma**2 ~ InverseGamma(4, 6): mean 2, variance 36 / (9 * 2) = 2
    check(draws["sigma"] ** 2, np.full(3, 2.0), np.full(3, 2.0))


def test_sample_prior_shapes_and_seed():
    hmm = hp.HMM(2, hp.Categorical(num_symbols=3))
    one = hmm.sample_prior(seed=3)
    assert {name: tuple(value.shape) for name, value in one.items()} == hmm.param_shapes()
    assert all(value.dtype == F64 for value in one.values())
    many = hmm.sample_prior(num_samples=5, seed=3)
    assert many["B"].shape == (5, 2, 3)
    again = hmm.sample_prior(num_samples=5, seed=3)
    assert all(torch.equal(many[name], again[name]) for name in many)
    other = hmm.sample_prior(num_samples=5, seed=4)
    assert not torch.equal(many["B"], other["B"])
    hmm.validate_params(many)
    with pytest.raises(ValueError, match="num_samples"):
        hmm.sample_prior(num_samples=0)
    with pytest.raises(ValueError, match="seed"):
        hmm.sample_prior(seed=-1)


def test_sample_prior_does_not_touch_the_global_torch_rng():
    hmm = hp.HMM(2, hp.Poisson())
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    hmm.sample_prior(num_samples=3, seed=1)
    assert torch.equal(torch.rand(3), expected)
