"""Stephens vs ECR on the same crafted fits: accuracy against planted permutations, and time.

Not a test (pytest does not collect it); the numbers behind the choice of Stephens as the
default relabelling. Run: ``PYTHONPATH=. python tests/labels/relabel_benchmark.py [seeds]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from hmm_pyro import HMM, Categorical, simulate
from hmm_pyro.labels.algorithms import ecr, stephens
from hmm_pyro.labels.draws import state_statistics, time_points
from hmm_pyro.labels.permutations import compose, identity, permute_params
from tests.diagnostics.helpers import TRUTH, noisy_draws, tensors


def accuracy(planted: np.ndarray, recovered: np.ndarray) -> float:
    """Fraction of draws relabelled correctly up to one global permutation."""
    total = compose(planted.reshape(-1, planted.shape[-1]), recovered)
    _, counts = np.unique(total, axis=0, return_counts=True)
    return counts.max() / total.shape[0]


def run_case(name, truth, concentration, chains, draws, lengths, every_draw, seed):
    num = truth["B"].shape[0]
    hmm = HMM(num, Categorical(truth["B"].shape[1]))
    data, _ = simulate(hmm, tensors(truth), lengths, seed=seed)
    rng = np.random.default_rng(seed)
    if every_draw:
        planted = np.stack([rng.permutation(num) for _ in range(chains * draws)])
        planted = planted.reshape(chains, draws, num)
    else:
        planted = identity(num, (chains, draws))
        for chain in range(1, chains):
            planted[chain] = rng.permutation(num)
        swap = np.r_[1, 0, 2:num]
        planted[-1, draws // 2 :] = compose(planted[-1, 0], swap)  # a mid-chain switch
    clean = noisy_draws(truth, chains, draws, seed=seed + 1, concentration=concentration)
    permuted = permute_params(hmm, clean, planted)
    began = time.perf_counter()
    stats = state_statistics(hmm, data, permuted, time_points(data, 2000))
    seconds_fb = time.perf_counter() - began
    gamma = stats.gamma.reshape(chains * draws, -1, num)
    began = time.perf_counter()
    perms_s, sweeps_s = stephens(gamma)
    seconds_s = time.perf_counter() - began
    allocations = gamma.argmax(-1)
    began = time.perf_counter()
    perms_e, sweeps_e = ecr(allocations, num, allocations[0])
    seconds_e = time.perf_counter() - began
    print(
        f"{name:34s} draws={chains * draws:5d} M={gamma.shape[1]:4d} | "
        f"Stephens {accuracy(planted, perms_s):.4f} {seconds_s:5.2f}s ({sweeps_s} sweeps) | "
        f"ECR {accuracy(planted, perms_e):.4f} {seconds_e:5.2f}s ({sweeps_e} sweeps) | "
        f"forward-backward {seconds_fb:5.2f}s",
        flush=True,
    )


def main(seeds: int = 3) -> None:
    torch.set_num_threads(1)
    weak = {name: value.copy() for name, value in TRUTH.items()}
    weak["B"] = 0.35 * TRUTH["B"] + 0.65 * TRUTH["B"].mean(0)
    overlap = {name: value.copy() for name, value in TRUTH.items()}
    overlap["B"] = TRUTH["B"].copy()
    overlap["B"][2] = 0.6 * TRUTH["B"][1] + 0.4 * TRUTH["B"][2]
    four = {
        "pi": np.full(4, 0.25),
        "A": np.full((4, 4), 0.05) + 0.8 * np.eye(4),
        "B": np.full((4, 4), 0.1) + 0.6 * np.eye(4),
    }
    for seed in range(seeds):
        run_case("workload K=3, separated", TRUTH, 400, 4, 1000, [500] * 20, False, seed)
        run_case("workload K=3, weakly separated", weak, 100, 4, 1000, [500] * 20, False, seed)
        run_case("K=3, overlapping pair", overlap, 200, 4, 500, [200] * 5, False, seed)
        run_case("K=4, random permutation per draw", four, 300, 4, 500, [200] * 5, True, seed)
        run_case("K=3, 60 steps, weak", weak, 30, 4, 500, [60], False, seed)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
