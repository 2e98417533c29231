"""Command-line interface: ``hmm-pyro <command>`` (also ``python -m hmm_pyro``).

Commands: ``simulate``, ``fit``, ``store``, ``diagnose``, ``relabel``, ``compare``, ``sweep``,
``decode``, ``plot``, ``datasets`` and ``demo``, one module each (``diagnose`` and ``relabel``
share one), each registering its sub-parser; the options they share are in
:mod:`hmm_pyro.cli._options` (the covariate options of ``fit``, ``compare`` and ``sweep`` in
:mod:`hmm_pyro.cli._covariates`). Data files: CSV in long format (columns ``sequence``, ``time``,
``value``; a file without ``sequence`` is one sequence, skipped times are missing observations,
text values are named symbols), ``.npy`` or ``.npz`` (see
:meth:`hmm_pyro.Sequences.from_file`). Fits are ArviZ NetCDF files. ``fit`` (NUTS chains),
``compare`` and ``sweep`` run their independent fits as tasks on local worker processes
(one per core), or on the Dask cluster at ``--scheduler ADDRESS``.

Exit codes: 0 success; 1 ``diagnose`` found degeneracy (so scripts can gate on it); 2 bad input
(one line on stderr naming the problem, no traceback).

Start-up: building the parser imports no heavy library (torch, Pyro, ArviZ, Dask, ...): the
command modules import the library inside the functions that run a command, and the choices
and defaults the help texts state are read from the library's source
(:mod:`hmm_pyro.cli._library`). ``hmm-pyro --help`` answers in a fraction of a second.

Layer rule: the CLI is the top layer. It may import every package of the library; nothing in
the library imports it. With ``plots``, it is the only package that imports matplotlib.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from hmm_pyro.cli import (
    compare,
    datasets,
    decode,
    demo,
    diagnose,
    fit,
    plot,
    simulate,
    store,
    sweep,
)
from hmm_pyro.cli._options import EXIT_BAD_INPUT, PRIOR_KEYS, one_line
from hmm_pyro.cli._prior_specs import parse_prior_spec

__all__ = ["PRIOR_KEYS", "build_parser", "main", "parse_prior_spec"]


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse with usage errors on one line (exit code 2), like the commands' own errors."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` and a pointer to ``--help``; exit with code 2."""
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per command."""
    parser = _OneLineErrorParser(
        prog="hmm-pyro",
        description="Bayesian hidden Markov models in Pyro: simulate, fit, decode, diagnose "
        "degeneracy, relabel, compare priors.",
        epilog="Exit codes: 0 success; 1 diagnose found degeneracy; 2 bad input. "
        "Run 'hmm-pyro COMMAND --help' for the options of a command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (simulate, fit, store, diagnose, compare, sweep, decode, plot, datasets, demo):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 degeneracy found, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (ValueError, TypeError, OSError) as error:
        print(f"hmm-pyro {args.command}: error: {one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
