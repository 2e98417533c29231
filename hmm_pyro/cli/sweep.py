"""``hmm-pyro sweep``: one fit per point of a grid (numbers of states x prior settings)."""

from __future__ import annotations

import argparse
import functools
from typing import TYPE_CHECKING, Any

from hmm_pyro.cli import _library
from hmm_pyro.cli._covariates import (
    add_covariate_options,
    check_covariate_options,
    columns,
    covariate_emission,
    load_covariate_data,
    regression_model,
)
from hmm_pyro.cli._options import (
    EXIT_OK,
    add_command,
    add_fitting_options,
    check_scheduler,
    emission_of,
    job_kwargs,
    library_default,
    prior_of,
    set_only,
)
from hmm_pyro.cli._prior_specs import add_prior_specs, prior_settings

if TYPE_CHECKING:
    from hmm_pyro.emissions import Emission
    from hmm_pyro.model import HMM
    from hmm_pyro.priors import Prior

__all__ = ["add_parser"]


def _sweep_model(
    num_states: int,
    prior: Prior,
    emission: Emission,
    transition_covariates: tuple[str, ...] = (),
    initial_covariates: tuple[str, ...] = (),
) -> HMM:
    """The sweep command's HMM factory (module level, used through ``functools.partial``).

    A :class:`~hmm_pyro.CovariateHMM` with transition covariates, else an HMM.
    """
    return regression_model(num_states, emission, prior, transition_covariates, initial_covariates)


def run(args: argparse.Namespace) -> int:
    """Sweep; print the table; write it, the reports and the fits."""
    from hmm_pyro.sweep import sweep

    check_scheduler(args)
    check_covariate_options(args)
    states = list(args.states)
    for count in states:
        if states.count(count) > 1:
            raise ValueError(f"--states: {count} is given twice")
    priors = prior_settings(args, []) if args.prior else {}
    data = load_covariate_data(args)
    emission = covariate_emission(args, emission_of(args, data))
    model = functools.partial(
        _sweep_model,
        emission=emission,
        transition_covariates=tuple(columns(args.transition_covariates)),
        initial_covariates=tuple(columns(args.initial_covariates)),
    )
    grid: dict[str, Any] = {"num_states": states}
    if priors:
        grid["prior"] = priors
        factory = model
    else:
        factory = functools.partial(model, prior=prior_of(args))
    points = len(states) * max(len(priors), 1)
    where = (
        "here"
        if args.serial or points == 1
        else (f"on {args.scheduler}" if args.scheduler else "on local worker processes")
    )
    print(
        f"data: {data}\nsweeping {points} fit(s) by {args.method} {where}: states "
        f"{', '.join(map(str, states))}" + (f"; priors {', '.join(priors)}" if priors else ""),
        flush=True,
    )
    result = sweep(factory, data, grid, **job_kwargs(args))
    print(result.format_table())
    paths = result.save(args.out, **set_only(fits=False if args.no_fits else None))
    shown = [path for key, path in paths.items() if not key.startswith("fit ")]
    fits = len(paths) - len(shown)
    print(
        "wrote "
        + ", ".join(str(path) for path in shown)
        + (f" and {fits} fit(s) {args.out}/sweep_fit_NNN.nc" if fits else "")
    )
    return EXIT_OK


def add_parser(commands: Any) -> None:
    """Register ``sweep``."""
    parser = add_command(
        commands,
        "sweep",
        run,
        help="fit a grid of models (numbers of states x prior settings), one task per fit",
        description="Fit one model per point of the grid --states x --prior and tabulate, per "
        "point: log likelihood, log prior, ELBO (SVI), free parameters, BIC (point estimates), "
        "diagnose flags, smallest Hellinger distance between states, seconds. The fits run as "
        "tasks on local worker processes (or --scheduler, or --serial here) with per-point seeds, "
        "so every way gives the same numbers. Prints the table; writes sweep.csv, sweep.json, "
        "sweep.md and sweep_fit_NNN.nc (NetCDF, one per point) into --out.",
        epilog="Example: hmm-pyro sweep data.csv --states 2 3 4 --prior flat "
        "--prior sticky:stickiness=10 --method svi --restarts 2",
    )
    add_fitting_options(
        parser,
        _library.constant("hmm_pyro.sweep:SWEEP_METHODS"),
        default=library_default("hmm_pyro.sweep:sweep", "method"),
        several_states=True,
    )
    add_prior_specs(parser, default="the model prior options only")
    add_covariate_options(parser)
    parser.add_argument("--no-fits", action="store_true", help="do not write the fits (.nc)")
    parser.add_argument("--out", default="sweep", help="output folder (default: %(default)s)")
