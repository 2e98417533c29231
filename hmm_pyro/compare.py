"""Compare prior settings on the same model and data: predictive fit, degeneracy, sensitivity.

:func:`compare_priors` fits one HMM under several priors and tabulates, per setting:

* the expected log predictive density (ELPD) with its standard error: PSIS-LOO over whole
  sequences when there are enough sequences and posterior draws, otherwise K-fold
  cross-validation with refits (whole sequences per fold, or, with fewer sequences than folds
  such as one long sequence, contiguous time blocks held out as missing observations);
* the flags of :func:`hmm_pyro.diagnose` and the effective number of states;
* the smallest pairwise squared Hellinger distance between the states' emission laws;
* power-scaling sensitivity (``arviz.psens``) of the emission parameters to the *emission*
  prior and to the likelihood, with priorsense's reading of the two;
* posterior summaries of the emission parameters (relabelled, states in a canonical order).

Settings run in parallel worker processes, each with its chains run one after the other.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from hmm_pyro._io import atomic_path, write_text_atomic
from hmm_pyro._parallel import available_cores, check_client, run_tasks
from hmm_pyro._random import resolve_seed
from hmm_pyro._validation import check_choice, check_int, check_positive, describe
from hmm_pyro.data import Sequences
from hmm_pyro.diagnostics import DegeneracyReport, diagnose, relabel
from hmm_pyro.fit import Fit
from hmm_pyro.fit.inference_data import az
from hmm_pyro.inference.nuts import fit_nuts
from hmm_pyro.inference.svi import fit_svi
from hmm_pyro.model import HMM
from hmm_pyro.priors import Prior
from hmm_pyro.starts import derive_seeds, min_separation

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "COMPARE_METHODS",
    "ELPD_METHODS",
    "MIN_LOO_SEQUENCES",
    "PSENS_THRESHOLD",
    "PriorComparison",
    "compare_priors",
    "describe_prior",
]

COMPARE_METHODS = ("nuts", "svi")
ELPD_METHODS = ("auto", "loo", "kfold")
MIN_LOO_SEQUENCES = 5
"""Fewest sequences for which ``elpd="auto"`` uses PSIS-LOO over sequences; with fewer, leaving
one out removes a large share of the data and the importance weights break down (Pareto k)."""
PSENS_THRESHOLD = 0.05
"""Power-scaling sensitivity at or above 0.05 counts as sensitive (priorsense's default
``sensitivity_threshold``; Kallioinen et al. 2024). Its noise floor with 1000 draws is about
0.02-0.03, so smaller values are not distinguishable from zero."""
HIGH_PARETO_K = 0.7
"""Pareto k above 0.7: the PSIS estimate for that sequence is unreliable (Vehtari et al. 2024)."""

_STATE_ORDER_NOTE = (
    "states are relabelled (Stephens) and then ordered by their emission location (mean symbol "
    "index, mean or rate), so that state k means the same across settings"
)


# ---------------------------------------------------------------------------- helpers
def describe_prior(prior: Prior) -> str:
    """Compact text of the hyperparameters that differ from ``Prior()``.

    Parameters
    ----------
    prior : Prior
        The prior.

    Returns
    -------
    str
        For example ``"B=100, stickiness=5"``, or ``"defaults"``.

    Examples
    --------
    >>> describe_prior(Prior(B=100.0, stickiness=5.0))
    'B=100, stickiness=5'
    """
    default = Prior().to_dict()
    parts = []
    for key, value in prior.to_dict().items():
        if value != default[key]:
            text = json.dumps(value) if isinstance(value, list) else f"{value:g}"
            parts.append(f"{key}={text}")
    return ", ".join(parts) if parts else "defaults"


def _logmeanexp(values: np.ndarray, axis: int = 0) -> np.ndarray:
    peak = np.max(values, axis=axis, keepdims=True)
    peak = np.where(np.isfinite(peak), peak, 0.0)
    mean = np.mean(np.exp(values - peak), axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        return np.squeeze(np.log(mean) + peak, axis=axis)


def _sequences(values: np.ndarray, lengths: np.ndarray) -> Sequences:
    return Sequences(values, lengths=lengths, dim=values.shape[-1])


def _standard_error(pointwise: np.ndarray) -> float:
    """``sqrt(n var(pointwise))``, as ``arviz.loo`` computes the SE of a sum of pointwise terms."""
    return float(math.sqrt(len(pointwise) * np.var(pointwise)))


def _emission_location(hmm: HMM, draws: dict[str, np.ndarray]) -> np.ndarray:
    """One scalar per state (posterior mean) used to order states canonically."""
    family = hmm.emission.family
    if family == "categorical":
        symbols = np.arange(hmm.emission.num_symbols)
        value = (draws["B"] * symbols).sum(-1)
    elif family == "gaussian":
        value = draws["mu"]
    else:
        value = draws["rate"]
    value = value.reshape(value.shape[0], hmm.num_states, -1)[..., 0]
    return value.mean(0)


def _flat(idata: az.InferenceData, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    posterior = idata.posterior
    out = {}
    for name in names:
        value = np.asarray(posterior[name].values)
        out[name] = value.reshape(-1, *value.shape[2:])
    return out


def _entries(hmm: HMM, values: dict[str, np.ndarray]) -> list[tuple[str, int, int, np.ndarray]]:
    """``(param, state, index, array over the leading axis)`` for every emission entry."""
    rows = []
    for name in hmm.emission.param_names:
        value = values[name]
        value = value.reshape(*value.shape[:-1], -1) if value.ndim > 2 else value[..., None]
        for state in range(hmm.num_states):
            for index in range(value.shape[-1]):
                rows.append((name, state, index, value[:, state, index]))
    return rows


def _diagnosis(prior: float, likelihood: float) -> str:
    """Read prior and likelihood power-scaling sensitivity."""
    if not (np.isfinite(prior) and np.isfinite(likelihood)):
        return "n/a"
    if prior >= PSENS_THRESHOLD and likelihood >= PSENS_THRESHOLD:
        return "prior-data conflict"
    if prior >= PSENS_THRESHOLD:
        return "prior-dominated"
    return "-"


# ---------------------------------------------------------------------------- worker side
@dataclass(frozen=True)
class _Task:
    index: int
    setting: str
    fold: int  # -1: the fit on all the data
    hmm_config: dict[str, Any]
    values: np.ndarray  # training data (N, T, D), NaN at missing or held-out steps
    lengths: np.ndarray
    test_values: np.ndarray | None
    test_lengths: np.ndarray | None
    blocked: bool  # held-out density = log p(test) - log p(train) per sequence
    method: str
    seed: int
    runner_kwargs: dict[str, Any]
    loo: bool
    psens_delta: float


@dataclass(frozen=True)
class _FoldResult:
    held_out: np.ndarray  # (S, N_test) log p(held-out part | theta_s)
    seconds: float


@dataclass(frozen=True)
class _SettingResult:
    idata: az.InferenceData
    relabelled: az.InferenceData | None
    report: DegeneracyReport
    switching: bool
    loo_pointwise: np.ndarray | None
    pareto_k: np.ndarray | None
    p_loo: float
    sensitivity: list[dict[str, Any]]
    emissions: list[dict[str, Any]]
    min_distance: np.ndarray
    order: list[int]
    notes: list[str]
    seconds: float


def _fit(hmm: HMM, data: Sequences, method: str, seed: int, kwargs: dict[str, Any]) -> Fit:
    options = {"progress": False, **kwargs}
    if method == "nuts":
        options.setdefault("parallel", False)
        return fit_nuts(hmm, data, seed=seed, **options)
    return fit_svi(hmm, data, seed=seed, **options)


def _record(caught: list[warnings.WarningMessage], notes: list[str], where: str) -> None:
    for item in caught:
        text = f"{where}: {item.category.__name__}: {str(item.message).splitlines()[0]}"
        if text not in notes:
            notes.append(text)


def _psens(
    hmm: HMM, values: az.InferenceData, weights_from: az.InferenceData, delta: float
) -> dict[str, np.ndarray]:
    """Emission-prior and likelihood power-scaling sensitivity of every emission entry.

    ``values`` supplies the (relabelled) posterior; ``weights_from`` the log prior and log
    likelihood of the draws as sampled (importance weights must use the densities the draws
    were drawn from).
    """
    names = list(hmm.emission.param_names)
    data = az.InferenceData(
        posterior=values.posterior[names],
        log_prior=weights_from.log_prior,
        log_likelihood=weights_from.log_likelihood,
    )
    result = {}
    for component in ("prior", "likelihood"):
        kwargs: dict[str, Any] = {"component": component, "var_names": names, "delta": delta}
        if component == "prior":
            kwargs["component_var_names"] = names  # the emission prior only (degeneracy.md 4.5)
        value = az.psens(data, **kwargs)
        if isinstance(value, xr.DataArray):  # ArviZ 0.23 returns a DataArray for one variable
            value = value.to_dataset(name=names[0])
        result[component] = {name: np.asarray(value[name].values) for name in names}
    return result


def _analyse(fit: Fit, task: _Task, began: float) -> _SettingResult:
    """Everything measured on the fit to all the data."""
    hmm = fit.hmm
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = diagnose(fit)
    _record(caught, notes, "diagnose")
    num_draws = fit.num_chains * fit.num_draws
    relabelled = None
    if hmm.num_states > 1 and num_draws > 1:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            relabelled = relabel(fit)
        _record(caught, notes, "relabel")
    switching = report.flag("label_switching") is not None
    if switching and relabelled is not None:
        # Label switching is a property of the run, not of the prior: report the rest of the
        # degeneracy checks on the relabelled draws.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = diagnose(relabelled)
        _record(caught, notes, "diagnose (relabelled)")
    source = relabelled if relabelled is not None else fit
    names = hmm.emission.param_names
    draws = _flat(source.idata, names)
    order = [int(state) for state in np.argsort(_emission_location(hmm, draws), kind="stable")]
    rank = {old: new for new, old in enumerate(order)}

    loo_pointwise = pareto_k = None
    p_loo = float("nan")
    if task.loo:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loo = az.loo(fit.idata, pointwise=True, var_name="y")
        _record(caught, notes, "loo")
        loo_pointwise = np.asarray(loo.loo_i.values, dtype=float)
        pareto_k = np.asarray(loo.pareto_k.values, dtype=float)
        p_loo = float(loo.p_loo)

    sensitivity: dict[str, dict[str, np.ndarray]] | None = None
    if num_draws > 1:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sensitivity = _psens(hmm, source.idata, fit.idata, task.psens_delta)
        _record(caught, notes, "psens")

    emissions, sens_rows = [], []
    for name, state, index, column in _entries(hmm, draws):
        emissions.append(
            {
                "setting": task.setting,
                "param": name,
                "state": rank[state],
                "index": index,
                "mean": float(np.mean(column)),
                "sd": float(np.std(column, ddof=1)) if column.size > 1 else float("nan"),
                "median": float(np.median(column)),
                "q05": float(np.quantile(column, 0.05)),
                "q95": float(np.quantile(column, 0.95)),
            }
        )
        prior = likelihood = float("nan")
        if sensitivity is not None:
            shape_prior = sensitivity["prior"][name].reshape(hmm.num_states, -1)
            shape_lik = sensitivity["likelihood"][name].reshape(hmm.num_states, -1)
            prior = float(shape_prior[state, index])
            likelihood = float(shape_lik[state, index])
        sens_rows.append(
            {
                "setting": task.setting,
                "param": name,
                "state": rank[state],
                "index": index,
                "prior": prior,
                "likelihood": likelihood,
                "diagnosis": _diagnosis(prior, likelihood),
            }
        )
    key = ["param", "state", "index"]
    emissions.sort(key=lambda row: [row[k] for k in key])
    sens_rows.sort(key=lambda row: [row[k] for k in key])
    distances = min_separation(hmm, fit.flat_draws()).numpy()
    return _SettingResult(
        idata=fit.idata,
        relabelled=None if relabelled is None else relabelled.idata,
        report=report,
        switching=switching,
        loo_pointwise=loo_pointwise,
        pareto_k=pareto_k,
        p_loo=p_loo,
        sensitivity=sens_rows,
        emissions=emissions,
        min_distance=np.asarray(distances, dtype=float).ravel(),
        order=order,
        notes=notes,
        seconds=time.perf_counter() - began,
    )


def _run_task(task: _Task, reporter: Any) -> _FoldResult | _SettingResult:
    """Fit one setting (and analyse it) or one cross-validation fold (module level: picklable)."""
    began = time.perf_counter()
    hmm = HMM.from_config(task.hmm_config)
    train = hmm.prepare_data(_sequences(task.values, task.lengths))
    fit = _fit(hmm, train, task.method, task.seed, task.runner_kwargs)
    if task.fold < 0:
        result: _FoldResult | _SettingResult = _analyse(fit, task, began)
    else:
        if task.test_values is None or task.test_lengths is None:
            raise ValueError(f"task: fold {task.fold} of {task.setting!r} has no test data")
        draws = fit.flat_draws()
        test = _sequences(task.test_values, task.test_lengths)
        held = hmm.log_likelihood(draws, test)
        if task.blocked:
            held = held - hmm.log_likelihood(draws, train)
        result = _FoldResult(held.detach().numpy(), time.perf_counter() - began)
    reporter.report(task.index, 1)
    return result


# ---------------------------------------------------------------------------- folds
@dataclass(frozen=True)
class _Folds:
    """Training and test data of each fold, and how test densities map to pointwise units."""

    kind: str  # "sequences" or "blocks"
    train: list[tuple[np.ndarray, np.ndarray]]
    test: list[tuple[np.ndarray, np.ndarray]]
    units: list[list[int]]  # fold f, test column j -> unit index
    num_units: int


def _make_folds(data: Sequences, folds: int) -> _Folds:
    values = data.values.numpy()
    lengths = data.lengths.numpy()
    num = data.num_sequences
    train, test, units = [], [], []
    if num >= folds:
        assignment = np.arange(num) % folds
        for fold in range(folds):
            keep, out = np.flatnonzero(assignment != fold), np.flatnonzero(assignment == fold)
            train.append(_trim(values[keep], lengths[keep]))
            test.append(_trim(values[out], lengths[out]))
            units.append([int(n) for n in out])
        return _Folds("sequences", train, test, units, num)
    short = int(lengths.min())
    if short < folds:
        raise ValueError(
            f"folds: expected at most {short} folds (time blocks of the shortest sequence), "
            f"got {folds}"
        )
    for fold in range(folds):
        masked = values.copy()
        for n in range(num):
            block = np.array_split(np.arange(int(lengths[n])), folds)[fold]
            masked[n, block] = np.nan
        train.append((masked, lengths))
        test.append((values, lengths))
        units.append([n * folds + fold for n in range(num)])
    return _Folds("blocks", train, test, units, num * folds)


def _trim(values: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.ascontiguousarray(values[:, : int(lengths.max())]), lengths


# ---------------------------------------------------------------------------- result
@dataclass
class PriorComparison:
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
        ``"nuts"`` or ``"svi"``.
    elpd_method : str
        How the ELPD was estimated (see :func:`compare_priors`).
    seed : int
        The master seed.
    notes : dict of list of str
        Warnings raised while analysing each setting (Pareto k, relabelling, ...).
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

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

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
            _markdown_table(self.table.drop(columns=["elpd_method"]).reset_index()),
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
            lines.append(f"Emission posterior ({_STATE_ORDER_NOTE}):")
            lines.append("")
            frame = self.emissions[self.emissions["setting"] == name].drop(columns="setting")
            lines.append(_markdown_table(frame))
            lines.append("")
            if self.notes.get(name):
                lines += ["Notes:", ""] + [f"- {note}" for note in self.notes[name]] + [""]
        return "\n".join(lines)

    # ------------------------------------------------------------------ plots
    def plot_elpd(self, ax: Axes | None = None) -> Axes:
        """ELPD of each setting with a 2-standard-error bar (higher is better).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on (default: a new figure).

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = _axes(ax, figsize=(6, 3.5))
        names = list(self.table.index)
        position = np.arange(len(names))
        table = self.table
        ax.errorbar(
            table["elpd"].to_numpy(),
            position,
            xerr=2 * table["elpd_se"].to_numpy(),
            fmt="o",
            color="k",
            capsize=3,
        )
        best = table["elpd"].max()
        ax.axvline(best, color="0.6", linestyle=":", linewidth=1)
        flagged = [not ok for ok in table["ok"]]
        for index, bad in enumerate(flagged):
            if bad:
                ax.plot(table["elpd"].iloc[index], index, "o", color="C3", markersize=9)
        ax.set_yticks(position)
        ax.set_yticklabels(names)
        ax.invert_yaxis()
        ax.set_xlabel("ELPD (+/- 2 SE); red: diagnose raised a flag")
        ax.set_title(f"Predictive fit per prior ({self.elpd_method.split(' (')[0]})")
        return ax

    def plot_sensitivity(self, ax: Axes | None = None) -> Axes:
        """Emission-prior against likelihood power-scaling sensitivity of every emission entry.

        The dashed lines mark :data:`PSENS_THRESHOLD`: upper right is a prior-data conflict,
        upper left a prior-dominated entry.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = _axes(ax, figsize=(5, 4))
        for colour, name in enumerate(self.table.index):
            rows = self.sensitivity[self.sensitivity["setting"] == name]
            ax.scatter(rows["likelihood"], rows["prior"], s=18, color=f"C{colour % 10}", label=name)
        ax.axhline(PSENS_THRESHOLD, color="0.5", linestyle="--", linewidth=1)
        ax.axvline(PSENS_THRESHOLD, color="0.5", linestyle="--", linewidth=1)
        ax.set_xlabel("likelihood sensitivity")
        ax.set_ylabel("emission-prior sensitivity")
        ax.set_title("Power-scaling sensitivity of emission entries")
        ax.legend(fontsize="small")
        return ax

    def plot_separation(self, ax: Axes | None = None) -> Axes:
        """Posterior of the smallest pairwise squared Hellinger distance, per setting.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from hmm_pyro.diagnostics.thresholds import COLLAPSE_DISTANCE

        ax = _axes(ax, figsize=(6, 3.5))
        names = list(self.table.index)
        data = [self.min_distance[name] for name in names]
        ax.boxplot(data, orientation="horizontal", whis=(5, 95), showfliers=False)
        ax.set_yticks(np.arange(1, len(names) + 1))
        ax.set_yticklabels(names)
        ax.invert_yaxis()
        ax.axvline(
            COLLAPSE_DISTANCE, color="C3", linewidth=1, label=f"collapse {COLLAPSE_DISTANCE:g}"
        )
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel("smallest pairwise squared Hellinger distance (box: 25-75%, whiskers 5-95%)")
        ax.set_title("How distinct are the states?")
        ax.legend(fontsize="small", loc="lower right")
        return ax

    def plot_emissions(self, ax: Axes | None = None) -> Axes:
        """Posterior median and 90% interval of every emission entry, one series per setting.

        States are relabelled and ordered by emission location, so state ``k`` is comparable
        across settings.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on.

        Returns
        -------
        matplotlib.axes.Axes
        """
        ax = _axes(ax, figsize=(8, 3.5))
        names = list(self.table.index)
        first = self.emissions[self.emissions["setting"] == names[0]]
        labels = [
            f"{row.param}[{row.state}]"
            if self.hmm.emission.family != "categorical"
            else f"{row.state}:{row.index}"
            for row in first.itertuples()
        ]
        position = np.arange(len(labels))
        width = 0.7 / len(names)
        for colour, name in enumerate(names):
            rows = self.emissions[self.emissions["setting"] == name]
            x = position - 0.35 + (colour + 0.5) * width
            median = rows["median"].to_numpy()
            ax.errorbar(
                x,
                median,
                yerr=[median - rows["q05"].to_numpy(), rows["q95"].to_numpy() - median],
                fmt="o",
                markersize=3,
                capsize=1.5,
                color=f"C{colour % 10}",
                label=name,
            )
        ax.set_xticks(position)
        ax.set_xticklabels(labels, fontsize="x-small", rotation=90)
        if self.hmm.emission.family == "categorical":
            ax.set_xlabel("state:symbol")
        ax.set_ylabel("posterior median, 90% interval")
        ax.set_title("Emission parameters per prior setting")
        ax.legend(fontsize="small")
        return ax

    def plot(self, ax: Any = None) -> Any:
        """All four plots on a 2 x 2 grid.

        Parameters
        ----------
        ax : array of four matplotlib.axes.Axes, optional
            Axes to draw on (default: a new 12 x 8 inch figure).

        Returns
        -------
        numpy.ndarray of matplotlib.axes.Axes
        """
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(2, 2, figsize=(13, 8), constrained_layout=True)
        axes = np.asarray(ax).ravel()
        if axes.size != 4:
            raise ValueError(f"ax: expected four axes, got {axes.size}")
        self.plot_elpd(axes[0])
        self.plot_separation(axes[1])
        self.plot_sensitivity(axes[2])
        self.plot_emissions(axes[3])
        return np.asarray(ax)

    # ------------------------------------------------------------------ files
    def save(self, out_dir: str | Path, prefix: str = "compare") -> dict[str, Path]:
        """Write the table (CSV), the report (JSON, Markdown) and the plots (PNG).

        Parameters
        ----------
        out_dir : str or pathlib.Path
            Folder (created if needed).
        prefix : str
            Start of every file name.

        Returns
        -------
        dict of pathlib.Path
            ``{"csv", "json", "markdown", "elpd", "separation", "sensitivity", "emissions"}``.
        """
        import matplotlib.pyplot as plt

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {
            "csv": out_dir / f"{prefix}.csv",
            "json": out_dir / f"{prefix}.json",
            "markdown": out_dir / f"{prefix}.md",
        }
        with atomic_path(paths["csv"]) as temporary:
            self.table.to_csv(temporary)
        write_text_atomic(paths["json"], self.to_json() + "\n")
        write_text_atomic(paths["markdown"], self.to_markdown() + "\n")
        for kind in ("elpd", "separation", "sensitivity", "emissions"):
            ax = getattr(self, f"plot_{kind}")()
            figure = ax.figure
            figure.tight_layout()
            paths[kind] = out_dir / f"{prefix}_{kind}.png"
            with atomic_path(paths[kind]) as temporary:
                figure.savefig(temporary, dpi=110)
            plt.close(figure)
        return paths


def _format_number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"


def _axes(ax: Axes | None, **figure: Any) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(**figure)
    return ax


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return "nan" if not np.isfinite(value) else f"{value:.4g}"
        return str(value).replace("|", "/")

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(False)]
    return "\n".join([header, rule, *body])


# ---------------------------------------------------------------------------- main
def _check_priors(priors: Any) -> dict[str, Prior]:
    if not isinstance(priors, Mapping) or not priors:
        raise TypeError(
            "priors: expected a non-empty dict {name: Prior(...)}, got " + describe(priors)
        )
    checked = {}
    for name, prior in priors.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"priors: expected non-empty string names, got {name!r}")
        if isinstance(prior, Mapping):
            prior = Prior(**prior)
        if not isinstance(prior, Prior):
            raise TypeError(
                f"priors[{name!r}]: expected a hmm_pyro.Prior (or a dict of its fields), "
                f"got {describe(prior)}"
            )
        checked[name] = prior
    return checked


def _elpd_description(elpd: str, folds: _Folds | None, folds_count: int, point: bool) -> str:
    if elpd == "loo" or folds is None:
        return "PSIS-LOO over sequences (az.loo on the per-sequence log likelihood)"
    plug = "; MAP plug-in predictive density" if point else ""
    if folds.kind == "sequences":
        return f"{folds_count}-fold CV over whole sequences (refits{plug})"
    return (
        f"{folds_count}-fold blocked CV: contiguous time blocks held out as missing "
        f"observations, log p(block | rest) (refits{plug})"
    )


def compare_priors(
    hmm: HMM,
    data: Any,
    priors: Mapping[str, Prior],
    method: str = "nuts",
    seed: int | None = 0,
    elpd: str = "auto",
    folds: int = 5,
    parallel: bool | None = None,
    progress: bool = False,
    psens_delta: float = 0.01,
    client: Any = None,
    **runner_kwargs: Any,
) -> PriorComparison:
    """Fit one HMM under several priors and compare predictive fit, degeneracy and sensitivity.

    Parameters
    ----------
    hmm : HMM
        The model; its own prior is replaced by each setting (``hmm.with_prior``).
    data : Sequences or array-like
        The observations.
    priors : dict of Prior
        ``{name: Prior(...)}``; a dict of ``Prior`` fields is accepted too.
    method : {"nuts", "svi"}
        Runner: :func:`hmm_pyro.fit_nuts` or :func:`hmm_pyro.fit_svi`.
    seed : int, optional
        Master seed. Every setting uses the same seeds (common random numbers), so the same
        seed gives the same table, in parallel or not.
    elpd : {"auto", "loo", "kfold"}
        ``"loo"``: PSIS-LOO over whole sequences (``az.loo`` on the per-sequence
        ``log_likelihood``); needs posterior draws (NUTS, or SVI with ``guide="normal"`` or
        ``"mvn"``). ``"kfold"``: K-fold cross-validation with refits (see Notes). ``"auto"``:
        ``"loo"`` with at least :data:`MIN_LOO_SEQUENCES` sequences and posterior draws, else
        ``"kfold"``.
    folds : int
        Number of folds for ``"kfold"``.
    parallel : bool, optional
        Run the fits (settings and folds) as tasks on an embedded Dask ``LocalCluster``, one
        single-threaded worker process per core; each runs its NUTS chains one after the other.
        Default: when there are several fits and cores, or a ``client``.
    progress : bool
        A progress bar that advances as fits finish.
    psens_delta : float
        Power-scaling step ``delta`` of ``az.psens`` (``alpha`` in ``[1/(1+delta), 1+delta]``).
    client : distributed.Client or str, optional
        Run the fits as tasks on this Dask cluster (a client, or a scheduler address such as
        ``"tcp://host:8786"``) instead of an embedded ``LocalCluster``; same table bit for bit.
    **runner_kwargs
        Passed to the runner (``chains``, ``warmup``, ``draws``, ``init``, ``guide``,
        ``steps``, ``restarts``, ...); the runner's ``seed``, ``progress`` and ``parallel`` are
        the ones of this function.

    Returns
    -------
    PriorComparison
        ``.table`` has one row per setting (index ``setting``) with columns ``prior``
        (hyperparameters that differ from the defaults), ``elpd``, ``elpd_se``, ``elpd_diff``
        and ``diff_se`` (against the best setting, paired over the same sequences or blocks),
        ``p_loo``, ``pareto_k_max`` and ``high_k`` (sequences with Pareto k > 0.7; LOO only),
        ``label_switching`` (the chains used different labellings; they were relabelled),
        ``ok`` and ``flags`` (:func:`hmm_pyro.diagnose`, on the relabelled draws when the chains
        switched labels), ``effective_states``,
        ``min_hellinger`` and ``min_hellinger_q05`` (posterior median and 5% quantile of the
        smallest pairwise squared Hellinger distance between emission laws),
        ``psens_prior`` and ``psens_likelihood`` (largest emission-entry sensitivity to the
        emission prior and to the likelihood), ``sensitivity`` (priorsense's reading: how
        many emission entries show a prior-data conflict, i.e. both sensitivities >= 0.05, and
        how many are prior-dominated, prior >= 0.05 only),
        ``seconds`` and ``elpd_method``. Plots: ``plot_elpd``, ``plot_separation``,
        ``plot_sensitivity``, ``plot_emissions`` (each takes ``ax=None``).

    Raises
    ------
    ValueError, TypeError
        On invalid arguments, ``elpd="loo"`` without posterior draws or with one sequence, or
        more folds than the shortest sequence has steps.

    Notes
    -----
    *ELPD for one long sequence.* PSIS-LOO needs exchangeable units; the time steps of one
    sequence are not, and LOO on one-step-ahead terms is not leave-one-out cross-validation for
    dependent data. We use blocked K-fold cross-validation with refits: the sequence is cut into
    ``folds`` contiguous blocks; fold ``f`` refits with block ``f`` marked *missing* (the
    forward algorithm marginalises missing observations exactly, so the hidden chain runs
    through the gap) and scores ``log p(y_block | y_rest) = log mean_s exp(log p(y | theta_s)
    - log p(y_rest | theta_s))`` over the refit's draws. Every observation is held out once,
    each fold trains on the same amount of data from both sides of the block, and it costs
    exactly ``folds`` refits per setting. Leave-future-out CV (Buerkner, Gabry & Vehtari 2020)
    answers a forecasting question instead, its early folds train on little data, and it needs
    many more refits (or PSIS-LFO with refits when Pareto k is high). The same masked-block
    scheme is used with several sequences that are fewer than ``folds`` (block ``f`` of every
    sequence per fold); with at least ``folds`` sequences, folds hold out whole sequences. The
    standard error is ``sqrt(n var(pointwise))`` over the held-out units, as in ``az.loo``.
    With SVI MAP (one point), the predictive density is the plug-in ``log p(y_block | y_rest,
    theta_hat)``.

    *Parallelism.* The fits (one per setting, plus one per fold and setting) are independent
    tasks run by :func:`hmm_pyro._parallel.run_tasks` in worker processes; NUTS
    chains inside a task run sequentially. Parallelising at this level keeps every core busy
    also during ``diagnose``, relabelling, PSIS-LOO and power-scaling, which run in the worker
    next to their fit, and avoids nesting process pools (NUTS's own parallel chains start
    worker processes). With a single task, NUTS chains run in parallel instead.

    *Sensitivity.* Only the emission prior is power-scaled: scaling the whole prior lets a
    strong transition prior move every parameter and hides the emission prior's role.
    Emission entries are relabelled first, while the importance weights use the log densities
    of the draws as sampled.

    Examples
    --------
    >>> comparison = compare_priors(  # doctest: +SKIP
    ...     HMM(3, Categorical(5)),
    ...     data,
    ...     {"flat": Prior(), "sticky": Prior(stickiness=10.0), "strong": Prior(B=200.0)},
    ...     chains=2,
    ...     warmup=300,
    ...     draws=300,
    ... )
    >>> print(comparison.table)  # doctest: +SKIP
    """
    if not isinstance(hmm, HMM):
        raise TypeError(f"hmm: expected a hmm_pyro.HMM, got {describe(hmm)}")
    data = hmm.prepare_data(data)
    settings = _check_priors(priors)
    check_choice("method", method, COMPARE_METHODS)
    check_choice("elpd", elpd, ELPD_METHODS)
    folds = check_int("folds", folds, minimum=2)
    psens_delta = check_positive("psens_delta", psens_delta)
    check_client(client)
    if client is not None and parallel is False:
        raise ValueError("parallel: False contradicts client= (fits would run here)")
    seed = resolve_seed(seed)
    point = method == "svi" and runner_kwargs.get("guide", "map") == "map"
    if elpd == "auto":
        enough = data.num_sequences >= MIN_LOO_SEQUENCES
        elpd = "loo" if enough and not point else "kfold"
    if elpd == "loo" and point:
        raise ValueError(
            "elpd: 'loo' needs posterior draws; SVI with guide='map' gives one point "
            "(use guide='normal', method='nuts' or elpd='kfold')"
        )
    if elpd == "loo" and data.num_sequences < 2:
        raise ValueError(
            "elpd: 'loo' over sequences needs at least 2 sequences, got 1 "
            "(use elpd='kfold': blocked cross-validation over time)"
        )
    fold_data = _make_folds(data, folds) if elpd == "kfold" else None
    fold_seeds = derive_seeds(seed, folds)
    values, lengths = data.values.numpy(), data.lengths.numpy()

    tasks: list[_Task] = []
    for name, prior in settings.items():
        config = hmm.with_prior(prior).to_config()
        common = {
            "hmm_config": config,
            "method": method,
            "runner_kwargs": dict(runner_kwargs),
            "psens_delta": psens_delta,
        }
        tasks.append(
            _Task(
                index=len(tasks),
                setting=name,
                fold=-1,
                values=values,
                lengths=lengths,
                test_values=None,
                test_lengths=None,
                blocked=False,
                seed=seed,
                loo=elpd == "loo",
                **common,
            )
        )
        if fold_data is not None:
            for fold in range(folds):
                (train_values, train_lengths), (test_values, test_lengths) = (
                    fold_data.train[fold],
                    fold_data.test[fold],
                )
                tasks.append(
                    _Task(
                        index=len(tasks),
                        setting=name,
                        fold=fold,
                        values=train_values,
                        lengths=train_lengths,
                        test_values=test_values,
                        test_lengths=test_lengths,
                        blocked=fold_data.kind == "blocks",
                        seed=fold_seeds[fold],
                        loo=False,
                        **common,
                    )
                )
    task_client = client
    if len(tasks) == 1 and method == "nuts" and parallel is not False:
        # One fit: run it here, its chains in parallel (on the client's cluster if given).
        tasks[0] = dataclasses.replace(
            tasks[0], runner_kwargs={**tasks[0].runner_kwargs, "parallel": None, "client": client}
        )
        task_client, parallel = None, False
    if parallel is None:
        parallel = client is not None or (len(tasks) > 1 and available_cores() > 1)
    results = run_tasks(
        _run_task,
        tasks,
        totals=[1] * len(tasks),
        labels=[f"{t.setting} " + ("fit" if t.fold < 0 else f"fold {t.fold}") for t in tasks],
        parallel=bool(parallel),
        progress=progress,
        client=task_client,
        desc="compare",
    )
    elpd_method = _elpd_description(elpd, fold_data, folds, point)
    return _assemble(hmm, settings, tasks, results, fold_data, method, elpd_method, seed)


def _assemble(
    hmm: HMM,
    settings: dict[str, Prior],
    tasks: list[_Task],
    results: list[Any],
    fold_data: _Folds | None,
    method: str,
    elpd_method: str,
    seed: int,
) -> PriorComparison:
    """Build the table and the comparison object from the task results."""
    analysed: dict[str, _SettingResult] = {}
    pointwise: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {name: 0.0 for name in settings}
    for task, result in zip(tasks, results, strict=True):
        seconds[task.setting] += result.seconds
        if task.fold < 0:
            analysed[task.setting] = result
            if result.loo_pointwise is not None:
                pointwise[task.setting] = result.loo_pointwise
        elif fold_data is not None:
            units = pointwise.setdefault(task.setting, np.full(fold_data.num_units, np.nan))
            held = _logmeanexp(result.held_out, axis=0)
            units[fold_data.units[task.fold]] = held
    names = list(settings)
    elpds = {name: float(np.sum(pointwise[name])) for name in names}
    best = max(names, key=lambda name: elpds[name])
    rows = []
    for name in names:
        result = analysed[name]
        report = result.report
        sens = pd.DataFrame(result.sensitivity)
        prior_max = float(sens["prior"].max()) if sens["prior"].notna().any() else float("nan")
        lik_max = (
            float(sens["likelihood"].max()) if sens["likelihood"].notna().any() else float("nan")
        )
        readings = sens["diagnosis"].tolist()
        found = [
            f"{candidate} {readings.count(candidate)}/{len(readings)}"
            for candidate in ("prior-data conflict", "prior-dominated")
            if readings.count(candidate)
        ]
        reading = "; ".join(found) or ("n/a" if all(r == "n/a" for r in readings) else "-")
        difference = pointwise[name] - pointwise[best]
        summary = report.measurements.get("summary", {})
        rows.append(
            {
                "setting": name,
                "prior": describe_prior(settings[name]),
                "elpd": elpds[name],
                "elpd_se": _standard_error(pointwise[name]),
                "elpd_diff": elpds[name] - elpds[best],
                "diff_se": _standard_error(difference),
                "p_loo": result.p_loo,
                "pareto_k_max": (
                    float(np.max(result.pareto_k)) if result.pareto_k is not None else np.nan
                ),
                "high_k": (
                    int(np.sum(result.pareto_k > HIGH_PARETO_K))
                    if result.pareto_k is not None
                    else 0
                ),
                "label_switching": result.switching,
                "ok": report.ok,
                "flags": ", ".join(report.kinds) if report.kinds else "-",
                "effective_states": float(summary.get("effective_num_states", np.nan)),
                "min_hellinger": float(np.median(result.min_distance)),
                "min_hellinger_q05": float(np.quantile(result.min_distance, 0.05)),
                "psens_prior": prior_max,
                "psens_likelihood": lik_max,
                "sensitivity": reading,
                "seconds": seconds[name],
                "elpd_method": elpd_method,
            }
        )
    table = pd.DataFrame(rows).set_index("setting")
    count = len(pointwise[names[0]])
    if fold_data is not None and fold_data.kind == "blocks":
        folds = len(fold_data.units)
        labels = [f"sequence {unit // folds} block {unit % folds}" for unit in range(count)]
    else:
        labels = [f"sequence {unit}" for unit in range(count)]
    index = pd.Index(labels, name="unit")
    fits = {name: Fit(hmm.with_prior(settings[name]), analysed[name].idata) for name in names}
    return PriorComparison(
        table=table,
        emissions=pd.DataFrame([row for name in names for row in analysed[name].emissions]),
        sensitivity=pd.DataFrame([row for name in names for row in analysed[name].sensitivity]),
        pointwise=pd.DataFrame({name: pointwise[name] for name in names}, index=index),
        fits=fits,
        reports={name: analysed[name].report for name in names},
        min_distance={name: analysed[name].min_distance for name in names},
        priors=settings,
        hmm=hmm,
        method=method,
        elpd_method=elpd_method,
        seed=seed,
        notes={name: analysed[name].notes for name in names},
    )
