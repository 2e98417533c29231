"""``hmm-pyro compare``: one model fitted under several prior settings, compared."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hmm_pyro.cli import _library
from hmm_pyro.cli._covariates import (
    add_covariate_options,
    check_covariate_options,
    columns,
    covariate_model,
    load_covariate_data,
)
from hmm_pyro.cli._options import (
    EXIT_OK,
    add_command,
    add_fitting_options,
    check_scheduler,
    job_kwargs,
    library_default,
    set_only,
)
from hmm_pyro.cli._prior_specs import add_prior_specs, prior_settings

__all__ = ["add_parser"]

DEFAULT_SETTINGS = ("flat", "sticky:stickiness=10")
"""The prior settings compared without ``--prior``: the model's prior and a sticky one."""

_COMPARE_PRIORS = "hmm_pyro.compare:compare_priors"


def run(args: argparse.Namespace) -> int:
    """Compare; print the table; write it, the reports and the plots (and the fits)."""
    from hmm_pyro.compare import compare_priors
    from hmm_pyro.plots import save_comparison

    check_scheduler(args)
    check_covariate_options(args)
    if columns(args.transition_covariates) and not args.prior:
        raise ValueError(
            "--prior: the default settings vary the stickiness of the transition prior, which "
            "a model with --transition-covariates has not (its transitions are regressions); "
            "name the settings to compare (--prior NAME:KEY=VALUE with keys of pi or of the "
            "emission prior, e.g. --prior flat --prior tight:mu_scale=0.1)"
        )
    priors = prior_settings(args, DEFAULT_SETTINGS)
    data = load_covariate_data(args)
    hmm = covariate_model(args, data)
    data = hmm.prepare_data(data)
    print(
        f"data: {data}\nmodel: {hmm!r}\ncomparing {len(priors)} prior settings by "
        f"{args.method}: {', '.join(priors)}",
        flush=True,
    )
    comparison = compare_priors(
        hmm, data, priors, **job_kwargs(args), **set_only(elpd=args.elpd, folds=args.folds)
    )
    print(comparison.format_table())
    paths = save_comparison(comparison, args.out)  # the table, the reports and the four plots
    if args.save_fits:
        for name, fit in comparison.fits.items():
            paths[f"fit {name}"] = fit.save(Path(args.out) / f"fit_{name}.nc")
    print("wrote " + ", ".join(str(path) for path in paths.values()))
    return EXIT_OK


def add_parser(commands: Any) -> None:
    """Register ``compare``."""
    parser = add_command(
        commands,
        "compare",
        run,
        help="compare prior settings: ELPD, degeneracy flags, state separation, sensitivity",
        description="Fit the same model under several priors and compare them: ELPD (PSIS-LOO "
        "over sequences, or K-fold CV with refits; blocked over time for one sequence), "
        "diagnose flags, smallest pairwise Hellinger distance, power-scaling sensitivity to "
        "the emission prior. Prints the table; writes compare.csv, compare.json, compare.md "
        "and PNG plots into --out.",
        epilog="Example: hmm-pyro compare data.csv --states 3 --prior flat "
        "--prior sticky:stickiness=10 --prior strong:B=100 --chains 2 --warmup 300 --draws 300",
    )
    add_fitting_options(
        parser,
        _library.constant("hmm_pyro.compare:COMPARE_METHODS"),
        default=library_default(_COMPARE_PRIORS, "method"),
    )
    add_prior_specs(parser, default=f"{DEFAULT_SETTINGS[0]} (no change) and {DEFAULT_SETTINGS[1]}")
    add_covariate_options(parser)
    parser.add_argument(
        "--elpd",
        choices=_library.constant("hmm_pyro.compare:ELPD_METHODS"),
        help="ELPD estimate: PSIS-LOO over sequences, K-fold CV, or auto (LOO with >= "
        f"{_library.constant('hmm_pyro.compare:MIN_LOO_SEQUENCES')} sequences and posterior "
        f"draws) (default: {library_default(_COMPARE_PRIORS, 'elpd')})",
    )
    parser.add_argument(
        "--folds",
        type=int,
        help=f"K-fold folds (default: {library_default(_COMPARE_PRIORS, 'folds')})",
    )
    parser.add_argument("--save-fits", action="store_true", help="also save every fit (.nc)")
    parser.add_argument("--out", default="compare", help="output folder (default: compare)")
