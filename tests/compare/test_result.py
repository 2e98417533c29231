"""PriorComparison: emission summaries, JSON, Markdown, files and plots."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hmm_pyro.compare import PriorComparison
from hmm_pyro.plots import plot_comparison, save_comparison
from tests.compare.helpers import PRIORS


@pytest.mark.xdist_group("compare_nuts")
def test_nuts_comparison_details(nuts_comparison, tmp_path):
    comparison = nuts_comparison
    assert isinstance(comparison, PriorComparison)
    assert set(comparison.fits) == set(PRIORS)
    assert comparison.fits["strong"].hmm.prior == PRIORS["strong"]
    # Emission summaries: every entry of every setting, states in canonical order.
    emissions = comparison.emissions
    assert len(emissions) == 3 * 3 * 5
    flat = emissions[emissions["setting"] == "flat"]
    location = flat.groupby("state").apply(
        lambda rows: float((rows["mean"] * rows["index"]).sum()), include_groups=False
    )
    assert location.is_monotonic_increasing
    assert set(comparison.sensitivity["diagnosis"]) <= {
        "-",
        "prior-dominated",
        "prior-data conflict",
    }
    assert comparison.pointwise.shape == (6, 3)
    assert json.loads(comparison.to_json())["elpd_method"] == comparison.elpd_method
    markdown = comparison.to_markdown()
    assert "## `strong`: B=100" in markdown and "emission_collapse" in markdown
    paths = save_comparison(comparison, tmp_path, prefix="cmp")
    for key in ("csv", "json", "markdown", "elpd", "separation", "sensitivity", "emissions"):
        assert paths[key].stat().st_size > 0
    assert list(pd.read_csv(paths["csv"], index_col=0).index) == list(PRIORS)
    axes = plot_comparison(comparison)
    assert axes.shape == (2, 2)
