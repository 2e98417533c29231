"""``hmm-pyro datasets``: the real data sets shipped with hmm_pyro; copy one out to fit it."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from hmm_pyro.cli._options import EXIT_OK, add_command

__all__ = ["add_parser"]


def run(args: argparse.Namespace) -> int:
    """List the data sets, or describe one (and copy its CSV file to ``--out``)."""
    from hmm_pyro.datasets import DATASETS, dataset  # only when run: the parser stays light

    if args.name is None:
        if args.out is not None:
            raise ValueError("--out: name the data set to copy, e.g. hmm-pyro datasets NAME --out")
        width = max(len(name) for name in DATASETS)
        for name, entry in DATASETS.items():
            print(f"{name.ljust(width)}  {entry.title}")
        print("'hmm-pyro datasets NAME' describes one; add --out FILE to copy its CSV file")
        return EXIT_OK
    entry = dataset(args.name)
    print(f"{entry.name}: {entry.title}")
    print(f"source: {entry.source}")
    for column, meaning in entry.columns.items():
        print(f"column {column}: {meaning}")
    path = entry.path
    if args.out is not None:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(entry.path, path)
        print(f"wrote {path}")
    else:
        print(f"file: {path}")
    print(f"fit it: hmm-pyro fit {path} {' '.join(entry.cli_options())} --states K")
    return EXIT_OK


def add_parser(commands: Any) -> None:
    """Register ``datasets``."""
    parser = add_command(
        commands,
        "datasets",
        run,
        help="real data sets shipped with hmm_pyro (list, describe, copy)",
        description="List the data sets shipped with hmm_pyro, describe one (source, columns, "
        "the fit options that read it) or copy its CSV file.",
    )
    parser.add_argument("name", nargs="?", help="a data set (default: list them)")
    parser.add_argument("--out", metavar="FILE", help="copy the data set's CSV file to FILE")
