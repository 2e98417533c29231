"""No temporal structure: the HMM against the i.i.d. mixture of its emission laws."""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import poisson

from hmm_pyro import HMM, Poisson, simulate
from hmm_pyro.diagnostics import Remedy
from hmm_pyro.diagnostics.refits import point_fit
from hmm_pyro.diagnostics.temporal import mixture_fit, temporal_flag, temporal_test
from tests.diagnostics.helpers import tensors


def _truth(stay):
    return {
        "pi": np.array([0.5, 0.5]),
        "A": np.array([[stay, 1 - stay], [1 - stay, stay]]),
        "rate": np.array([2.0, 10.0]),
    }


@pytest.fixture(scope="module")
def iid():
    hmm = HMM(2, Poisson())
    data, _ = simulate(hmm, tensors(_truth(0.5)), [300], seed=0)
    return data, point_fit(hmm, data, tensors(_truth(0.6)))


def test_mixture_likelihood_matches_an_independent_reference(iid):
    data, point = iid
    params, log_lik = mixture_fit(point, data)
    weights = params["pi"].numpy()
    np.testing.assert_allclose(params["A"].numpy(), np.stack([weights, weights]))
    counts = data.values.numpy().ravel()
    rates = params["rate"].numpy().ravel()
    reference = logsumexp(np.log(weights) + poisson.logpmf(counts[:, None], rates), axis=1).sum()
    assert log_lik == pytest.approx(reference, abs=1e-8)
    # the mixture is fitted, not just the HMM's laws with tied rows
    assert log_lik >= point.log_likelihood - 2.0


def test_iid_data_are_flagged_and_sticky_data_are_not(iid):
    """i.i.d. labels: the likelihood-ratio statistic is chi-squared on 2 df, far below BIC's
    penalty 2 log(300) = 11.4 (flagged unless it exceeds it: probability 0.003). Sticky states
    (stay 0.9): the statistic is in the hundreds."""
    data, point = iid
    test = temporal_test(point, data)
    assert test.no_structure and test.df == 2
    flag = temporal_flag(test, 2)
    assert flag is not None and flag.severity == "warning"
    assert flag.remedies[0] is Remedy.MIXTURE and flag.cause_kind == "no temporal structure"
    assert f"BIC {test.bic[1]:.1f}" in flag.summary and f"p = {test.p_value:.2g}" in flag.summary
    hmm = HMM(2, Poisson())
    sticky, _ = simulate(hmm, tensors(_truth(0.9)), [300], seed=0)
    other = temporal_test(point_fit(hmm, sticky, tensors(_truth(0.8))), sticky)
    assert not other.no_structure and other.statistic > 100
    assert temporal_flag(other, 2) is None
