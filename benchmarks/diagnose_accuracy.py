"""Benchmark: how often ``hmm_pyro.diagnose`` is right on planted scenarios (not a timed test).

Usage::

    PYTHONPATH=. python benchmarks/diagnose_accuracy.py [--methods map svi nuts]
        [--seeds 0 1 2 3 4 5] [--kinds separated k_plus_1 ...] [--workers 1] [--resume]
    PYTHONPATH=. python benchmarks/diagnose_accuracy.py --report   # tables from saved results
    ... --results /tmp/trial   # write elsewhere (trial runs leave the committed results alone)
    ... --scenarios holdout    # the held-out scenarios of diagnose_holdout.py (*_holdout.*)
    ... --scenarios fresh      # a later held-out set, diagnose_fresh.py (*_fresh.*)

Every scenario plants a truth, simulates data, fits it (``fit_map`` with its defaults, and
``fit_em`` with its defaults under a sparse prior, where no MAP exists and ``fit_map`` says so:
those 6 fits are the ``map`` rows of ``sparse_prior``;
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
(scenario x raised flags, expected x first remedy), and diagnose time over fit time. A
separated fit that ``diagnose`` finds at a local optimum (flag ``local_optimum``: a split move
reached a ``K``-state solution more than 2 nats higher, whose numbers the flag carries) is a
fit that went wrong, not a false alarm: it is counted in its own column, and its
``local_optimum`` error is left out of the error flags on separated scenarios. The
misspecification, non-mixing and label-switching scenarios are reported separately: they test
checks outside the refits (the predictive checks, chains in different modes, label switching).
The diagnose/fit ratio uses CPU times (this process and its finished children), which the
machine's other load barely moves. Fits that fail (an error from the runner) are counted and
listed, not scored.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import sys
import time
import traceback
import warnings
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diagnose_fresh import KINDS as FRESH  # benchmarks/ is on sys.path
from diagnose_holdout import KINDS as HOLDOUT
from diagnose_scenarios import KINDS as MAIN
from diagnose_scenarios import POINT_EXPECT, SEPARATE

import hmm_pyro as hp
from hmm_pyro._io import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"
JSON_PATH = RESULTS / "diagnose_accuracy.json"
MD_PATH = RESULTS / "diagnose_accuracy.md"
PARTIAL = RESULTS / "diagnose_accuracy.partial.jsonl"
METHODS = ("map", "svi", "nuts")
KINDS = {**MAIN, **HOLDOUT, **FRESH}
SCENARIOS = {"main": MAIN, "holdout": HOLDOUT, "fresh": FRESH}


# ---------------------------------------------------------------------------- one task
def _fit(method: str, case: dict[str, Any], seed: int) -> hp.Fit:
    hmm, data = case["hmm"], case["data"]
    if method == "map":
        if case.get("sparse"):  # no MAP exists: fit_map refuses and points to fit_em
            return hp.fit_em(hmm, data, seed=seed, progress=False)
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


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children: the time ratios of a shared machine
    (wall times there depend on the other load)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


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
            began, cpu = time.perf_counter(), _cpu_seconds()
            fit = _fit(method, case, seed)
            record["fit_seconds"] = time.perf_counter() - began
            record["fit_cpu_seconds"] = _cpu_seconds() - cpu
            began, cpu = time.perf_counter(), _cpu_seconds()
            report = hp.diagnose(fit)
            record["diagnose_seconds"] = time.perf_counter() - began
            record["diagnose_cpu_seconds"] = _cpu_seconds() - cpu
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
def _expect(record: dict[str, Any]) -> str:
    """The expectation for this method (MAP and SVI have no chains to switch between)."""
    if record["method"] != "nuts" and record["kind"] in POINT_EXPECT:
        return POINT_EXPECT[record["kind"]]
    return record["expect"]


def _detected(record: dict[str, Any]) -> bool:
    return any(
        any(expected in kind for expected in record["expected_flags"]) for kind in record["raised"]
    )


def _errors(record: dict[str, Any], skip: tuple[str, ...] = ()) -> list[str]:
    """Error flags, except ``local_optimum`` (counted on its own) and the kinds ``skip``."""
    return [
        kind
        for kind, severity in zip(record["raised"], record["severities"], strict=True)
        if severity == "error" and kind not in skip and kind != "local_optimum"
    ]


def _local_optimum(record: dict[str, Any]) -> bool:
    return "local_optimum" in record["raised"]


def _time_ratio(record: dict[str, Any]) -> float:
    """diagnose time over fit time: CPU times where recorded, wall times otherwise."""
    if "fit_cpu_seconds" in record:
        return record["diagnose_cpu_seconds"] / record["fit_cpu_seconds"]
    return record["diagnose_seconds"] / record["fit_seconds"]


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
        degenerate = [r for r in mine if _expect(r) == "degenerate"]
        clean = [r for r in mine if _expect(r) == "clean"]
        flagged = [r for r in degenerate if _detected(r)]
        cause_ok = [r for r in flagged if r["primary_cause"] in r["expected_cause"]]
        remedy_ok = [r for r in flagged if r["first_remedy"] == r["expected_remedy"]]
        both_ok = [r for r in cause_ok if r["first_remedy"] == r["expected_remedy"]]
        ratios = [_time_ratio(r) for r in mine]
        summary["methods"][method] = {
            "fits": len(mine),
            "false_negatives": [len(degenerate) - len(flagged), len(degenerate)],
            "false_error_flags_separated": [sum(bool(_errors(r)) for r in clean), len(clean)],
            "false_error_flags_separated_excluding_not_converged": [
                sum(bool(_errors(r, ("not_converged",))) for r in clean),
                len(clean),
            ],
            "separated_at_local_optimum": [sum(_local_optimum(r) for r in clean), len(clean)],
            "cause_match": [len(cause_ok), len(flagged)],
            "remedy_match": [len(remedy_ok), len(flagged)],
            "cause_and_remedy_match": [len(both_ok), len(flagged)],
            "diagnose_over_fit_time": {
                "median": float(np.median(ratios)),
                "p90": float(np.quantile(ratios, 0.9)),
                "max": float(np.max(ratios)),
                "above_3x": [
                    f"{r['kind']} seed {r['seed']} ({_time_ratio(r):.2f}x)"
                    for r in mine
                    if _time_ratio(r) > 3
                ],
            },
            "median_fit_seconds": float(np.median([r["fit_seconds"] for r in mine])),
            "median_diagnose_seconds": float(np.median([r["diagnose_seconds"] for r in mine])),
        }
    return summary


def markdown(records: list[dict[str, Any]], summary: dict[str, Any], meta: dict) -> str:
    lines = [
        f"# diagnose accuracy on planted scenarios ({meta.get('scenarios', 'main')})",
        "",
        f"Produced by `{meta['command']}` ({meta['when']}; {meta['machine']}; shared 2-core "
        "machine, times are indicative). Scenarios, settings and scoring: the docstring of "
        "`benchmarks/diagnose_accuracy.py`; thresholds: `docs/degeneracy.md`.",
        "",
        "## Headline (degenerate and separated scenarios)",
        "",
        "| method | fits | false negatives (degenerate) | error flags on separated | "
        "same, without not_converged | separated fits found at a local optimum | "
        "primary cause matches | first remedy matches | "
        "both | diagnose / fit CPU time (median, max; fits above 3x) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, row in summary["methods"].items():
        timing = row["diagnose_over_fit_time"]
        lines.append(
            f"| {method} | {row['fits']} | {_rate(*row['false_negatives'])} | "
            f"{_rate(*row['false_error_flags_separated'])} | "
            f"{_rate(*row['false_error_flags_separated_excluding_not_converged'])} | "
            f"{_rate(*row.get('separated_at_local_optimum', (0, 0)))} | "
            f"{_rate(*row['cause_match'])} | {_rate(*row['remedy_match'])} | "
            f"{_rate(*row['cause_and_remedy_match'])} | "
            f"{timing['median']:.2f}x, {timing['max']:.2f}x; "
            f"{', '.join(timing['above_3x']) or 'none'} |"
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
                "-" if _expect(group[0]) == "clean" else str(sum(_detected(r) for r in group))
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
            if _expect(group[0]) == "clean":
                errors = sum(bool(_errors(r)) for r in group)
                found = f"clean expected (no chains), error flags in {errors}/{len(group)}"
            else:
                found = (
                    f"detected {sum(_detected(r) for r in group)}/{len(group)} (expected flags "
                    f"{', '.join(group[0]['expected_flags'])})"
                )
            lines.append(f"- {kind}, {method}: {found}; raised: {text or 'none'}")
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


def _use_results(folder: Path, stem: str) -> None:
    """Write the results to ``folder/stem.*`` (trial runs leave the committed ones alone)."""
    global RESULTS, JSON_PATH, MD_PATH, PARTIAL
    RESULTS = folder
    JSON_PATH = folder / f"{stem}.json"
    MD_PATH = folder / f"{stem}.md"
    PARTIAL = folder / f"{stem}.partial.jsonl"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(6)))
    parser.add_argument(
        "--scenarios",
        choices=list(SCENARIOS),
        default="main",
        help=(
            "main: diagnose_scenarios.py; holdout: diagnose_holdout.py (results *_holdout); "
            "fresh: diagnose_fresh.py (results *_fresh)"
        ),
    )
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), help="default: every kind")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--resume", action="store_true", help="keep the partial results")
    parser.add_argument("--report", action="store_true", help="only rewrite the tables")
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="folder of the results (for trial runs)"
    )
    args = parser.parse_args(argv)
    stems = {"main": "diagnose_accuracy", "holdout": "diagnose_holdout", "fresh": "diagnose_fresh"}
    _use_results(args.results, stems[args.scenarios])
    kinds = args.kinds or list(SCENARIOS[args.scenarios])
    meta = {
        "command": "python benchmarks/diagnose_accuracy.py " + " ".join(sys.argv[1:]),
        "when": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "hmm_pyro": hp.__version__,
        "scenarios": args.scenarios,
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
        for kind in kinds
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
