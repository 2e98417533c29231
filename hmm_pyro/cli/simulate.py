"""``hmm-pyro simulate``: sequences from an HMM (given parameters or a prior draw)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hmm_pyro._io import atomic_path, write_text_atomic
from hmm_pyro.cli._options import EXIT_OK, add_command, add_model_options, model_of, option_errors

if TYPE_CHECKING:
    import torch

    from hmm_pyro.model import HMM

__all__ = ["add_parser"]


def _model_and_params(args: argparse.Namespace) -> tuple[HMM, dict[str, torch.Tensor]]:
    """The model and its parameters: the reference HMM, a JSON file, or a prior draw."""
    import torch

    from hmm_pyro.simulate import REFERENCE_PARAMS

    if args.params == "reference":
        if args.states not in (None, 3) or args.emission != "categorical":
            raise ValueError("--params reference: is the 3-state, 5-symbol categorical HMM")
        args.states, args.symbols = 3, 5
        return model_of(args), dict(REFERENCE_PARAMS)
    if args.params is not None:
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
        return model_of(args), params
    if args.emission == "categorical" and args.symbols is None:
        raise ValueError("--symbols: expected the number of symbols V (or --params)")
    hmm = model_of(args)
    return hmm, hmm.sample_prior(seed=args.seed)


def _lengths(args: argparse.Namespace) -> list[int]:
    if not args.lengths:
        return [args.length] * args.sequences
    try:
        return [int(item) for item in args.lengths.split(",")]
    except ValueError:
        raise ValueError(
            f"--lengths: expected comma-separated integers, got {args.lengths!r}"
        ) from None


def run(args: argparse.Namespace) -> int:
    """Simulate; write the data, OUT_states.csv and OUT_params.json."""
    import pandas as pd

    from hmm_pyro.simulate import simulate

    hmm, params = _model_and_params(args)
    lengths = _lengths(args)
    data, states = simulate(hmm, params, lengths, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with option_errors(path="--out"):
        data.to_file(out, integer=hmm.emission.integer_valued)
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


def add_parser(commands: Any) -> None:
    """Register ``simulate``."""
    parser = add_command(
        commands,
        "simulate",
        run,
        help="simulate sequences from an HMM (given parameters or a prior draw)",
        description="Simulate sequences. Writes the data (CSV long format, .npz or .npy by the "
        "suffix of --out), OUT_states.csv (hidden states) and OUT_params.json (parameters).",
    )
    add_model_options(parser, states_required=False)
    parser.add_argument(
        "--params",
        help="JSON file with pi, A and B (or mu, sigma / rate); 'reference' for the project's "
        "3-state, 5-symbol HMM; default: a draw from the prior",
    )
    parser.add_argument("--sequences", type=int, default=10, help="number of sequences")
    parser.add_argument("--length", type=int, default=200, help="length of every sequence")
    parser.add_argument("--lengths", help="comma-separated lengths (overrides the two above)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--out", default="data.csv", help="data file (default: %(default)s)")
