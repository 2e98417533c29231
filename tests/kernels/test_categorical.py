"""The categorical kernel (emission rows looked up per symbol) against references.

References: brute-force enumeration of every path (values and expected counts), the table
route through the torch backend (values and weighted gradients), Pyro's ``DiscreteHMM``; the
probability route against the composition it replaces (bit for bit).
Tolerances: 1e-9 absolute on log likelihoods and gradients in float64.
"""

import math

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from pyro.ops.special import safe_log

from hmm_pyro import kernels
from hmm_pyro.kernels import MISSING_SYMBOL, SymbolLanes, categorical_log_likelihood
from hmm_pyro.kernels.categorical import categorical_probability_log_likelihood, shared_parameters
from tests.reference import brute_force


def _params(seed, num_states=3, num_symbols=4):
    generator = torch.Generator().manual_seed(seed)

    def logits(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).log_softmax(-1)

    return logits(num_states), logits(num_states, num_states), logits(num_states, num_symbols)


def _value_and_grads(params, symbols, lengths, backend, weights):
    inputs = [t.clone().requires_grad_() for t in params]
    value = categorical_log_likelihood(*inputs, symbols, lengths, backend=backend)
    grads = torch.autograd.grad((value * weights).sum(), inputs)
    return value.detach(), grads


def test_equals_brute_force_enumeration_with_expected_counts():
    log_pi, log_A, log_B = _params(0)
    symbols = torch.tensor([[0, 3, 1, 1, 2, 0]])
    inputs = [t.clone().requires_grad_() for t in (log_pi, log_A, log_B)]
    value = categorical_log_likelihood(*inputs, symbols, backend="numba")
    grad_pi, grad_A, grad_B = torch.autograd.grad(value.sum(), inputs)
    exact = brute_force(log_pi, log_A, log_B.T[symbols[0]])
    assert abs(float(value.detach()) - exact.log_likelihood) < 1e-9
    assert np.abs(grad_pi.numpy() - exact.gamma[0]).max() < 1e-9
    assert np.abs(grad_A.numpy() - exact.transitions).max() < 1e-9
    counts = np.zeros((3, 4))
    for t, symbol in enumerate(symbols[0].tolist()):
        counts[:, symbol] += exact.gamma[t]
    assert np.abs(grad_B.numpy() - counts).max() < 1e-9


@pytest.mark.parametrize(
    ("num_states", "num_symbols", "shape"),
    # K <= UNROLLED_STATES runs sweeps compiled for each K; K = 5 the general ones
    [(1, 2, (2, 5)), (2, 3, (4, 7)), (3, 4, (6, 9)), (4, 5, (9, 11)), (5, 3, (5, 8))],
)
def test_equals_the_table_route_with_missing_padding_and_weights(num_states, num_symbols, shape):
    params = _params(1, num_states, num_symbols)
    generator = torch.Generator().manual_seed(2)
    symbols = torch.randint(0, num_symbols, shape, generator=generator)
    symbols[0, 1] = MISSING_SYMBOL
    symbols[-1, :] = MISSING_SYMBOL  # a sequence with nothing observed
    lengths = torch.randint(1, shape[1] + 1, shape[:1], generator=generator)
    lengths[0] = shape[1]
    weights = torch.randn(shape[0], generator=generator, dtype=torch.float64)
    fast, fast_grads = _value_and_grads(params, symbols, lengths, "numba", weights)
    slow, slow_grads = _value_and_grads(params, symbols, lengths, "torch", weights)
    assert (fast - slow).abs().max() < 1e-9
    for a, b in zip(fast_grads, slow_grads, strict=True):
        assert (a - b).abs().max() < 1e-9
    assert abs(float(fast[-1])) < 1e-12  # nothing observed: log 1


def test_equals_pyro_discrete_hmm():
    log_pi, log_A, log_B = _params(3, 4, 6)
    symbols = torch.randint(0, 6, (5, 30), generator=torch.Generator().manual_seed(4))
    trans = log_A.expand(30, 4, 4).clone()
    trans[0] = log_pi.expand(4, 4)  # Pyro's first transition; all rows pi gives our convention
    pyro_value = dist.DiscreteHMM(
        torch.zeros(4, dtype=torch.float64), trans, dist.Categorical(logits=log_B)
    ).log_prob(symbols)
    ours = categorical_log_likelihood(log_pi, log_A, log_B, symbols)
    assert (ours - pyro_value).abs().max() < 1e-9


def test_prepared_symbols_give_the_same_values():
    params = _params(5)
    symbols = torch.randint(0, 4, (3, 8), generator=torch.Generator().manual_seed(6))
    lengths = torch.tensor([8, 2, 5])
    prepared = SymbolLanes(symbols, 4, lengths)
    assert prepared.lanes.shape == (8, 3)
    assert (prepared.lanes[5:, 1] == 4).all()  # padding points at the ones row
    expected = categorical_log_likelihood(*params, symbols, lengths)
    assert torch.equal(categorical_log_likelihood(*params, prepared), expected)
    with pytest.raises(ValueError, match="lengths: give them to SymbolLanes"):
        categorical_log_likelihood(*params, prepared, lengths)


def test_impossible_sequences_get_minus_infinity_and_zero_gradient():
    log_pi, log_A, log_B = _params(7, 2, 3)
    log_B = log_B.clone()
    log_B[:, 2] = -math.inf  # no state emits symbol 2
    symbols = torch.tensor([[0, 1, 2], [1, 0, 0]])
    inputs = [t.clone().requires_grad_() for t in (log_pi, log_A, log_B)]
    value = categorical_log_likelihood(*inputs, symbols)
    assert value[0] == -math.inf and math.isfinite(float(value[1].detach()))
    grads = torch.autograd.grad(value[1], inputs)
    reference = torch.autograd.grad(
        categorical_log_likelihood(*inputs, symbols[1:], backend="torch").sum(), inputs
    )
    for a, b in zip(grads, reference, strict=True):
        assert torch.isfinite(a).all() and (a - b).abs().max() < 1e-9


def test_long_sequences_with_tiny_emissions_stay_finite():
    log_pi, log_A, _ = _params(8, 2, 2)
    log_B = torch.tensor([[-400.0, -500.0], [-450.0, -420.0]], dtype=torch.float64)
    symbols = torch.randint(0, 2, (2, 3000), generator=torch.Generator().manual_seed(9))
    fast = categorical_log_likelihood(log_pi, log_A, log_B, symbols, backend="numba")
    slow = categorical_log_likelihood(log_pi, log_A, log_B, symbols, backend="torch")
    assert torch.isfinite(fast).all()
    assert ((fast - slow).abs() / slow.abs()).max() < 1e-12


def test_float32_inputs_return_float32():
    params = [t.float() for t in _params(10)]
    symbols = torch.tensor([[0, 1, 2, 3]])
    value = categorical_log_likelihood(*params, symbols)
    assert value.dtype == torch.float32
    assert (
        abs(float(value) - float(categorical_log_likelihood(*params, symbols, backend="torch")))
        < 1e-5
    )


def test_batched_parameters_use_the_table_route():
    log_pi, log_A, log_B = _params(11)
    symbols = torch.tensor([[0, 1, 2], [3, 3, 0]])
    batched = categorical_log_likelihood(
        log_pi.expand(2, 3), log_A.expand(2, 3, 3), log_B.expand(2, 3, 4), symbols
    )
    assert batched.shape == (2,)
    assert not shared_parameters(log_pi.expand(2, 3), log_A, log_B)
    assert (batched - categorical_log_likelihood(log_pi, log_A, log_B, symbols)).abs().max() < 1e-12
    with pytest.raises(ValueError, match="'numba' needs unbatched"):
        categorical_log_likelihood(log_pi.expand(2, 3), log_A, log_B, symbols, backend="numba")


def test_symbol_table_is_zero_at_missing_steps():
    _, _, log_B = _params(12)
    table = kernels.symbol_table(log_B, torch.tensor([[1, MISSING_SYMBOL]]))
    assert torch.equal(table[0, 0], log_B[:, 1]) and torch.equal(
        table[0, 1], torch.zeros(3, dtype=torch.float64)
    )


@pytest.mark.parametrize(
    ("symbols", "lengths", "error", "match"),
    [
        (torch.tensor([[0, 4]]), None, ValueError, r"symbols: expected values in \[0, 4\)"),
        (torch.tensor([[0, -2]]), None, ValueError, "got min -2"),
        (torch.tensor([[0.0, 1.0]]), None, TypeError, "symbols: expected an integer tensor"),
        ([[0, 1]], None, TypeError, "symbols: expected an integer torch.Tensor"),
        (torch.zeros((1, 0), dtype=torch.long), None, ValueError, "T >= 1"),
        (
            torch.tensor([[0, 1]]),
            torch.tensor([3]),
            ValueError,
            r"lengths: expected values in \[1, 2\]",
        ),
        (
            torch.tensor([[0, 1]]),
            torch.tensor([0]),
            ValueError,
            r"lengths: expected values in \[1, 2\]",
        ),
        (torch.tensor([[0, 1]]), torch.tensor([1.0]), TypeError, "lengths: expected an integer"),
        (torch.tensor([[0, 1]]), torch.tensor([1, 2, 2]), ValueError, "lengths: expected shape"),
    ],
)
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_bad_input_is_refused_in_one_line(symbols, lengths, error, match, backend):
    with pytest.raises(error, match=match):
        categorical_log_likelihood(*_params(13), symbols, lengths, backend=backend)


def test_mismatched_parameter_shapes_are_refused():
    log_pi, log_A, log_B = _params(14)
    with pytest.raises(ValueError, match="log_pi"):
        categorical_log_likelihood(log_pi[:2], log_A, log_B, torch.tensor([[0, 1]]))


def test_values_at_padded_steps_are_not_checked_or_used():
    params = _params(15)
    lengths = torch.tensor([2, 3])
    clean = torch.tensor([[0, 1, 0], [2, 3, 1]])
    junk = torch.tensor([[0, 1, 99], [2, 3, 1]])
    for backend in ("numba", "torch"):
        expected = categorical_log_likelihood(*params, clean, lengths, backend=backend)
        got = categorical_log_likelihood(*params, junk, lengths, backend=backend)
        assert torch.equal(got, expected)


def _composed(pi, A, B, symbols, lengths=None, backend="auto"):
    """The composition the probability route stands in for (Pyro's ``safe_log``, a clamp)."""
    log_B = safe_log(B).clamp(min=torch.finfo(B.dtype).min)
    return categorical_log_likelihood(safe_log(pi), safe_log(A), log_B, symbols, lengths, backend)


def _probabilities(seed, dtype=torch.float64):
    """Rows with zeros and an entry below eps (where the logs' gradients are clamped)."""
    pi, A, B = (t.exp().to(dtype) for t in _params(seed, 3, 4))
    pi, A, B = pi.clone(), A.clone(), B.clone()
    pi[2], A[0, 1], B[1, 3] = 1e-30, 0.0, 0.0  # pi[2] below eps: its gradient is g / eps
    return pi, A, B


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_probability_route_equals_the_composition_bit_for_bit(dtype):
    """Value and gradients identical (``torch.equal``) to safe_log + clamp + log kernel, with
    zero probabilities, missing and padded steps, per-sequence weights, float32 and float64."""
    params = _probabilities(20, dtype)
    symbols = torch.tensor([[0, 3, 1, MISSING_SYMBOL, 2, 0], [1, 1, 2, 0, 0, 0]])
    lengths = torch.tensor([6, 4])
    weights = torch.tensor([0.7, 1.9], dtype=dtype)
    results = []
    for func, inputs in (
        (categorical_probability_log_likelihood, SymbolLanes(symbols, 4, lengths)),
        (_composed, symbols),
    ):
        leaves = [t.clone().requires_grad_() for t in params]
        extra = () if isinstance(inputs, SymbolLanes) else (lengths,)
        value = func(*leaves, inputs, *extra)
        grads = torch.autograd.grad((value * weights).sum(), leaves)
        results.append((value.detach(), grads))
    (value, grads), (expected, expected_grads) = results
    assert value.dtype == dtype and torch.equal(value, expected)
    for grad, reference in zip(grads, expected_grads, strict=True):
        assert grad.dtype == dtype and torch.equal(grad, reference)
    assert grads[2][1, 3] == 0  # B = 0: log B clamped, no gradient
    assert all(torch.isfinite(grad).all() for grad in grads)


def test_probability_route_is_one_autograd_node_and_falls_back_when_batched():
    pi, A, B = (t.clone().requires_grad_() for t in _probabilities(21))
    symbols = torch.tensor([[0, 1, 2], [3, 3, 0]])
    value = categorical_probability_log_likelihood(pi, A, B, symbols)
    assert type(value.grad_fn).__name__ == "CategoricalProbabilityLikelihoodBackward"
    batched = categorical_probability_log_likelihood(
        pi.expand(2, 3), A.expand(2, 3, 3), B.expand(2, 3, 4), symbols
    )
    assert (batched - value).abs().max() < 1e-12
    for backend in ("torch", "numba"):
        assert torch.equal(
            categorical_probability_log_likelihood(pi, A, B, symbols, backend=backend),
            _composed(pi, A, B, symbols, backend=backend),
        )
    with pytest.raises(TypeError, match="A: expected a floating-point tensor"):
        categorical_probability_log_likelihood(pi, [[1.0]], B, symbols)
