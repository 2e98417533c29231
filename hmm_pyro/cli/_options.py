"""Options shared by the commands (data file, model, prior, runner, fit file) and their readers.

An option the user leaves unset is not passed on: the library function's own default applies,
and help texts read those defaults from the library (signatures, :class:`hmm_pyro.Prior`'s
fields), so that nothing here restates them. The defaults kept here are the CLI's own choices:
``--seed 0`` (runs repeat unless asked otherwise), categorical emissions, progress bars on,
and the output file names.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hmm_pyro.data import Sequences
from hmm_pyro.emissions import FAMILIES, Categorical, Emission
from hmm_pyro.fit import Fit, load
from hmm_pyro.inference.map import OPTIMIZERS as MAP_OPTIMIZERS
from hmm_pyro.inference.svi import GUIDES
from hmm_pyro.model import HMM
from hmm_pyro.priors import Prior
from hmm_pyro.runners import runner_options

__all__ = [
    "EMISSION_FAMILIES",
    "EXIT_BAD_INPUT",
    "EXIT_FLAGGED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "PRIOR_KEYS",
    "add_command",
    "add_data_argument",
    "add_emission_option",
    "add_fit_argument",
    "add_fitting_options",
    "add_model_options",
    "add_runner_options",
    "check_scheduler",
    "emission_of",
    "job_kwargs",
    "library_default",
    "load_data",
    "load_fit",
    "model_of",
    "one_line",
    "option_errors",
    "prior_of",
    "report_warnings",
    "runner_kwargs",
    "set_only",
]

EXIT_OK, EXIT_FLAGGED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130
"""Ctrl-C during a checkpointed SVI run: the state was saved, ``--resume`` continues."""

PRIOR_KEYS = tuple(field.name for field in dataclasses.fields(Prior))
"""Fields of :class:`hmm_pyro.Prior`: one option each, and the keys of a ``--prior`` setting."""

_PARAMETER_FIELDS = ("pi", "A", "B")
"""Prior fields named after the parameter they are the prior of: ``--prior-pi``, not ``--pi``."""

EMISSION_FAMILIES = tuple(FAMILIES)
"""The choices of ``--emission``."""

_OPTION_FLAGS = {"num_symbols": "--symbols", "dim": "--dim"}
_OPTION_MESSAGES = (
    "num_symbols: expected the number",
    "num_symbols: not an option",
    "dim: categorical emissions",
    "dim: mvnormal emissions",
)
"""``Emission.from_options`` messages about the options themselves: shown with the CLI's flag
(validation messages of the values keep the library's argument name)."""

_RUNNER_FLAGS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("chains", {"type": int}, "NUTS chains"),
    ("warmup", {"type": int}, "NUTS warm-up iterations"),
    ("draws", {"type": int}, "NUTS draws per chain"),
    ("guide", {"choices": GUIDES}, "SVI guide"),
    ("optimizer", {"choices": MAP_OPTIMIZERS}, "MAP optimiser"),
    ("steps", {"type": int}, "SVI (and MAP by Adam) steps per restart"),
    ("restarts", {"type": int}, "SVI/MAP/EM/Viterbi-training restarts"),
    (
        "init",
        {},
        "start: auto, prior, data, em (all break the label symmetry); for SVI also Pyro's "
        "median, mean, feasible, uniform, sample",
    ),
)
"""Runner options that keep their runner's name: (option, argparse settings, help)."""

_COMMAND_RUNNER_OPTIONS = ("checkpoint", "checkpoint_every", "chain_dir", "batch_size")
"""Runner options that only some commands offer (``fit``), read when present."""


# ---------------------------------------------------------------------------- small helpers
def one_line(error: BaseException) -> str:
    """The error's message on one line (its type's name when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


def set_only(**options: Any) -> dict[str, Any]:
    """The options that are set (not ``None``): what the user gave, to pass on."""
    return {key: value for key, value in options.items() if value is not None}


def library_default(function: Callable[..., Any], name: str) -> Any:
    """The default of argument ``name`` of a library ``function`` (for help texts)."""
    return inspect.signature(function).parameters[name].default


@contextlib.contextmanager
def option_errors(**options: str) -> Iterator[None]:
    """Name the option in a library error about its argument: ``path: ...`` -> ``--out: ...``.

    Parameters
    ----------
    **options : str
        ``argument=option``, e.g. ``path="--out"``.
    """
    try:
        yield
    except ValueError as error:
        text = str(error)
        for argument, option in options.items():
            if text.startswith(f"{argument}: "):
                raise ValueError(option + text[len(argument) :]) from None
        raise


def report_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Print recorded warnings on stderr, one line each."""
    for item in caught:
        print(f"warning: {one_line(item.message)}", file=sys.stderr)


def add_command(
    commands: Any, name: str, handler: Callable[[argparse.Namespace], int], **settings: Any
) -> argparse.ArgumentParser:
    """Add the sub-parser of command ``name``, run by ``handler(args) -> exit code``.

    Parameters
    ----------
    commands : argparse._SubParsersAction
        The main parser's sub-parsers.
    name : str
        The command.
    handler : callable
        Runs the command.
    **settings
        ``help``, ``description``, ``epilog`` of the sub-parser.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = commands.add_parser(name, **settings)
    parser.set_defaults(handler=handler)
    return parser


# ---------------------------------------------------------------------------- data files
def add_data_argument(
    parser: argparse.ArgumentParser,
    name: str = "data",
    help: str = "data file: .csv (long format), .npy or .npz",
) -> None:
    """The data-file argument and the CSV column options."""
    parser.add_argument(name, help=help)
    group = parser.add_argument_group("data file (CSV long format)")
    columns = inspect.signature(Sequences.from_file).parameters
    group.add_argument(
        "--sequence-column",
        help=f"sequence id column (default: {columns['sequence'].default})",
    )
    group.add_argument(
        "--time-column",
        help="column ordering steps within a sequence; 'none' keeps row order "
        f"(default: {columns['time'].default})",
    )
    group.add_argument(
        "--value-column",
        help="observation column(s), comma-separated for several dimensions "
        f"(default: {columns['value'].default})",
    )


def load_data(args: argparse.Namespace, path: str | None = None) -> Sequences:
    """Read the data file (``args.data`` unless ``path``) with the column options given."""
    options = set_only(sequence=args.sequence_column)
    if args.time_column is not None:
        options["time"] = None if args.time_column.lower() == "none" else args.time_column
    if args.value_column is not None:
        columns = [column.strip() for column in args.value_column.split(",")]
        options["value"] = columns[0] if len(columns) == 1 else columns
    return Sequences.from_file(args.data if path is None else path, **options)


# ---------------------------------------------------------------------------- model and prior
def _json_value(text: str) -> float | list[Any]:
    """Argparse type: a number or a JSON array of numbers."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(
            f"expected a number or a JSON array such as [1, 2], got {text!r}"
        ) from None
    if isinstance(value, bool) or not isinstance(value, (int, float, list)):
        raise argparse.ArgumentTypeError(f"expected a number or a JSON array, got {text!r}")
    return value


def _field_docs(cls: type) -> dict[str, str]:
    """First clause of each parameter's description in the numpydoc ``Parameters`` section."""
    lines = inspect.cleandoc(cls.__doc__ or "").splitlines()
    docs: dict[str, str] = {}
    names: list[str] = []
    inside = False
    for index, line in enumerate(lines):
        next_line = lines[index + 1] if index + 1 < len(lines) else ""
        if next_line.startswith("---"):  # a section title
            inside = line.strip() == "Parameters"
            names = []
        elif inside and line and not line.startswith(" ") and not line.startswith("---"):
            names = [name.strip() for name in line.partition(" : ")[0].split(",")]
        elif inside and line.startswith(" ") and names:
            for name in names:
                docs[name] = f"{docs.get(name, '')} {line.strip()}".strip()
    return {
        name: re.split(r":\s|\.\s|\.$", text, maxsplit=1)[0].replace("``", "")
        for name, text in docs.items()
    }


def add_emission_option(group: Any, help: str) -> None:
    """``--emission``: the emission family (the CLI's default: categorical)."""
    group.add_argument(
        "--emission",
        choices=EMISSION_FAMILIES,
        default=Categorical.family,
        help=f"{help} (default: %(default)s)",
    )


def add_model_options(
    parser: argparse.ArgumentParser, states_required: bool = True, several_states: bool = False
) -> None:
    """``--states``, the emission options and one option per :class:`hmm_pyro.Prior` field."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "--states",
        "-K",
        type=int,
        required=states_required,
        nargs="+" if several_states else None,
        metavar="K",
        help="numbers of hidden states (one fit each)"
        if several_states
        else "number of hidden states",
    )
    add_emission_option(group, "emission family")
    group.add_argument(
        "--symbols",
        type=int,
        metavar="V",
        help="number of symbols of categorical emissions (default: largest symbol + 1)",
    )
    group.add_argument(
        "--dim",
        type=int,
        metavar="D",
        help="dimension of Gaussian/Poisson observations (default: from the data, else 1)",
    )
    prior_group = parser.add_argument_group("prior (each a number or a JSON array)")
    docs = _field_docs(Prior)
    for field in dataclasses.fields(Prior):
        name = field.name
        flag = f"--prior-{name}" if name in _PARAMETER_FIELDS else "--" + name.replace("_", "-")
        prior_group.add_argument(
            flag,
            dest=f"prior_{name}",
            type=_json_value,
            metavar="X",
            help=f"{docs.get(name, 'hyperparameter')} (Prior.{name}, default {field.default})",
        )


def prior_of(args: argparse.Namespace, **changes: Any) -> Prior:
    """The :class:`hmm_pyro.Prior` of the prior options given, with ``changes`` on top."""
    options = set_only(**{name: getattr(args, f"prior_{name}", None) for name in PRIOR_KEYS})
    options.update(changes)
    return Prior(**options)


def emission_of(args: argparse.Namespace, data: Sequences | None = None) -> Emission:
    """The emission family of ``--emission`` (with ``--symbols``, ``--dim`` or the data)."""
    family = FAMILIES[args.emission]
    num_symbols, dim = getattr(args, "symbols", None), getattr(args, "dim", None)
    try:
        return family.from_options(data=data, num_symbols=num_symbols, dim=dim)
    except ValueError as error:  # name the option the user typed (or left out)
        message = str(error)
        if message.startswith(_OPTION_MESSAGES):
            argument, _, rest = message.partition(":")
            message = f"{_OPTION_FLAGS[argument]}:{rest}"
        raise ValueError(message) from error


def model_of(
    args: argparse.Namespace, data: Sequences | None = None, prior: Prior | None = None
) -> HMM:
    """The HMM of the model and prior options (with ``prior`` instead of the prior options)."""
    if args.states is None:
        raise ValueError("--states: expected the number of hidden states K")
    return HMM(
        args.states, emission_of(args, data), prior=prior_of(args) if prior is None else prior
    )


# ---------------------------------------------------------------------------- runners
def _defaults_text(option: str, methods: Sequence[str]) -> str:
    """The runners' default of ``option``: ``"4"``, or ``"4 for svi, 5 for em and viterbi"``."""
    by_value: dict[str, list[str]] = {}
    for method in methods:
        default = runner_options(method).get(option, inspect.Parameter.empty)
        if default is not inspect.Parameter.empty:
            by_value.setdefault(str(default), []).append(method)
    if len(by_value) == 1:
        return next(iter(by_value))
    return ", ".join(f"{value} for {' and '.join(names)}" for value, names in by_value.items())


def add_runner_options(
    parser: argparse.ArgumentParser, methods: Sequence[str], default: str
) -> None:
    """``--method`` (one of ``methods``), the runners' options, seed, progress and where to run.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The command's parser.
    methods : sequence of str
        Keys of :data:`hmm_pyro.runners.RUNNERS`.
    default : str
        The method when ``--method`` is not given.
    """
    group = parser.add_argument_group("inference")
    group.add_argument(
        "--method", choices=tuple(methods), default=default, help="runner (default: %(default)s)"
    )
    group.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    for option, settings, text in _RUNNER_FLAGS:
        group.add_argument(
            "--" + option.replace("_", "-"),
            **settings,
            help=f"{text} (default: {_defaults_text(option, methods)})",
        )
    group.add_argument(
        "--no-progress", action="store_true", help="no progress bars (they show on terminals)"
    )
    group.add_argument(
        "--serial",
        action="store_true",
        help="run everything in this process (default: NUTS chains, or compare's and sweep's "
        "fits, as tasks on a local Dask cluster, one worker process per core)",
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run the tasks on this Dask cluster instead, e.g. tcp://10.0.0.5:8786 (workers "
        "need hmm_pyro installed; start them with --nthreads 1); results are the same bit for "
        "bit. The connect timeout is Dask's (DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT)",
    )


def runner_kwargs(
    args: argparse.Namespace, method: str, owned: Sequence[str] = ()
) -> dict[str, Any]:
    """The options of runner ``method`` that the user set, with the seed and progress bars.

    Options the runner does not take are left out (``--chains`` with SVI), as are ``owned``
    ones: those the caller (``compare``, ``sweep``) passes itself.
    """
    given = {option: getattr(args, option) for option, _, _ in _RUNNER_FLAGS}
    given.update({option: getattr(args, option, None) for option in _COMMAND_RUNNER_OPTIONS})
    given.update(
        seed=args.seed,
        progress=not args.no_progress,
        parallel=False if args.serial else None,
        client=args.scheduler,
        resume=True if getattr(args, "resume", False) else None,
    )
    accepted = runner_options(method)
    return {
        option: value
        for option, value in set_only(**given).items()
        if option in accepted and option not in owned
    }


def add_fitting_options(
    parser: argparse.ArgumentParser,
    methods: Sequence[str],
    default: str,
    several_states: bool = False,
) -> None:
    """The data file, model, prior and runner options of the commands that fit models."""
    add_data_argument(parser)
    add_model_options(parser, several_states=several_states)
    add_runner_options(parser, methods, default)


def job_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of a job of many fits (``compare_priors``, ``sweep``).

    The method, seed, progress bar and where the fits run (these are the job's own arguments),
    and the runner options the user set.
    """
    return {
        "method": args.method,
        "seed": args.seed,
        "progress": not args.no_progress,
        **set_only(parallel=False if args.serial else None, client=args.scheduler),
        **runner_kwargs(args, args.method, owned=("seed", "progress", "parallel", "client")),
    }


def check_scheduler(args: argparse.Namespace) -> None:
    """Refuse an empty ``--scheduler`` and ``--scheduler`` with ``--serial``."""
    if args.scheduler is not None:
        if not args.scheduler.strip():
            raise ValueError("--scheduler: expected an address such as tcp://10.0.0.5:8786")
        if args.serial:
            raise ValueError("--scheduler: cannot be combined with --serial")


# ---------------------------------------------------------------------------- fit files
def add_fit_argument(parser: argparse.ArgumentParser, help: str = "a fit (.nc)") -> None:
    """The positional fit-file argument."""
    parser.add_argument("fit", help=help)


def load_fit(path: str) -> Fit:
    """Load a fit written by ``hmm-pyro fit``; errors name the file."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"fit: expected an existing NetCDF file, got {path!r}")
    try:
        return load(file)
    except OSError as error:
        raise ValueError(f"fit: cannot read {path!r} as a hmm_pyro fit ({error})") from None
