"""Benchmark: streaming mini-batch SVI over many sequences held in a chunked store.

Usage::

    PYTHONPATH=. python benchmarks/stream.py [--sequences 100000] [--length 100] \
        [--steps 1000] [--batch-size 1000] [--block-size 10] [--work DIR] [--out PATH]

Three phases, each in a fresh subprocess so that its peak resident memory (``ru_maxrss``) is its
own:

1. ``generate``: simulate the reference HMM (K=3, V=5, ``hmm_pyro.simulate.REFERENCE_PARAMS``)
   chunk by chunk into a NetCDF store (:func:`hmm_pyro.simulate_store`);
2. ``fit``: :func:`hmm_pyro.fit_svi_stream` (``guide="map"``: Pyro's SVI with ``AutoDelta`` and
   ClippedAdam, one start) reading mini-batches from the store; the recovered ``B``, ``A`` and
   ``pi`` are compared with the truth after matching state labels (Hungarian on the L1 distance
   of emission rows);
3. ``decode``: state probabilities and Viterbi paths of every sequence, chunk by chunk, into a
   NetCDF file (:func:`hmm_pyro.decode.decode_store`); the Viterbi accuracy against
   the simulated states is reported.

Results (times, peak RSS per phase, errors, machine) go to ``benchmarks/results/stream.json``
(atomically). One torch thread, as in every runner.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "stream.json"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _generate(args: argparse.Namespace) -> dict:
    import hmm_pyro as hp
    from hmm_pyro.simulate import REFERENCE_PARAMS, simulate_store

    hmm = hp.HMM(3, hp.Categorical(num_symbols=5))
    began = time.perf_counter()
    simulate_store(args.store, hmm, REFERENCE_PARAMS, args.sequences, args.length, seed=args.seed)
    return {
        "seconds": time.perf_counter() - began,
        "peak_rss_mb": _peak_rss_mb(),
        "store_bytes": os.path.getsize(args.store),
    }


def _fit(args: argparse.Namespace) -> dict:
    import torch
    from scipy.optimize import linear_sum_assignment

    import hmm_pyro as hp
    from hmm_pyro.inference.stream import fit_svi_stream
    from hmm_pyro.simulate import REFERENCE_PARAMS
    from hmm_pyro.store import open_store

    hmm = hp.HMM(3, hp.Categorical(num_symbols=5))
    began = time.perf_counter()
    with open_store(args.store) as store:
        fit = fit_svi_stream(
            hmm,
            store,
            batch_size=args.batch_size,
            block_size=args.block_size,
            steps=args.steps,
            seed=args.seed,
            init="prior",  # the recorded results were measured with prior-draw starts
            progress=False,
        )
    seconds = time.perf_counter() - began
    fit.save(args.fit)
    estimate = fit.posterior_mean()
    truth = REFERENCE_PARAMS
    _, perm = linear_sum_assignment(torch.cdist(truth["B"], estimate["B"], p=1).numpy())
    perm = torch.as_tensor(perm)
    aligned = {
        "pi": estimate["pi"][perm],
        "A": estimate["A"][perm][:, perm],
        "B": estimate["B"][perm],
    }
    errors = {name: float((aligned[name] - truth[name]).abs().max()) for name in aligned}
    losses = fit.idata.sample_stats.loss.values.ravel()
    return {
        "seconds": seconds,
        "seconds_per_step": seconds / args.steps,
        "peak_rss_mb": _peak_rss_mb(),
        "max_abs_error": errors,
        "B": aligned["B"].tolist(),
        "A": aligned["A"].tolist(),
        "log_likelihood_total": fit.attrs["log_likelihood_total"][0],
        "log_likelihood_total_truth": None,
        "first_loss_per_sequence": float(losses[0] / args.sequences),
        "last_loss_per_sequence": float(losses[-1] / args.sequences),
        "stream": fit.attrs["stream"],
    }


def _decode(args: argparse.Namespace) -> dict:
    import numpy as np
    import xarray as xr

    import hmm_pyro as hp
    from hmm_pyro.decode import decode_store
    from hmm_pyro.inference.stream import store_log_likelihood
    from hmm_pyro.simulate import REFERENCE_PARAMS
    from hmm_pyro.store import open_store

    fit = hp.load(args.fit)
    began = time.perf_counter()
    with open_store(args.store) as store:
        decode_store(fit, store, args.decoded, chunk_size=1000)
        seconds = time.perf_counter() - began
        truth_total = store_log_likelihood(fit.hmm, REFERENCE_PARAMS, store)
        matches, count = [], 0
        permutation = None
        with xr.open_dataset(args.decoded, engine="h5netcdf") as decoded:
            for start in range(0, store.num_sequences, 10_000):
                stop = min(start + 10_000, store.num_sequences)
                paths = decoded["viterbi"][start:stop].values.astype(np.int64)
                states = store.read_states(np.arange(start, stop)).numpy()
                if permutation is None:  # label map from the first chunk (majority vote)
                    table = np.zeros((3, 3))
                    valid = states >= 0
                    np.add.at(table, (paths[valid], states[valid]), 1)
                    permutation = table.argmax(1)
                valid = states >= 0
                matches.append(int((permutation[paths[valid]] == states[valid]).sum()))
                count += int(valid.sum())
    return {
        "seconds": seconds,
        "peak_rss_mb": _peak_rss_mb(),
        "decoded_bytes": os.path.getsize(args.decoded),
        "viterbi_accuracy": sum(matches) / count,
        "log_likelihood_total_truth": truth_total,
    }


PHASES = {"generate": _generate, "fit": _fit, "decode": _decode}


def _phase(name: str, args: argparse.Namespace) -> dict:
    """Run one phase in a fresh interpreter; return its JSON result."""
    command = [sys.executable, __file__, "--phase", name, *_forward(args)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"phase {name} failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _forward(args: argparse.Namespace) -> list[str]:
    return [
        f"--sequences={args.sequences}",
        f"--length={args.length}",
        f"--steps={args.steps}",
        f"--batch-size={args.batch_size}",
        f"--block-size={args.block_size}",
        f"--seed={args.seed}",
        f"--work={args.work}",
    ]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=100_000)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--block-size", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="folder for the store and fit")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--phase", choices=sorted(PHASES), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.work is None:
        args.work = Path(tempfile.mkdtemp(prefix="hmm_pyro_stream_"))
    args.work.mkdir(parents=True, exist_ok=True)
    args.store = args.work / "sequences.nc"
    args.fit = args.work / "fit.nc"
    args.decoded = args.work / "decoded.nc"
    if args.phase is not None:
        import torch

        torch.set_num_threads(1)
        print(json.dumps(PHASES[args.phase](args)))
        return {}
    results = {
        "workload": {
            "sequences": args.sequences,
            "length": args.length,
            "states": 3,
            "symbols": 5,
            "params": "hmm_pyro.simulate.REFERENCE_PARAMS",
            "steps": args.steps,
            "batch_size": args.batch_size,
            "block_size": args.block_size,
            "seed": args.seed,
        },
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cores_available": len(os.sched_getaffinity(0)),
            "load_average_at_start": list(os.getloadavg()),
            "torch_threads": 1,
        },
    }
    for name in ("generate", "fit", "decode"):
        results[name] = _phase(name, args)
        print(name, json.dumps(results[name]), flush=True)
    results["fit"]["log_likelihood_total_truth"] = results["decode"]["log_likelihood_total_truth"]
    results["peak_rss_mb"] = max(results[name]["peak_rss_mb"] for name in PHASES)
    sys.path.insert(0, str(ROOT))
    from hmm_pyro._io import atomic_write

    with atomic_write(args.out) as handle:
        handle.write(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
