"""``HMM``: the two Pyro models, an independent pyro.markov reference, batching and validation."""

from __future__ import annotations

import functools

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO
from pyro.ops.special import safe_log

import hmm_pyro as hp
from hmm_pyro import kernels
from hmm_pyro import model as model_module
from tests.helpers import FAMILIES
from tests.reference import brute_force

NAN = np.nan
LENGTHS = [5, 3, 4]


def empty_guide(data):
    """No latent sample sites: every parameter is conditioned, every state enumerated."""


def holed_data(hmm: hp.HMM, params: dict, seed: int = 0) -> hp.Sequences:
    """Simulated sequences of lengths 5, 3, 4 with whole and partial missing steps."""
    data, _ = hp.simulate(hmm, params, LENGTHS, seed=seed)
    pieces = [np.array(row, dtype=np.float64).reshape(len(row), -1) for row in data.to_list()]
    pieces[0][1] = NAN  # a fully missing step inside a sequence
    pieces[2][0] = NAN  # a missing first step
    if hmm.emission.dim > 1:
        pieces[0][3, 1] = NAN  # a partially missing step
        pieces[1][2, 0] = NAN  # partially missing last step
    else:
        pieces[1][2] = NAN  # a missing last step
    return hp.Sequences(pieces, dim=hmm.emission.dim)


def forward_log_joint(hmm, params, data):
    conditioned = poutine.condition(hmm.model, data=params)
    return poutine.trace(conditioned).get_trace(data).log_prob_sum()


def enumerate_loss(hmm, params, data, differentiable=False):
    model = poutine.condition(functools.partial(hmm.model, marginalize="enumerate"), data=params)
    elbo = TraceEnum_ELBO(max_plate_nesting=1)
    if differentiable:
        return elbo.differentiable_loss(model, empty_guide, data)
    return elbo.loss(model, empty_guide, data)


@pytest.fixture(params=FAMILIES)
def setup(request, make_hmm):
    hmm, params = make_hmm(request.param, num_states=3)
    return hmm, params, holed_data(hmm, params)


# ---------------------------------------------------------------------- the two models
def test_forward_and_enumerate_models_give_the_same_log_joint(setup):
    hmm, params, data = setup
    assert not data.complete and data.lengths.tolist() == LENGTHS
    forward = forward_log_joint(hmm, params, data).item()
    enumerated = -enumerate_loss(hmm, params, data)
    assert abs(forward - enumerated) < 1e-6


SIMPLEX_PARAMS = ("pi", "A", "B")


def test_forward_and_enumerate_models_give_the_same_gradients(setup):
    """Same gradients w.r.t. every parameter, along the simplex for ``pi``, ``A`` and ``B``.

    ``dist.Categorical(probs)`` in the enumerated model renormalises its probabilities while the
    forward model takes ``log`` of them as given, so the two ambient gradients of a probability
    row differ by a constant per row (the direction normal to the simplex, which no
    simplex-constrained sampler ever moves along). The tangential parts must agree.
    """
    hmm, params, data = setup
    leaves = {name: value.clone().requires_grad_(True) for name, value in params.items()}
    forward = -forward_log_joint(hmm, leaves, data)
    grads_forward = torch.autograd.grad(forward, list(leaves.values()))
    leaves_enum = {name: value.clone().requires_grad_(True) for name, value in params.items()}
    enumerated = enumerate_loss(hmm, leaves_enum, data, differentiable=True)
    grads_enum = torch.autograd.grad(enumerated, list(leaves_enum.values()))
    assert abs(forward.item() - enumerated.item()) < 1e-6
    for name, a, b in zip(leaves, grads_forward, grads_enum, strict=True):
        assert a.shape == params[name].shape
        assert torch.all(torch.isfinite(a)), name
        if name in SIMPLEX_PARAMS:
            gap = a - b  # constant along each row
            torch.testing.assert_close(
                gap, gap.mean(-1, keepdim=True).expand_as(gap), rtol=0, atol=1e-6, msg=name
            )
            a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def test_forward_gradient_along_the_simplex_matches_finite_differences(make_hmm):
    """A third check of the tangential gradient: move ``pi`` and ``A`` inside the simplex."""
    hmm, params = make_hmm("categorical", num_states=3)
    data = holed_data(hmm, params)
    leaves = {name: value.clone().requires_grad_(True) for name, value in params.items()}
    grads = torch.autograd.grad(forward_log_joint(hmm, leaves, data), list(leaves.values()))
    grads = dict(zip(leaves, grads, strict=True))
    eps = 1e-6
    for name, index in (("pi", (0,)), ("A", (1, 0)), ("B", (2, 1))):
        direction = torch.zeros_like(params[name])
        direction[index] = 1.0
        direction[(*index[:-1], 2 if index[-1] != 2 else 0)] = -1.0  # stays on the simplex
        plus = dict(params, **{name: params[name] + eps * direction})
        minus = dict(params, **{name: params[name] - eps * direction})
        numeric = (
            forward_log_joint(hmm, plus, data) - forward_log_joint(hmm, minus, data)
        ).item() / (2 * eps)
        analytic = (grads[name] * direction).sum().item()
        assert abs(numeric - analytic) < 1e-5 * max(1.0, abs(analytic)), name


def test_log_joint_is_log_prior_plus_log_likelihood(setup):
    hmm, params, data = setup
    forward = forward_log_joint(hmm, params, data).item()
    expected = hmm.log_prior(params).item() + hmm.log_likelihood(params, data).sum().item()
    assert abs(forward - expected) < 1e-9


def test_forward_model_sites(setup):
    hmm, params, data = setup
    trace = poutine.trace(poutine.condition(hmm.model, data=params)).get_trace(data)
    sites = [
        name
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not poutine.util.site_is_subsample(site)
    ]
    assert sites == [*hmm.param_names, "log_likelihood"]
    factor = trace.nodes["log_likelihood"]
    torch.testing.assert_close(
        factor["fn"].log_prob(factor["value"]),
        hmm.log_likelihood(params, data),
        rtol=0,
        atol=1e-12,
    )


def _observed(row):
    """``(coordinate, value)`` pairs of one step; missing coordinates are left out."""
    return [(d, float(row[d])) for d in range(len(row)) if not np.isnan(row[d])]


def reference_model(family: str, params: dict, sequence: np.ndarray) -> None:
    """Textbook pyro.markov HMM of ONE sequence, missing coordinates simply not observed."""
    pi, A = params["pi"], params["A"]
    z = None
    for t in pyro.markov(range(len(sequence))):
        probs = pi if z is None else A[z]
        z = pyro.sample(f"z_{t}", dist.Categorical(probs), infer={"enumerate": "parallel"})
        for d, value in _observed(sequence[t]):
            if family == "categorical":
                fn = dist.Categorical(params["B"][z])
                obs = torch.tensor(int(value))
            elif family.startswith("gaussian"):
                mu = params["mu"].reshape(len(pi), -1)
                sigma = params["sigma"].reshape(len(pi), -1)
                fn = dist.Normal(mu[z, d], sigma[z, d])
                obs = torch.tensor(value, dtype=torch.float64)
            else:
                rate = params["rate"].reshape(len(pi), -1)
                fn = dist.Poisson(rate[z, d])
                obs = torch.tensor(value, dtype=torch.float64)
            pyro.sample(f"y_{t}_{d}", fn, obs=obs)


@pytest.mark.parametrize("family", FAMILIES)
def test_independent_pyro_markov_reference(make_hmm, family):
    hmm, params = make_hmm(family, num_states=3)
    data = holed_data(hmm, params, seed=1)
    ours = hmm.log_likelihood(params, data)
    elbo = TraceEnum_ELBO(max_plate_nesting=0)
    for n in range(data.num_sequences):
        sequence = data.values[n, : int(data.lengths[n])].numpy()
        model = functools.partial(reference_model, family, params, sequence)
        reference = -elbo.loss(model, lambda: None)
        assert abs(ours[n].item() - reference) < 1e-9, n
    forward = forward_log_joint(hmm, params, data).item()
    assert abs(forward - hmm.log_prior(params).item() - ours.sum().item()) < 1e-9


def test_log_likelihood_matches_brute_force_over_paths(make_hmm):
    hmm, params = make_hmm("poisson2", num_states=3)
    data = holed_data(hmm, params, seed=2)
    ours = hmm.log_likelihood(params, data)
    _, _, table, _ = hmm.kernel_inputs(params, data)
    for n, length in enumerate(LENGTHS):
        ref = brute_force(params["pi"].log(), params["A"].log(), table[n, :length])
        assert abs(ours[n].item() - ref.log_likelihood) < 1e-9


def test_bad_marginalize():
    hmm = hp.HMM(2, hp.Poisson())
    with pytest.raises(ValueError, match="marginalize"):
        hmm.model([[1, 2]], marginalize="sample")


# ---------------------------------------------------------------------- batched draws
def _index(params, index):
    return {name: value[index] for name, value in params.items()}


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("family", ["categorical", "gaussian2"])
def test_batched_draws_equal_a_loop(make_hmm, monkeypatch, family, chunked):
    if chunked:  # force _map_draws to evaluate the draws chunk by chunk
        monkeypatch.setattr(model_module, "_CHUNK_ELEMENTS", 1)
    hmm, params = make_hmm(family, num_states=3, batch=(2, 3))
    data = holed_data(hmm, _index(params, (0, 0)))
    loglik = hmm.log_likelihood(params, data)
    marginals = hmm.posterior_marginals(params, data)
    result = hmm.forward_backward(params, data)
    paths, scores = hmm.viterbi(params, data)
    assert loglik.shape == (2, 3, 3)
    assert marginals.shape == (2, 3, 3, 5, 3)
    assert result.transitions.shape == (2, 3, 3, 3, 3)
    assert paths.shape == (2, 3, 3, 5) and scores.shape == (2, 3, 3)
    for i in range(2):
        for j in range(3):
            single = _index(params, (i, j))
            torch.testing.assert_close(
                loglik[i, j], hmm.log_likelihood(single, data), rtol=0, atol=1e-12
            )
            torch.testing.assert_close(
                marginals[i, j], hmm.posterior_marginals(single, data), rtol=0, atol=1e-12
            )
            one = hmm.forward_backward(single, data)
            torch.testing.assert_close(result.gamma[i, j], one.gamma, rtol=0, atol=1e-12)
            torch.testing.assert_close(
                result.transitions[i, j], one.transitions, rtol=0, atol=1e-12
            )
            one_path, one_score = hmm.viterbi(single, data)
            assert torch.equal(paths[i, j], one_path)
            torch.testing.assert_close(scores[i, j], one_score, rtol=0, atol=1e-12)


def test_draw_dimensions_broadcast_between_parameters(make_hmm):
    hmm, params = make_hmm("poisson", num_states=2, batch=(4,))
    shared = dict(params, pi=params["pi"][0])  # pi without a draw dimension
    data = hp.Sequences([[1, 0, 3], [2]])
    loglik = hmm.log_likelihood(shared, data)
    assert loglik.shape == (4, 2)
    for s in range(4):
        single = dict(_index(params, s), pi=params["pi"][0])
        torch.testing.assert_close(loglik[s], hmm.log_likelihood(single, data), rtol=0, atol=1e-12)


def test_model_level_results_equal_the_kernels(make_hmm):
    hmm, params = make_hmm("gaussian", num_states=3)
    data = holed_data(hmm, params)
    inputs = hmm.kernel_inputs(params, data)
    fb = kernels.forward_backward(*inputs)
    assert inputs[0].shape == (1, 3) and inputs[1].shape == (1, 3, 3)
    assert inputs[2].shape == (3, 5, 3) and inputs[3].tolist() == LENGTHS
    ours = hmm.forward_backward(params, data)
    for a, b in zip(ours, fb, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours.gamma.sum(-1), data.mask.double(), rtol=0, atol=1e-12)


def test_sample_paths_seeded_and_shaped(make_hmm):
    hmm, params = make_hmm("categorical", num_states=3, batch=(2,))
    data = hp.Sequences([[0, 1, 2, 2], [1]])
    draws = hmm.sample_paths(params, data, num_samples=7, seed=3)
    assert draws.shape == (7, 2, 2, 4)
    assert torch.equal(draws, hmm.sample_paths(params, data, num_samples=7, seed=3))
    assert torch.all(draws[..., 1, 1:] == -1) and torch.all(draws[..., 1, 0] >= 0)
    with pytest.raises(ValueError, match="num_samples"):
        hmm.sample_paths(params, data, num_samples=0)


def test_float32_model_is_close_to_float64(make_hmm):
    hmm, params = make_hmm("gaussian", num_states=3)
    data = holed_data(hmm, params)
    single = hp.HMM(3, hmm.emission, dtype=torch.float32)
    low = single.log_likelihood(params, data)
    assert low.dtype == torch.float32
    high = hmm.log_likelihood(params, data)
    torch.testing.assert_close(low.double(), high, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------------------- validation
def _bad(params, **changes):
    return {**params, **changes}


@pytest.mark.parametrize(
    ("family", "change", "error", "match"),
    [
        ("categorical", {"B": None}, ValueError, r"params: expected keys .*missing 'B'"),
        ("gaussian", {"sigma": None}, ValueError, r"missing 'sigma'"),
        ("poisson", {"pi": None}, ValueError, r"missing 'pi'"),
        ("categorical", {"A": torch.full((3, 2), 0.5)}, ValueError, r"params\['A'\].*shape"),
        ("categorical", {"pi": torch.full((2,), 0.5)}, ValueError, r"params\['pi'\].*shape"),
        ("categorical", {"B": torch.full((3, 2), 0.5)}, ValueError, r"params\['B'\].*shape"),
        ("categorical", {"pi": torch.full((3,), 0.3)}, ValueError, r"params\['pi'\].*summing"),
        ("categorical", {"A": torch.full((3, 3), 0.4)}, ValueError, r"params\['A'\].*summing"),
        (
            "categorical",
            {"A": torch.tensor([[1.5, -0.5, 0.0]] * 3)},
            ValueError,
            r"params\['A'\]",
        ),
        ("categorical", {"B": torch.full((3, 3), 0.5)}, ValueError, r"params\['B'\].*simplex"),
        ("gaussian", {"sigma": torch.tensor([1.0, -1.0, 1.0])}, ValueError, r"params\['sigma'\]"),
        ("gaussian2", {"mu": torch.zeros(3)}, ValueError, r"params\['mu'\].*shape"),
        ("poisson", {"rate": torch.tensor([1.0, 0.0, 2.0])}, ValueError, r"params\['rate'\]"),
        ("poisson", {"pi": "uniform"}, TypeError, r"params\['pi'\]"),
    ],
)
def test_validate_params_names_the_key(make_hmm, family, change, error, match):
    hmm, params = make_hmm(family, num_states=3)
    params = {k: v for k, v in _bad(params, **change).items() if v is not None}
    with pytest.raises(error, match=match):
        hmm.validate_params(params)
    data = [[0, 1]] if family != "gaussian2" else np.zeros((1, 2, 2))
    with pytest.raises(error, match=match):
        hmm.log_likelihood(params, data)


def _categorical_reference(params: dict, data: hp.Sequences):
    """The log kernel on Pyro ``safe_log`` logs: what the user-level route stands in for."""
    log_b = safe_log(params["B"]).clamp(min=torch.finfo(torch.float64).min)
    symbols = data.filled(0.0, torch.float64)[..., 0].long()
    symbols = torch.where(data.observed[..., 0], symbols, kernels.MISSING_SYMBOL)
    logs = (safe_log(params["pi"]), safe_log(params["A"]), log_b)
    return kernels.categorical_log_likelihood(*logs, symbols, data.lengths)


def test_user_level_value_and_gradients_equal_the_kernel_exactly(make_hmm):
    """``hmm.log_likelihood(params, data)`` then backward, leaf parameters: one autograd node
    whose value and gradients equal (``torch.equal``) those of the kernel on the logs."""
    hmm, params = make_hmm("categorical", num_states=3)
    data = holed_data(hmm, params)
    params["B"][1, 0] = 0.0  # a zero probability: log B clamped, its gradient zero
    params["B"][1] /= params["B"][1].sum()
    results = []
    for func in (hmm.log_likelihood, _categorical_reference):
        leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
        value = func(leaves, data)
        results.append((value.detach(), torch.autograd.grad(value.sum(), list(leaves.values()))))
        if func == hmm.log_likelihood:
            assert type(value.grad_fn).__name__ == "CategoricalProbabilityLikelihoodBackward"
    (value, grads), (expected, expected_grads) = results
    assert torch.equal(value, expected)
    for grad, reference in zip(grads, expected_grads, strict=True):
        assert torch.equal(grad, reference)


_MESSAGES = {
    "pi": "params['pi']: expected probabilities (rows non-negative and summing to 1 within 1e-06)",
    "A": "params['A']: expected probabilities (rows non-negative and summing to 1 within 1e-06)",
    "B": "params['B']: expected rows on the probability simplex (non-negative, summing to 1 "
    "within 1e-06), got row sums ",
}


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("pi", lambda v: v.mul_(0.9), _MESSAGES["pi"]),
        ("A", lambda v: v[1].copy_(torch.tensor([1.5, -0.5, 0.0])), _MESSAGES["A"]),
        ("A", lambda v: v[2, 1].fill_(float("nan")), _MESSAGES["A"]),
        ("pi", lambda v: v[0].add_(2e-5), _MESSAGES["pi"]),  # outside allclose's 1.1e-5
        ("B", lambda v: v[0].mul_(1.01), _MESSAGES["B"]),
        ("B", lambda v: v[1, 2].fill_(float("inf")), "params['B']: expected finite values"),
        ("B", lambda v: v[2].copy_(torch.tensor([1.2, -0.2, 0.0])), _MESSAGES["B"]),
    ],
    ids=["pi-sum", "A-negative", "A-nan", "pi-sum-2e-5", "B-sum", "B-inf", "B-negative"],
)
def test_bad_values_after_a_valid_call_raise_the_same_one_line_errors(
    make_hmm, name, change, message
):
    """Values changed in place after a valid call (same tensors, no stale state) are refused
    with the exact checks' messages; a row sum off by 5e-6 (inside allclose) still passes."""
    hmm, params = make_hmm("categorical", num_states=3)
    data = hp.Sequences([[0, 1, 2, 2], [1]])
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    hmm.log_likelihood(leaves, data).sum().backward()
    with torch.no_grad():
        leaves["pi"][0] += 5e-6
    hmm.log_likelihood(leaves, data)
    with torch.no_grad():
        change(leaves[name])
    for call in (hmm.validate_params, lambda p: hmm.log_likelihood(p, data)):
        with pytest.raises(ValueError) as error:
            call(leaves)
        assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("family", "name", "bad", "message"),
    [
        ("gaussian", "sigma", 0.0, "params['sigma']: expected standard deviations > 0, got 0.0"),
        ("gaussian", "mu", float("nan"), "params['mu']: expected finite values, got non-finite"),
        ("poisson", "rate", -1.0, "params['rate']: expected rates > 0, got -1.0"),
        ("categorical", "A", None, "params['A']: expected trailing shape (3, 3), got tensor"),
    ],
    ids=["sigma", "mu", "rate", "A-shape"],
)
def test_other_bad_params_after_a_valid_call(make_hmm, family, name, bad, message):
    hmm, params = make_hmm(family, num_states=3)
    data = hp.Sequences([[0, 1, 2, 2], [1]])
    hmm.log_likelihood(params, data)
    if bad is None:
        params[name] = params[name][:, :2]
    else:
        params[name] = params[name].clone()
        params[name][1] = bad
    with pytest.raises(ValueError) as error:
        hmm.log_likelihood(params, data)
    assert str(error.value).startswith(message)


def test_draw_dimensions_that_do_not_broadcast(make_hmm):
    hmm, params = make_hmm("poisson", num_states=3, batch=(3,))
    params["A"] = torch.full((2, 3, 3), 1 / 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"params: leading \(draw\) dimensions do not broadcast"):
        hmm.validate_params(params)


def test_validate_params_converts_and_accepts_extra_keys(make_hmm):
    hmm, params = make_hmm("poisson", num_states=2)
    as_lists = {name: value.tolist() for name, value in params.items()}
    converted = hmm.validate_params({**as_lists, "note": "ignored"})
    assert all(converted[name].dtype == torch.float64 for name in hmm.param_names)
    assert torch.equal(converted["rate"], params["rate"])
    with pytest.raises(TypeError, match="params"):
        hmm.validate_params([params["pi"], params["A"]])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_states": 0}, ValueError, "num_states"),
        ({"num_states": 2.0}, TypeError, "num_states"),
        ({"emission": "poisson"}, TypeError, "emission"),
        ({"prior": {"pi": 1.0}}, TypeError, "prior"),
        ({"dtype": torch.float16}, ValueError, "dtype"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, match):
    arguments = {"num_states": 2, "emission": hp.Poisson(), **kwargs}
    with pytest.raises(error, match=match):
        hp.HMM(**arguments)


def test_config_round_trip():
    prior = hp.Prior(A=np.array([[2.0, 1.0], [1.0, 3.0]]), stickiness=1.5, mu_loc=[-1.0, 1.0])
    hmm = hp.HMM(2, hp.Gaussian(), prior=prior, dtype=torch.float32)
    rebuilt = hp.HMM.from_config(hmm.to_config())
    assert rebuilt.to_config() == hmm.to_config()
    assert rebuilt.emission == hmm.emission and rebuilt.dtype == torch.float32
    assert torch.equal(rebuilt.prior.resolve_transitions(2), hmm.prior.resolve_transitions(2))
    assert hmm.param_dims() == {
        "pi": ("state",),
        "A": ("state", "state_to"),
        "mu": ("state",),
        "sigma": ("state",),
    }


@pytest.mark.parametrize(
    ("hmm", "simplex", "free"),
    [
        (hp.HMM(3, hp.Categorical(5)), ("pi", "A", "B"), 2 + 3 * 2 + 3 * 4),
        (hp.HMM(2, hp.Gaussian(dim=3)), ("pi", "A"), 1 + 2 * 1 + 2 * 6),
        (hp.HMM(4, hp.Poisson()), ("pi", "A"), 3 + 4 * 3 + 4),
        (hp.HMM(1, hp.Poisson(dim=2)), ("pi", "A"), 0 + 0 + 2),
    ],
    ids=repr,
)
def test_simplex_params_and_free_parameter_count(hmm, simplex, free):
    assert hmm.simplex_params == simplex
    assert hmm.num_free_params() == free
    # pi tied to A (the stationary distribution) has no free parameter of its own
    assert hmm.num_free_params("stationary") == free - (hmm.num_states - 1)
    with pytest.raises(ValueError, match="initial: expected one of"):
        hmm.num_free_params("tied")


def test_named_symbols_fit_only_a_family_with_those_names():
    data = hp.Sequences([[0, 1, 2, 1]], symbols=["x", "y", "z"])
    named = hp.HMM(2, hp.Categorical(3, symbols=["x", "y", "z"]))
    assert named.prepare_data(data) is data
    assert named.prepare_data([[0, 2]]).symbols is None  # codes without names: accepted
    for emission in (hp.Categorical(3), hp.Categorical(3, symbols=["z", "y", "x"]), hp.Poisson()):
        with pytest.raises(ValueError, match=r"data: holds named symbols \['x', 'y', 'z'\]"):
            hp.HMM(2, emission).prepare_data(data)
