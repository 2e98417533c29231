"""The report object: flags as dataclasses, JSON, Markdown, str; plots; empty states."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from hmm_pyro import HMM, Categorical, simulate
from hmm_pyro.diagnostics import (
    DegeneracyReport,
    Flag,
    Remedy,
    diagnose,
    relabel,
    thresholds,
)
from hmm_pyro.labels.permutations import identity
from hmm_pyro.plots import plot_emissions, plot_relabel_traces, plot_state_distances
from tests.diagnostics.helpers import TRUTH, crafted_fit, noisy_draws, planted_fit, tensors


@pytest.fixture(scope="module")
def collapsed_report(workload_hmm, small_data):
    truth = {name: value.copy() for name, value in TRUTH.items()}
    truth["B"][2] = truth["B"][1]
    return diagnose(
        crafted_fit(
            workload_hmm, small_data, noisy_draws(truth, 2, 60, seed=1, concentration=3000)
        ),
        deep=False,
    )


def test_flag_fields_and_serialisation(collapsed_report):
    flag = collapsed_report.flag("emission_collapse")
    assert isinstance(flag, Flag)
    assert flag.threshold["distance"] == thresholds.COLLAPSE_DISTANCE
    assert all(isinstance(r, Remedy) for r in flag.remedies)
    as_dict = json.loads(json.dumps(collapsed_report.to_dict()))
    assert as_dict["ok"] is False
    first = as_dict["flags"][0]
    assert set(first) == {
        "kind",
        "severity",
        "summary",
        "measured",
        "threshold",
        "cause",
        "cause_kind",
        "remedies",
        "states",
    }
    assert first["remedies"][0]["remedy"] == "fewer states"
    assert first["cause_kind"] == "not established"  # deep=False: no refits to tell
    assert json.loads(collapsed_report.to_json())["context"]["states"] == 3


def test_markdown_and_text(collapsed_report):
    markdown = collapsed_report.to_markdown()
    assert markdown.startswith("# Degeneracy report")
    assert "| `emission_collapse` | error |" in markdown
    assert "**Cause:**" in markdown and "*fewer states*" in markdown
    text = str(collapsed_report)
    assert text.startswith("DegeneracyReport: ")
    assert "[error] emission_collapse" in text


def test_clean_report_is_ok_and_fit_method_delegates(workload_hmm, small_data):
    fit = planted_fit(workload_hmm, small_data, identity(3, (4, 300)))
    report = diagnose(fit, deep=False)
    assert isinstance(report, DegeneracyReport)
    assert report.ok and report.flags == () and report.kinds == ()
    assert "No degeneracy found" in report.to_markdown()
    assert report.measurements["summary"]["relabel_agreement"] == 1.0


def test_empty_state_is_flagged(workload_hmm):
    # Data from states 0 and 1 only; the draws give state 2 (almost) no way in.
    truth = {name: value.copy() for name, value in TRUTH.items()}
    truth["pi"] = np.array([0.5, 0.5 - 1e-6, 1e-6])
    truth["A"] = np.array([[0.9, 0.1 - 1e-6, 1e-6], [0.1 - 1e-6, 0.9, 1e-6], [0.3, 0.3, 0.4]])
    two_state = {"pi": truth["pi"][:2] / truth["pi"][:2].sum(), "B": TRUTH["B"][:2]}
    two_state["A"] = truth["A"][:2, :2] / truth["A"][:2, :2].sum(1, keepdims=True)
    data, _ = simulate(HMM(2, Categorical(5)), tensors(two_state), [200] * 5, seed=3)
    fit = crafted_fit(workload_hmm, data, noisy_draws(truth, 2, 60, seed=2, concentration=1e9))
    report = diagnose(fit, deep=False)
    flag = report.flag("empty_states")
    assert flag is not None and flag.states == (2,)
    assert flag.measured["mean_occupancy"][2] < 1e-3
    assert flag.threshold["min_expected_steps"] == 4  # V - 1 free emission parameters
    assert flag.remedies[0] is Remedy.FEWER_STATES
    assert report.measurements["summary"]["effective_num_states"] == 2


def test_bad_arguments(workload_hmm, small_data):
    fit = planted_fit(workload_hmm, small_data, identity(3, (1, 2)))
    with pytest.raises(ValueError, match="max_draws"):
        diagnose(fit, max_draws=0, deep=False)
    with pytest.raises(ValueError, match="distance"):
        diagnose(fit, distance=1.5, deep=False)


def test_plots_return_their_axes(workload_hmm, small_data):
    planted = identity(3, (2, 40))
    planted[1, 20:] = [1, 0, 2]
    fit = planted_fit(workload_hmm, small_data, planted)
    relabelled = relabel(fit)
    ax = plot_emissions(relabelled)
    assert len(ax.get_xticklabels()) == 5 and len(ax.containers) == 3
    _, given = plt.subplots()
    assert plot_state_distances(fit, ax=given) is given
    assert len(given.patches) >= 4  # three pairs and the prior
    axes = plot_relabel_traces(fit, relabelled)
    assert len(axes) == 2 and len(axes[1].lines) == 3 + 1  # three states, one chain boundary
    after = axes[1].lines[0].get_ydata()
    assert np.ptp(after) < np.ptp(axes[0].lines[0].get_ydata())  # the swap is gone
    with pytest.raises(ValueError, match="param"):
        plot_relabel_traces(fit, relabelled, param="mu")
    plt.close("all")
