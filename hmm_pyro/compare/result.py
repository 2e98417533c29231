"""The result of :func:`~hmm_pyro.compare.compare_priors`: :class:`PriorComparison`.

The comparison's table, emission summaries, sensitivities and degeneracy reports as text, JSON,
Markdown and files. Its plots (and the PNG files of them) are in :mod:`hmm_pyro.plots.compare`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hmm_pyro._report import TableReport, markdown_table
from hmm_pyro.compare.worker import PSENS_THRESHOLD, STATE_ORDER_NOTE
from hmm_pyro.diagnostics import DegeneracyReport
from hmm_pyro.fit import Fit
from hmm_pyro.model import HMM
from hmm_pyro.priors import Prior, describe_prior

__all__ = ["PriorComparison"]


@dataclass
class PriorComparison(TableReport):
    """The result of :func:`compare_priors`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per prior setting (index ``setting``); columns described in
        :func:`compare_priors`.
    emissions : pandas.DataFrame
        Posterior summaries of every emission entry: ``setting, param, state, index, mean, sd,
        median, q05, q95`` (relabelled; states ordered by emission location).
    sensitivity : pandas.DataFrame
        Power-scaling sensitivity of every emission entry: ``setting, param, state, index,
        prior, likelihood, diagnosis``.
    pointwise : pandas.DataFrame
        Pointwise ELPD contributions (rows: sequences, or sequence x time-block units; one
        column per setting).
    fits : dict of Fit
        The fit of each setting to all the data.
    reports : dict of DegeneracyReport
        ``diagnose`` of each fit (of its relabelled draws when its chains switched labels).
    min_distance : dict of numpy.ndarray
        Smallest pairwise squared Hellinger distance of every posterior draw, per setting.
    priors : dict of Prior
        The settings.
    hmm : HMM
        The model (its own prior is replaced by each setting).
    method : str
        ``"nuts"``, ``"svi"`` or ``"map"``.
    elpd_method : str
        How the ELPD was estimated (see :func:`compare_priors`).
    seed : int
        The master seed.
    notes : dict of list of str
        Warnings raised while analysing each setting (Pareto k, relabelling, ...).

    See Also
    --------
    hmm_pyro.plots.plot_comparison : The plots of a comparison.
    hmm_pyro.plots.save_comparison : :meth:`save` and the plots as PNG files.
    """

    table: pd.DataFrame
    emissions: pd.DataFrame
    sensitivity: pd.DataFrame
    pointwise: pd.DataFrame
    fits: dict[str, Fit]
    reports: dict[str, DegeneracyReport]
    min_distance: dict[str, np.ndarray]
    priors: dict[str, Prior]
    hmm: HMM
    method: str
    elpd_method: str
    seed: int
    notes: dict[str, list[str]] = field(default_factory=dict)

    # ------------------------------------------------------------------ text
    def __str__(self) -> str:
        return self.format_table()

    def format_table(self) -> str:
        """The table as fixed-width text (what the CLI prints)."""
        shown = self.table.drop(columns=["elpd_method"])
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            text = shown.to_string(float_format=_format_number)
        return f"ELPD: {self.elpd_method}\n{text}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict: settings, table, emissions, sensitivity and degeneracy reports."""
        table = self.table.reset_index()
        return {
            "method": self.method,
            "elpd_method": self.elpd_method,
            "seed": self.seed,
            "model": self.hmm.to_config(),
            "priors": {name: prior.to_dict() for name, prior in self.priors.items()},
            "table": json.loads(table.to_json(orient="records")),
            "emissions": json.loads(self.emissions.to_json(orient="records")),
            "sensitivity": json.loads(self.sensitivity.to_json(orient="records")),
            "reports": {name: report.to_dict() for name, report in self.reports.items()},
            "notes": self.notes,
        }

    def to_markdown(self) -> str:
        """A Markdown report: the table, the flags and emission summaries of every setting."""
        lines = [
            "# Prior comparison",
            "",
            f"Model: {self.hmm.num_states} states, {self.hmm.emission!r}; inference: "
            f"{self.method}; seed {self.seed}.",
            "",
            f"ELPD: {self.elpd_method}. Higher is better; `elpd_diff` is relative to the best "
            "setting, with the standard error of the paired difference.",
            "",
            markdown_table(self.table.drop(columns=["elpd_method"]).reset_index(), 4),
            "",
            "Sensitivity: power-scaling of the emission prior (`psens_prior`) and of the "
            f"likelihood (`psens_likelihood`), largest over emission entries; >= "
            f"{PSENS_THRESHOLD} on both is a prior-data conflict, on the prior only a "
            "prior-dominated posterior. A flat Dirichlet(1) prior has zero prior sensitivity by "
            "construction (power-scaling a constant density changes nothing).",
            "",
        ]
        for name in self.table.index:
            report = self.reports[name]
            lines += [f"## `{name}`: {describe_prior(self.priors[name])}", ""]
            if self.table.loc[name, "label_switching"]:
                lines += [
                    "The chains used different labellings of the states (label switching); "
                    "they were relabelled, and the checks below ran on the relabelled draws.",
                    "",
                ]
            if report.ok:
                lines.append("diagnose: no degeneracy found.")
            for flag in report.flags:
                lines.append(f"- `{flag.kind}` ({flag.severity}): {flag.summary}")
            lines.append("")
            lines.append(f"Emission posterior ({STATE_ORDER_NOTE}):")
            lines.append("")
            frame = self.emissions[self.emissions["setting"] == name].drop(columns="setting")
            lines.append(markdown_table(frame, 4))
            lines.append("")
            if self.notes.get(name):
                lines += ["Notes:", ""] + [f"- {note}" for note in self.notes[name]] + [""]
        return "\n".join(lines)

    # ------------------------------------------------------------------ files
    def save(self, out_dir: str | Path, prefix: str = "compare") -> dict[str, Path]:
        """Write the table (CSV) and the report (JSON, Markdown), atomically.

        :func:`hmm_pyro.plots.save_comparison` writes these files and the plots (PNG).

        Parameters
        ----------
        out_dir : str or pathlib.Path
            Folder (created if needed).
        prefix : str
            The files are ``{prefix}.csv``, ``{prefix}.json`` and ``{prefix}.md``.

        Returns
        -------
        dict of pathlib.Path
            ``{"csv", "json", "markdown"}``.
        """
        return self._write_reports(out_dir, prefix)


def _format_number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
