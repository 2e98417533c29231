"""``hmm-pyro fit``: NUTS, SVI, EM, Viterbi training or supervised counting.

Stores (``hmm-pyro store``) are fitted by mini-batch SVI, read lazily; so are data files with
``--batch-size``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hmm_pyro.cli._options import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    add_command,
    add_fitting_options,
    check_scheduler,
    load_data,
    model_of,
    runner_kwargs,
)
from hmm_pyro.data import Sequences
from hmm_pyro.fit import Fit
from hmm_pyro.runners import get_runner, runner_options
from hmm_pyro.store import MemoryStore, is_store, open_store

__all__ = ["FIT_METHODS", "add_parser"]

FIT_METHODS = ("nuts", "svi", "map", "em", "viterbi", "supervised")
"""The runners of ``fit --method`` (in-memory data; stores always use ``svi_stream``)."""


def _read_states(path: str) -> list[np.ndarray]:
    """Labelled state paths: CSV ``sequence,time,state`` or an ``.npy``/``.npz`` array."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--state-file: expected an existing file, got {path!r}")
    options = {"value": "state"} if file.suffix.lower() == ".csv" else {}
    paths = Sequences.from_file(file, **options)  # the library's checked readers (no pickles)
    return [np.asarray(sequence, dtype=np.int64) for sequence in paths.to_list()]


def _check_fit_options(args: argparse.Namespace, streaming: bool) -> None:
    """Options that belong to one runner only, refused (exit 2) with any other."""
    check_scheduler(args)
    if args.scheduler is not None and args.method != "nuts":
        raise ValueError(
            f"--scheduler: only NUTS chains run as tasks; --method {args.method} runs here"
        )
    if args.chain_dir is not None and args.method != "nuts":
        raise ValueError(f"--chain-dir: saves NUTS chains; got --method {args.method}")
    for flag, given in (("--checkpoint", args.checkpoint is not None), ("--resume", args.resume)):
        if given and args.method not in ("svi", "map"):
            raise ValueError(
                f"{flag}: SVI and MAP runs are checkpointed; got --method {args.method}"
            )
    if args.resume and args.checkpoint is None:
        raise ValueError("--resume: expected --checkpoint PATH to resume from")
    if streaming and args.method != "svi":
        raise ValueError(
            f"--batch-size: mini-batches of sequences (and stores) are for --method svi; "
            f"got --method {args.method}"
        )


def _fit_stream(args: argparse.Namespace) -> Fit:
    """Mini-batch SVI over a store (or over an in-memory data file with --batch-size)."""
    if is_store(args.data):
        store = open_store(args.data)
        config = store.emission or {}
        if args.symbols is None and config.get("num_symbols") is not None:
            args.symbols = int(config["num_symbols"])
        if args.dim is None:
            args.dim = store.dim
        hmm = model_of(args)
        print(f"data: {store!r}\nmodel: {hmm!r}\nmethod: svi (mini-batches)", flush=True)
    else:
        data = load_data(args)
        hmm = model_of(args, data)
        store = MemoryStore(hmm.prepare_data(data))
        print(f"data: {store.data}\nmodel: {hmm!r}\nmethod: svi (mini-batches)", flush=True)
    options = runner_kwargs(args, "svi_stream")
    # --steps is fit_svi's on every SVI route; the mini-batch runner's own default is lower
    options.setdefault("steps", runner_options("svi")["steps"])
    if args.batch_size is not None:  # blocks of rows may not exceed the batch
        block_size = runner_options("svi_stream")["block_size"]
        options["block_size"] = max(1, min(block_size, args.batch_size))
    return get_runner("svi_stream")(hmm, store, **options)


def _fit_in_memory(args: argparse.Namespace) -> Fit:
    data = load_data(args)
    hmm = model_of(args, data)
    data = hmm.prepare_data(data)
    options = runner_kwargs(args, args.method)
    if args.checkpoint is None:  # the checkpoint interval means nothing without a checkpoint
        options.pop("checkpoint_every", None)
    print(f"data: {data}\nmodel: {hmm!r}\nmethod: {args.method}", flush=True)
    if args.method == "supervised":
        if args.state_file is None:
            raise ValueError("--state-file: expected the labelled state paths for supervised")
        options["states"] = _read_states(args.state_file)
    return get_runner(args.method, FIT_METHODS)(hmm, data, **options)


def _print_point(fit: Fit) -> None:
    for name, value in fit.posterior_mean().items():
        array = np.atleast_2d(value.numpy())
        array = array.reshape(-1, array.shape[-1])  # matrices per state (corr) stacked
        print(f"{name} =")
        for row in array:
            print("   " + " ".join(f"{entry:8.4f}" for entry in row))


def run(args: argparse.Namespace) -> int:
    """Fit; print a summary (draws) or the estimates (a point); save the fit."""
    streaming = args.batch_size is not None or is_store(args.data)
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


def add_parser(commands: Any) -> None:
    """Register ``fit``."""
    parser = add_command(
        commands,
        "fit",
        run,
        help="fit an HMM: NUTS, SVI, MAP, EM, Viterbi training or supervised counting",
        description="Fit an HMM to DATA and save the result (ArviZ NetCDF): posterior draws "
        "for NUTS and Gaussian SVI guides, a point estimate otherwise.",
    )
    add_fitting_options(parser, FIT_METHODS, default="nuts")
    parser.add_argument(
        "--state-file", help="labelled states for --method supervised (CSV sequence,time,state)"
    )
    parser.add_argument("--out", default="fit.nc", help="result file (default: %(default)s)")
    resilience = parser.add_argument_group("many sequences and long runs")
    resilience.add_argument(
        "--batch-size",
        type=int,
        metavar="B",
        help="SVI on mini-batches of B sequences (likelihood scaled by N/B); automatic, with "
        f"B={runner_options('svi_stream')['batch_size']}, when DATA is a store written by "
        "'hmm-pyro store', which is read lazily",
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
        metavar="N",
        help=f"steps between checkpoints (default: {runner_options('svi')['checkpoint_every']})",
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
