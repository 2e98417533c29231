"""``hmm-pyro store``: write sequences to a chunked store that ``hmm-pyro fit`` reads lazily."""

from __future__ import annotations

import argparse
from typing import Any

from hmm_pyro.cli._options import (
    EXIT_OK,
    add_command,
    add_data_argument,
    add_emission_option,
    emission_of,
    load_data,
)

__all__ = ["add_parser"]


def run(args: argparse.Namespace) -> int:
    """Write the data file to a store."""
    from hmm_pyro.store import open_store, write_store

    data = load_data(args)
    path = write_store(args.out, data, emission=emission_of(args, data))
    with open_store(path) as store:
        print(f"wrote {store!r}; next: hmm-pyro fit {path} --states K --method svi")
    return EXIT_OK


def add_parser(commands: Any) -> None:
    """Register ``store``."""
    parser = add_command(
        commands,
        "store",
        run,
        help="write sequences to a chunked store for mini-batch SVI",
        description="Write DATA to a chunked NetCDF-4 store that 'hmm-pyro fit' reads lazily, "
        "a mini-batch at a time, so memory stays bounded however many sequences there are.",
    )
    add_data_argument(parser)
    add_emission_option(parser, "emission family recorded in the store")
    parser.add_argument("--symbols", type=int, help="categorical: number of symbols V")
    parser.add_argument("--out", default="store.nc", help="store file (default: %(default)s)")
