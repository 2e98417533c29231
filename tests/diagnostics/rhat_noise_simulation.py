"""R-hat's own noise and chain-mean gaps on converged chains: the numbers behind two thresholds.

Not a test (pytest does not collect it). Simulates converged AR(1) chains and measures how often
ArviZ's R-hat exceeds :func:`hmm_pyro.diagnostics.modes.rhat_noise` (``RHAT_NOISE_LEVEL``) and
how far apart, in Monte Carlo standard errors, the chains' means get
(:func:`hmm_pyro.diagnostics.modes.chain_gap`, ``MODE_SEPARATION``). A second table checks
the family-wise bound that ``diagnose`` applies to its ``QUANTITIES`` label-invariant quantities
(:func:`hmm_pyro.diagnostics.modes.family_level`): the share of runs in which at least one of
that many independent converged quantities exceeds its bound, at the per-quantity level and at
the family-wise level (independent quantities are the worst case for the correction).
Run: ``PYTHONPATH=. python tests/diagnostics/rhat_noise_simulation.py [runs]``.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from hmm_pyro.diagnostics.modes import chain_gap, family_level, rhat_noise
from hmm_pyro.fit.inference_data import az

SETTINGS = [  # (chains, draws, autocorrelation)
    (2, 300, 0.5),
    (2, 300, 0.8),
    (4, 200, 0.0),
    (4, 200, 0.7),
    (4, 500, 0.9),
    (2, 1000, 0.3),
    (4, 100, 0.5),
    (4, 100, 0.8),
    (4, 100, 0.95),
]
BURN = 200
QUANTITIES = 15
"""About as many label-invariant quantities as ``diagnose`` checks for a few states."""


def ar1(rng: np.random.Generator, chains: int, draws: int, phi: float) -> np.ndarray:
    noise = rng.standard_normal((chains, draws + BURN))
    values = np.empty_like(noise)
    values[:, 0] = noise[:, 0] / np.sqrt(1 - phi**2)
    for step in range(1, draws + BURN):
        values[:, step] = phi * values[:, step - 1] + noise[:, step]
    return values[:, BURN:]


def main(runs: int) -> None:
    rng = np.random.default_rng(0)
    print("chains draws phi | R-hat > bound | R-hat > 1.01 | max gap (SE) | separated")
    for chains, draws, phi in SETTINGS:
        above_bound = above_rhat = separated = 0
        largest = 0.0
        for _ in range(runs):
            values = ar1(rng, chains, draws, phi)
            rhat = float(az.rhat(values))
            ess = min(float(az.ess(values, method=m)) for m in ("bulk", "tail"))
            above_bound += rhat > rhat_noise(ess, chains, draws)
            above_rhat += rhat > 1.01
            gap = chain_gap("x", values)
            largest = max(largest, gap.standard_errors)
            separated += gap.separated
        print(
            f"{chains} {draws} {phi} | {above_bound / runs:.3f} | {above_rhat / runs:.3f} | "
            f"{largest:.2f} | {separated / runs:.3f}"
        )


def family(runs: int) -> None:
    rng = np.random.default_rng(1)
    level = family_level(QUANTITIES)
    print(f"\n{QUANTITIES} quantities per run: share of runs with any R-hat above its bound")
    print("chains draws phi | per-quantity level | family-wise level")
    for chains, draws, phi in SETTINGS:
        single = joint = 0
        for _ in range(runs):
            rhats, bounds, family_bounds = [], [], []
            for _ in range(QUANTITIES):
                values = ar1(rng, chains, draws, phi)
                ess = min(float(az.ess(values, method=m)) for m in ("bulk", "tail"))
                rhats.append(float(az.rhat(values)))
                bounds.append(rhat_noise(ess, chains, draws))
                family_bounds.append(rhat_noise(ess, chains, draws, level))
            single += any(r > b for r, b in zip(rhats, bounds, strict=True))
            joint += any(r > b for r, b in zip(rhats, family_bounds, strict=True))
        print(f"{chains} {draws} {phi} | {single / runs:.3f} | {joint / runs:.3f}")


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    main(count)
    family(count)
