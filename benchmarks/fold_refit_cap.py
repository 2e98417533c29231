"""How many EM updates a fold refit of ``diagnose``'s held-out comparison needs.

``diagnose`` compares a point estimate with ``K`` states against its refit with ``K - 1`` by
held-out log likelihood (5-fold cross-validation, refits by EM from the full-data solution
shrunk half way towards the one-state fit, at most ``FOLD_MAX_ITER`` updates). This study
measures, on planted cases, how the paired held-out difference (larger minus smaller model)
depends on that cap, against a reference that refits every fold from scratch
(``fit_map``, its default restarts): over-specified fits (the truth has fewer states than the
model: the smaller model should be as good) and under-powered separated fits (the truth has
``K`` states, BIC may still prefer ``K - 1``; the larger model should be no worse held out).

Run::

    PYTHONPATH=. python benchmarks/fold_refit_cap.py

Writes ``benchmarks/results/fold_refit_cap.{json,md}``. The comparison is made only where the
diagnosis makes it (BIC prefers the smaller model); other cases are listed as skipped.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hmm_pyro as hp
from hmm_pyro._io import atomic_write
from hmm_pyro.diagnostics import refits
from hmm_pyro.diagnostics.folds import make_folds, standard_error
from hmm_pyro.diagnostics.thresholds import ELPD_SE_FACTOR, ELPD_SMALL_DIFFERENCE

RESULTS = Path(__file__).resolve().parent / "results"
CAPS = (10, 20, 30, 50, 100)
SEEDS = range(6)


def _tensor(value: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(value, dtype=float), dtype=torch.float64)


def _sticky(num: int, stay: float) -> np.ndarray:
    matrix = np.full((num, num), (1.0 - stay) / max(num - 1, 1))
    np.fill_diagonal(matrix, stay)
    return matrix


def _truth(emission: hp.Emission, num: int, stay: float, **params: Any) -> tuple:
    values = {"pi": np.full(num, 1.0 / num), "A": _sticky(num, stay), **params}
    return emission, {name: _tensor(value) for name, value in values.items()}


SCENARIOS: dict[str, dict[str, Any]] = {
    # over-specified: the smaller model is the right one
    "gaussian_2_fit_3": {
        "truth": lambda: _truth(hp.Gaussian(), 2, 0.9, mu=[-1.5, 1.5], sigma=[1.0, 1.0]),
        "fit": 3,
        "lengths": [300],
        "expect": "smaller as good",
    },
    "poisson_1_fit_2": {
        "truth": lambda: _truth(hp.Poisson(), 1, 1.0, rate=[4.0]),
        "fit": 2,
        "lengths": [200, 200],
        "expect": "smaller as good",
    },
    "vonmises_1_fit_3": {
        "truth": lambda: _truth(hp.VonMises(), 1, 1.0, mu=[0.5], kappa=[1.0]),
        "fit": 3,
        "lengths": [400],
        "expect": "smaller as good",
    },
    "categorical_2_fit_3": {
        "truth": lambda: _truth(
            hp.Categorical(4), 2, 0.85, B=[[0.6, 0.2, 0.1, 0.1], [0.1, 0.1, 0.2, 0.6]]
        ),
        "fit": 3,
        "lengths": [100] * 6,
        "expect": "smaller as good",
    },
    # separated but little data: the larger model is right
    "gaussian_weak_2": {
        "truth": lambda: _truth(hp.Gaussian(), 2, 0.9, mu=[0.0, 1.3], sigma=[1.0, 1.0]),
        "fit": 2,
        "lengths": [150],
        "expect": "larger no worse",
    },
    "poisson_weak_3": {
        "truth": lambda: _truth(hp.Poisson(), 3, 0.9, rate=[2.0, 4.5, 8.0]),
        "fit": 3,
        "lengths": [80, 80],
        "expect": "larger no worse",
    },
    "categorical_weak_2": {
        "truth": lambda: _truth(hp.Categorical(3), 2, 0.9, B=[[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]]),
        "fit": 2,
        "lengths": [60] * 5,
        "expect": "larger no worse",
    },
}


def _reference(larger: refits.PointFit, smaller: refits.PointFit, data: hp.Sequences, seed: int):
    """Held-out densities with every fold refitted from scratch by ``fit_map``."""
    count = max(2, min(refits.FOLDS, int(data.lengths.min())))
    split = make_folds(data, count)
    result = np.full((2, split.num_units), np.nan)
    for fold in range(count):
        train = split.sequences(fold, "train")
        test = split.sequences(fold, "test")
        for row, point in enumerate((larger, smaller)):
            fit = hp.fit_map(point.hmm, train, seed=seed, progress=False)
            params = _point(fit)
            density = point.hmm.log_likelihood(params, test).numpy()
            if split.kind == "blocks":
                density = density - point.hmm.log_likelihood(params, train).numpy()
            result[row, split.units[fold]] = density
    return result


def _point(fit: hp.Fit) -> dict[str, torch.Tensor]:
    """The fit's estimate (one draw for a point fit), as ``diagnose`` takes it."""
    return {name: value.mean((0, 1)).to(torch.float64) for name, value in fit.draws().items()}


def _summary(held: np.ndarray) -> dict[str, float]:
    paired = held[0] - held[1]
    difference, se = float(paired.sum()), float(standard_error(paired))
    tolerance = max(ELPD_SMALL_DIFFERENCE, ELPD_SE_FACTOR * se)
    return {"difference": difference, "se": se, "smaller_as_good": difference <= tolerance}


def run_case(name: str, seed: int) -> dict[str, Any]:
    spec = SCENARIOS[name]
    emission, params = spec["truth"]()
    num = len(params["pi"])
    data, _ = hp.simulate(hp.HMM(num, emission), params, spec["lengths"], seed=seed)
    hmm = hp.HMM(spec["fit"], emission)
    fit = hp.fit_map(hmm, data, seed=seed, progress=False)
    prepared = hmm.prepare_data(data)
    start = _point(fit)
    larger = refits.point_fit(hmm, prepared, start)
    smaller = refits.fewer_states(larger, prepared)
    record: dict[str, Any] = {"scenario": name, "seed": seed, "expect": spec["expect"]}
    bic = (refits.bic(larger, prepared), refits.bic(smaller, prepared))
    record["bic"] = bic
    if bic[1] > bic[0]:
        record["skipped"] = "BIC prefers the larger model: no held-out comparison"
        return record
    for cap in CAPS:
        refits.FOLD_MAX_ITER = cap
        began = time.process_time()
        held, _ = refits.held_out([larger, smaller], prepared, cache={})
        record[f"cap_{cap}"] = {**_summary(held), "cpu_seconds": time.process_time() - began}
    record["reference"] = _summary(_reference(larger, smaller, prepared, seed))
    return record


def markdown(records: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Fold refit cap of diagnose's held-out comparison",
        "",
        f"Produced by `{meta['command']}` at commit {meta['commit']} ({meta['date']}; "
        f"{meta['machine']}). Method: the docstring of `benchmarks/fold_refit_cap.py`.",
        "",
        "Paired held-out difference, larger minus smaller model (nats, +- its standard error), "
        "with fold refits capped at N EM updates, and with every fold refitted from scratch "
        "(`fit_map`). `*` marks a verdict ('smaller as good') different from the reference's.",
        "",
        "| scenario | seed | expect | "
        + " | ".join(f"cap {cap}" for cap in CAPS)
        + " | from scratch |",
        "|---|---|---|" + "---|" * (len(CAPS) + 1),
    ]
    for record in records:
        head = f"| {record['scenario']} | {record['seed']} | {record['expect']} | "
        if "skipped" in record:
            lines.append(head + " | ".join(["-"] * (len(CAPS) + 1)) + " |")
            continue
        reference = record["reference"]
        cells = []
        for cap in CAPS:
            entry = record[f"cap_{cap}"]
            mark = "*" if entry["smaller_as_good"] != reference["smaller_as_good"] else ""
            cells.append(f"{entry['difference']:.1f} +- {entry['se']:.1f}{mark}")
        cells.append(f"{reference['difference']:.1f} +- {reference['se']:.1f}")
        lines.append(head + " | ".join(cells) + " |")
    compared = [record for record in records if "skipped" not in record]
    lines += [
        "",
        "| cap | verdicts equal to the reference | median abs. difference from the "
        "reference (nats) | fold refit CPU, total (s) |",
        "|---|---|---|---|",
    ]
    for cap in CAPS:
        key = f"cap_{cap}"
        same = sum(
            record[key]["smaller_as_good"] == record["reference"]["smaller_as_good"]
            for record in compared
        )
        gap = np.median(
            [
                abs(record[key]["difference"] - record["reference"]["difference"])
                for record in compared
            ]
        )
        cpu = sum(record[key]["cpu_seconds"] for record in compared)
        lines.append(f"| {cap} | {same}/{len(compared)} | {gap:.2f} | {cpu:.1f} |")
    skipped = len(records) - len(compared)
    lines += [
        "",
        f"{skipped} of {len(records)} cases skipped: BIC prefers the larger model, "
        "so diagnose computes no held-out comparison.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    records = []
    for name in SCENARIOS:
        for seed in SEEDS:
            records.append(run_case(name, seed))
            print(name, seed, "skipped" if "skipped" in records[-1] else "", flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    meta = {
        "command": "PYTHONPATH=. python benchmarks/fold_refit_cap.py",
        "commit": commit,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, Python {sys.version.split()[0]}",
        "caps": list(CAPS),
    }
    RESULTS.mkdir(exist_ok=True)
    with atomic_write(RESULTS / "fold_refit_cap.json") as handle:
        json.dump({"meta": meta, "records": records}, handle, indent=1)
    with atomic_write(RESULTS / "fold_refit_cap.md") as handle:
        handle.write(markdown(records, meta))
    print(markdown(records, meta))


if __name__ == "__main__":
    main()
