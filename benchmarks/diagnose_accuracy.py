"""Benchmark: how often ``hmm_pyro.diagnose`` is right on planted scenarios (not a timed test).

Usage::

    PYTHONPATH=. python benchmarks/diagnose_accuracy.py [--methods map svi nuts]
        [--seeds 0 1 2 3 4 5] [--kinds separated k_plus_1 ...] [--workers 1] [--resume]
    PYTHONPATH=. python benchmarks/diagnose_accuracy.py --report   # tables from saved results

Every scenario plants a truth, simulates data, fits it (``fit_map`` with its defaults;
mean-field ``fit_svi`` with 2 restarts of at most 1,000 steps; ``fit_nuts`` with 2 chains of
150 warm-up and 150 draws, one after the other) and runs ``diagnose(fit)`` (``deep=True``). Each
scenario says which flags count as detecting it, the primary cause (``Flag.cause_kind`` of the
first flag: flags about the model's structure first) and the first remedy an expert would
give. Families rotate with the seed (categorical, Gaussian, Poisson) where the family is not the
point of the scenario; separated and over-specified scenarios alternate one sequence of 400
steps (blocked cross-validation, PSIS leave-one-block-out) with 8 sequences of 50 (folds and
PSIS-LOO over sequences). "Separated" means resolvable: with 300 symbols in 6 sequences, three
categorical states (rows 0.7/0.1 apart) were once preferred to two by neither BIC nor held-out
likelihood, so that scenario has 400 steps and rows 0.8/0.05 apart.

Reported (``benchmarks/results/diagnose_accuracy.json`` and ``.md``): per method, false
negatives on the degenerate scenarios (no detecting flag), error flags on separated scenarios
(with and without ``not_converged``, which short chains raise honestly), the share of flagged
degenerate fits whose primary cause and first remedy match the planted truth, confusion tables
(scenario x raised flags, expected x first remedy), and diagnose time over fit time. The
misspecification, non-mixing and label-switching scenarios are reported separately: they test
checks outside the refits (misspecification and non-mixing depend on checks developed in
parallel). Fits that fail (an error from the runner) are counted and listed, not scored.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import sys
import time
import traceback
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hmm_pyro as hp
from hmm_pyro._io import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"
JSON_PATH = RESULTS / "diagnose_accuracy.json"
MD_PATH = RESULTS / "diagnose_accuracy.md"
PARTIAL = RESULTS / "diagnose_accuracy.partial.jsonl"
METHODS = ("map", "svi", "nuts")
FAMILIES = ("categorical", "gaussian", "poisson")
DEGENERACY = ("emission_collapse", "empty_states", "prior_dominated", "too_many_states")
SEPARATE = ("misspecified", "non_mixing", "label_switching")
LENGTH = 400

# ---------------------------------------------------------------------------- truths
SEPARATED = {
    "categorical": [
        [0.80, 0.10, 0.05, 0.05],
        [0.05, 0.05, 0.10, 0.80],
        [0.05, 0.45, 0.45, 0.05],
    ],
    "gaussian": [-3.0, 3.0, 0.0],
    "poisson": [1.0, 9.0, 22.0],
}


def _transition(num: int, stay: float) -> np.ndarray:
    if num == 1:
        return np.ones((1, 1))
    matrix = np.full((num, num), (1.0 - stay) / (num - 1))
    np.fill_diagonal(matrix, stay)
    return matrix


def _emission(family: str, symbols: int = 4) -> hp.Emission:
    if family == "categorical":
        return hp.Categorical(symbols)
    return hp.Gaussian() if family == "gaussian" else hp.Poisson()


def _params(family: str, values: list, transition: np.ndarray) -> dict[str, torch.Tensor]:
    num = transition.shape[0]
    params = {"pi": np.full(num, 1.0 / num), "A": transition}
    if family == "categorical":
        params["B"] = np.asarray(values, dtype=float)
    elif family == "gaussian":
        params["mu"] = np.asarray(values, dtype=float)
        params["sigma"] = np.ones(num)
    else:
        params["rate"] = np.asarray(values, dtype=float)
    return {name: torch.as_tensor(value, dtype=torch.float64) for name, value in params.items()}


def _simulate(family: str, values: list, transition: np.ndarray, lengths, seed: int, symbols=4):
    truth = _params(family, values, transition)
    hmm = hp.HMM(transition.shape[0], _emission(family, symbols))
    return hp.simulate(hmm, truth, lengths, seed=seed)


def _lengths(seed: int) -> list[int]:
    return [LENGTH] if seed % 2 == 0 else [50] * 8


# ---------------------------------------------------------------------------- scenarios
def _case(
    family: str,
    fit_states: int,
    data: hp.Sequences,
    expect: str,
    prior: hp.Prior | None = None,
    symbols: int = 4,
    **expected: Any,
) -> dict[str, Any]:
    return {
        "family": family,
        "hmm": hp.HMM(fit_states, _emission(family, symbols), prior=prior),
        "data": data,
        "expect": expect,
        **expected,
    }


DATA_CAUSE = {"flags": DEGENERACY, "cause": ("data",), "remedy": "fewer states"}


def separated(seed: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    num = 3 if family == "categorical" else 2
    data, _ = _simulate(
        family, SEPARATED[family][:num], _transition(num, 0.9), _lengths(seed), seed
    )
    return _case(family, num, data, "clean")


def identical_rows(seed: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    values = SEPARATED[family][:2]
    values = [values[0], values[1], values[1]]
    # Lumpable: states 1 and 2 lead into state 0 with the same probability, so the observed
    # process is exactly a 2-state HMM.
    transition = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.2, 0.1, 0.7]])
    data, _ = _simulate(family, values, transition, [LENGTH], seed)
    return _case(family, 3, data, "degenerate", **DATA_CAUSE)


def _too_many(seed: int, extra: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    data, _ = _simulate(family, SEPARATED[family][:2], _transition(2, 0.9), _lengths(seed), seed)
    return _case(family, 2 + extra, data, "degenerate", **DATA_CAUSE)


def k_plus_1(seed: int) -> dict[str, Any]:
    return _too_many(seed, 1)


def k_plus_2(seed: int) -> dict[str, Any]:
    return _too_many(seed, 2)


OVERLAP = {
    "categorical": [[0.45, 0.30, 0.25], [0.35, 0.30, 0.35]],
    "gaussian": [0.0, 0.3],
    "poisson": [5.0, 5.5],
}


def _overlap(family: str, seed: int) -> dict[str, Any]:
    symbols = 3
    data, _ = _simulate(family, OVERLAP[family], _transition(2, 0.8), [LENGTH], seed, symbols)
    return _case(family, 2, data, "degenerate", symbols=symbols, **DATA_CAUSE)


def overlap_categorical(seed: int) -> dict[str, Any]:
    return _overlap("categorical", seed)


def overlap_gaussian(seed: int) -> dict[str, Any]:
    return _overlap("gaussian", seed)


def overlap_poisson(seed: int) -> dict[str, Any]:
    return _overlap("poisson", seed)


TINY = {
    "categorical": [[0.6, 0.2, 0.1, 0.1], [0.1, 0.1, 0.2, 0.6]],
    "gaussian": [-0.75, 0.75],
    "poisson": [3.0, 6.0],
}


def tiny_data(seed: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    data, _ = _simulate(family, TINY[family], _transition(2, 0.8), [15], seed)
    return _case(
        family,
        2,
        data,
        "degenerate",
        flags=(*DEGENERACY, "insufficient_data"),
        cause=("insufficient data",),
        remedy="stronger or more data",
    )


STRONG = {
    "categorical": ([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]], hp.Prior(B=100.0)),
    "gaussian": ([-1.5, 1.5], hp.Prior(mu_scale=0.02)),
    "poisson": ([2.0, 8.0], hp.Prior(rate_shape=5000.0, rate_rate=1000.0)),
}


def strong_prior(seed: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    values, prior = STRONG[family]
    data, _ = _simulate(family, values, _transition(2, 0.9), [LENGTH], seed, symbols=3)
    return _case(
        family,
        2,
        data,
        "degenerate",
        prior=prior,
        symbols=3,
        flags=DEGENERACY,
        cause=("prior",),
        remedy="other prior",
    )


def sparse_prior(seed: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    data, _ = _simulate(family, SEPARATED[family][:2], _transition(2, 0.9), [LENGTH], seed)
    prior = hp.Prior(pi=0.1, A=0.1)  # sparse transitions: meant to empty unneeded states
    return _case(family, 3, data, "degenerate", prior=prior, **DATA_CAUSE)


def iid_mixture(seed: int) -> dict[str, Any]:
    # Gaussian and Poisson only: an i.i.d. mixture of categorical laws is itself one
    # categorical law (not identifiable), for which one state is the right answer.
    family = ("gaussian", "poisson")[seed % 2]
    data, _ = _simulate(family, SEPARATED[family][:2], np.full((2, 2), 0.5), [LENGTH], seed)
    return _case(
        family,
        2,
        data,
        "degenerate",
        flags=("no_temporal_structure",),
        cause=("no temporal structure",),
        remedy="mixture model",
    )


def iid_uniform(seed: int) -> dict[str, Any]:
    # The essay's data: i.i.d. uniform symbols, 3 states and 2 symbols fitted.
    data, _ = _simulate("categorical", [[0.5, 0.5]], np.ones((1, 1)), [500], seed, symbols=2)
    return _case("categorical", 3, data, "degenerate", symbols=2, **DATA_CAUSE)


def misspecified(seed: int) -> dict[str, Any]:
    """Heavy-tailed noise (Student t, 3 df) fitted as Gaussian; overdispersed counts as Poisson."""
    family = ("gaussian", "poisson")[seed % 2]
    values = [-2.0, 2.0] if family == "gaussian" else [3.0, 12.0]
    _, states = _simulate(family, values, _transition(2, 0.9), [LENGTH], seed)
    rng = np.random.default_rng(seed)
    path = states.numpy()[0]
    if family == "gaussian":
        observed = np.asarray(values)[path] + rng.standard_t(3, size=path.size)
    else:
        mean = np.asarray(values)[path]
        dispersion = 2.0  # negative binomial: variance = mean + mean^2 / 2
        observed = rng.negative_binomial(dispersion, dispersion / (dispersion + mean))
    data = hp.Sequences([observed.astype(float)])
    return _case(
        family,
        3,
        data,
        "separate",
        flags=("misspecification",),
        cause=("misspecification",),
        remedy="",
    )


def non_mixing(seed: int) -> dict[str, Any]:
    """Three equal clusters fitted with 2 states: two modes of equal height, chains started in
    different ones (NUTS); point estimates may find both (weak identifiability)."""
    values = [0.0, 4.0, 8.0]
    data, _ = _simulate("gaussian", values, _transition(3, 0.9), [LENGTH], seed)
    hmm = hp.HMM(2, hp.Gaussian())
    starts = []
    for mu in ([0.0, 6.0], [2.0, 8.0]):
        start = {
            "pi": torch.full((2,), 0.5, dtype=torch.float64),
            "A": torch.as_tensor(_transition(2, 0.9)),
            "mu": torch.as_tensor(mu, dtype=torch.float64),
            "sigma": torch.as_tensor([1.5, 1.5], dtype=torch.float64),
        }
        mode = hp.learning.run_em(hmm, data, start, max_iter=200).params
        # off exact zeros of pi and A: the sampler needs finite unconstrained coordinates
        mode = {
            name: (0.999 * value + 0.001 / value.shape[-1]) if name in ("pi", "A") else value
            for name, value in mode.items()
        }
        starts.append(mode)
    case = _case(
        "gaussian",
        2,
        data,
        "separate",
        flags=("not_converged", "chain_modes", "weak_identifiability"),
        cause=("sampler", "non-mixing", "weak identifiability"),
        remedy="",
    )
    case["nuts"] = {"init": starts}
    return case


def label_switching(seed: int) -> dict[str, Any]:
    family = FAMILIES[seed % 3]
    num = 3 if family == "categorical" else 2
    transition = _transition(num, 0.9)
    data, _ = _simulate(family, SEPARATED[family][:num], transition, [LENGTH], seed)
    truth = _params(family, SEPARATED[family][:num], transition)
    perm = list(range(num))[::-1]
    swapped = {
        name: (value[perm][:, perm] if name == "A" else value[perm])
        for name, value in truth.items()
    }
    case = _case(
        family,
        num,
        data,
        "separate",
        flags=("label_switching",),
        cause=("label switching",),
        remedy="relabelling",
    )
    case["nuts"] = {"init": [truth, swapped], "relabel": False}
    return case


KINDS = {
    function.__name__: function
    for function in (
        separated,
        identical_rows,
        k_plus_1,
        k_plus_2,
        overlap_categorical,
        overlap_gaussian,
        overlap_poisson,
        tiny_data,
        strong_prior,
        sparse_prior,
        iid_mixture,
        iid_uniform,
        misspecified,
        non_mixing,
        label_switching,
    )
}


# ---------------------------------------------------------------------------- one task
def _fit(method: str, case: dict[str, Any], seed: int) -> hp.Fit:
    hmm, data = case["hmm"], case["data"]
    if method == "map":
        return hp.fit_map(hmm, data, seed=seed, progress=False)
    if method == "svi":
        return hp.fit_svi(hmm, data, seed=seed, restarts=2, steps=1000, progress=False)
    options = case.get("nuts", {})
    return hp.fit_nuts(
        hmm,
        data,
        chains=2,
        warmup=150,
        draws=150,
        seed=seed,
        parallel=False,
        progress=False,
        **options,
    )


def run_one(task: tuple[str, int, str]) -> dict[str, Any]:
    kind, seed, method = task
    torch.set_num_threads(1)
    record: dict[str, Any] = {"kind": kind, "seed": seed, "method": method}
    try:
        case = KINDS[kind](seed)
        record.update(
            family=case["family"],
            expect=case["expect"],
            expected_flags=list(case.get("flags", ())),
            expected_cause=list(case.get("cause", ())),
            expected_remedy=case.get("remedy"),
            states=case["hmm"].num_states,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            began = time.perf_counter()
            fit = _fit(method, case, seed)
            record["fit_seconds"] = time.perf_counter() - began
            began = time.perf_counter()
            report = hp.diagnose(fit)
            record["diagnose_seconds"] = time.perf_counter() - began
    except Exception as error:  # a runner that fails is reported, not scored
        record["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        record["traceback"] = traceback.format_exc()[-2000:]
        return record
    flags = report.flags
    record.update(
        raised=[flag.kind for flag in flags],
        severities=[flag.severity for flag in flags],
        causes=[flag.cause_kind for flag in flags],
        remedies=[flag.remedies[0].value if flag.remedies else None for flag in flags],
        primary=flags[0].kind if flags else None,
        primary_cause=flags[0].cause_kind if flags else None,
        first_remedy=flags[0].remedies[0].value if flags and flags[0].remedies else None,
        supported_states=report.measurements.get("summary", {}).get("supported_states"),
        summaries=[flag.summary[:400] for flag in flags],
        notes=list(report.notes),
    )
    return record


# ---------------------------------------------------------------------------- scoring
def _detected(record: dict[str, Any]) -> bool:
    return any(
        any(expected in kind for expected in record["expected_flags"]) for kind in record["raised"]
    )


def _errors(record: dict[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    return [
        kind
        for kind, severity in zip(record["raised"], record["severities"], strict=True)
        if severity == "error" and kind not in skip
    ]


def _rate(numerator: int, denominator: int) -> str:
    return f"{numerator}/{denominator} ({numerator / denominator:.0%})" if denominator else "-"


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in records if "error" not in r]
    summary: dict[str, Any] = {"methods": {}, "failed_fits": []}
    for record in records:
        if "error" in record:
            summary["failed_fits"].append(
                {k: record[k] for k in ("kind", "seed", "method", "error")}
            )
    for method in METHODS:
        mine = [r for r in scored if r["method"] == method]
        if not mine:
            continue
        degenerate = [r for r in mine if r["expect"] == "degenerate"]
        clean = [r for r in mine if r["expect"] == "clean"]
        flagged = [r for r in degenerate if _detected(r)]
        cause_ok = [r for r in flagged if r["primary_cause"] in r["expected_cause"]]
        remedy_ok = [r for r in flagged if r["first_remedy"] == r["expected_remedy"]]
        both_ok = [r for r in cause_ok if r["first_remedy"] == r["expected_remedy"]]
        ratios = [r["diagnose_seconds"] / r["fit_seconds"] for r in mine]
        summary["methods"][method] = {
            "fits": len(mine),
            "false_negatives": [len(degenerate) - len(flagged), len(degenerate)],
            "false_error_flags_separated": [sum(bool(_errors(r)) for r in clean), len(clean)],
            "false_error_flags_separated_excluding_not_converged": [
                sum(bool(_errors(r, ("not_converged",))) for r in clean),
                len(clean),
            ],
            "cause_match": [len(cause_ok), len(flagged)],
            "remedy_match": [len(remedy_ok), len(flagged)],
            "cause_and_remedy_match": [len(both_ok), len(flagged)],
            "diagnose_over_fit_time": {
                "median": float(np.median(ratios)),
                "p90": float(np.quantile(ratios, 0.9)),
                "max": float(np.max(ratios)),
            },
            "median_fit_seconds": float(np.median([r["fit_seconds"] for r in mine])),
            "median_diagnose_seconds": float(np.median([r["diagnose_seconds"] for r in mine])),
        }
    return summary


def markdown(records: list[dict[str, Any]], summary: dict[str, Any], meta: dict) -> str:
    lines = [
        "# diagnose accuracy on planted scenarios",
        "",
        f"Produced by `{meta['command']}` ({meta['when']}; {meta['machine']}; shared 2-core "
        "machine, times are indicative). Scenarios, settings and scoring: the docstring of "
        "`benchmarks/diagnose_accuracy.py`; thresholds: `docs/degeneracy.md`.",
        "",
        "## Headline (degenerate and separated scenarios)",
        "",
        "| method | fits | false negatives (degenerate) | error flags on separated | "
        "same, without not_converged | primary cause matches | first remedy matches | "
        "both | diagnose / fit time (median, max) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for method, row in summary["methods"].items():
        timing = row["diagnose_over_fit_time"]
        lines.append(
            f"| {method} | {row['fits']} | {_rate(*row['false_negatives'])} | "
            f"{_rate(*row['false_error_flags_separated'])} | "
            f"{_rate(*row['false_error_flags_separated_excluding_not_converged'])} | "
            f"{_rate(*row['cause_match'])} | {_rate(*row['remedy_match'])} | "
            f"{_rate(*row['cause_and_remedy_match'])} | "
            f"{timing['median']:.2f}x, {timing['max']:.2f}x |"
        )
    lines += ["", "## Scenario x raised flags (count of fits raising each flag)", ""]
    scored = [r for r in records if "error" not in r]
    for method in METHODS:
        mine = [r for r in scored if r["method"] == method]
        if not mine:
            continue
        kinds = sorted({kind for r in mine for kind in r["raised"]})
        lines += [
            f"### {method}",
            "",
            "| scenario | fits | detected | " + " | ".join(kinds) + " |",
            "|---|---|---|" + "---|" * len(kinds),
        ]
        by_kind: dict[str, list] = defaultdict(list)
        for record in mine:
            by_kind[record["kind"]].append(record)
        for kind in KINDS:
            group = by_kind.get(kind)
            if not group:
                continue
            counts = Counter(flag for r in group for flag in set(r["raised"]))
            detected = (
                "-" if group[0]["expect"] == "clean" else str(sum(_detected(r) for r in group))
            )
            cells = " | ".join(str(counts.get(flag, 0)) or "0" for flag in kinds)
            lines.append(f"| {kind} | {len(group)} | {detected} | {cells} |")
        lines.append("")
    lines += ["## Expected x first remedy (flagged fits, all methods)", ""]
    remedies = sorted({str(r["first_remedy"]) for r in scored})
    lines += [
        "| scenario | expected first remedy | " + " | ".join(remedies) + " |",
        "|---|---|" + "---|" * len(remedies),
    ]
    for kind in KINDS:
        group = [r for r in scored if r["kind"] == kind and r["raised"]]
        if not group:
            continue
        counts = Counter(str(r["first_remedy"]) for r in group)
        cells = " | ".join(str(counts.get(remedy, 0)) for remedy in remedies)
        lines.append(f"| {kind} | {group[0]['expected_remedy'] or '-'} | {cells} |")
    lines += ["", "## Expected x primary cause (flagged fits, all methods)", ""]
    causes = sorted({str(r["primary_cause"]) for r in scored if r["raised"]})
    lines += [
        "| scenario | expected cause | " + " | ".join(causes) + " |",
        "|---|---|" + "---|" * len(causes),
    ]
    for kind in KINDS:
        group = [r for r in scored if r["kind"] == kind and r["raised"]]
        if not group:
            continue
        counts = Counter(str(r["primary_cause"]) for r in group)
        cells = " | ".join(str(counts.get(cause, 0)) for cause in causes)
        expected = ", ".join(group[0]["expected_cause"]) or "-"
        lines.append(f"| {kind} | {expected} | {cells} |")
    lines += ["", "## Reported separately (checks outside the refits)", ""]
    for kind in SEPARATE:
        for method in METHODS:
            group = [r for r in scored if r["kind"] == kind and r["method"] == method]
            if not group:
                continue
            raised = Counter(flag for r in group for flag in set(r["raised"]))
            text = ", ".join(f"{flag} {count}" for flag, count in sorted(raised.items()))
            lines.append(
                f"- {kind}, {method}: detected {sum(_detected(r) for r in group)}/{len(group)} "
                f"(expected flags {', '.join(group[0]['expected_flags'])}); raised: "
                f"{text or 'none'}"
            )
    failed = summary["failed_fits"]
    lines += ["", f"## Failed fits ({len(failed)})", ""]
    lines += [f"- {f['kind']} seed {f['seed']} {f['method']}: {f['error']}" for f in failed]
    lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main
def _load_partial() -> list[dict[str, Any]]:
    if not PARTIAL.exists():
        return []
    return [json.loads(line) for line in PARTIAL.read_text().splitlines() if line.strip()]


def _write(records: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    summary = summarise(records)
    payload = {"meta": meta, "summary": summary, "records": records}
    with atomic_write(JSON_PATH) as handle:
        handle.write(json.dumps(payload, indent=1, default=float))
    with atomic_write(MD_PATH) as handle:
        handle.write(markdown(records, summary, meta))
    print(markdown(records, summary, meta).split("## Scenario")[0])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(6)))
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--resume", action="store_true", help="keep the partial results")
    parser.add_argument("--report", action="store_true", help="only rewrite the tables")
    args = parser.parse_args(argv)
    meta = {
        "command": "python benchmarks/diagnose_accuracy.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "hmm_pyro": hp.__version__,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    done = _load_partial() if (args.resume or args.report) else []
    if args.report:
        _write(done, meta)
        return
    if not args.resume and PARTIAL.exists():
        PARTIAL.unlink()
    finished = {(r["kind"], r["seed"], r["method"]) for r in done}
    tasks = [  # seed by seed (every method), so that a run cut short has whole seeds
        (kind, seed, method)
        for seed in args.seeds
        for method in args.methods
        for kind in args.kinds
        if (kind, seed, method) not in finished
    ]
    print(f"{len(tasks)} fits to run ({len(finished)} kept)", flush=True)
    records = list(done)
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers) if args.workers > 1 else _Serial() as pool:
        for record in pool.imap_unordered(run_one, tasks):
            records.append(record)
            with PARTIAL.open("a") as handle:
                handle.write(json.dumps(record, default=float) + "\n")
            status = record.get("error") or ", ".join(record["raised"]) or "ok"
            print(
                f"{record['method']:5s} {record['kind']:20s} {record['seed']}: {status}", flush=True
            )
    _write(records, meta)


class _Serial:
    """``Pool``'s ``imap_unordered`` in this process (one worker)."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def imap_unordered(self, function, tasks):
        for task in tasks:
            yield function(task)


if __name__ == "__main__":
    main()
