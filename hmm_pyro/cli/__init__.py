"""Command-line interface: ``hmm-pyro <command>`` (also ``python -m hmm_pyro``).

Commands: ``simulate``, ``fit``, ``diagnose``, ``relabel``, ``compare``, ``sweep``, ``decode``,
``plot`` and ``demo``. Data files: CSV in long format (columns ``sequence``, ``time``,
``value``), ``.npy`` or ``.npz`` (see :meth:`hmm_pyro.Sequences.from_file`). Fits are ArviZ
NetCDF files. ``fit`` (NUTS chains), ``compare`` and ``sweep`` run their independent fits as
tasks on a local Dask cluster, or on ``--scheduler ADDRESS``.

Exit codes: 0 success; 1 ``diagnose`` found degeneracy (so scripts can gate on it); 2 bad input
(one line on stderr naming the problem, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from hmm_pyro._io import atomic_path, write_text_atomic

__all__ = ["PRIOR_KEYS", "build_parser", "main", "parse_prior_spec"]

PRIOR_KEYS = (
    "pi",
    "A",
    "B",
    "stickiness",
    "mu_loc",
    "mu_scale",
    "variance_shape",
    "variance_scale",
    "rate_shape",
    "rate_rate",
)
"""Fields of :class:`hmm_pyro.Prior`, the keys of a ``--prior`` setting."""

EXIT_OK, EXIT_FLAGGED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130
"""Ctrl-C during a checkpointed SVI run: the state was saved, ``--resume`` continues."""

_PRIOR_HELP = """\
prior setting NAME[:KEY=VALUE[,KEY=VALUE...]] (repeat for several settings). KEY is a Prior
field: pi, A, B, stickiness, mu_loc, mu_scale, variance_shape, variance_scale, rate_shape,
rate_rate. VALUE is a number or a JSON array, e.g. B=[[5,1],[1,5]] (commas inside brackets
belong to the array). Unset keys come from the model prior options (--prior-B, --stickiness,
...). A bare NAME uses those options unchanged. Default: flat (no change) and
sticky:stickiness=10."""


# ---------------------------------------------------------------------------- parsing helpers
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


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets."""
    parts, depth, current = [], 0, []
    for char in text:
        if char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced ']'")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise ValueError("unbalanced '['")
    parts.append("".join(current))
    return parts


def parse_prior_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Parse ``NAME[:KEY=VALUE,...]`` into a name and Prior keyword arguments.

    Parameters
    ----------
    spec : str
        For example ``"sticky:stickiness=10"`` or ``"strong:B=[[9,1],[1,9]],stickiness=0"``.

    Returns
    -------
    name : str
        The setting's name.
    changes : dict
        Prior fields to set (numbers or nested lists).

    Raises
    ------
    ValueError
        Naming the offending part of the spec.

    Examples
    --------
    >>> parse_prior_spec("sticky:stickiness=10,B=0.5")
    ('sticky', {'stickiness': 10, 'B': 0.5})
    """
    name, _, body = spec.partition(":")
    name = name.strip()
    if not name or not all(char.isalnum() or char in "-_." for char in name):
        raise ValueError(
            f"--prior {spec!r}: expected NAME[:KEY=VALUE,...] with a name of letters, digits, "
            "'-', '_' or '.'"
        )
    changes: dict[str, Any] = {}
    if not body.strip():
        if ":" in spec:
            raise ValueError(f"--prior {spec!r}: expected KEY=VALUE pairs after ':'")
        return name, changes
    try:
        items = _split_top_level(body)
    except ValueError as error:
        raise ValueError(f"--prior {spec!r}: {error}") from None
    for item in items:
        key, equals, text = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ValueError(f"--prior {spec!r}: expected KEY=VALUE, got {item!r}")
        if key not in PRIOR_KEYS:
            raise ValueError(
                f"--prior {spec!r}: unknown key {key!r}; expected one of {', '.join(PRIOR_KEYS)}"
            )
        if key in changes:
            raise ValueError(f"--prior {spec!r}: key {key!r} given twice")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(
                f"--prior {spec!r}: {key}={text!r} is not a number or a JSON array"
            ) from None
        if isinstance(value, bool) or not isinstance(value, (int, float, list)):
            raise ValueError(f"--prior {spec!r}: {key}={text!r} is not a number or a JSON array")
        changes[key] = value
    return name, changes


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


# ---------------------------------------------------------------------------- shared options
def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data file (CSV long format)")
    group.add_argument(
        "--sequence-column", default="sequence", help="sequence id column (default: %(default)s)"
    )
    group.add_argument(
        "--time-column",
        default="time",
        help="column ordering steps within a sequence; 'none' keeps row order "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--value-column",
        default="value",
        help="observation column(s), comma-separated for several dimensions (default: %(default)s)",
    )


def _add_model_options(
    parser: argparse.ArgumentParser, states_required: bool = True, several_states: bool = False
) -> None:
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
    group.add_argument(
        "--emission",
        choices=("categorical", "gaussian", "poisson"),
        default="categorical",
        help="emission family (default: %(default)s)",
    )
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
    prior = parser.add_argument_group(
        "prior (each a number or a JSON array; defaults: flat Dirichlet(1), mu ~ N(0, 10), "
        "sigma^2 ~ InvGamma(2, 1), rate ~ Gamma(1, 0.1))"
    )
    prior.add_argument("--prior-pi", type=_json_value, metavar="X", help="Dirichlet of pi")
    prior.add_argument(
        "--prior-A", type=_json_value, metavar="X", help="Dirichlet of each row of A"
    )
    prior.add_argument(
        "--prior-B", type=_json_value, metavar="X", help="Dirichlet of each row of B (categorical)"
    )
    prior.add_argument(
        "--stickiness", type=_json_value, metavar="X", help="added to the diagonal of A's prior"
    )
    prior.add_argument("--mu-loc", type=_json_value, metavar="X", help="Normal mean of mu")
    prior.add_argument("--mu-scale", type=_json_value, metavar="X", help="Normal sd of mu")
    prior.add_argument(
        "--variance-shape", type=_json_value, metavar="X", help="InvGamma shape of sigma^2"
    )
    prior.add_argument(
        "--variance-scale", type=_json_value, metavar="X", help="InvGamma scale of sigma^2"
    )
    prior.add_argument("--rate-shape", type=_json_value, metavar="X", help="Gamma shape of rate")
    prior.add_argument("--rate-rate", type=_json_value, metavar="X", help="Gamma rate of rate")


def _add_runner_options(
    parser: argparse.ArgumentParser, methods: Sequence[str], default: str = "nuts"
) -> None:
    group = parser.add_argument_group("inference")
    group.add_argument(
        "--method", choices=tuple(methods), default=default, help="runner (default: %(default)s)"
    )
    group.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    group.add_argument("--chains", type=int, default=4, help="NUTS chains (default: %(default)s)")
    group.add_argument(
        "--warmup", type=int, default=500, help="NUTS warm-up iterations (default: %(default)s)"
    )
    group.add_argument(
        "--draws", type=int, default=500, help="NUTS draws per chain (default: %(default)s)"
    )
    group.add_argument(
        "--guide",
        choices=("map", "normal", "mvn"),
        default="map",
        help="SVI guide (default: %(default)s)",
    )
    group.add_argument(
        "--steps", type=int, default=2000, help="SVI steps per restart (default: %(default)s)"
    )
    group.add_argument(
        "--restarts",
        type=int,
        help="SVI/EM/Viterbi-training restarts (default: 4 for SVI, 5 for EM and Viterbi)",
    )
    group.add_argument(
        "--init",
        default="auto",
        help="start: auto, prior, data, em (all break the label symmetry); for SVI also "
        "Pyro's median, mean, feasible, uniform, sample (default: %(default)s)",
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


# ---------------------------------------------------------------------------- builders
def _load_data(args: argparse.Namespace, path: str | None = None) -> Any:
    from hmm_pyro.data import Sequences

    path = args.data if path is None else path
    columns = [column.strip() for column in args.value_column.split(",")]
    time = None if args.time_column.lower() == "none" else args.time_column
    return Sequences.from_file(
        path,
        sequence=args.sequence_column,
        time=time,
        value=columns[0] if len(columns) == 1 else columns,
    )


def _prior(args: argparse.Namespace, **changes: Any) -> Any:
    from hmm_pyro.priors import Prior

    options = {
        "pi": args.prior_pi,
        "A": args.prior_A,
        "B": args.prior_B,
        "stickiness": args.stickiness,
        "mu_loc": args.mu_loc,
        "mu_scale": args.mu_scale,
        "variance_shape": args.variance_shape,
        "variance_scale": args.variance_scale,
        "rate_shape": args.rate_shape,
        "rate_rate": args.rate_rate,
    }
    options = {key: value for key, value in options.items() if value is not None}
    options.update(changes)
    return Prior(**options)


def _emission(args: argparse.Namespace, data: Any = None) -> Any:
    from hmm_pyro.emissions import Categorical, Gaussian, Poisson

    if args.emission == "categorical":
        symbols = args.symbols
        if symbols is None:
            if data is None:
                raise ValueError("--symbols: expected the number of symbols V")
            observed = data.values[data.observed]
            top = int(observed.max()) if observed.numel() else 1
            if not bool((observed == observed.round()).all()):
                raise ValueError("data: expected integer symbols for categorical emissions")
            symbols = max(top + 1, 2)
        if data is not None and data.dim != 1:
            raise ValueError(
                f"data: expected one value per step for categorical emissions, got {data.dim}"
            )
        return Categorical(num_symbols=symbols)
    dim = args.dim
    if dim is None and data is not None:
        dim = data.dim
    family = Gaussian if args.emission == "gaussian" else Poisson
    return family(dim=dim) if dim is not None and dim > 1 else family()


def _model(args: argparse.Namespace, data: Any = None, prior: Any = None) -> Any:
    from hmm_pyro.model import HMM

    if args.states is None:
        raise ValueError("--states: expected the number of hidden states K")
    return HMM(args.states, _emission(args, data), prior=_prior(args) if prior is None else prior)


def _runner_kwargs(args: argparse.Namespace, method: str) -> dict[str, Any]:
    progress = not args.no_progress
    if method == "nuts":
        return {
            "chains": args.chains,
            "warmup": args.warmup,
            "draws": args.draws,
            "init": args.init,
            "progress": progress,
            "parallel": False if args.serial else None,
        }
    if method == "svi":
        return {
            "guide": args.guide,
            "steps": args.steps,
            "restarts": 4 if args.restarts is None else args.restarts,
            "init": args.init,
            "progress": progress,
        }
    if method in ("em", "viterbi"):
        return {
            "restarts": 5 if args.restarts is None else args.restarts,
            "init": args.init,
            "progress": progress,
        }
    return {}


def _check_scheduler(args: argparse.Namespace) -> None:
    if args.scheduler is not None:
        if not args.scheduler.strip():
            raise ValueError("--scheduler: expected an address such as tcp://10.0.0.5:8786")
        if args.serial:
            raise ValueError("--scheduler: cannot be combined with --serial")


def _prior_settings(args: argparse.Namespace, default: Sequence[str]) -> dict[str, Any]:
    """``{name: Prior}`` from the repeated ``--prior NAME[:KEY=VALUE,...]`` options."""
    priors = {}
    for spec in args.prior or default:
        name, changes = parse_prior_spec(spec)
        if name in priors:
            raise ValueError(f"--prior: the name {name!r} is used twice")
        try:
            priors[name] = _prior(args, **changes)
        except (ValueError, TypeError) as error:
            raise ValueError(f"--prior {spec!r}: {_one_line(error)}") from None
    return priors


def _load_fit(path: str) -> Any:
    from hmm_pyro.inference import load

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"fit: expected an existing NetCDF file, got {path!r}")
    try:
        return load(file)
    except (OSError, KeyError) as error:
        raise ValueError(f"fit: cannot read {path!r} as a hmm_pyro fit ({error})") from None


def _print_point(fit: Any) -> None:
    import numpy as np

    for name, value in fit.posterior_mean().items():
        array = np.atleast_2d(value.numpy())
        print(f"{name} =")
        for row in array:
            print("   " + " ".join(f"{entry:8.4f}" for entry in row))


def _report_warnings(caught: list[warnings.WarningMessage]) -> None:
    for item in caught:
        print(f"warning: {_one_line(item.message)}", file=sys.stderr)


# ---------------------------------------------------------------------------- commands
def _simulate(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd
    import torch

    from hmm_pyro.simulate import simulate

    if args.params == "reference":
        from hmm_pyro.simulate import REFERENCE_PARAMS

        if args.states not in (None, 3) or args.emission != "categorical":
            raise ValueError("--params reference: is the 3-state, 5-symbol categorical HMM")
        args.states, args.symbols = 3, 5
        params = dict(REFERENCE_PARAMS)
        hmm = _model(args)
    elif args.params is not None:
        path = Path(args.params)
        if not path.is_file():
            raise FileNotFoundError(
                f"--params: expected an existing JSON file, got {args.params!r}"
            )
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError(f"--params: expected a JSON object of parameters, got {type(raw)}")
        params = {key: torch.as_tensor(value, dtype=torch.float64) for key, value in raw.items()}
        if args.states is None and "A" in params:
            args.states = int(params["A"].shape[-1])
        if args.emission == "categorical" and args.symbols is None and "B" in params:
            args.symbols = int(params["B"].shape[-1])
        hmm = _model(args)
    else:
        if args.emission == "categorical" and args.symbols is None:
            raise ValueError("--symbols: expected the number of symbols V (or --params)")
        hmm = _model(args)
        params = hmm.sample_prior(seed=args.seed)
    if args.lengths:
        try:
            lengths = [int(item) for item in args.lengths.split(",")]
        except ValueError:
            raise ValueError(
                f"--lengths: expected comma-separated integers, got {args.lengths!r}"
            ) from None
    else:
        lengths = [args.length] * args.sequences
    data, states = simulate(hmm, params, lengths, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    frame = data.to_dataframe()
    if suffix == ".csv":
        if hmm.emission.family != "gaussian":
            value_columns = [column for column in frame.columns if column.startswith("value")]
            frame[value_columns] = frame[value_columns].astype("int64")
        with atomic_path(out) as temporary:
            frame.to_csv(temporary, index=False)
    elif suffix == ".npz":
        with atomic_path(out) as temporary:
            np.savez(
                temporary,
                values=data.values.numpy()[..., 0] if data.dim == 1 else data.values.numpy(),
                lengths=data.lengths.numpy(),
            )
    elif suffix == ".npy":
        if len(set(lengths)) != 1:
            raise ValueError("--out: .npy needs sequences of equal length; use .csv or .npz")
        values = data.values.numpy()
        with atomic_path(out) as temporary:
            np.save(temporary, values[..., 0] if data.dim == 1 else values)
    else:
        raise ValueError(f"--out: expected a .csv, .npz or .npy file name, got {out.name!r}")
    state_rows = [
        {"sequence": n, "time": t, "state": int(states[n, t])}
        for n in range(len(lengths))
        for t in range(lengths[n])
    ]
    states_path = out.with_name(f"{out.stem}_states.csv")
    with atomic_path(states_path) as temporary:
        pd.DataFrame(state_rows).to_csv(temporary, index=False)
    params_path = out.with_name(f"{out.stem}_params.json")
    write_text_atomic(
        params_path,
        json.dumps({key: value.tolist() for key, value in params.items()}, indent=2) + "\n",
    )
    print(f"simulated {data} from {hmm!r}")
    print(f"wrote {out}, {states_path}, {params_path}")
    return EXIT_OK


def _read_states(path: str) -> list[Any]:
    import numpy as np

    from hmm_pyro.data import Sequences

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--state-file: expected an existing file, got {path!r}")
    if file.suffix.lower() == ".csv":
        paths = Sequences.from_file(file, value="state")
        return [np.asarray(sequence, dtype=np.int64) for sequence in paths.to_list()]
    return [np.asarray(row, dtype=np.int64) for row in np.atleast_2d(np.load(file))]


def _is_store(path: str) -> bool:
    """True when ``path`` is a sequence store (``hmm-pyro store``), read lazily."""
    import h5py

    file = Path(path)
    if file.suffix.lower() not in (".nc", ".h5") or not file.is_file():
        return False
    try:
        with h5py.File(file, "r") as handle:
            return "hmm_pyro_store" in handle.attrs
    except OSError:
        return False


def _check_fit_options(args: argparse.Namespace, streaming: bool) -> None:
    """Options that belong to one runner only, refused (exit 2) with any other."""
    _check_scheduler(args)
    if args.scheduler is not None and args.method != "nuts":
        raise ValueError(
            f"--scheduler: only NUTS chains run as tasks; --method {args.method} runs here"
        )
    if args.chain_dir is not None and args.method != "nuts":
        raise ValueError(f"--chain-dir: saves NUTS chains; got --method {args.method}")
    for flag, given in (("--checkpoint", args.checkpoint is not None), ("--resume", args.resume)):
        if given and args.method != "svi":
            raise ValueError(f"{flag}: SVI runs are checkpointed; got --method {args.method}")
    if args.resume and args.checkpoint is None:
        raise ValueError("--resume: expected --checkpoint PATH to resume from")
    if streaming and args.method != "svi":
        raise ValueError(
            f"--batch-size: mini-batches of sequences (and stores) are for --method svi; "
            f"got --method {args.method}"
        )


def _fit_stream(args: argparse.Namespace) -> Any:
    """Mini-batch SVI over a store (or over an in-memory data file with --batch-size)."""
    from hmm_pyro.inference.stream import fit_svi_stream
    from hmm_pyro.store import MemoryStore, open_store

    if _is_store(args.data):
        store = open_store(args.data)
        config = store.emission or {}
        if args.symbols is None and config.get("num_symbols") is not None:
            args.symbols = int(config["num_symbols"])
        if args.dim is None:
            args.dim = store.dim
        hmm = _model(args)
        print(f"data: {store!r}\nmodel: {hmm!r}\nmethod: svi (mini-batches)", flush=True)
    else:
        data = _load_data(args)
        hmm = _model(args, data)
        store = MemoryStore(hmm.prepare_data(data))
        print(f"data: {store.data}\nmodel: {hmm!r}\nmethod: svi (mini-batches)", flush=True)
    batch_size = 1000 if args.batch_size is None else args.batch_size
    return fit_svi_stream(
        hmm,
        store,
        batch_size=batch_size,
        block_size=max(1, min(10, batch_size)),
        steps=args.steps,
        guide=args.guide,
        restarts=1 if args.restarts is None else args.restarts,
        seed=args.seed,
        init=args.init,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
        progress=not args.no_progress,
    )


def _fit(args: argparse.Namespace) -> int:
    streaming = args.batch_size is not None or _is_store(args.data)
    _check_fit_options(args, streaming)
    try:
        fit = _fit_stream(args) if streaming else _fit_in_memory(args)
    except KeyboardInterrupt:
        if args.checkpoint is None:
            raise
        print(
            f"interrupted; state saved to {args.checkpoint}: rerun with --resume to continue",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if fit.num_chains * fit.num_draws > 1:
        names = list(fit.hmm.emission.param_names)
        print(fit.summary(var_names=names, kind="all").to_string())
    else:
        _print_point(fit)
    path = fit.save(args.out)
    print(f"saved {path}; next: hmm-pyro diagnose {path}")
    return EXIT_OK


def _fit_in_memory(args: argparse.Namespace) -> Any:
    from hmm_pyro.inference import fit_nuts, fit_svi
    from hmm_pyro.learning import fit_em, fit_supervised, fit_viterbi_training

    data = _load_data(args)
    hmm = _model(args, data)
    data = hmm.prepare_data(data)
    kwargs = _runner_kwargs(args, args.method)
    if args.scheduler is not None:
        kwargs["client"] = args.scheduler
    if args.chain_dir is not None:
        kwargs["chain_dir"] = args.chain_dir
    if args.checkpoint is not None:
        kwargs.update(
            checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every, resume=args.resume
        )
    print(f"data: {data}\nmodel: {hmm!r}\nmethod: {args.method}", flush=True)
    if args.method == "nuts":
        fit = fit_nuts(hmm, data, seed=args.seed, **kwargs)
    elif args.method == "svi":
        fit = fit_svi(hmm, data, seed=args.seed, **kwargs)
    elif args.method == "em":
        fit = fit_em(hmm, data, seed=args.seed, **kwargs)
    elif args.method == "viterbi":
        fit = fit_viterbi_training(hmm, data, seed=args.seed, **kwargs)
    else:
        if args.state_file is None:
            raise ValueError("--state-file: expected the labelled state paths for supervised")
        fit = fit_supervised(hmm, data, _read_states(args.state_file))
    return fit


def _store(args: argparse.Namespace) -> int:
    from hmm_pyro.store import open_store, write_store

    args.dim = None
    data = _load_data(args)
    emission = _emission(args, data)
    path = write_store(args.out, data, emission=emission)
    with open_store(path) as store:
        print(f"wrote {store!r}; next: hmm-pyro fit {path} --states K --method svi")
    return EXIT_OK


def _diagnose(args: argparse.Namespace) -> int:
    from hmm_pyro.diagnostics import diagnose

    fit = _load_fit(args.fit)
    report = diagnose(fit, max_draws=args.max_draws)
    fit_path = Path(args.fit)
    out = Path(args.out) if args.out else fit_path.parent
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{fit_path.stem}_diagnosis.json"
    md_path = out / f"{fit_path.stem}_diagnosis.md"
    write_text_atomic(json_path, report.to_json() + "\n")
    write_text_atomic(md_path, report.to_markdown() + "\n")
    print(report)
    print(f"wrote {json_path}, {md_path}")
    return EXIT_OK if report.ok else EXIT_FLAGGED


def _relabel(args: argparse.Namespace) -> int:
    from hmm_pyro.diagnostics import relabel

    fit = _load_fit(args.fit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        relabelled = relabel(fit, method=args.method)
    _report_warnings(caught)
    fit_path = Path(args.fit)
    out = Path(args.out) if args.out else fit_path.with_name(f"{fit_path.stem}_relabelled.nc")
    record = relabelled.attrs.get("relabel", {})
    print(
        f"relabelled by {record.get('method', args.method)}; permutations per chain: "
        f"{record.get('permutations_per_chain')}; Stephens/ECR agreement: "
        f"{record.get('agreement')}"
    )
    path = relabelled.save(out)
    print(f"saved {path}")
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    from hmm_pyro.compare import compare_priors
    from hmm_pyro.plots import save_comparison

    _check_scheduler(args)
    priors = _prior_settings(args, ["flat", "sticky:stickiness=10"])
    data = _load_data(args)
    hmm = _model(args, data)
    data = hmm.prepare_data(data)
    kwargs = _runner_kwargs(args, args.method)
    progress = kwargs.pop("progress")
    kwargs.pop("parallel", None)
    print(
        f"data: {data}\nmodel: {hmm!r}\ncomparing {len(priors)} prior settings by "
        f"{args.method}: {', '.join(priors)}",
        flush=True,
    )
    comparison = compare_priors(
        hmm,
        data,
        priors,
        method=args.method,
        seed=args.seed,
        elpd=args.elpd,
        folds=args.folds,
        parallel=False if args.serial else None,
        progress=progress,
        client=args.scheduler,
        **kwargs,
    )
    print(comparison.format_table())
    paths = save_comparison(comparison, args.out)
    if args.save_fits:
        for name, fit in comparison.fits.items():
            paths[f"fit {name}"] = fit.save(Path(args.out) / f"fit_{name}.nc")
    print("wrote " + ", ".join(str(path) for path in paths.values()))
    return EXIT_OK


def _sweep_model(num_states: int, prior: Any, emission: Any) -> Any:
    """The sweep command's HMM factory (module level, used through ``functools.partial``)."""
    from hmm_pyro.model import HMM

    return HMM(num_states, emission, prior=prior)


def _sweep(args: argparse.Namespace) -> int:
    import functools

    from hmm_pyro.sweep import sweep

    _check_scheduler(args)
    states = list(args.states)
    for count in states:
        if states.count(count) > 1:
            raise ValueError(f"--states: {count} is given twice")
    priors = _prior_settings(args, []) if args.prior else {}
    data = _load_data(args)
    emission = _emission(args, data)
    grid: dict[str, Any] = {"num_states": states}
    if priors:
        grid["prior"] = priors
        factory = functools.partial(_sweep_model, emission=emission)
    else:
        factory = functools.partial(_sweep_model, emission=emission, prior=_prior(args))
    kwargs = _runner_kwargs(args, args.method)
    progress = kwargs.pop("progress")
    kwargs.pop("parallel", None)
    points = len(states) * max(len(priors), 1)
    where = (
        "here"
        if args.serial or points == 1
        else (f"on {args.scheduler}" if args.scheduler else "on a local Dask cluster")
    )
    print(
        f"data: {data}\nsweeping {points} fit(s) by {args.method} {where}: states "
        f"{', '.join(map(str, states))}" + (f"; priors {', '.join(priors)}" if priors else ""),
        flush=True,
    )
    result = sweep(
        factory,
        data,
        grid,
        method=args.method,
        seed=args.seed,
        client=args.scheduler,
        parallel=False if args.serial else None,
        progress=progress,
        **kwargs,
    )
    print(result.format_table())
    paths = result.save(args.out, fits=not args.no_fits)
    shown = [path for key, path in paths.items() if not key.startswith("fit ")]
    fits = len(paths) - len(shown)
    print(
        "wrote "
        + ", ".join(str(path) for path in shown)
        + (f" and {fits} fit(s) {args.out}/sweep_fit_NNN.nc" if fits else "")
    )
    return EXIT_OK


def _decode(args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    fit = _load_fit(args.fit)
    data = fit.data if args.data is None else fit.hmm.prepare_data(_load_data(args, args.data))
    paths, scores = fit.viterbi(data)
    probs = fit.state_probs(data, max_draws=args.max_draws).numpy()
    values = data.values.numpy()
    rows = []
    for n in range(data.num_sequences):
        length = int(data.lengths[n])
        frame = pd.DataFrame({"sequence": n, "time": np.arange(length)})
        if data.dim == 1:
            frame["value"] = values[n, :length, 0]
        else:
            for d in range(data.dim):
                frame[f"value_{d}"] = values[n, :length, d]
        frame["viterbi"] = paths[n, :length].numpy()
        for k in range(fit.hmm.num_states):
            frame[f"p_state_{k}"] = probs[n, :length, k]
        rows.append(frame)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as temporary:
        pd.concat(rows, ignore_index=True).to_csv(temporary, index=False)
    print(
        f"decoded {data.num_sequences} sequence(s) under the posterior mean; Viterbi log joint "
        f"per sequence: mean {float(scores.mean()):.3f}"
    )
    print(f"wrote {out}")
    return EXIT_OK


PLOT_KINDS = ("emissions", "distances", "states", "transitions", "trace", "loss")


def _plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import arviz as az
    import matplotlib.pyplot as plt

    from hmm_pyro.plots import (
        plot_emissions,
        plot_losses,
        plot_state_distances,
        plot_state_probs,
        plot_transitions,
    )

    fit = _load_fit(args.fit)
    kinds = [kind.strip() for kind in args.kind.split(",")] if args.kind else list(PLOT_KINDS)
    for kind in kinds:
        if kind not in PLOT_KINDS:
            raise ValueError(f"--kind: expected some of {', '.join(PLOT_KINDS)}, got {kind!r}")
    draws = fit.num_chains * fit.num_draws
    stats = fit.idata.sample_stats if "sample_stats" in fit.idata.groups() else {}
    has_loss = "loss" in stats or "objective" in stats
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.fit).stem
    written = []
    for kind in kinds:
        if kind == "trace" and draws < 2:
            if args.kind:
                print("skipped trace: the fit has a single draw", file=sys.stderr)
            continue
        if kind == "loss" and not has_loss:
            if args.kind:
                print("skipped loss: the fit has no loss history", file=sys.stderr)
            continue
        if kind == "distances" and fit.hmm.num_states < 2:
            continue
        if kind == "emissions":
            ax = plot_emissions(fit)
        elif kind == "distances":
            ax = plot_state_distances(fit)
        elif kind == "states":
            ax = plot_state_probs(fit, sequence=args.sequence)
        elif kind == "transitions":
            ax = plot_transitions(fit)
        elif kind == "loss":
            ax = plot_losses(fit)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = az.plot_trace(
                    fit.idata, var_names=list(fit.hmm.emission.param_names), compact=True
                )
            ax = axes.ravel()[0]
        figure = ax.figure
        figure.tight_layout()
        path = out / f"{stem}_{kind}.png"
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=110)
        plt.close(figure)
        written.append(path)
    print("wrote " + ", ".join(str(path) for path in written))
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from hmm_pyro.cli.demo import run_demo

    run_demo(out_dir=args.out, quick=args.quick, seed=args.seed)
    return EXIT_OK


# ---------------------------------------------------------------------------- parser
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

    simulate = commands.add_parser(
        "simulate",
        help="simulate sequences from an HMM (given parameters or a prior draw)",
        description="Simulate sequences. Writes the data (CSV long format, .npz or .npy by the "
        "suffix of --out), OUT_states.csv (hidden states) and OUT_params.json (parameters).",
    )
    _add_model_options(simulate, states_required=False)
    simulate.add_argument(
        "--params",
        help="JSON file with pi, A and B (or mu, sigma / rate); 'reference' for the project's "
        "3-state, 5-symbol HMM; default: a draw from the prior",
    )
    simulate.add_argument("--sequences", type=int, default=10, help="number of sequences")
    simulate.add_argument("--length", type=int, default=200, help="length of every sequence")
    simulate.add_argument("--lengths", help="comma-separated lengths (overrides the two above)")
    simulate.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    simulate.add_argument("--out", default="data.csv", help="data file (default: %(default)s)")
    simulate.set_defaults(handler=_simulate)

    fit = commands.add_parser(
        "fit",
        help="fit an HMM: NUTS, SVI, EM, Viterbi training or supervised counting",
        description="Fit an HMM to DATA and save the result (ArviZ NetCDF): posterior draws "
        "for NUTS and Gaussian SVI guides, a point estimate otherwise.",
    )
    fit.add_argument("data", help="data file: .csv (long format), .npy or .npz")
    _add_data_options(fit)
    _add_model_options(fit)
    _add_runner_options(fit, ("nuts", "svi", "em", "viterbi", "supervised"))
    fit.add_argument(
        "--state-file", help="labelled states for --method supervised (CSV sequence,time,state)"
    )
    fit.add_argument("--out", default="fit.nc", help="result file (default: %(default)s)")
    resilience = fit.add_argument_group("many sequences and long runs")
    resilience.add_argument(
        "--batch-size",
        type=int,
        metavar="B",
        help="SVI on mini-batches of B sequences (likelihood scaled by N/B); automatic, with "
        "B=1000, when DATA is a store written by 'hmm-pyro store', which is read lazily",
    )
    resilience.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="SVI: save the run's state (parameters, optimiser, step, random generators) "
        "to PATH every --checkpoint-every steps and on Ctrl-C (exit code 130)",
    )
    resilience.add_argument(
        "--checkpoint-every",
        type=int,
        default=100,
        metavar="N",
        help="steps between checkpoints (default: %(default)s)",
    )
    resilience.add_argument(
        "--resume",
        action="store_true",
        help="continue from --checkpoint; ends with the same result as an uninterrupted run",
    )
    resilience.add_argument(
        "--chain-dir",
        metavar="DIR",
        help="NUTS: save each finished chain in DIR; a rerun reuses the finished ones",
    )
    fit.set_defaults(handler=_fit)

    store = commands.add_parser(
        "store",
        help="write sequences to a chunked store for mini-batch SVI",
        description="Write DATA to a chunked NetCDF-4 store that 'hmm-pyro fit' reads lazily, "
        "a mini-batch at a time, so memory stays bounded however many sequences there are.",
    )
    store.add_argument("data", help="data file: .csv (long format), .npy or .npz")
    _add_data_options(store)
    store.add_argument(
        "--emission",
        choices=("categorical", "gaussian", "poisson"),
        default="categorical",
        help="emission family recorded in the store (default: %(default)s)",
    )
    store.add_argument("--symbols", type=int, help="categorical: number of symbols V")
    store.add_argument("--out", default="store.nc", help="store file (default: %(default)s)")
    store.set_defaults(handler=_store)

    diagnose = commands.add_parser(
        "diagnose",
        help="check a fit for degeneracy; exit code 1 when a flag is raised",
        description="Check a fit for emission collapse, empty states, prior domination, "
        "symmetric starts, label switching and convergence. Writes FIT_diagnosis.json and "
        "FIT_diagnosis.md. Exit code 0 when no flag is raised, 1 otherwise.",
    )
    diagnose.add_argument("fit", help="a fit (.nc) written by 'hmm-pyro fit'")
    diagnose.add_argument("--out", help="folder for the reports (default: next to the fit)")
    diagnose.add_argument(
        "--max-draws", type=int, default=1000, help="draws used for state probabilities"
    )
    diagnose.set_defaults(handler=_diagnose)

    relabel = commands.add_parser(
        "relabel",
        help="give every draw one labelling of the states (repairs label switching)",
        description="Permute the states of every draw into one common labelling and save "
        "the relabelled fit.",
    )
    relabel.add_argument("fit", help="a fit (.nc)")
    relabel.add_argument(
        "--method",
        choices=("stephens", "ecr", "chains"),
        default="stephens",
        help="relabelling algorithm (default: %(default)s)",
    )
    relabel.add_argument("--out", help="output file (default: FIT_relabelled.nc)")
    relabel.set_defaults(handler=_relabel)

    compare = commands.add_parser(
        "compare",
        help="compare prior settings: ELPD, degeneracy flags, state separation, sensitivity",
        description="Fit the same model under several priors and compare them: ELPD (PSIS-LOO "
        "over sequences, or K-fold CV with refits; blocked over time for one sequence), "
        "diagnose flags, smallest pairwise Hellinger distance, power-scaling sensitivity to "
        "the emission prior. Prints the table; writes compare.csv, compare.json, compare.md "
        "and PNG plots into --out.",
        epilog="Example: hmm-pyro compare data.csv --states 3 --prior flat "
        "--prior sticky:stickiness=10 --prior strong:B=100 --chains 2 --warmup 300 --draws 300",
    )
    compare.add_argument("data", help="data file: .csv (long format), .npy or .npz")
    _add_data_options(compare)
    _add_model_options(compare)
    _add_runner_options(compare, ("nuts", "svi"))
    compare.add_argument("--prior", action="append", metavar="SPEC", help=_PRIOR_HELP)
    compare.add_argument(
        "--elpd",
        choices=("auto", "loo", "kfold"),
        default="auto",
        help="ELPD estimate: PSIS-LOO over sequences, K-fold CV, or auto (LOO with >= 5 "
        "sequences and posterior draws) (default: %(default)s)",
    )
    compare.add_argument("--folds", type=int, default=5, help="K-fold folds (default: 5)")
    compare.add_argument("--save-fits", action="store_true", help="also save every fit (.nc)")
    compare.add_argument("--out", default="compare", help="output folder (default: compare)")
    compare.set_defaults(handler=_compare)

    sweep = commands.add_parser(
        "sweep",
        help="fit a grid of models (numbers of states x prior settings), one task per fit",
        description="Fit one model per point of the grid --states x --prior and tabulate, per "
        "point: log likelihood, log prior, ELBO (SVI), free parameters, BIC (point estimates), "
        "diagnose flags, smallest Hellinger distance between states, seconds. The fits run as "
        "tasks on a local Dask cluster (or --scheduler, or --serial here) with per-point seeds, "
        "so every way gives the same numbers. Prints the table; writes sweep.csv, sweep.json, "
        "sweep.md and sweep_fit_NNN.nc (NetCDF, one per point) into --out.",
        epilog="Example: hmm-pyro sweep data.csv --states 2 3 4 --prior flat "
        "--prior sticky:stickiness=10 --method svi --restarts 2",
    )
    sweep.add_argument("data", help="data file: .csv (long format), .npy or .npz")
    _add_data_options(sweep)
    _add_model_options(sweep, several_states=True)
    _add_runner_options(sweep, ("svi", "nuts", "em"), default="svi")
    sweep.add_argument(
        "--prior",
        action="append",
        metavar="SPEC",
        help=_PRIOR_HELP.replace(
            "Default: flat (no change) and\nsticky:stickiness=10.",
            "Default: the model prior options only.",
        ),
    )
    sweep.add_argument("--no-fits", action="store_true", help="do not write the fits (.nc)")
    sweep.add_argument("--out", default="sweep", help="output folder (default: %(default)s)")
    sweep.set_defaults(handler=_sweep)

    decode = commands.add_parser(
        "decode",
        help="most probable state paths and state probabilities",
        description="Decode sequences with a fit: Viterbi path under the posterior mean and "
        "smoothed state probabilities averaged over draws. Writes a CSV with columns "
        "sequence, time, value, viterbi, p_state_0, ...",
    )
    decode.add_argument("fit", help="a fit (.nc)")
    decode.add_argument("--data", help="data to decode (default: the fitted data)")
    _add_data_options(decode)
    decode.add_argument("--max-draws", type=int, default=200, help="draws averaged (default: 200)")
    decode.add_argument("--out", default="decoded.csv", help="output CSV (default: decoded.csv)")
    decode.set_defaults(handler=_decode)

    plot = commands.add_parser(
        "plot",
        help="PNG plots of a fit",
        description="Write PNG plots of a fit into --out: emissions (per state, with intervals), "
        "distances (pairwise Hellinger), states (state probabilities of one sequence), "
        "transitions (posterior mean A), trace (emission parameters), loss (SVI/EM history).",
    )
    plot.add_argument("fit", help="a fit (.nc)")
    plot.add_argument(
        "--kind", help=f"comma-separated subset of {', '.join(PLOT_KINDS)} (default: all)"
    )
    plot.add_argument("--sequence", type=int, default=0, help="sequence for 'states'")
    plot.add_argument("--out", default="plots", help="output folder (default: plots)")
    plot.set_defaults(handler=_plot)

    demo = commands.add_parser(
        "demo",
        help="simulate a 3-state categorical HMM, fit it by SVI and NUTS, print summaries",
        description="Simulate data from a known 3-state, 5-symbol HMM; decode; fit by SVI (MAP) "
        "and NUTS (4 chains); print an ArviZ summary; save NetCDF results.",
    )
    demo.add_argument("--out", default="out", help="output folder (default: %(default)s)")
    demo.add_argument("--quick", action="store_true", help="small data and short chains")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 degeneracy found, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (ValueError, TypeError, OSError) as error:
        print(f"hmm-pyro {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
