"""Covariate options shared by ``fit``, ``compare`` and ``sweep``: columns of the CSV data file.

``--transition-covariates`` makes the transitions multinomial-logit regressions on the columns
(a :class:`~hmm_pyro.CovariateHMM`), ``--initial-covariates`` the initial distribution a
regression on their first-step values, ``--emission-covariates`` the emission a regression
(the family's :meth:`~hmm_pyro.emissions.Emission.with_covariates`); ``--raw-covariates`` keeps
them as given instead of standardised. :func:`load_covariate_data` reads the columns with the
data, :func:`covariate_model` builds the model of the options (or of a grid point of
``sweep``), :func:`check_covariate_options` refuses combinations that cannot run.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hmm_pyro.cli._options import load_data, model_of

if TYPE_CHECKING:
    from hmm_pyro.data import Sequences
    from hmm_pyro.emissions import Emission
    from hmm_pyro.model import HMM
    from hmm_pyro.priors import Prior

__all__ = [
    "COVARIATE_METHODS",
    "add_covariate_options",
    "check_covariate_options",
    "columns",
    "covariate_emission",
    "covariate_model",
    "has_covariates",
    "load_covariate_data",
    "regression_model",
]

COVARIATE_METHODS = ("nuts", "svi", "map")
"""The runners that fit a model with transition covariates."""


def columns(text: str | None) -> list[str]:
    """The column names of a comma-separated option (empty when the option is not given)."""
    return [] if text is None else [column.strip() for column in text.split(",") if column.strip()]


def add_covariate_options(parser: argparse.ArgumentParser, plots: bool = False) -> None:
    """Add the covariate options, in their own group.

    ``--transition-covariates``, ``--initial-covariates``, ``--emission-covariates`` and
    ``--raw-covariates``; ``plots``: the command writes the transition plots next to ``--out``.
    """
    group = parser.add_argument_group(
        "covariates (non-homogeneous transitions, emission regressions)"
    )
    group.add_argument(
        "--transition-covariates",
        metavar="COLS",
        help="comma-separated columns of the CSV data file that the transitions depend on "
        "(multinomial-logit rows, staying as reference; --method nuts, svi or map)"
        + (
            "; the plots of the transition probabilities against each are written next to --out"
            if plots
            else ""
        ),
    )
    group.add_argument(
        "--initial-covariates",
        metavar="COLS",
        help="columns whose first-step values the initial distribution depends on",
    )
    group.add_argument(
        "--emission-covariates",
        metavar="COLS",
        help="comma-separated columns of the CSV data file that the emission depends on: "
        "--emission gaussian regresses the mean on them, poisson and negative_binomial the "
        "log mean, categorical the log-odds against symbol 0 (univariate data; any --method; "
        "with --transition-covariates too, nuts, svi or map)",
    )
    group.add_argument(
        "--raw-covariates",
        action="store_true",
        help="use the covariates as they are (default: standardised to mean 0 and sd 1 over "
        "all steps, the means and sds kept in the fits)",
    )


def check_covariate_options(args: argparse.Namespace, streaming: bool = False) -> None:
    """Covariates: CSV columns, in memory; transition ones for the runners of a CovariateHMM.

    Raises
    ------
    ValueError
        Naming the option: an empty column list, ``--initial-covariates`` or
        ``--raw-covariates`` without the columns they go with, covariates with mini-batches
        or a store (``streaming``), transition covariates with a method that cannot fit them.
    """
    given = columns(args.transition_covariates)
    if args.transition_covariates is not None and not given:
        raise ValueError("--transition-covariates: expected comma-separated column names")
    emitted = columns(args.emission_covariates)
    if args.emission_covariates is not None and not emitted:
        raise ValueError("--emission-covariates: expected comma-separated column names")
    if emitted and streaming:
        raise ValueError(
            "--emission-covariates: covariates are read from a CSV data file in memory; "
            "not with --batch-size or a store"
        )
    if not given:
        if args.initial_covariates is not None:
            raise ValueError("--initial-covariates: goes with --transition-covariates")
        if args.raw_covariates and not emitted:
            raise ValueError(
                "--raw-covariates: goes with --transition-covariates or --emission-covariates"
            )
        return
    if streaming:
        raise ValueError(
            "--transition-covariates: covariates are read from a CSV data file in memory; "
            "not with --batch-size or a store"
        )
    if args.method not in COVARIATE_METHODS:
        raise ValueError(
            f"--transition-covariates: fitted by --method {', '.join(COVARIATE_METHODS)} "
            f"(transition regressions have no closed-form M-step); got --method {args.method}"
        )


def load_covariate_data(args: argparse.Namespace) -> Sequences:
    """The data file with the covariate columns the options name (standardised unless raw)."""
    named = [
        *columns(args.transition_covariates),
        *columns(args.initial_covariates),
        *columns(args.emission_covariates),
    ]
    unique = list(dict.fromkeys(named))
    options = {"covariates": unique, "standardize": not args.raw_covariates} if unique else {}
    return load_data(args, **options)


def has_covariates(args: argparse.Namespace) -> bool:
    """Whether any covariate columns are named."""
    return bool(
        columns(args.transition_covariates)
        or columns(args.initial_covariates)
        or columns(args.emission_covariates)
    )


def covariate_emission(args: argparse.Namespace, emission: Emission) -> Emission:
    """``emission``, a regression on the ``--emission-covariates`` columns when they are given."""
    emitted = columns(args.emission_covariates)
    if not emitted:
        return emission
    try:
        return emission.with_covariates(tuple(emitted))
    except ValueError as error:
        message = str(error)
        if getattr(error, "argument", None) == "emission_covariates":  # an OptionError
            message = f"--emission-covariates:{message.partition(':')[2]}"
        raise ValueError(message) from error


def covariate_model(args: argparse.Namespace, data: Any, prior: Prior | None = None) -> HMM:
    """The model of the options and the covariate columns.

    An :class:`~hmm_pyro.HMM` whose emission is a regression (``--emission-covariates``), a
    :class:`~hmm_pyro.CovariateHMM` (``--transition-covariates``), both, or the plain HMM of
    the model options without covariate options.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.
    data : Sequences
        The data (the emission options may read its symbols or width).
    prior : Prior, optional
        Instead of the prior options.
    """
    plain = model_of(args, data, prior=prior)  # the emission and prior options, checked
    return regression_model(
        plain.num_states,
        covariate_emission(args, plain.emission),
        plain.prior,
        columns(args.transition_covariates),
        columns(args.initial_covariates),
    )


def regression_model(
    num_states: int,
    emission: Emission,
    prior: Prior,
    transition_covariates: Sequence[str] = (),
    initial_covariates: Sequence[str] = (),
) -> HMM:
    """A :class:`~hmm_pyro.CovariateHMM` with transition covariates, else an HMM.

    Module level, so that ``sweep``'s factory can be a ``functools.partial`` of it.
    """
    from hmm_pyro.covariate_model import CovariateHMM
    from hmm_pyro.model import HMM

    if not transition_covariates:
        return HMM(num_states, emission, prior=prior)
    return CovariateHMM(
        num_states, emission, list(transition_covariates), list(initial_covariates), prior=prior
    )
