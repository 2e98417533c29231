"""Options shared by the commands (data file, model, prior, runner, fit file) and their readers.

The emission options (``--emission``, ``--blocks``) are in :mod:`hmm_pyro.cli._emission`.

An option the user leaves unset is not passed on: the library function's own default applies,
and help texts read those defaults from the library (signatures, :class:`hmm_pyro.Prior`'s
fields), so that nothing here restates them. The defaults kept here are the CLI's own choices:
``--seed 0`` (runs repeat unless asked otherwise), categorical emissions, progress bars on,
and the output file names.

Building the parser imports no part of the library that loads torch: the choices and defaults
in the help texts are read from the library's source (:mod:`hmm_pyro.cli._library`), and the
functions that run a command import the library when they are called.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hmm_pyro.cli import _library
from hmm_pyro.cli._emission import EMISSION_FAMILIES, add_emission_option, emission_of

if TYPE_CHECKING:
    from hmm_pyro.data import Sequences
    from hmm_pyro.fit import Fit
    from hmm_pyro.model import HMM
    from hmm_pyro.priors import Prior

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
    "runner_options",
    "set_only",
]

EXIT_OK, EXIT_FLAGGED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130
"""Ctrl-C during a checkpointed SVI run: the state was saved, ``--resume`` continues."""

_PRIOR = "hmm_pyro.priors:Prior"

PRIOR_KEYS = tuple(_library.fields(_PRIOR))
"""Fields of :class:`hmm_pyro.Prior`: one option each, and the keys of a ``--prior`` setting."""

_PARAMETER_FIELDS = ("pi", "A", "B")
"""Prior fields named after the parameter they are the prior of: ``--prior-pi``, not ``--pi``."""

_RUNNER_FLAGS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("chains", {"type": int}, "NUTS chains"),
    ("warmup", {"type": int}, "NUTS warm-up iterations"),
    ("draws", {"type": int}, "NUTS draws per chain"),
    ("target_accept", {"type": float}, "NUTS step-size adaptation's target acceptance"),
    (
        "dense_mass",
        {"action": "store_const", "const": True},
        "NUTS: adapt a dense mass matrix (more ESS per gradient when the parameters are "
        "correlated, e.g. categorical emissions; benchmarks/results/ess_per_gradient.md)",
    ),
    ("guide", {"choices": _library.constant("hmm_pyro.inference.svi:GUIDES")}, "SVI guide"),
    (
        "optimizer",
        {"choices": _library.constant("hmm_pyro.inference.map:OPTIMIZERS")},
        "MAP optimiser",
    ),
    ("steps", {"type": int}, "SVI (and MAP by Adam) steps per restart"),
    ("restarts", {"type": int}, "SVI/MAP/EM/Viterbi-training restarts"),
    (
        "init",
        {},
        "start: auto, prior, data, em (all break the label symmetry); for SVI also Pyro's "
        "median, mean, feasible, uniform, sample",
    ),
    ("max_iter", {"type": int}, "EM/Viterbi-training updates per restart"),
    (
        "tol",
        {"type": float},
        "convergence tolerance: EM stops when an update changes the log posterior by at most "
        "TOL relative to its size; SVI and MAP by Adam when the mean loss of 50 steps does",
    ),
)
"""Runner options that keep their runner's name: (option, argparse settings, help)."""

_STRICT_RUNNER_OPTIONS = ("max_iter", "tol")
"""Runner options refused (not dropped) when the method does not take them."""

GAP_CHOICES = ("missing", "error", "ignore")
"""The choices of ``--time-gaps``: ``Sequences.from_file``'s ``gaps`` (a test checks)."""

_COMMAND_RUNNER_OPTIONS = ("checkpoint", "checkpoint_every", "chain_dir", "batch_size")
"""Runner options that only some commands offer (``fit``), read when present."""


# ---------------------------------------------------------------------------- small helpers
def one_line(error: BaseException) -> str:
    """The error's message on one line (its type's name when it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


def set_only(**options: Any) -> dict[str, Any]:
    """The options that are set (not ``None``): what the user gave, to pass on."""
    return {key: value for key, value in options.items() if value is not None}


def library_default(function: str, name: str) -> Any:
    """The default of argument ``name`` of the library function at ``function`` (for help texts).

    ``function`` is a path ``"module:name"`` (``"hmm_pyro.sweep:sweep"``): the default is read
    from the source, without importing the library (see :mod:`hmm_pyro.cli._library`).
    """
    return _library.parameters(function)[name]


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
    columns = _library.parameters("hmm_pyro.data:Sequences.from_file")
    group.add_argument(
        "--sequence-column",
        help=f"sequence id column; 'none': the file is one sequence (default: "
        f"{columns['sequence']}, or one sequence when the file has no such column)",
    )
    group.add_argument(
        "--time-column",
        help="column ordering the steps within a sequence; whole-number times also place "
        "them, so a skipped time is a missing observation (see --time-gaps); 'none' keeps row "
        f"order (default: {columns['time']})",
    )
    group.add_argument(
        "--time-gaps",
        choices=GAP_CHOICES,
        help="skipped times: missing (missing observations, which the model marginalises; a "
        "note says how many), error, or ignore (the time column only orders the rows) "
        f"(default: {columns['gaps']})",
    )
    group.add_argument(
        "--value-column",
        help="observation column(s), comma-separated for several dimensions; a column of "
        "text gives named symbols (categorical emissions) "
        f"(default: {columns['value']})",
    )


def _lacks_column(path: str, column: str) -> bool:
    """Whether ``path`` is a CSV file whose header does not name ``column``."""
    import pandas as pd  # only here: building the parser stays light

    file = Path(path)
    if file.suffix.lower() != ".csv" or not file.is_file():
        return False
    try:
        header = pd.read_csv(file, nrows=0)
    except (ValueError, OSError, UnicodeDecodeError):
        return False  # Sequences.from_file reports the problem
    return column not in header.columns


_GAP_ADVICE = re.compile(r"gaps='(missing|error|ignore)'")
"""The library's advice on gaps (``gaps='error'``), shown as the CLI option."""


def _in_options(text: str) -> str:
    """``gaps='error'`` -> ``--time-gaps error`` in a library message."""
    return _GAP_ADVICE.sub(r"--time-gaps \1", text)


def load_data(
    args: argparse.Namespace,
    path: str | None = None,
    symbols: Sequence[str] | None = None,
    **covariates: Any,
) -> Sequences:
    """Read the data file (``args.data`` unless ``path``) with the column options given.

    A CSV file without the default sequence column is one sequence. Gaps filled with missing
    observations are reported in one line (``note: ...``) on stderr.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.
    path : str, optional
        Another file than ``args.data``.
    symbols : sequence of str, optional
        The names of the symbols (a fit's) that text values are coded with.
    **covariates
        ``covariates`` (columns) and ``standardize``, as :meth:`hmm_pyro.Sequences.from_file`.
    """
    from hmm_pyro.data import Sequences, TimeGapWarning

    file = args.data if path is None else path
    options: dict[str, Any] = set_only(gaps=getattr(args, "time_gaps", None), symbols=symbols)
    options.update(covariates)
    default_sequence = _library.parameters("hmm_pyro.data:Sequences.from_file")["sequence"]
    if args.sequence_column is not None:
        none = args.sequence_column.lower() == "none"
        options["sequence"] = None if none else args.sequence_column
    elif _lacks_column(file, default_sequence):
        options["sequence"] = None
    if args.time_column is not None:
        options["time"] = None if args.time_column.lower() == "none" else args.time_column
    if args.value_column is not None:
        columns = [column.strip() for column in args.value_column.split(",")]
        options["value"] = columns[0] if len(columns) == 1 else columns
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TimeGapWarning)
            data = Sequences.from_file(file, **options)
    except ValueError as error:  # the library's advice, in the CLI's options
        raise ValueError(_in_options(str(error))) from error
    for item in caught:
        if issubclass(item.category, TimeGapWarning):
            print(f"note: {_in_options(str(item.message))}", file=sys.stderr)
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    return data


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


def _field_docs(doc: str) -> dict[str, str]:
    """First clause of each parameter's description in the numpydoc ``Parameters`` section."""
    lines = doc.splitlines()
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
    docs = _field_docs(_library.docstring(_PRIOR))
    for name, default in _library.fields(_PRIOR).items():
        flag = f"--prior-{name}" if name in _PARAMETER_FIELDS else "--" + name.replace("_", "-")
        prior_group.add_argument(
            flag,
            dest=f"prior_{name}",
            type=_json_value,
            metavar="X",
            help=f"{docs.get(name, 'hyperparameter')} (Prior.{name}, default {default})",
        )


def prior_of(args: argparse.Namespace, **changes: Any) -> Prior:
    """The :class:`hmm_pyro.Prior` of the prior options given, with ``changes`` on top."""
    from hmm_pyro.priors import Prior

    options = set_only(**{name: getattr(args, f"prior_{name}", None) for name in PRIOR_KEYS})
    options.update(changes)
    return Prior(**options)


def model_of(
    args: argparse.Namespace, data: Sequences | None = None, prior: Prior | None = None
) -> HMM:
    """The HMM of the model and prior options (with ``prior`` instead of the prior options)."""
    from hmm_pyro.model import HMM

    if args.states is None:
        raise ValueError("--states: expected the number of hidden states K")
    return HMM(
        args.states, emission_of(args, data), prior=prior_of(args) if prior is None else prior
    )


# ---------------------------------------------------------------------------- runners
def runner_options(method: str) -> dict[str, Any]:
    """:func:`hmm_pyro.runners.runner_options`, read from the runners' source (no import).

    Parameters
    ----------
    method : str
        A key of :data:`hmm_pyro.runners.RUNNERS`.

    Returns
    -------
    dict
        ``{option: default}`` for every parameter after the model and the data.
    """
    runner = _library.registry("hmm_pyro.runners:RUNNERS")[method]
    return dict(list(_library.parameters(runner).items())[2:])


def _defaults_text(option: str, methods: Sequence[str]) -> str:
    """The runners' default of ``option``: ``"4"``, or ``"4 for svi, 5 for em and viterbi"``.

    ``None`` (the runner chooses, e.g. by guide or optimiser) reads ``"automatic"``.
    """
    by_value: dict[str, list[str]] = {}
    for method in methods:
        default = runner_options(method).get(option, inspect.Parameter.empty)
        if default is not inspect.Parameter.empty:
            text = "automatic" if default is None else str(default)
            by_value.setdefault(text, []).append(method)
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
        "fits, as tasks on local worker processes, one per core)",
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
    for option in _STRICT_RUNNER_OPTIONS:
        if given.get(option) is not None and option not in accepted:
            takers = [
                name
                for name in _library.registry("hmm_pyro.runners:RUNNERS")
                if option in runner_options(name)
            ]
            raise ValueError(
                f"--{option.replace('_', '-')}: --method {method} has no such setting; "
                f"{', '.join(takers)} take it"
            )
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
    from hmm_pyro.fit import load

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"fit: expected an existing NetCDF file, got {path!r}")
    try:
        return load(file)
    except OSError as error:
        raise ValueError(f"fit: cannot read {path!r} as a hmm_pyro fit ({error})") from None
