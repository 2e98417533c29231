"""Benchmark: start-up time and memory of ``import hmm_pyro`` and of the command line.

Usage::

    python benchmarks/startup.py --shared|--quiet [--repeats 15] [--reference-repeats 3]
        [--checkout PATH] [--out PATH]

Every command runs ``--repeats`` times, each time in a fresh interpreter (the commands take
turns, so that a change in the machine's load falls on all of them alike), after one untimed
run of each (compiled ``.pyc`` files and the page cache warm); the two reference commands that
import torch run ``--reference-repeats`` times. Reported per command: median, minimum and
maximum wall time of the process, its median CPU time (user + system) and its median peak
resident memory (``ru_utime + ru_stime`` and ``ru_maxrss`` of that process, from
``os.wait4``). On a shared machine the wall times grow with the load, the CPU times much less:
a CPU time is a lower bound of the wall time on a quiet machine, and close to it for the
start-up commands, which run on one thread. The children import the package of this checkout,
or of ``--checkout`` (another worktree, e.g. a commit before the change), run from its folder
with ``PYTHONPATH`` set to it.

The targets (issue 15): ``hmm-pyro --help`` under 0.5 s and ``import hmm_pyro`` under 1.5 s on
2 quiet cores. ``python -c pass`` is the interpreter's own floor; ``from hmm_pyro import
fit_nuts`` and ``import torch`` show what the first use of the library still costs (moved
there, not removed).

Say whether other work shared the machine (``--shared``) or not (``--quiet``): timings on a
shared machine are longer and more spread. The load averages at the start and the end are
recorded as well. Writes ``benchmarks/results/startup.json`` (atomically) and prints a Markdown
table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hmm_pyro import __version__  # noqa: E402
from hmm_pyro._io import atomic_write  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "startup.json"
SCRIPT = Path(sys.executable).with_name("hmm-pyro")
"""The console script installed with the package (next to the interpreter)."""

COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("python -c pass", [sys.executable, "-c", "pass"], None),
    ("import hmm_pyro", [sys.executable, "-c", "import hmm_pyro"], 1.5),
    ("hmm-pyro --help", [str(SCRIPT), "--help"], 0.5),
    ("python -m hmm_pyro --help", [sys.executable, "-m", "hmm_pyro", "--help"], 0.5),
    ("hmm-pyro fit --help", [str(SCRIPT), "fit", "--help"], None),
    (
        "from hmm_pyro import fit_nuts",
        [sys.executable, "-c", "from hmm_pyro import fit_nuts"],
        None,
    ),
    ("import torch", [sys.executable, "-c", "import torch"], None),
]
"""(name, command, target in seconds or None)."""

REFERENCES = ("from hmm_pyro import fit_nuts", "import torch")
"""Commands shown for reference (seconds each): run ``--reference-repeats`` times."""


def _environment(checkout: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(checkout)}


def run_once(command: list[str], checkout: Path) -> tuple[float, float, float]:
    """Wall time (s), CPU time (user + system, s) and peak resident memory (MB) of ``command``."""
    began = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=checkout,  # ``python -c`` and ``-m`` put the working folder first on the path
        env=_environment(checkout),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)  # this process's own resource usage
    elapsed = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        again = subprocess.run(
            command, cwd=checkout, env=_environment(checkout), capture_output=True, text=True
        )
        raise RuntimeError(f"{command} exited with {process.returncode}: {again.stderr[-2000:]}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # kB on Linux


def _check_checkout(checkout: Path) -> str:
    """The file of the package the children import: the checkout's."""
    result = subprocess.run(
        [sys.executable, "-c", "import hmm_pyro; print(hmm_pyro.__file__)"],
        cwd=checkout,
        env=_environment(checkout),
        capture_output=True,
        text=True,
        check=True,
    )
    imported = Path(result.stdout.strip())
    if imported.parent.parent != checkout:
        raise RuntimeError(f"the children import {imported}, not the package in {checkout}")
    return str(imported)


def _commit(checkout: Path) -> str | None:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True
    )
    if result.returncode != 0:
        return None
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=checkout).returncode != 0
    return result.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def measure(repeats: int, reference_repeats: int, shared: bool, checkout: Path) -> dict:
    """Time every command ``repeats`` times, taking turns; return the JSON record."""
    if not SCRIPT.is_file():
        raise FileNotFoundError(f"no console script at {SCRIPT}: install the package (-e .)")
    package_file = _check_checkout(checkout)
    machine = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "shared": shared,
        "load_average_at_start": list(os.getloadavg()),
    }
    for _, command, _ in COMMANDS:  # warm the .pyc files and the page cache
        run_once(command, checkout)
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in COMMANDS}
    for round_ in range(max(repeats, reference_repeats)):
        for name, command, _ in COMMANDS:
            if round_ < (reference_repeats if name in REFERENCES else repeats):
                samples[name].append(run_once(command, checkout))
    machine["load_average_at_end"] = list(os.getloadavg())
    rows = []
    for name, command, target in COMMANDS:
        times = [elapsed for elapsed, _, _ in samples[name]]
        rows.append(
            {
                "name": name,
                "command": [Path(part).name if part == command[0] else part for part in command],
                "target_s": target,
                "median_s": round(statistics.median(times), 4),
                "min_s": round(min(times), 4),
                "max_s": round(max(times), 4),
                "runs": len(times),
                "median_cpu_s": round(statistics.median(cpu for _, cpu, _ in samples[name]), 4),
                "median_peak_rss_mb": round(statistics.median(rss for *_, rss in samples[name]), 1),
                "times_s": [round(value, 4) for value in times],
            }
        )
    return {
        "machine": machine,
        "hmm_pyro": {"version": __version__, "commit": _commit(checkout), "file": package_file},
        "commands": rows,
    }


def table(record: dict) -> str:
    """Markdown table of the record."""
    machine = record["machine"]
    lines = [
        f"Fresh processes; {machine['cores_available']} cores, "
        f"{'shared with other work' if machine['shared'] else 'quiet'} (load average "
        f"{machine['load_average_at_start'][0]:.1f} at start, "
        f"{machine['load_average_at_end'][0]:.1f} at end); commit {record['hmm_pyro']['commit']}",
        "",
        "| command | runs | median s | min s | max s | target s | median CPU s | median peak "
        "RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in record["commands"]:
        target = "" if row["target_s"] is None else f"< {row['target_s']}"
        lines.append(
            f"| `{row['name']}` | {row['runs']} | {row['median_s']:.3f} | {row['min_s']:.3f} | "
            f"{row['max_s']:.3f} | {target} | {row['median_cpu_s']:.3f} | "
            f"{row['median_peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    state = parser.add_mutually_exclusive_group(required=True)
    state.add_argument("--shared", action="store_true", help="other work ran on the machine")
    state.add_argument("--quiet", action="store_true", help="nothing else ran on the machine")
    parser.add_argument("--repeats", type=int, default=15, help="runs per command")
    parser.add_argument(
        "--reference-repeats", type=int, default=3, help="runs of the commands importing torch"
    )
    parser.add_argument(
        "--checkout", type=Path, default=ROOT, help="the checkout whose package is measured"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON file written")
    args = parser.parse_args()
    if args.repeats < 1 or args.reference_repeats < 1:
        parser.error("--repeats, --reference-repeats: expected at least 1")
    record = measure(
        args.repeats, args.reference_repeats, shared=args.shared, checkout=args.checkout.resolve()
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out) as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    print(table(record))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
