"""Summarise the test suite's CPU time recorded by the ``tests.cpu_time`` pytest plugin.

Record (from the repository root; ``make test`` with the plugin)::

    python -m pytest -n 2 --dist loadgroup -p tests.cpu_time --cpu-times=times.json

Summarise::

    python benchmarks/suite_time.py times.json [--top 15] [--compare before.json]

A test's CPU is its process's CPU during setup, call and teardown plus the CPU of the child
processes it waited for (subprocesses, Dask workers). The per-group table sums the tests of each
``xdist_group`` (scheduled as one unit on one worker under ``--dist loadgroup``), and the
two-worker estimate packs the groups and ungrouped tests onto two workers, largest first: no
worker can finish before the largest unit, so that unit bounds the suite's time from below.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def test_cpu(record: dict) -> float:
    """CPU seconds of one test: its process plus the children it waited for."""
    return record["cpu_s"] + record["children_cpu_s"]


def load(path: Path) -> dict:
    """The recorded document."""
    return json.loads(path.read_text())


def units(tests: list[dict]) -> dict[str, float]:
    """CPU per scheduling unit: one entry per xdist group, and one per ungrouped test."""
    totals: dict[str, float] = defaultdict(float)
    for record in tests:
        key = "@" + "_".join(record["groups"]) if record["groups"] else record["nodeid"]
        totals[key] += test_cpu(record)
    return dict(totals)


def two_worker_makespan(sizes: list[float], workers: int = 2) -> float:
    """Longest worker load when the units go, largest first, to the least loaded worker."""
    loads = [0.0] * workers
    for size in sorted(sizes, reverse=True):
        loads[loads.index(min(loads))] += size
    return max(loads)


def summary(document: dict, top: int) -> list[str]:
    """Lines of the report for one recorded run."""
    tests = document["tests"]
    per_test = sum(test_cpu(record) for record in tests)
    processes = document["processes"]
    # The controller's children are the workers (and anything it started); each worker's own
    # total includes its start-up and collection.
    controller = next((p for p in processes if p["worker"] == "main"), None)
    workers = [p for p in processes if p["worker"] != "main"]
    lines = [
        f"recorded {document['created']}  ({document['command']})",
        f"machine: {document['machine']}, {document['cpu_count']} CPUs, "
        f"load average at the end {document['load_average_at_end']}",
        f"tests: {len(tests)}; failed {sum(r['outcome'] == 'failed' for r in tests)}, "
        f"skipped {sum(r['outcome'] == 'skipped' for r in tests)}",
        f"CPU charged to tests: {per_test:.1f} s "
        f"(in-process {sum(r['cpu_s'] for r in tests):.1f} s, "
        f"subprocesses {sum(r['children_cpu_s'] for r in tests):.1f} s); of the in-process "
        f"CPU, numba compilation {sum(r.get('numba_compile_s', 0.0) for r in tests):.1f} s",
    ]
    if workers:
        own = sum(p["cpu_s"] for p in workers)
        kids = sum(p["children_cpu_s"] for p in workers)
        lines.append(
            f"workers' totals: {own:.1f} s own + {kids:.1f} s children "
            f"= {own + kids:.1f} s ({own + kids - per_test:.1f} s start-up and collection)"
        )
    if controller is not None:
        lines.append(
            f"whole run (controller + everything it waited for): "
            f"{controller['cpu_s'] + controller['children_cpu_s']:.1f} s CPU"
        )
    unit_cpu = units(tests)
    lines.append(
        f"two-worker estimate (units packed largest first): "
        f"{two_worker_makespan(list(unit_cpu.values())):.1f} s CPU on the busier worker; "
        f"largest unit {max(unit_cpu.values()):.1f} s"
    )
    lines.append(f"\n{top} heaviest tests (CPU s = in-process + subprocesses; wall s):")
    for record in sorted(tests, key=test_cpu, reverse=True)[:top]:
        lines.append(
            f"  {test_cpu(record):7.1f} = {record['cpu_s']:6.1f} + {record['children_cpu_s']:6.1f}"
            f"  wall {record['wall_s']:6.1f}  {record['nodeid']}"
        )
    per_file: dict[str, float] = defaultdict(float)
    for record in tests:
        per_file[record["file"]] += test_cpu(record)
    lines.append(f"\n{top} heaviest files (CPU s):")
    for name, cpu in sorted(per_file.items(), key=lambda kv: kv[1], reverse=True)[:top]:
        lines.append(f"  {cpu:7.1f}  {name}")
    groups = {key: cpu for key, cpu in unit_cpu.items() if key.startswith("@")}
    lines.append("\nxdist groups (CPU s):")
    for name, cpu in sorted(groups.items(), key=lambda kv: kv[1], reverse=True):
        lines.append(f"  {cpu:7.1f}  {name}")
    return lines


def compare(before: dict, after: dict, top: int) -> list[str]:
    """Per-test CPU before and after, for the heaviest tests of either run."""
    old = {r["nodeid"]: test_cpu(r) for r in before["tests"]}
    new = {r["nodeid"]: test_cpu(r) for r in after["tests"]}
    heaviest = sorted(old, key=old.get, reverse=True)[:top]
    lines = [
        f"total CPU charged to tests: {sum(old.values()):.1f} s -> {sum(new.values()):.1f} s",
        f"\n{top} heaviest tests before, and after (CPU s):",
    ]
    for nodeid in heaviest:
        after_cpu = f"{new[nodeid]:7.1f}" if nodeid in new else "   gone"
        lines.append(f"  {old[nodeid]:7.1f} -> {after_cpu}  {nodeid}")
    return lines


def main() -> None:
    """Print the summary of one run, and optionally its comparison with an earlier one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("times", type=Path, help="JSON written by --cpu-times")
    parser.add_argument("--top", type=int, default=15, help="how many tests and files to list")
    parser.add_argument("--compare", type=Path, help="an earlier run's JSON to compare with")
    args = parser.parse_args()
    document = load(args.times)
    print("\n".join(summary(document, args.top)))
    if args.compare is not None:
        print()
        print("\n".join(compare(load(args.compare), document, args.top)))


if __name__ == "__main__":
    main()
