"""The predictive-check plot: one row per statistic, failing ones red."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from hmm_pyro.diagnostics.predictive import PredictiveCheck, PredictiveChecks
from hmm_pyro.plots import plot_predictive_checks

matplotlib.use("Agg")


def test_one_row_per_statistic_and_failures_in_red():
    replicated = np.linspace(-1.0, 1.0, 40)
    checks = PredictiveChecks(
        checks=(
            PredictiveCheck("sd", "marginal", np.full(40, 0.1), replicated, adjusted_p=1.0),
            PredictiveCheck("kurtosis", "marginal", np.full(40, 9.0), replicated, 1e-9),
        ),
        replicates=40,
        draws=1,
    )
    ax = plot_predictive_checks(checks)
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert labels == ["sd (p 1)", "kurtosis (p 1e-09)"]
    diamonds = [c for c in ax.collections if c.get_offsets().shape[0] == 1]
    colours = [tuple(c.get_facecolor()[0][:3]) for c in diamonds]
    assert colours[0] != colours[1]  # the failing statistic stands out
    assert diamonds[1].get_offsets()[0, 0] > 10  # 9 is ~15 replicate sds above their mean
    assert ax.get_title().startswith("plug-in predictive checks, 40 replicates")
    plt.close(ax.figure)
    with pytest.raises(TypeError, match="checks"):
        plot_predictive_checks({"sd": 1.0})
