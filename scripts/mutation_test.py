"""Mutation testing of the core files with mutmut 3: do the tests notice a changed operator, constant or call?

    pip install -e ".[mutation]"
    python scripts/mutation_test.py --files norms                     # one file: a few minutes on 2 CPU cores
    python scripts/mutation_test.py                                   # all seven core files: hours on 2 CPU cores
    python scripts/mutation_test.py --report-only                     # the table of the last run, no testing

mutmut (https://github.com/boxed/mutmut) copies the package into ``mutants/`` (git-ignored), turns
every function of the files listed under ``[tool.mutmut] only_mutate`` in pyproject.toml into a switch
between the original and its mutants, runs the fast tests listed there once to learn which tests reach
which function, and then, for each mutant, runs only those tests. A mutant is *killed* when a test
fails, *survives* when all pass, *no tests* when no selected test reaches it. This script runs mutmut
on the chosen files, then prints, per file, the counts and the kill rate ``killed / (killed + survived
+ no tests)``. Survivors are listed with ``mutmut show <name>`` diffs in ``docs/mutation/``.

It is CPU heavy and not part of ``python -m pytest``; run it under ``nice`` on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# short name -> the module prefix of its mutants (mutmut names a mutant ``module.function__mutmut_N``)
CORE_FILES = {
    "modeling_study": "modeling_study.modeling_study",
    "position_encodings": "modeling_study.position_encodings",
    "norms": "modeling_study.norms",
    "learned_bias_attention": "modeling_study.learned_bias_attention",
    "convert": "modeling_study.convert",
    "configuration_study": "modeling_study.configuration_study",
    "run": "modeling_study.training.run",
}
RESULT_LINE = re.compile(r"^\s*(\S+__mutmut_\d+): (.+)$")


def file_of(mutant: str) -> str | None:
    """``modeling_study.norms.xǁStudyRMSNormǁforward__mutmut_3`` -> ``norms``."""
    for name, prefix in CORE_FILES.items():
        if mutant.startswith(prefix + ".x"):
            return name
    return None


def mutmut(*args: str, capture: bool = False) -> str:
    command = [sys.executable, "-m", "mutmut", *args]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run(command, cwd=REPO, env=env, text=True, capture_output=capture)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {done.returncode}\n{done.stderr or ''}")
    return done.stdout or ""


def report(files: list[str]) -> dict[str, Counter]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for line in mutmut("results", "--all", "true", capture=True).splitlines():
        match = RESULT_LINE.match(line)
        if match and file_of(match.group(1)) in files:
            counts[file_of(match.group(1))][match.group(2).strip()] += 1
    print(f"\n{'file':24s} {'mutants':>7s} {'killed':>7s} {'survived':>8s} {'no tests':>8s} {'other':>6s} {'kill rate':>9s}")
    for name in files:
        c = counts.get(name, Counter())
        killed = c["killed"] + c["timeout"]  # a mutant that hangs the tests is caught too
        other = sum(c.values()) - killed - c["survived"] - c["no tests"] - c["not checked"]
        judged = killed + c["survived"] + c["no tests"]
        rate = f"{100 * killed / judged:.1f}%" if judged else "-"
        print(f"{name:24s} {sum(c.values()):7d} {killed:7d} {c['survived']:8d} {c['no tests']:8d} {other:6d} {rate:>9s}")
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", default=",".join(CORE_FILES),
                        help=f"comma-separated core files to mutate, from: {', '.join(CORE_FILES)}")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested in parallel (one per CPU core)")
    parser.add_argument("--report-only", action="store_true", help="print the table of the last run without testing")
    args = parser.parse_args(argv)
    files = [name.strip() for name in args.files.split(",") if name.strip()]
    unknown = sorted(set(files) - set(CORE_FILES))
    if unknown:
        parser.error(f"--files: unknown {unknown}; valid: {', '.join(CORE_FILES)}")
    if not args.report_only:
        mutmut("run", "--max-children", str(args.max_children), *(f"{CORE_FILES[name]}.*" for name in files))
    report(files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
