"""Property-based tests: malformed input fails early, with a ValueError/TypeError naming it.

Hypothesis throws malformed data, priors, model specifications, runner options, kernel inputs
and parameters at the public API. The property, for every call: it either succeeds (only
valid inputs do, and then its result holds no NaN) or raises ``ValueError``/``TypeError``
whose message names the offending argument. Any other exception (a ``RuntimeError`` or
``IndexError`` from torch, a numba error, a warning turned into an error by the test
configuration) fails the test. ``derandomize=True`` makes every run draw the same examples;
the ``@given`` tests together run :data:`TOTAL_EXAMPLES` examples.

Runner options are checked with tiny data and tiny budgets: an invalid option must fail
before any sampling, and the few valid ones generated run a fit of a few iterations.

The command line is checked in-process (``main([...])``: exit code 2, one line on stderr, no
traceback) and once in a subprocess for the real exit code.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import hmm_pyro as hp
from hmm_pyro import kernels
from hmm_pyro.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "data": 150,
    "prior": 100,
    "model": 60,
    "runner": 100,
    "kernel": 80,
    "fitted": 60,
}
TOTAL_EXAMPLES = sum(EXAMPLES.values())


def _settings(name: str) -> settings:
    return settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def attempt(names: Sequence[str], func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Return ``(True, result)``, or ``(False, error)`` for a ValueError/TypeError naming one of
    ``names``; any other exception propagates and fails the test."""
    try:
        result = func(*args, **kwargs)
    except (ValueError, TypeError) as error:
        event(f"{getattr(func, '__name__', 'call')}: {type(error).__name__}")
        message = str(error)
        assert any(name in message for name in names), (
            f"{type(error).__name__} does not name any of {list(names)}: {message}"
        )
        assert len(message) < 2000, "an error message should be short"
        return False, error
    event(f"{getattr(func, '__name__', 'call')}: accepted")
    return True, result


def assert_no_nan(value: Any) -> None:
    """No NaN anywhere in a tensor, array, tuple or dict of them."""
    if isinstance(value, (tuple, list)):
        for item in value:
            assert_no_nan(item)
    elif isinstance(value, dict):
        for item in value.values():
            assert_no_nan(item)
    elif isinstance(value, torch.Tensor):
        assert not bool(torch.isnan(value).any()), value
    elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
        assert not np.isnan(value).any(), value


# ---------------------------------------------------------------------------- strategies
EMISSIONS = {
    "categorical": lambda: hp.Categorical(num_symbols=3),
    "gaussian": lambda: hp.Gaussian(),
    "gaussian2": lambda: hp.Gaussian(dim=2),
    "poisson": lambda: hp.Poisson(),
    "poisson2": lambda: hp.Poisson(dim=2),
}

huge_floats = st.floats(min_value=1e15, max_value=1.7e308) | st.floats(
    min_value=-1.7e308, max_value=-1e15
)
any_floats = st.floats(allow_nan=True, allow_infinity=True) | huge_floats
small_ints = st.integers(min_value=-3, max_value=5)
scalars = st.one_of(
    small_ints,
    any_floats,
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.binary(max_size=2),
    st.complex_numbers(max_magnitude=10, allow_nan=False),
    st.just(2**70),
)
"""Every kind of single value a user might pass by mistake."""

dtypes = st.sampled_from(
    [np.float64, np.float32, np.int64, np.uint8, np.bool_, np.complex128, "<U2", "datetime64[D]"]
)


@st.composite
def numpy_arrays(draw: st.DrawFn, max_dims: int = 4) -> np.ndarray:
    dtype = np.dtype(draw(dtypes))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=4))
    if dtype.kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=dtype.itemsize * 8)
        elements = elements | st.integers(-2, 4).map(float)
        return draw(hnp.arrays(dtype, shape, elements=elements))
    if dtype.kind in "iu":
        return draw(hnp.arrays(dtype, shape, elements=st.integers(0, 5)))
    return draw(hnp.arrays(dtype, shape))


symbol_lists = st.lists(st.integers(-2, 4) | st.none() | any_floats, min_size=0, max_size=6)
ragged = st.lists(symbol_lists | st.lists(st.text(max_size=1), max_size=2), min_size=0, max_size=4)
valid_sequences = st.lists(
    st.lists(st.integers(0, 2), min_size=1, max_size=6), min_size=1, max_size=3
)
malformed_data = st.one_of(
    valid_sequences,
    valid_sequences.map(lambda rows: [[float(v) for v in row] for row in rows]),
    valid_sequences.map(lambda rows: [np.asarray(row, dtype=np.int64) for row in rows]),
    ragged,
    symbol_lists,
    numpy_arrays(),
    numpy_arrays().map(
        lambda a: torch.from_numpy(a) if a.dtype.kind in "biufc" and a.dtype != np.uint8 else a
    ),
    numpy_arrays(max_dims=2).map(lambda a: pd.Series(a.ravel())),
    scalars,
    st.dictionaries(st.text(max_size=2), small_ints, max_size=2),
)


# ---------------------------------------------------------------------------- data
@cache
def _model(family: str) -> tuple[hp.HMM, dict[str, torch.Tensor]]:
    hmm = hp.HMM(2, EMISSIONS[family]())
    return hmm, hmm.sample_prior(seed=0)


@_settings("data")
@given(
    data=malformed_data,
    lengths=st.one_of(st.none(), st.none(), st.none(), st.lists(small_ints, max_size=4), scalars),
    dim=st.one_of(st.none(), st.none(), st.none(), small_ints, scalars),
    family=st.sampled_from(sorted(EMISSIONS)),
)
def test_sequences_and_prepare_data_reject_malformed_data(data, lengths, dim, family):
    ok, sequences = attempt(["data", "lengths", "dim"], hp.Sequences, data, lengths, dim)
    if not ok:
        return
    assert sequences.num_sequences >= 1 and sequences.dim >= 1
    assert bool((sequences.lengths >= 1).all())
    assert not bool(torch.isinf(sequences.values).any())
    hmm, params = _model(family)
    ok, prepared = attempt(["data"], hmm.prepare_data, sequences)
    if not ok:
        return
    # Valid data: every result is a number (-inf allowed for impossible data, never NaN).
    log_lik = hmm.log_likelihood(params, prepared)
    assert log_lik.shape == (prepared.num_sequences,)
    assert_no_nan(log_lik)
    assert_no_nan(hmm.viterbi(params, prepared)[1])


@pytest.mark.parametrize(
    ("data", "word"),
    [
        (np.array([1 + 1j, 2]), "numeric"),  # used to warn and drop the imaginary part
        (torch.tensor([1 + 0j]), "numeric"),
        (["1", "2"], "numeric"),  # used to be parsed as numbers
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "numeric"),
        (np.zeros((2, 3, 0)), "dimension 0"),  # used to give a Sequences with dim 0
        (pd.Series(["a", "b"]), "numeric"),
    ],
)
def test_non_numeric_data_is_rejected_by_name(data, word):
    with pytest.raises((TypeError, ValueError), match=word) as info:
        hp.Sequences(data)
    assert str(info.value).startswith("data")


def test_counts_beyond_float64_integers_are_rejected():
    hmm, params = _model("poisson")
    with pytest.raises(ValueError, match="2\\*\\*53"):
        hmm.log_likelihood(params, [1e308, 1.0])  # used to give NaN
    assert torch.isfinite(hmm.log_likelihood(params, [2.0**53, 1.0])).all()


# ---------------------------------------------------------------------------- priors
PRIOR_FIELDS = (
    "pi",
    "A",
    "B",
    "stickiness",
    "mu_loc",
    "mu_scale",
    "variance_shape",
    "variance_scale",
    "rate_shape",
    "rate_rate",
)
prior_values = st.one_of(
    scalars,
    st.floats(min_value=1e-300, max_value=1e100),
    st.lists(any_floats | small_ints, max_size=4),
    st.lists(st.lists(st.floats(0.1, 5.0), min_size=1, max_size=3), min_size=1, max_size=3),
    numpy_arrays(max_dims=3),
)


@_settings("prior")
@given(
    field=st.sampled_from(PRIOR_FIELDS),
    value=prior_values,
    family=st.sampled_from(sorted(EMISSIONS)),
    num_states=st.integers(1, 3),
)
def test_prior_rejects_malformed_hyperparameters(field, value, family, num_states):
    ok, prior = attempt([field], hp.Prior, **{field: value})
    if not ok:
        return
    ok, hmm = attempt([field], hp.HMM, num_states, EMISSIONS[family](), prior=prior)
    if not ok:
        return
    draw = hmm.sample_prior(seed=1)
    for name, value in draw.items():
        assert bool(torch.isfinite(value).all()), (name, value)
    assert not bool(torch.isnan(hmm.log_prior(draw)))


# ---------------------------------------------------------------------------- models
def _emission(kind: str, argument: Any) -> Any:
    if kind == "categorical":
        return hp.Categorical(num_symbols=argument)
    if kind == "gaussian":
        return hp.Gaussian(dim=argument)
    if kind == "poisson":
        return hp.Poisson(dim=argument)
    return argument  # not an Emission at all


@_settings("model")
@given(
    num_states=st.one_of(
        st.integers(-2, 4), st.integers(10**4, 10**30), scalars, st.just(np.int64(2))
    ),
    kind=st.sampled_from(["categorical", "gaussian", "poisson", "object"]),
    argument=st.one_of(
        st.integers(-2, 4), st.integers(10**7, 10**30), scalars, st.just(hp.Categorical)
    ),
    dtype=st.sampled_from([torch.float64, torch.float32, torch.int64, "float64", None]),
)
def test_model_specification_is_validated(num_states, kind, argument, dtype):
    names = ["num_states", "emission", "num_symbols", "dim", "dtype"]
    ok, emission = attempt(names, _emission, kind, argument)
    if not ok:
        return
    ok, hmm = attempt(names, hp.HMM, num_states, emission, dtype=dtype)
    if ok:
        assert hmm.num_states >= 1
        assert all(bool(torch.isfinite(v).all()) for v in hmm.sample_prior(seed=0).values())


def test_huge_models_fail_before_allocating():
    began = time.perf_counter()
    for num_states, emission in [(10**6, hp.Categorical(3)), (2, hp.Gaussian(dim=10**9))]:
        with pytest.raises(ValueError, match="num_states, emission"):
            hp.HMM(num_states, emission)  # used to raise MemoryError or be killed
    assert time.perf_counter() - began < 5.0


# ---------------------------------------------------------------------------- runners
TINY_DATA = [[0, 1, 2, 1, 0], [2, 2, 0]]
RUNNERS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "svi": (hp.fit_svi, {"steps": 3, "restarts": 1, "num_draws": 5, "progress": False}),
    "map": (hp.fit_map, {"steps": 3, "restarts": 1, "progress": False}),
    "nuts": (
        hp.fit_nuts,
        {"chains": 1, "warmup": 3, "draws": 2, "parallel": False, "progress": False},
    ),
    "em": (hp.fit_em, {"restarts": 1, "max_iter": 2, "progress": False}),
    "viterbi": (hp.fit_viterbi_training, {"restarts": 1, "max_iter": 2, "progress": False}),
}
OPTIONS = {
    "svi": ["guide", "steps", "lr", "restarts", "seed", "init", "tol", "num_draws"],
    "map": ["optimizer", "steps", "lr", "restarts", "seed", "init", "tol"],
    "nuts": [
        "chains",
        "warmup",
        "draws",
        "seed",
        "init",
        "target_accept",
        "max_tree_depth",
        "parallel",
        "progress",
    ],
    "em": ["restarts", "max_iter", "tol", "seed", "init", "emission_prior", "initial", "progress"],
    "viterbi": ["restarts", "max_iter", "seed", "init", "emission_prior", "initial", "progress"],
}
bad_options = st.one_of(
    st.integers(-5, 0),
    st.sampled_from([0.0, -1.0, 0.5, 1.5, 2.0, math.nan, math.inf, -math.inf, 1e300]),
    st.none(),
    st.booleans(),
    st.text(max_size=4),
    st.sampled_from(
        ["auto", "map", "normal", "median", "prior", "em", "free", "lean", "pyro", "lbfgs", "adam"]
    ),
    st.lists(small_ints, max_size=2),
    st.dictionaries(st.sampled_from(["pi", "A", "B"]), st.floats(-1, 2) | st.none(), max_size=3),
    st.just({"pi": [0.5, 0.5], "A": [[0.9, 0.1], [0.1, 0.9]], "B": [[0.5, 0.5, 0.0]] * 2}),
    st.just(np.int64(-1)),
)
"""Invalid option values, plus a few valid ones (which run a fit of a few iterations)."""


INTEGER_OPTIONS = {
    "steps": 1,
    "restarts": 1,
    "num_draws": 1,
    "chains": 1,
    "warmup": 0,
    "draws": 1,
    "max_tree_depth": 1,
    "max_iter": 0,
    "seed": 0,
}
BOOLEAN_OPTIONS = {"parallel", "progress", "emission_prior"}


def _must_fail(option: str, value: Any) -> bool:
    """True when ``value`` is plainly of the wrong type or range for ``option``."""
    if option in INTEGER_OPTIONS:
        if option == "seed" and value is None:
            return False
        integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        return not integer or value < INTEGER_OPTIONS[option]
    if option in BOOLEAN_OPTIONS:
        return not isinstance(value, bool) and not (option == "parallel" and value is None)
    return False


@cache
def _categorical_hmm() -> hp.HMM:
    return hp.HMM(2, hp.Categorical(num_symbols=3))


@_settings("runner")
@given(data=st.data(), runner=st.sampled_from(sorted(RUNNERS)))
def test_runner_options_fail_before_any_work(data, runner):
    option = data.draw(st.sampled_from(OPTIONS[runner]), label="option")
    value = data.draw(bad_options, label="value")
    func, base = RUNNERS[runner]
    kwargs = {"seed": 0, **base, option: value}
    # Pyro's init names are not valid NUTS/EM starts; "init" errors name the given parameters.
    names = [option, "params"] if option == "init" else [option]
    began = time.perf_counter()
    ok, result = attempt(names, func, _categorical_hmm(), TINY_DATA, **kwargs)
    assert not (ok and _must_fail(option, value)), f"{runner} accepted {option}={value!r}"
    if ok:
        assert isinstance(result, hp.Fit)
        assert_no_nan(result.draws())
    else:
        # An invalid option is caught before sampling: far below the cost of a fit.
        assert time.perf_counter() - began < 10.0


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_runners_reject_a_bad_model_or_bad_data(runner):
    func, base = RUNNERS[runner]
    with pytest.raises(TypeError, match="hmm"):
        func("not a model", TINY_DATA, **base)
    with pytest.raises(ValueError, match="data"):
        func(_categorical_hmm(), [[0, 3]], **base)


# ---------------------------------------------------------------------------- kernels
KERNELS = {
    "log_likelihood": kernels.log_likelihood,
    "posterior_marginals": kernels.posterior_marginals,
    "forward_backward": kernels.forward_backward,
    "viterbi": kernels.viterbi,
    "forward": kernels.forward,
    "backward": kernels.backward,
    "sample_paths": kernels.sample_paths,
}
KERNEL_NAMES = ["log_pi", "log_A", "log_lik", "lengths", "num_samples", "generator"]
log_values = st.one_of(
    st.floats(min_value=-30, max_value=3),
    st.sampled_from([-math.inf, math.inf, math.nan, 0.0]),
)


@st.composite
def kernel_inputs(draw: st.DrawFn) -> dict[str, Any]:
    num_states = draw(st.integers(1, 3))
    num_steps = draw(st.integers(1, 4))
    batch = draw(st.sampled_from([(), (2,)]))

    def tensor(shape: tuple[int, ...], normalise: bool) -> Any:
        if draw(st.integers(0, 19)) == 0:  # an impossible shape
            shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
        values = draw(hnp.arrays(np.float64, shape, elements=log_values))
        if normalise and values.size and draw(st.booleans()):
            with np.errstate(invalid="ignore"):  # inf - inf: a NaN input, as intended
                values = values - np.logaddexp.reduce(values, axis=-1, keepdims=True)
        kind = draw(st.sampled_from(["float64"] * 12 + ["float32", "int64", "numpy", "list"]))
        if kind == "numpy":
            return values
        if kind == "list":
            return values.tolist()
        return torch.as_tensor(values).to(getattr(torch, kind))

    lengths = draw(
        st.one_of(
            st.none(),
            st.none(),
            st.none(),
            st.integers(1, num_steps).map(lambda n: torch.full(batch, n)),
            st.integers(1, num_steps).map(lambda n: torch.full(batch, n)),
            st.integers(-1, num_steps + 1).map(lambda n: torch.full(batch, n)),
            st.integers(1, num_steps).map(lambda n: torch.full(batch, float(n))),
            st.lists(st.integers(0, num_steps + 1), max_size=3),
            st.text(max_size=2),
        )
    )
    return {
        "log_pi": tensor((*batch, num_states), True),
        "log_A": tensor((num_states, num_states), True),
        "log_lik": tensor((*batch, num_steps, num_states), False),
        "lengths": lengths,
        "num_samples": draw(st.sampled_from([1, 2, 1, 2, 0, -1, 1.5, "2", True])),
        "generator": draw(st.sampled_from([None, None, torch.Generator().manual_seed(0), 3])),
    }


def _finite_or_minus_inf(value: Any) -> bool:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return not bool(torch.isnan(value).any() or (value == math.inf).any())
    return True


@_settings("kernel")
@given(inputs=kernel_inputs(), name=st.sampled_from(sorted(KERNELS)))
def test_kernels_reject_malformed_inputs(inputs, name):
    func = KERNELS[name]
    args = [inputs["log_pi"], inputs["log_A"], inputs["log_lik"], inputs["lengths"]]
    kwargs = {}
    if name == "sample_paths":
        kwargs = {"num_samples": inputs["num_samples"], "generator": inputs["generator"]}
    ok, result = attempt(KERNEL_NAMES, func, *args, **kwargs)
    if not ok:
        return
    # Log probabilities in [-inf, +inf): then no result is NaN. (Kernels propagate a NaN
    # input to their floating-point outputs; sample_paths, whose paths cannot carry one,
    # refuses it.)
    if all(_finite_or_minus_inf(value) for value in args[:3]):
        assert_no_nan(result)
    if name == "sample_paths":
        assert result.dtype == torch.int64


def test_sample_paths_refuses_nan_and_impossible_inputs():
    log_pi = torch.log(torch.tensor([0.5, 0.5], dtype=torch.float64))
    log_A = torch.log(torch.full((2, 2), 0.5, dtype=torch.float64))
    log_lik = torch.zeros(4, 2, dtype=torch.float64)
    for bad in (log_lik * math.nan, log_lik - math.inf, log_lik + math.inf):
        with pytest.raises(ValueError, match="log_lik"):  # used to return paths of zeros
            kernels.sample_paths(log_pi, log_A, bad, num_samples=2)
    with pytest.raises(TypeError, match="generator"):
        kernels.sample_paths(log_pi, log_A, log_lik, generator=3)
    with pytest.raises(TypeError, match="lengths"):
        kernels.log_likelihood(log_pi, log_A, log_lik, "2")


# ---------------------------------------------------------------------------- fitted models
@cache
def _fitted() -> hp.Fit:
    return hp.fit_em(_categorical_hmm(), TINY_DATA, restarts=1, max_iter=3, seed=0, progress=False)


param_values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=2),
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)),
    hnp.arrays(
        np.float64, st.sampled_from([(2,), (2, 2), (2, 3), (4, 2, 3)]), elements=st.floats(-1, 2)
    ),
)


@_settings("fitted")
@given(
    data=st.one_of(st.none(), valid_sequences, malformed_data),
    method=st.sampled_from(["viterbi", "state_probs", "log_likelihood", "sample_paths"]),
    option=st.one_of(
        st.integers(1, 3), st.integers(-2, 0), st.none(), st.text(max_size=2), st.just(1.5)
    ),
    broken=st.none() | st.tuples(st.sampled_from(["pi", "A", "B", "C"]), param_values),
)
def test_fitted_model_rejects_bad_data_parameters_and_options(data, method, option, broken):
    fit = _fitted()
    hmm = fit.hmm
    names = ["data", "max_draws", "num_samples", "seed", "params"]
    if method == "viterbi":
        ok, result = attempt(names, fit.viterbi, data, per_draw=True, max_draws=option)
    elif method == "state_probs":
        ok, result = attempt(names, fit.state_probs, data, max_draws=option)
    elif method == "sample_paths":
        ok, result = attempt(names, fit.sample_paths, data, num_samples=option, seed=option)
    else:
        params = dict(fit.posterior_mean())
        if broken is not None:
            params[broken[0]] = broken[1]
        ok, result = attempt(names, hmm.log_likelihood, params, TINY_DATA if data is None else data)
    if ok:
        assert_no_nan(result)


def test_a_fit_with_nan_or_inf_parameters_is_refused():
    hmm = _categorical_hmm()
    point = hmm.sample_prior(seed=0)
    for bad in (math.nan, math.inf):
        broken = {name: value.clone() for name, value in point.items()}
        broken["B"][0, 0] = bad
        with pytest.raises(ValueError, match="params\\['B'\\]"):
            hp.Fit.from_params(hmm, TINY_DATA, broken)
    draws = {name: value.reshape(2, 3, *value.shape[1:]) for name, value in
             hmm.sample_prior(6, seed=1).items()}  # fmt: skip
    draws["A"][1, 2, 0, 0] = math.nan
    with pytest.raises(ValueError, match="params\\['A'\\]"):
        hp.Fit.from_params(hmm, TINY_DATA, draws, method="nuts")
    # NaN written into a fit's draws afterwards is caught when the draws are used, and a Fit
    # (or hp.load) is never built on them.
    fit = hp.Fit.from_params(hmm, TINY_DATA, {k: v.clone() for k, v in point.items()})
    fit.idata.posterior["B"].values[0, 0, 0, 0] = math.nan
    for use in (lambda: hp.diagnose(fit), fit.state_probs, fit.viterbi, fit.posterior_mean):
        with pytest.raises(ValueError, match="draws of 'B' hold NaN or inf"):
            use()
    with pytest.raises(ValueError, match="draws of 'B' hold NaN or inf"):
        hp.Fit(hmm, fit.idata)


# ---------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad_cli")
    rows = [(n, t, v) for n in range(2) for t, v in enumerate([0, 1, 2, 1, 0, 2])]
    pd.DataFrame(rows, columns=["sequence", "time", "value"]).to_csv(folder / "ok.csv", index=False)
    text = pd.DataFrame(rows, columns=["sequence", "time", "value"]).astype({"value": str})
    text.loc[3, "value"] = "x"
    text.to_csv(folder / "text.csv", index=False)
    negative = pd.DataFrame(rows, columns=["sequence", "time", "value"])
    negative.loc[2, "value"] = -4
    negative.to_csv(folder / "negative.csv", index=False)
    return folder


CLI_CASES = [
    (["fit", "OK", "--states", "0"], "num_states"),
    (["fit", "OK", "--states", "2", "--chains", "0", "--serial"], "chains"),
    (["fit", "OK", "--states", "2", "--warmup", "-1", "--serial"], "warmup"),
    (["fit", "OK", "--states", "2", "--method", "svi", "--steps", "0"], "steps"),
    (["fit", "OK", "--states", "2", "--method", "em", "--restarts", "0"], "restarts"),
    (["fit", "OK", "--states", "2", "--prior-B", "-1"], "B"),
    (["fit", "OK", "--states", "2", "--prior-B", "1e308"], "B"),
    (["fit", "OK", "--states", "2", "--stickiness", "[1, 2, 3]"], "stickiness"),
    (["fit", "OK", "--states", "2", "--symbols", "1"], "num_symbols"),
    (["fit", "OK", "--states", "2", "--method", "svi", "--init", "bogus"], "init"),
    (["fit", "TEXT", "--states", "2", "--emission", "poisson"], "named symbols"),
    (["fit", "NEGATIVE", "--states", "2", "--symbols", "3"], "data"),
    (["fit", "OK", "--states", "2", "--emission", "poisson", "--method", "em",
      "--value-column", "count"], "count"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "word"), CLI_CASES)
def test_cli_bad_input_exits_2_with_one_line(argv, word, files, capsys):
    names = {"OK": "ok.csv", "TEXT": "text.csv", "NEGATIVE": "negative.csv"}
    argv = [str(files / names[item]) if item in names else item for item in argv]
    began = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - began < 10.0  # refused before any fitting
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("hmm-pyro fit: error: ") and word in lines[0], lines[0]


def test_cli_bad_input_exit_code_in_a_subprocess(files):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, "-m", "hmm_pyro", "fit", str(files / "ok.csv"), "--states", "2",
         "--prior-B", "[1, -2, 1]"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "B: expected values > 0" in lines[0], result.stderr


def test_the_property_tests_run_at_least_500_examples():
    assert TOTAL_EXAMPLES >= 500
