"""The emission options shared by the commands: ``--emission`` (with ``--blocks``) and its reader.

``--emission`` names a family of the registry; :func:`emission_of` builds it with the family's
``from_options`` from ``--symbols``, ``--dim``, the data and, for a product, ``--blocks
NAME=FAMILY[:D],...``: each block takes the next ``D`` (default 1) columns of the data (the
``--value-column`` columns, in order). Errors of a family about an option itself
(``OptionError``) are shown with the flag the user typed.

Building the parser imports no part of the library that loads torch (the choices are read from
the source, :mod:`hmm_pyro.cli._library`).
"""

from __future__ import annotations

import argparse
import inspect
from typing import TYPE_CHECKING, Any

from hmm_pyro.cli import _library

if TYPE_CHECKING:
    from hmm_pyro.data import Sequences
    from hmm_pyro.emissions import Emission

__all__ = ["EMISSION_FAMILIES", "add_emission_option", "emission_of"]

EMISSION_FAMILIES = _library.keys("hmm_pyro.emissions:FAMILIES")
"""The choices of ``--emission``."""

_OPTION_FLAGS = {"num_symbols": "--symbols", "dim": "--dim", "blocks": "--blocks"}
"""The flags of ``Emission.from_options``'s options: its errors about an option itself
(``OptionError``, with the option's name as ``argument``) are shown with the flag; validation
messages of the values keep the library's argument name."""


def add_emission_option(group: Any, help: str) -> None:
    """``--emission``: the emission family (the CLI's default: categorical), and ``--blocks``."""
    group.add_argument(
        "--emission",
        choices=EMISSION_FAMILIES,
        default=_library.constant("hmm_pyro.emissions:Categorical.family"),
        help=f"{help} (default: %(default)s)",
    )
    group.add_argument(
        "--blocks",
        metavar="NAME=FAMILY[:D],...",
        help="the blocks of --emission product, in column order: each takes the next D "
        "(default 1) of the --value-column columns, e.g. --value-column step,angle "
        "--blocks step=gamma,angle=vonmises; parameters are named NAME_PARAMETER",
    )


def _blocks_of(text: str) -> dict[str, tuple[type[Emission], int]]:
    """``--blocks NAME=FAMILY[:D],...`` as ``{name: (family class, D)}``, in the order given."""
    from hmm_pyro.emissions import FAMILIES

    blocks: dict[str, tuple[type[Emission], int]] = {}
    for item in text.split(","):
        name, equals, spec = (part.strip() for part in item.partition("="))
        family, colon, width = (part.strip() for part in spec.partition(":"))
        if not (name and equals and family) or (colon and not width):
            raise ValueError(
                "--blocks: expected NAME=FAMILY[:D] items separated by commas, "
                f"got {item.strip()!r}"
            )
        if family not in FAMILIES:
            raise ValueError(
                f"--blocks: unknown family {family!r} in block {name!r}; expected one of "
                f"{', '.join(EMISSION_FAMILIES)}"
            )
        if colon and not (width.isdigit() and int(width) >= 1):
            raise ValueError(
                f"--blocks: expected a number of columns >= 1 after ':' in block {name!r}, "
                f"got {width!r}"
            )
        if name in blocks:
            raise ValueError(f"--blocks: block name {name!r} given twice")
        blocks[name] = (FAMILIES[family], int(width) if colon else 1)
    return blocks


def emission_of(args: argparse.Namespace, data: Sequences | None = None) -> Emission:
    """The emission family of ``--emission`` (``--symbols``, ``--dim``, ``--blocks``, the data).

    ``--blocks`` goes to the families whose ``from_options`` takes ``blocks`` (a product's) and
    is refused with any other.
    """
    from hmm_pyro.emissions import FAMILIES

    family = FAMILIES[args.emission]
    num_symbols, dim = getattr(args, "symbols", None), getattr(args, "dim", None)
    options: dict[str, Any] = {}
    if getattr(args, "blocks", None) is not None:
        takers = [
            name
            for name, taker in FAMILIES.items()
            if "blocks" in inspect.signature(taker.from_options).parameters
        ]
        if args.emission not in takers:
            raise ValueError(
                f"--blocks: the blocks of --emission {' or '.join(takers)}; got --emission "
                f"{args.emission}"
            )
        options["blocks"] = _blocks_of(args.blocks)
    try:
        return family.from_options(data=data, num_symbols=num_symbols, dim=dim, **options)
    except ValueError as error:  # name the option the user typed (or left out)
        message = str(error)
        argument = getattr(error, "argument", None)  # an emissions.OptionError
        if argument in _OPTION_FLAGS:
            message = f"{_OPTION_FLAGS[argument]}:{message.partition(':')[2]}"
        raise ValueError(message) from error
