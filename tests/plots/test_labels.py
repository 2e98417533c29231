"""What the plots call a fit's numbers, and where entry names come from."""

from __future__ import annotations

import pytest

import hmm_pyro as hp
from hmm_pyro.plots._labels import (
    entry_names,
    estimate_label,
    shown,
    symbol_names,
    values_label,
)
from hmm_pyro.simulate import REFERENCE_PARAMS
from tests.plots.conftest import SYMBOLS


def _fit(method, attrs=None, draws=False):
    hmm = hp.HMM(3, hp.Categorical(5))
    params = REFERENCE_PARAMS
    if draws:
        params = {name: value.expand(1, 4, *value.shape) for name, value in params.items()}
    return hp.Fit.from_params(hmm, [[0, 1, 2, 3, 4]], params, method=method, attrs=attrs)


@pytest.mark.parametrize(
    ("method", "attrs", "draws", "expected"),
    [
        ("map", {"optimizer": "lbfgs"}, False, "point estimate (MAP, L-BFGS)"),
        ("map", {"optimizer": "adam"}, False, "point estimate (MAP, Adam)"),
        ("em", None, False, "point estimate (EM)"),
        ("viterbi_training", None, False, "point estimate (Viterbi training)"),
        ("point", None, False, "point estimate"),
        ("nuts", {"labels": "aligned"}, True, "posterior median, 90% interval (NUTS)"),
        (
            "svi",
            {"guide": "normal"},
            True,
            "approximate posterior median, 90% interval (SVI, normal guide)",
        ),
        ("point", {"labels": "aligned"}, True, "median, 90% interval of the draws"),
    ],
)
def test_estimate_label_says_what_the_fit_is(method, attrs, draws, expected):
    fit = _fit(method, attrs, draws)
    assert estimate_label(fit) == expected


def test_values_label():
    assert values_label(_fit("em"), "A") == "A at the point estimate (EM)"
    nuts = _fit("nuts", {"labels": "aligned"}, draws=True)
    assert values_label(nuts, "A") == "posterior mean A (NUTS)"


def test_names_come_from_the_coordinates(point_fit):
    assert entry_names(point_fit, "B") == ("symbol", SYMBOLS)
    assert symbol_names(point_fit) == SYMBOLS
    plain = _fit("em")
    assert entry_names(plain, "B") == ("symbol", ["0", "1", "2", "3", "4"])
    assert symbol_names(plain) is None
    gaussian = hp.Fit.from_params(
        hp.HMM(1, hp.Gaussian()),
        [[0.1, 0.5]],
        {
            "pi": REFERENCE_PARAMS["pi"][:1] * 3,
            "A": REFERENCE_PARAMS["A"][:1, :1] / 0.8,
            "mu": REFERENCE_PARAMS["pi"][:1],
            "sigma": REFERENCE_PARAMS["pi"][:1] * 3,
        },
        method="em",
    )
    assert entry_names(gaussian, "mu") == ("", [""])


def test_blank_names_are_quoted():
    assert [shown(name) for name in ("a", " ", "", " x", "x y", 3)] == [
        "a",
        "' '",
        "''",
        "' x'",
        "x y",
        "3",
    ]
