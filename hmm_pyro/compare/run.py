""":func:`compare_priors`: check the arguments, run one task per fit, assemble the table.

The tasks (one fit per setting, plus one per fold and setting) run here or on Dask.

The ELPD machinery is in :mod:`~hmm_pyro.diagnostics.folds`, the work of one task in
:mod:`~hmm_pyro.compare.worker`, the result in :mod:`~hmm_pyro.compare.result`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from hmm_pyro._parallel import check_client, run_tasks
from hmm_pyro._random import resolve_seed
from hmm_pyro._types import SequencesLike
from hmm_pyro._validation import check_choice, check_int, check_positive, describe
from hmm_pyro.compare.result import PriorComparison
from hmm_pyro.compare.worker import SettingResult, Task, run_compare_task
from hmm_pyro.data import Sequences
from hmm_pyro.diagnostics.folds import (
    ELPD_METHODS,
    HIGH_PARETO_K,
    Folds,
    choose_elpd,
    elpd_description,
    log_mean_exp,
    make_folds,
    standard_error,
    unit_labels,
)
from hmm_pyro.fit import Fit
from hmm_pyro.model import HMM
from hmm_pyro.priors import Prior, describe_prior
from hmm_pyro.starts import derive_seeds

__all__ = ["COMPARE_METHODS", "compare_priors", "make_tasks"]

COMPARE_METHODS = ("nuts", "svi", "map")


def _check_priors(priors: Any, hmm: HMM) -> dict[str, Prior]:
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
        try:  # e.g. a CovariateHMM has no Dirichlet transition prior to set
            hmm.with_prior(prior)
        except (TypeError, ValueError) as error:
            kind = TypeError if isinstance(error, TypeError) else ValueError
            raise kind(f"priors[{name!r}]: {error}") from None
        checked[name] = prior
    return checked


def compare_priors(
    hmm: HMM,
    data: SequencesLike,
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
        The observations, with their covariates where the model reads any (see Notes).
    priors : dict of Prior
        ``{name: Prior(...)}``; a dict of ``Prior`` fields is accepted too. A
        :class:`~hmm_pyro.CovariateHMM` has no Dirichlet transition prior: settings of ``A`` or
        ``stickiness`` are refused, naming the setting.
    method : {"nuts", "svi", "map"}
        Runner: :func:`hmm_pyro.fit_nuts`, :func:`hmm_pyro.fit_svi` (Gaussian guide draws) or
        :func:`hmm_pyro.fit_map` (one point: the ELPD is K-fold with a plug-in density).
    seed : int, optional
        Master seed. Every setting uses the same seeds (common random numbers), so the same
        seed gives the same table, in parallel or not.
    elpd : {"auto", "loo", "kfold"}
        ``"loo"``: PSIS-LOO over whole sequences (``az.loo`` on the per-sequence
        ``log_likelihood``); needs posterior draws (NUTS or SVI, not MAP). ``"kfold"``:
        K-fold cross-validation with refits (see Notes). ``"auto"``: ``"loo"`` with at least
        :data:`MIN_LOO_SEQUENCES` sequences and posterior draws, else ``"kfold"``.
    folds : int
        Number of folds for ``"kfold"``.
    parallel : bool, optional
        Run the fits (settings and folds) as tasks on the worker pool (single-threaded
        worker processes kept across calls, at most one per core; :mod:`hmm_pyro._parallel`);
        each runs its NUTS chains one after the other.
        Default: when there are several fits and cores, or a ``client``.
    progress : bool
        A progress bar that advances as fits finish.
    psens_delta : float
        Power-scaling step ``delta`` of ``az.psens`` (``alpha`` in ``[1/(1+delta), 1+delta]``).
    client : distributed.Client or str, optional
        Run the fits as tasks on this Dask cluster (a client, or a scheduler address such as
        ``"tcp://host:8786"``) instead of the pool; same table bit for bit.
    **runner_kwargs
        Passed to the runner (``chains``, ``warmup``, ``draws``, ``init``, ``guide``,
        ``optimizer``, ``steps``, ``restarts``, ...); the runner's ``seed``, ``progress`` and
        ``parallel`` are the ones of this function.

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
        ``seconds`` and ``elpd_method``. Plots: :func:`hmm_pyro.plots.plot_comparison`
        (``kind="elpd"``, ``"separation"``, ``"sensitivity"``, ``"emissions"`` or ``"all"``).

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
    With MAP (one point), the predictive density is the plug-in ``log p(y_block | y_rest,
    theta_hat)``.

    *Covariates.* Every task carries the covariates of its sequences with the standardisation
    of all the data (:func:`make_tasks`): folds of whole sequences their own sequences',
    folds of time blocks every step's (only the observations are held out, so ``log
    p(y_block | y_rest)`` uses the covariates of the held-out steps too). PSIS-LOO and
    power-scaling read the fit's log likelihood, computed with the covariates.

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
    settings = _check_priors(priors, hmm)
    check_choice("method", method, COMPARE_METHODS)
    check_choice("elpd", elpd, ELPD_METHODS)
    folds = check_int("folds", folds, minimum=2)
    psens_delta = check_positive("psens_delta", psens_delta)
    check_client(client)
    if client is not None and parallel is False:
        raise ValueError("parallel: False contradicts client= (fits would run here)")
    seed = resolve_seed(seed)
    point = method == "map"
    elpd = choose_elpd(elpd, data.num_sequences, point)
    fold_data = make_folds(data, folds) if elpd == "kfold" else None
    tasks = make_tasks(
        hmm,
        data,
        settings,
        fold_data,
        method=method,
        seed=seed,
        runner_kwargs=runner_kwargs,
        loo=elpd == "loo",
        psens_delta=psens_delta,
    )
    task_client = client
    if len(tasks) == 1 and method == "nuts" and parallel is not False:
        # One fit: run it here, its chains in parallel (on the client's cluster if given).
        tasks[0] = dataclasses.replace(
            tasks[0], runner_kwargs={**tasks[0].runner_kwargs, "parallel": None, "client": client}
        )
        task_client, parallel = None, False
    results = run_tasks(
        run_compare_task,
        tasks,
        totals=[1] * len(tasks),
        labels=[f"{t.setting} " + ("fit" if t.fold < 0 else f"fold {t.fold}") for t in tasks],
        parallel=None if parallel is None else bool(parallel),
        progress=progress,
        client=task_client,
        desc="compare",
    )
    elpd_method = elpd_description(elpd, fold_data, folds, point)
    return _assemble(hmm, settings, tasks, results, fold_data, method, elpd_method, seed)


def make_tasks(
    hmm: HMM,
    data: Sequences,
    settings: Mapping[str, Prior],
    fold_data: Folds | None,
    method: str,
    seed: int,
    runner_kwargs: Mapping[str, Any],
    loo: bool,
    psens_delta: float,
) -> list[Task]:
    """One task per setting (all the data), then one per fold and setting (``fold_data``).

    Every task carries its sequences' covariates with the standardisation of all the data
    (:meth:`~hmm_pyro.Covariates.to_standardization`): whole-sequence folds carry the
    covariates of their own sequences, masked-block folds every step's (only observations are
    held out). Fold ``f`` of every setting uses child seed ``f`` of ``seed``.

    Parameters
    ----------
    hmm : HMM
        The model; each setting's prior replaces its own.
    data : Sequences
        The prepared observations (with covariates, if any).
    settings : dict of Prior
        The checked prior settings.
    fold_data : Folds or None
        The folds of :func:`~hmm_pyro.diagnostics.folds.make_folds`, or ``None`` (PSIS-LOO).
    method, seed, runner_kwargs, loo, psens_delta
        As the fields of :class:`~hmm_pyro.compare.worker.Task`.

    Returns
    -------
    list of Task
    """
    covariates = None if data.covariates is None else data.covariates.to_standardization()
    fold_seeds = derive_seeds(seed, len(fold_data.train)) if fold_data is not None else []
    tasks: list[Task] = []
    for name, prior in settings.items():
        whole = Task(
            index=len(tasks),
            setting=name,
            fold=-1,
            hmm_config=hmm.with_prior(prior).to_config(),
            values=data.values.numpy(),
            lengths=data.lengths.numpy(),
            test_values=None,
            test_lengths=None,
            blocked=False,
            method=method,
            seed=seed,
            runner_kwargs=dict(runner_kwargs),
            loo=loo,
            psens_delta=psens_delta,
            covariates=covariates,
        )
        tasks.append(whole)
        if fold_data is None:
            continue
        for fold, ((train_values, train_lengths), (test_values, test_lengths)) in enumerate(
            zip(fold_data.train, fold_data.test, strict=True)
        ):
            train_covariates = test_covariates = None
            if fold_data.covariates:
                train_part, test_part = fold_data.covariates[fold]
                train_covariates = None if train_part is None else train_part.to_standardization()
                test_covariates = None if test_part is None else test_part.to_standardization()
            tasks.append(
                dataclasses.replace(
                    whole,
                    index=len(tasks),
                    fold=fold,
                    values=train_values,
                    lengths=train_lengths,
                    test_values=test_values,
                    test_lengths=test_lengths,
                    blocked=fold_data.kind == "blocks",
                    seed=fold_seeds[fold],
                    loo=False,
                    covariates=train_covariates,
                    test_covariates=test_covariates,
                )
            )
    return tasks


def _assemble(
    hmm: HMM,
    settings: dict[str, Prior],
    tasks: list[Task],
    results: list[Any],
    fold_data: Folds | None,
    method: str,
    elpd_method: str,
    seed: int,
) -> PriorComparison:
    """Build the table and the comparison object from the task results."""
    analysed: dict[str, SettingResult] = {}
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
            held = log_mean_exp(result.held_out, axis=0)
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
                "elpd_se": standard_error(pointwise[name]),
                "elpd_diff": elpds[name] - elpds[best],
                "diff_se": standard_error(difference),
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
    index = pd.Index(unit_labels(fold_data, len(pointwise[names[0]])), name="unit")
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
