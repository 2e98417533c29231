"""CPU time of one value and gradient of each numba family's NUTS/MAP potential.

Three states, data of two sizes (4 sequences x 100 steps, 1 x 2000), the potential's own
function called directly (no torch conversion); CPU time (``time.process_time``), best of
``--repeats`` loops of about 40 ms each, so that other work on a shared machine inflates the
numbers less. To compare two versions of the package, run it on each checkout in turn (e.g.
``PYTHONPATH=<checkout> python benchmarks/potential_speed.py``), alternating, on one machine.

Run: ``python benchmarks/potential_speed.py [--repeats 7] [--out results.json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

import hmm_pyro as hp
from hmm_pyro.inference.potential import Potential

SIZES = {"4x100": (4, 100), "1x2000": (1, 2000)}


def _families(rng: np.random.Generator, shape: tuple[int, int]) -> dict[str, tuple]:
    size = (*shape, 1)
    return {
        "gaussian": (hp.Gaussian(), rng.normal(size=size)),
        "gaussian(dim=2)": (hp.Gaussian(dim=2), rng.normal(size=(*shape, 2))),
        "poisson": (hp.Poisson(), rng.poisson(4.0, size=size).astype(float)),
        "gamma": (hp.Gamma(), rng.gamma(2.0, 1.0, size=size)),
        "vonmises": (hp.VonMises(), rng.vonmises(0.5, 2.0, size=size)),
        "mvnormal(dim=2)": (hp.MultivariateNormal(dim=2), rng.normal(size=(*shape, 2))),
        "gamma x vonmises": (
            hp.Product(step=hp.Gamma(), angle=hp.VonMises()),
            np.stack([rng.gamma(2.0, 1.0, size=shape), rng.vonmises(0.5, 2.0, size=shape)], -1),
        ),
    }


def best_time(call: Callable[[], object], repeats: int, budget: float = 0.04) -> float:
    """Best CPU seconds per call over ``repeats`` loops of about ``budget`` seconds."""
    call()
    count = 1
    while True:
        start = time.process_time()
        for _ in range(count):
            call()
        if time.process_time() - start > budget / 4:
            break
        count *= 2
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(count):
            call()
        best = min(best, (time.process_time() - start) / count)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    results = {}
    for size, shape in SIZES.items():
        rng = np.random.default_rng(0)
        for name, (emission, values) in _families(rng, shape).items():
            hmm = hp.HMM(num_states=3, emission=emission)
            potential = Potential(hmm, hp.Sequences(values, dim=values.shape[-1]))
            z = np.random.default_rng(1).normal(scale=0.3, size=potential.size)
            function, arguments = potential._function, potential._arguments
            seconds = best_time(lambda: function(z, *arguments, 1.0), args.repeats)  # noqa: B023
            value, _ = function(z, *arguments, 1.0)
            results[f"{size}/{name}"] = {"us": seconds * 1e6, "value": float(value)}
            print(f"{size:7s} {name:16s} {seconds * 1e6:9.2f} us  (value {value:.10g})")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
