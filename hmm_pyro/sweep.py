"""Sweep a grid of model settings (number of states, priors, ...): one independent fit per point.

:func:`sweep` expands a grid such as ``{"num_states": [2, 3, 4], "prior": {...}}`` into its
cartesian product, builds one HMM per point with a factory, fits every point (MAP, SVI, NUTS or
EM) as an independent task, and tabulates per point: the grid values, the log likelihood, log
prior and (SVI) ELBO, the number of free parameters and BIC (point estimates), the flags of
:func:`hmm_pyro.diagnose` (``deep=False``: the grid itself compares the models), the smallest
squared Hellinger distance between states and the seconds taken.

The tasks run here, on the worker pool (``parallel=True``, the default with
several points and cores) or on a cluster of your own (``client=``); see
:mod:`hmm_pyro._parallel`. Point ``i`` always uses child seed ``i`` of the master
seed, and every task runs with one torch and one numba thread, so the table and the fits are
the same bit for bit wherever the tasks ran.

Layer rule: ``sweep`` imports ``runners`` and the layers below it and the private utilities;
never ``compare`` (its sibling), ``plots``, the CLI or matplotlib.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hmm_pyro._parallel import check_client, run_tasks
from hmm_pyro._random import resolve_seed
from hmm_pyro._report import TableReport, markdown_table
from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import check_choice, describe
from hmm_pyro.covariates import Covariates
from hmm_pyro.data import Sequences
from hmm_pyro.diagnostics import DegeneracyReport, diagnose
from hmm_pyro.fit import Fit, fit_statistics
from hmm_pyro.fit.inference_data import az
from hmm_pyro.model import HMM
from hmm_pyro.priors import Prior, describe_prior
from hmm_pyro.runners import check_options, run_task
from hmm_pyro.starts import derive_seeds, min_separation

__all__ = ["METRIC_COLUMNS", "SWEEP_METHODS", "SweepResult", "sweep"]

SWEEP_METHODS = ("map", "svi", "nuts", "em")
METRIC_COLUMNS = (
    "method",
    "seed",
    "log_likelihood",
    "log_prior",
    "elbo",
    "num_params",
    "bic",
    "ok",
    "flags",
    "min_hellinger",
    "warnings",
    "seconds",
)
"""Columns of :attr:`SweepResult.table` after the grid columns (grid keys may not reuse them)."""

_RESERVED_KWARGS = ("seed", "progress", "parallel", "client")
_SCALARS = (bool, int, float, str, np.integer, np.floating, np.bool_)


# ---------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class _PointTask:
    index: int
    hmm_config: dict[str, Any]
    values: np.ndarray
    lengths: np.ndarray
    method: str
    seed: int
    runner_kwargs: dict[str, Any]
    # Covariates.to_standardization() of the data's covariates, or None without covariates
    covariates: dict[str, Any] | None = None


@dataclass(frozen=True)
class _PointResult:
    idata: az.InferenceData
    report: DegeneracyReport
    metrics: dict[str, Any]
    notes: list[str]
    seconds: float


def _run_point(task: _PointTask, reporter: Any) -> _PointResult:
    """Fit one grid point and measure it (module level: picklable by reference)."""
    began = time.perf_counter()
    hmm = HMM.from_config(task.hmm_config)
    covariates = task.covariates
    data = Sequences(
        task.values,
        lengths=task.lengths,
        dim=task.values.shape[-1],
        covariates=None if covariates is None else Covariates.from_standardization(**covariates),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # points are the tasks: NUTS chains run one after the other within a point
        fit = run_task(task.method, hmm, data, task.seed, task.runner_kwargs)
        report = diagnose(fit, deep=False)
    notes: list[str] = []
    for item in caught:
        text = f"{item.category.__name__}: {str(item.message).splitlines()[0]}"
        if text not in notes:
            notes.append(text)
    metrics = _metrics(fit, task.method)
    seconds = time.perf_counter() - began
    reporter.report(task.index, 1)
    return _PointResult(fit.idata, report, metrics, notes, seconds)


def _metrics(fit: Fit, method: str) -> dict[str, Any]:
    statistics = fit_statistics(fit)
    elbo = float("nan")
    if method == "svi":
        best = int(fit.attrs["best_restart"])
        elbo = -float(fit.idata.sample_stats["final_loss"].values.reshape(-1)[best])
    return {
        "log_likelihood": statistics.log_likelihood,
        "log_prior": float("nan") if statistics.log_prior is None else statistics.log_prior,
        "elbo": elbo,
        "num_params": statistics.num_params,
        "bic": float("nan") if statistics.bic is None else statistics.bic,
        "min_hellinger": float(np.median(min_separation(fit.hmm, fit.flat_draws()).numpy())),
    }


# ---------------------------------------------------------------------------- grid
def _label(value: Any) -> str:
    if isinstance(value, Prior):
        return describe_prior(value)
    if value is None or isinstance(value, _SCALARS):
        return str(value)
    return describe(value)


def _expand_grid(grid: Any) -> tuple[list[str], list[list[Any]], list[list[str]]]:
    """Keys, and the values and their labels per key."""
    example = "e.g. {'num_states': [2, 3, 4]}"
    if not isinstance(grid, Mapping):
        raise TypeError(
            f"grid: expected a dict of lists of values, {example}; got {describe(grid)}"
        )
    if not grid:
        raise ValueError(f"grid: expected at least one key, {example}")
    keys, values, labels = [], [], []
    for key, options in grid.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(
                f"grid: keys must be argument names of hmm_factory, got {describe(key)}"
            )
        if key in METRIC_COLUMNS:
            raise ValueError(
                f"grid: key {key!r} is also a column of the result table; rename the argument"
            )
        if isinstance(options, Mapping):
            names = list(options)
            if not all(isinstance(name, str) for name in names):
                raise TypeError(f"grid[{key!r}]: names of named values must be strings")
            items, item_labels = list(options.values()), names
        elif isinstance(options, np.ndarray) and options.ndim == 1:
            items = options.tolist()
            item_labels = [_label(item) for item in items]
        elif isinstance(options, (list, tuple, range)):
            items = list(options)
            item_labels = [_label(item) for item in items]
        else:
            raise TypeError(
                f"grid[{key!r}]: expected a list of values or a dict of named values, "
                f"got {describe(options)}"
            )
        if not items:
            raise ValueError(f"grid[{key!r}]: expected at least one value, got none")
        if len(set(item_labels)) < len(item_labels):
            item_labels = [f"{label} #{i}" for i, label in enumerate(item_labels)]
        keys.append(key)
        values.append(items)
        labels.append(item_labels)
    return keys, values, labels


def _check_factory(hmm_factory: Any, keys: list[str]) -> None:
    if not callable(hmm_factory):
        raise TypeError(
            "hmm_factory: expected a callable returning a hmm_pyro.HMM, such as "
            f"lambda num_states: HMM(num_states, Categorical(5)); got {describe(hmm_factory)}"
        )
    try:
        signature = inspect.signature(hmm_factory)
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return
    try:
        signature.bind(**dict.fromkeys(keys))
    except TypeError as error:
        raise TypeError(
            f"hmm_factory: cannot be called with the grid keys {keys} as keyword arguments "
            f"({error})"
        ) from None


def _build(hmm_factory: Callable[..., HMM], point: dict[str, Any], text: str) -> HMM:
    try:
        hmm = hmm_factory(**point)
    except (TypeError, ValueError) as error:
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(f"hmm_factory({text}): {error}") from error
    if not isinstance(hmm, HMM):
        raise TypeError(f"hmm_factory({text}): expected a hmm_pyro.HMM, got {describe(hmm)}")
    return hmm


def _check_runner_kwargs(method: str, runner_kwargs: dict[str, Any]) -> None:
    if "chain_dir" in runner_kwargs:
        raise ValueError("chain_dir: not supported by sweep (every point would use the folder)")
    check_options(method, runner_kwargs, reserved=(*_RESERVED_KWARGS, "chain_dir"))


# ---------------------------------------------------------------------------- result


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, Prior):
        return value.to_dict()
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return describe(value)


@dataclass
class SweepResult(TableReport):
    """The outcome of :func:`sweep`: one table row and one fit per grid point, in grid order.

    Attributes
    ----------
    table : pandas.DataFrame
        Index ``point`` (0, 1, ...); the grid columns (plain values, or the names of named
        values and short descriptions of priors), then :data:`METRIC_COLUMNS`:
        ``log_likelihood`` and ``log_prior`` (means over the posterior draws; at the point for
        MAP and EM), ``elbo`` (SVI: minus the best restart's final loss, the mean negative ELBO
        of its last 50 steps; else NaN),
        ``num_params`` (free parameters), ``bic`` (``-2 log_likelihood + num_params
        log(observed steps)``, point estimates only), ``ok`` and ``flags``
        (:func:`hmm_pyro.diagnose`), ``min_hellinger`` (median over draws of the smallest
        squared Hellinger distance between two states' emission laws), ``warnings`` (count;
        texts in :attr:`notes`) and ``seconds`` (fit and diagnosis of the point).
    fits : list of Fit
        One fit per point, in the order of the table.
    points : list of dict
        The grid values of every point (the factory's keyword arguments).
    reports : list of DegeneracyReport
        :func:`hmm_pyro.diagnose` of every fit.
    notes : list of list of str
        Warnings raised while fitting or diagnosing each point.
    method : str
        ``"map"``, ``"svi"``, ``"nuts"`` or ``"em"``.
    seed : int
        Master seed; point ``i`` used ``seeds[i]``.
    seeds : list of int
        Per-point seeds (child ``i`` of ``seed``).
    runner_kwargs : dict
        Options passed to the runner.
    """

    table: pd.DataFrame
    fits: list[Fit]
    points: list[dict[str, Any]]
    reports: list[DegeneracyReport]
    notes: list[list[str]]
    method: str
    seed: int
    seeds: list[int]
    runner_kwargs: dict[str, Any]

    def __len__(self) -> int:
        return len(self.fits)

    def __repr__(self) -> str:
        flagged = int((~self.table["ok"]).sum())
        return (
            f"SweepResult({len(self)} points by {self.method}, seed {self.seed}; {flagged} flagged)"
        )

    def format_table(self) -> str:
        """The table as fixed-width text (what the CLI prints)."""
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            return self.table.to_string(float_format=lambda value: f"{value:.6g}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict: method, seeds, the table, models and degeneracy reports."""
        table = json.loads(self.table.reset_index().to_json(orient="records"))
        return {
            "method": self.method,
            "seed": self.seed,
            "seeds": list(self.seeds),
            "runner_kwargs": _jsonable(self.runner_kwargs),
            "table": table,
            "points": [_jsonable(point) for point in self.points],
            "models": [fit.hmm.to_config() for fit in self.fits],
            "reports": [report.to_dict() for report in self.reports],
            "notes": self.notes,
        }

    def to_markdown(self) -> str:
        """A Markdown report: the table, then the flags and warnings of every point."""
        lines = [
            "# Sweep",
            "",
            f"{len(self)} grid points fitted by {self.method}; master seed {self.seed} "
            "(point i uses child seed i). `log_likelihood` and `log_prior` are means over the "
            "posterior draws (the point for MAP and EM); `bic` is for point estimates only.",
            "",
            markdown_table(self.table.reset_index(), 6),
            "",
        ]
        for index, (report, notes) in enumerate(zip(self.reports, self.notes, strict=True)):
            if report.ok and not notes:
                continue
            lines += [f"## Point {index}", ""]
            lines += [f"- {flag}" for flag in report.flags]
            lines += [f"- warning: {note}" for note in notes]
            lines.append("")
        return "\n".join(lines)

    def save(
        self, out_dir: str | Path, prefix: str = "sweep", fits: bool = True
    ) -> dict[str, Path]:
        """Write the table (CSV), the report (JSON, Markdown) and the fits (NetCDF), atomically.

        Parameters
        ----------
        out_dir : str or pathlib.Path
            Folder (created if needed).
        prefix : str
            Start of every file name.
        fits : bool
            Also write every fit as ``{prefix}_fit_{i:03d}.nc``.

        Returns
        -------
        dict of pathlib.Path
            ``{"csv", "json", "markdown"}`` and ``"fit {i}"`` for every saved fit.
        """
        out_dir = Path(out_dir)
        paths = self._write_reports(out_dir, prefix)
        if fits:
            for index, fit in enumerate(self.fits):
                paths[f"fit {index}"] = fit.save(out_dir / f"{prefix}_fit_{index:03d}.nc")
        return paths


# ---------------------------------------------------------------------------- main
def sweep(
    hmm_factory: Callable[..., HMM],
    data: SequencesLike,
    grid: Mapping[str, Sequence[Any] | Mapping[str, Any]],
    method: str = "map",
    seed: int | None = 0,
    client: Any = None,
    parallel: bool | None = None,
    progress: bool = False,
    **runner_kwargs: Any,
) -> SweepResult:
    """Fit one HMM per point of a grid of settings, as independent (distributable) tasks.

    Parameters
    ----------
    hmm_factory : callable
        ``hmm_factory(**point) -> HMM``, called here (not in the workers) once per grid point
        with the point's values as keyword arguments, e.g.
        ``lambda num_states, prior: HMM(num_states, Categorical(5), prior=prior)``. Only the
        models' configurations travel to the workers, so the factory need not be picklable.
    data : Sequences or array-like
        The observations, shared by every point.
    grid : dict
        ``{argument: values}``: a list of values, or a dict of named values (the names label the
        table), e.g. ``{"num_states": [2, 3, 4], "prior": {"flat": Prior(),
        "sticky": Prior(stickiness=10.0)}}``. The points are the cartesian product, the last
        key varying fastest.
    method : {"map", "svi", "nuts", "em"}
        Runner: :func:`hmm_pyro.fit_map`, :func:`hmm_pyro.fit_svi`, :func:`hmm_pyro.fit_nuts`
        (chains one after the other within a point) or :func:`hmm_pyro.fit_em`.
    seed : int, optional
        Master seed; point ``i`` uses child seed ``i`` (``derive_seeds``). ``None`` draws one
        and records it.
    client : distributed.Client or str, optional
        Run the points as tasks on this Dask cluster (a client, or a scheduler address such as
        ``"tcp://host:8786"``).
    parallel : bool, optional
        Without ``client``: run the points on the worker pool (single-threaded worker
        processes kept across calls, at most one per core) instead of one after the other
        here. Default: when there are several points and cores. The results are the same bit
        for bit.
    progress : bool
        Show a progress bar that advances as points finish.
    **runner_kwargs
        Options of the runner (``restarts``, ``steps``, ``optimizer``, ``guide``, ``chains``,
        ``warmup``, ``draws``, ``max_iter``, ``init``, ...); ``seed``, ``progress``,
        ``parallel`` and ``client`` are this function's.

    Returns
    -------
    SweepResult
        ``.table`` (one row per point), ``.fits`` (in grid order), ``.reports``, ``.notes``;
        ``.save(out_dir)``, ``.to_json()``, ``.to_markdown()``.

    Raises
    ------
    TypeError, ValueError
        Naming the argument: a malformed grid, a factory that cannot take the grid keys or does
        not return an HMM, data the model cannot explain, an unknown runner option.
    OSError
        ``client`` is an address where no scheduler answers.

    Notes
    -----
    Data are shipped to the workers with every task (fine for data of a few MB; every point
    needs all of it), with their covariates as given and the standardisation of all the data
    (:meth:`~hmm_pyro.Covariates.to_standardization`), so that models reading covariates
    (:class:`~hmm_pyro.CovariateHMM`, emission regressions) fit the same data in every point.
    On a Dask cluster a worker that dies has its task rerun on another worker (in the pool it
    stops the sweep with a one-line error); a point whose fit raises stops the sweep with that
    exception. Scripts need no ``if __name__ == "__main__":`` guard: the worker processes
    never import them.

    Examples
    --------
    >>> from functools import partial  # doctest: +SKIP
    >>> result = sweep(  # doctest: +SKIP
    ...     lambda num_states, prior: HMM(num_states, Categorical(5), prior=prior),
    ...     data,
    ...     {"num_states": [2, 3, 4], "prior": {"flat": Prior(), "sticky": Prior(stickiness=10)}},
    ...     method="map",
    ...     restarts=2,
    ... )
    >>> result.table[["num_states", "prior", "log_likelihood", "bic", "flags"]]  # doctest: +SKIP
    """
    keys, values, labels = _expand_grid(grid)
    _check_factory(hmm_factory, keys)
    check_choice("method", method, SWEEP_METHODS)
    _check_runner_kwargs(method, runner_kwargs)
    check_client(client)
    if parallel is not None and not isinstance(parallel, bool):
        raise TypeError(f"parallel: expected True, False or None, got {describe(parallel)}")
    if client is not None and parallel is False:
        raise ValueError("parallel: False contradicts client= (points would run here)")
    seed = resolve_seed(seed)
    combos = list(itertools.product(*[range(len(items)) for items in values]))
    seeds = derive_seeds(seed, len(combos))
    hmms, points, rows, tasks = [], [], [], []
    for index, combo in enumerate(combos):
        point = {key: values[k][i] for k, (key, i) in enumerate(zip(keys, combo, strict=True))}
        shown = {key: labels[k][i] for k, (key, i) in enumerate(zip(keys, combo, strict=True))}
        text = ", ".join(f"{key}={label}" for key, label in shown.items())
        hmm = _build(hmm_factory, point, text)
        try:
            prepared = hmm.prepare_data(data)
        except (TypeError, ValueError) as error:
            kind = TypeError if isinstance(error, TypeError) else ValueError
            raise kind(f"data: does not fit the model of grid point {text}: {error}") from None
        # the data's covariates as given, with their standardisation (that of all the data)
        covariates = prepared.covariates
        tasks.append(
            _PointTask(
                index=index,
                hmm_config=hmm.to_config(),
                values=prepared.values.numpy(),
                lengths=prepared.lengths.numpy(),
                method=method,
                seed=seeds[index],
                runner_kwargs=dict(runner_kwargs),
                covariates=None if covariates is None else covariates.to_standardization(),
            )
        )
        hmms.append(hmm)
        points.append(point)
        rows.append(
            {
                key: shown[key]
                if isinstance(grid[key], Mapping)
                or not (point[key] is None or isinstance(point[key], _SCALARS))
                else point[key]
                for key in keys
            }
        )
    results = run_tasks(
        _run_point,
        tasks,
        totals=[1] * len(tasks),
        labels=[", ".join(f"{key}={row[key]}" for key in keys) for row in rows],
        parallel=parallel,
        progress=progress,
        client=client,
        desc="sweep",
    )
    for row, result, point_seed in zip(rows, results, seeds, strict=True):
        row.update(
            {
                "method": method,
                "seed": point_seed,
                **result.metrics,
                "ok": result.report.ok,
                "flags": ", ".join(result.report.kinds) if result.report.kinds else "-",
                "warnings": len(result.notes),
                "seconds": result.seconds,
            }
        )
    table = pd.DataFrame(rows)[[*keys, *METRIC_COLUMNS]]
    table.index.name = "point"
    return SweepResult(
        table=table,
        fits=[Fit(hmm, result.idata) for hmm, result in zip(hmms, results, strict=True)],
        points=points,
        reports=[result.report for result in results],
        notes=[result.notes for result in results],
        method=method,
        seed=seed,
        seeds=seeds,
        runner_kwargs=dict(runner_kwargs),
    )
