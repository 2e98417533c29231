"""Run every degeneracy study and write an index of their reports.

    python diagnostics/run_all.py            # full runs: reports and PNGs in diagnostics/reports/
    python diagnostics/run_all.py --quick    # smoke runs into out/diagnostics-quick/
    python diagnostics/run_all.py --only a_insufficient_data d_symmetric_start

Each study runs in its own process (``python diagnostics/<study>.py``), one after the other;
the studies use both cores themselves (NUTS chains in worker processes).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import _common

STUDIES = {
    "a_insufficient_data": "Insufficient data: 10 vs 500 vs 5,000 observations",
    "b_informative_prior": "An overly informative emission prior against a weak one",
    "c_remedy": "The remedy, one step at a time",
    "d_symmetric_start": "The symmetric SVI start that collapses the states, and its fix",
    "e_label_switching": "Label switching across chains, and relabelling",
    "f_too_many_states": "Too many states: merging or emptying",
    "g_essay_situation": "The essay's own situation: i.i.d. symbols and pooled means",
    "h_uninformative_prior": "Extremely uninformative priors",
    "i_misspecification": "Model misspecification and the predictive checks",
    "j_local_optima": "Local optima other than the symmetric saddle",
    "k_chain_modes": "Chains in different modes",
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--out", help="report folder (default: as each study)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=list(STUDIES), help="run these studies")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else (_common.QUICK_REPORTS if args.quick else _common.REPORTS)
    out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in args.only or STUDIES:
        command = [sys.executable, str(_common.HERE / f"{name}.py"), "--out", str(out)]
        command += ["--seed", str(args.seed)] + (["--quick"] if args.quick else [])
        print(f"== {name}", flush=True)
        result = subprocess.run(command, check=False)
        if result.returncode != 0:
            failed.append(name)
    lines = [
        "# Degeneracy studies",
        "",
        "Each report below was written by `python diagnostics/run_all.py"
        + (" --quick" if args.quick else "")
        + "` (or the study's own script) and states the numbers that run measured.",
        "",
        "| study | report | run time of the study (s) |",
        "|---|---|---|",
    ]
    for name, title in STUDIES.items():
        path = out / f"{name}.md"
        if path.exists():
            found = re.search(r"\*Run time: (\d+) s\.\*", path.read_text())
            seconds = found.group(1) if found else ""
            lines.append(f"| {title} | [{name}.md]({name}.md) | {seconds} |")
    (out / "README.md").write_text("\n".join(lines) + "\n")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
