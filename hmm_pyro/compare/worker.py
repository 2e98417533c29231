"""The work of one :func:`~hmm_pyro.compare.compare_priors` task, run in a worker process.

A task fits one prior setting to all the data, or to the training part of one cross-validation
fold. :func:`run_compare_task` is module level (picklable by reference); it rebuilds the model
from its configuration and the data from plain arrays (:func:`task_data`: the covariates on
the recorded standardisation of all the data), fits it with
:func:`hmm_pyro.runners.run_task`, and returns either the held-out log densities of the fold
(:class:`FoldResult`) or everything measured on the fit to all the data
(:class:`SettingResult`): ``diagnose`` (on relabelled draws when the chains switched labels),
PSIS-LOO, power-scaling sensitivity of the emission entries, emission
summaries with the states in a canonical order, and the smallest pairwise distance per draw.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from hmm_pyro.covariates import Covariates
from hmm_pyro.data import Sequences
from hmm_pyro.diagnostics import DegeneracyReport, diagnose, relabel
from hmm_pyro.fit import Fit
from hmm_pyro.fit.inference_data import az
from hmm_pyro.model import HMM
from hmm_pyro.runners import run_task
from hmm_pyro.starts import min_separation

__all__ = [
    "PSENS_THRESHOLD",
    "STATE_ORDER_NOTE",
    "FoldResult",
    "SettingResult",
    "Task",
    "run_compare_task",
    "task_data",
]

PSENS_THRESHOLD = 0.05
"""Power-scaling sensitivity at or above 0.05 counts as sensitive (priorsense's default
``sensitivity_threshold``; Kallioinen et al. 2024). Its noise floor with 1000 draws is about
0.02-0.03, so smaller values are not distinguishable from zero."""

STATE_ORDER_NOTE = (
    "states are relabelled (Stephens) and then ordered by their emission location (mean symbol "
    "index, mean or rate), so that state k means the same across settings"
)
"""How the states of the emission summaries are ordered (for the reports)."""


@dataclass(frozen=True)
class Task:
    """One fit of :func:`~hmm_pyro.compare.compare_priors`: a setting on all data, or a fold."""

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
    # Covariates.to_standardization() of the training and test sequences' covariates (the
    # standardisation of all the data), or None without covariates
    covariates: dict[str, Any] | None = None
    test_covariates: dict[str, Any] | None = None


@dataclass(frozen=True)
class FoldResult:
    """What a fold's task returns: held-out log densities per posterior draw."""

    held_out: np.ndarray  # (S, N_test) log p(held-out part | theta_s)
    seconds: float


@dataclass(frozen=True)
class SettingResult:
    """What a setting's fit to all the data returns: the draws and every measurement."""

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


def _sequences(
    values: np.ndarray, lengths: np.ndarray, covariates: dict[str, Any] | None
) -> Sequences:
    rebuilt = None if covariates is None else Covariates.from_standardization(**covariates)
    return Sequences(values, lengths=lengths, dim=values.shape[-1], covariates=rebuilt)


def task_data(task: Task) -> tuple[Sequences, Sequences | None]:
    """The training and test sequences of ``task`` (test ``None`` for a fit to all the data).

    Rebuilt from the task's arrays, with their covariates on the recorded standardisation (that
    of all the data, in every fold).
    """
    train = _sequences(task.values, task.lengths, task.covariates)
    if task.fold < 0:
        return train, None
    if task.test_values is None or task.test_lengths is None:
        raise ValueError(f"task: fold {task.fold} of {task.setting!r} has no test data")
    return train, _sequences(task.test_values, task.test_lengths, task.test_covariates)


def _emission_location(hmm: HMM, draws: dict[str, np.ndarray]) -> np.ndarray:
    """One scalar per state (posterior mean) used to order states canonically."""
    params = {name: torch.as_tensor(value) for name, value in draws.items()}
    return hmm.emission.location(params).numpy().mean(0)


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
        value = value.reshape(*value.shape[:2], -1) if value.ndim > 2 else value[..., None]
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
            # the emission prior only (docs/degeneracy.md#power-scaling-sensitivity)
            kwargs["component_var_names"] = names
        value = az.psens(data, **kwargs)
        if isinstance(value, xr.DataArray):  # ArviZ 0.23 returns a DataArray for one variable
            value = value.to_dataset(name=names[0])
        result[component] = {name: np.asarray(value[name].values) for name in names}
    return result


def _analyse(
    fit: Fit, task: Task, began: float, fit_warnings: list[warnings.WarningMessage]
) -> SettingResult:
    """Everything measured on the fit to all the data (``fit_warnings``: the fit's own)."""
    hmm = fit.hmm
    notes: list[str] = []
    _record(fit_warnings, notes, "fit")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = diagnose(fit, deep=False)
    _record(caught, notes, "diagnose")
    num_draws = fit.num_chains * fit.num_draws
    relabelled = None
    if hmm.num_states > 1 and num_draws > 1 and fit.labelling != "aligned":
        # fit_nuts aligns by default; relabelling an aligned fit gives the same draws again
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
            report = diagnose(relabelled, deep=False)
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
    return SettingResult(
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


def run_compare_task(task: Task, reporter: Any) -> FoldResult | SettingResult:
    """Fit one setting (and analyse it) or one cross-validation fold (module level: picklable).

    Parameters
    ----------
    task : Task
        The fit to run.
    reporter : hmm_pyro._parallel.ProgressReporter
        Told when the task is done.

    Returns
    -------
    FoldResult or SettingResult
        A fold's held-out log densities (``task.fold >= 0``), or the measurements of the fit to
        all the data.
    """
    began = time.perf_counter()
    hmm = HMM.from_config(task.hmm_config)
    train, test = task_data(task)
    train = hmm.prepare_data(train)
    if test is None:
        with warnings.catch_warnings(record=True) as caught:  # e.g. relabelling, kept as notes
            warnings.simplefilter("always")
            fit = run_task(task.method, hmm, train, task.seed, task.runner_kwargs)
        result: FoldResult | SettingResult = _analyse(fit, task, began, caught)
    else:
        options = dict(task.runner_kwargs)
        if task.method == "nuts":
            options["relabel"] = False  # held-out log densities do not depend on the labels
        fit = run_task(task.method, hmm, train, task.seed, options)
        draws = fit.flat_draws()
        held = hmm.log_likelihood(draws, test)  # every step's covariates, held out or not
        if task.blocked:
            held = held - hmm.log_likelihood(draws, train)
        result = FoldResult(held.detach().numpy(), time.perf_counter() - began)
    reporter.report(task.index, 1)
    return result
