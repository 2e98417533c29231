"""What ``hmm-pyro fit`` prints: compact estimates (large ones summarised) and fit statistics."""

from __future__ import annotations

import numpy as np
import torch

import hmm_pyro as hp
from hmm_pyro.cli._summary import (
    MAX_ROWS,
    TOP_ENTRIES,
    _matrix_lines,
    convergence_lines,
    estimate_lines,
    summary_lines,
)
from hmm_pyro.fit import fit_statistics


def _point(hmm, data, **attrs):
    return hp.Fit.from_params(hmm, data, hmm.sample_prior(seed=0), method="em", attrs=attrs)


def test_a_large_model_is_summarised_not_dumped():
    """20 states x 27 symbols print as many lines as 12 states would (and as 300 do: the
    issue's 828 KB); 20 keeps the fit's 500 prior draws cheap to build."""
    hmm = hp.HMM(20, hp.Categorical(27))
    fit = _point(hmm, hp.Sequences(np.arange(54).reshape(2, 27) % 27))
    lines = estimate_lines(fit, fit.posterior_mean())
    assert len(lines) == 1 + 1 + 2 * (1 + 1 + MAX_ROWS + 1) and len("\n".join(lines)) < 3000
    assert lines.count(f"  ... {20 - MAX_ROWS} more states") == 2  # A and B
    assert f"  27 entries per state; the {TOP_ENTRIES} largest:" in lines
    assert lines[1].startswith(f"  20 states; the {TOP_ENTRIES} largest: state ")
    row = next(line for line in lines if line.strip().startswith("state 0:") and "'" not in line)
    top = torch.argsort(fit.posterior_mean()["A"][0], descending=True, stable=True)[:TOP_ENTRIES]
    assert [int(token) for token in row.split(":")[1].split()[::2]] == top.tolist()


def test_small_tables_in_full_with_named_symbols():
    hmm = hp.HMM(2, hp.Categorical(3, symbols=["a", "b", " "]))
    fit = _point(hmm, hp.Sequences([[0, 1, 2, 2]], symbols=["a", "b", " "]))
    lines = estimate_lines(fit, fit.posterior_mean())
    start = lines.index("B =")
    assert lines[start + 1].split() == ["state", "'a'", "'b'", "'", "'"]  # the space, quoted
    row = lines[start + 2].split()
    B = fit.posterior_mean()["B"]
    assert row == ["0", *(f"{value:.4f}" for value in B[0].tolist())]


def test_text_rows_list_the_top_symbols_by_name():
    names = [chr(ord("a") + index) for index in range(26)]
    hmm = hp.HMM(2, hp.Categorical(26, symbols=names))
    fit = _point(hmm, hp.Sequences([list(range(26))], symbols=names))
    lines = estimate_lines(fit, fit.posterior_mean())
    B = fit.posterior_mean()["B"]
    for state in range(2):
        line = next(line for line in lines if line.strip().startswith(f"state {state}:"))
        top = [names[i] for i in torch.argsort(B[state], descending=True, stable=True)[:5]]
        assert line.split(":", 1)[1].split()[::2] == [repr(name) for name in top]


def test_statistics_block_of_a_point_and_of_draws():
    hmm = hp.HMM(2, hp.Poisson())
    data = hp.Sequences([[1.0, 4.0, 2.0, 9.0]])
    point = _point(hmm, data, seed=3, converged=[True, False], best_restart=0)
    stats = fit_statistics(point)
    lines = summary_lines(point, 1.25)
    assert lines[0] == "fit: em (point estimate): seed=3, converged 1/2, best restart 0"
    assert f"log likelihood   {stats.log_likelihood:.4f}" in lines
    assert f"AIC              {stats.aic:.4f}" in lines and lines[-1] == "elapsed          1.2 s"
    draws = {
        name: value[0, 0].expand(2, 5, *value.shape[2:]) for name, value in point.draws().items()
    }
    draws["rate"] = draws["rate"] + torch.arange(10.0, dtype=torch.float64).reshape(2, 5, 1)
    sampled = hp.Fit.from_params(hmm, data, draws, method="nuts", attrs={"labels": "aligned"})
    text = "\n".join(summary_lines(sampled, 2.0) + convergence_lines(sampled))
    assert "(mean over draws; sd " in text and "AIC" not in text
    assert "R-hat max " in text and "ESS bulk min " in text


def test_a_wide_row_shows_its_first_columns():
    wide = np.arange(2 * 12, dtype=float).reshape(2, 12)
    lines = _matrix_lines(wide, [str(i) for i in range(12)], probabilities=False)
    assert lines[0].split()[-2:] == ["7", "..."] and lines[1].endswith("(4 more)")


def test_a_partial_log_likelihood_says_which_sequences_it_covers():
    hmm = hp.HMM(2, hp.Poisson())
    fit = _point(hmm, hp.Sequences([[1.0, 4.0]]), stream={"num_sequences": 10})
    text = "\n".join(summary_lines(fit, 0.5))
    assert "(the first 1 of 10 sequences)" in text and "AIC" not in text and "BIC" not in text
