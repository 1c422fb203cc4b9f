"""Mutation testing of the core files with mutmut 3: do the tests notice a changed operator, constant or call?

    pip install -e ".[mutation]"
    nice -n 10 python scripts/mutation_test.py --files norms          # one small file: minutes on 2 CPU cores
    nice -n 10 python scripts/mutation_test.py                        # all seven core files: hours
    nice -n 10 python scripts/mutation_test.py --sample 30            # 30 random mutants per file: an estimate
    nice -n 10 python scripts/mutation_test.py --survivors            # re-test the last run's survivors
    nice -n 10 python scripts/mutation_test.py --plant --files norms  # plant them by hand against today's tests
    python scripts/mutation_test.py --report-only                     # the table of the last runs, no testing

mutmut (https://github.com/boxed/mutmut) turns every function of a file into a switch between the
original and its mutants (``<`` -> ``<=``, ``+`` -> ``-``, a constant changed, an argument dropped,
a string changed, ...), runs the selected tests once to learn which tests reach which function, and
then, for each mutant, runs only those tests. A mutant is *killed* when a test fails, *survives* when
all pass, has *no tests* when no selected test reaches it. mutmut mutates functions and methods, not
module-level tables (``NORM_PLACEMENTS``, ``FAMILIES``) nor decorated functions other than
static/class methods (``StudyModel.forward``, ``RotaryPositionEncoding._cos_sin``); the reference
tests cover those.

For each core file this script copies the repository (its git-tracked files) to
``runs/mutation/<file>/``, adds to pyproject's ``[tool.mutmut]`` settings that file and the fast
tests that check it (``SELECTIONS`` below: the whole suite per mutant would take days on 2 cores),
runs ``mutmut run`` there, and prints per file the counts and the kill rate
``killed / (killed + survived + no tests)``. A second invocation resumes where the last stopped.
Look at a survivor with ``cd runs/mutation/<file> && mutmut show <name>``; docs/mutation/ lists the
survivors of the last full run with the reason each one is equivalent or not caught.

CPU heavy and not part of ``python -m pytest``: run it under ``nice`` on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "runs" / "mutation"

# core file -> (its path, the fast tests that check it)
SELECTIONS: dict[str, tuple[str, list[str]]] = {
    "norms": ("modeling_study/norms.py",
              ["tests/test_references.py", "tests/test_components.py", "tests/test_convert_families.py"]),
    "position_encodings": ("modeling_study/position_encodings.py",
                           ["tests/test_references.py", "tests/test_components.py", "tests/test_properties.py"]),
    "learned_bias_attention": ("modeling_study/learned_bias_attention.py",
                               ["tests/test_learned_bias_attention.py", "tests/test_references.py"]),
    "configuration_study": ("modeling_study/configuration_study.py",
                            ["tests/test_config.py", "tests/test_config_boundaries.py", "tests/test_references.py",
                             "tests/test_embedding_multiplier.py"]),
    "modeling_study": ("modeling_study/modeling_study.py",
                       ["tests/test_references.py", "tests/test_components.py", "tests/test_inputs.py",
                        "tests/test_features.py", "tests/test_properties.py", "tests/test_packed.py",
                        "tests/test_learned_bias_attention.py", "tests/test_cache_deprecation.py",
                        "tests/test_model_units.py"]),
    "convert": ("modeling_study/convert.py",
                ["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]),
    "run": ("modeling_study/training/run.py",
            ["tests/test_references_training.py", "tests/test_train.py", "tests/test_run_units.py"]),
}
RESULT_LINE = re.compile(r"^\s*(\S+__mutmut_\d+): (.+)$")
MUTANT_ENTRY = re.compile(r"\['(x\S*?__mutmut_\d+)'\] = ")


def module_of(name: str) -> str:
    return SELECTIONS[name][0].removesuffix(".py").replace("/", ".")


def sample_of(work: Path, name: str, size: int, seed: int = 0) -> list[str]:
    """``size`` mutants of the file drawn at random (seeded): an estimate of its kill rate when the whole
    file would take too long. mutmut generates the mutants first (a run that matches no mutant)."""
    import random

    mutated = work / "mutants" / SELECTIONS[name][0]
    if not mutated.is_file():
        # fails after generating them ("nothing matches"), before any test runs
        mutmut(work, "run", "--max-children", "1", f"{module_of(name)}.no_such_mutant", capture=True, check=False)
    names = sorted(set(MUTANT_ENTRY.findall(mutated.read_text())))
    return [f"{module_of(name)}.{mutant}" for mutant in random.Random(seed).sample(names, min(size, len(names)))]


def prepare(name: str) -> Path:
    """A copy of the repository's tracked files whose pyproject names this file and its tests."""
    path, tests = SELECTIONS[name]
    work = WORK / name
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for relative in filter(None, tracked.split("\0")):
        source, target = REPO / relative, work / relative
        if source.is_file() and (not target.exists() or target.read_bytes() != source.read_bytes()):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    pyproject = (REPO / "pyproject.toml").read_text()
    extra = (f"only_mutate = [{path!r}]\n"
             f"pytest_add_cli_args_test_selection = {['-m', 'not slow', *tests]!r}\n").replace("'", '"')
    (work / "pyproject.toml").write_text(pyproject.replace("[tool.mutmut]\n", "[tool.mutmut]\n" + extra, 1))
    return work


def mutmut(work: Path, *args: str, capture: bool = False, check: bool = True) -> str:
    command = [sys.executable, "-m", "mutmut", *args]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    # no PYTHONPATH: mutmut puts its mutated copy first on sys.path, and nothing else may shadow it
    done = subprocess.run(command, cwd=work, env=env, text=True, capture_output=capture)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} in {work} failed with exit code {done.returncode}\n{done.stderr or ''}")
    return done.stdout or ""


def counts_of(name: str) -> Counter:
    work = WORK / name
    if not (work / "mutants").is_dir():
        return Counter()
    counts = Counter()
    for line in mutmut(work, "results", "--all", "true", capture=True).splitlines():
        match = RESULT_LINE.match(line)
        if match:
            counts[match.group(2).strip()] += 1
    return counts


def survivors_of(name: str) -> list[str]:
    work = WORK / name
    if not (work / "mutants").is_dir():
        return []
    lines = mutmut(work, "results", "--all", "true", capture=True).splitlines()
    return [m.group(1) for m in map(RESULT_LINE.match, lines) if m and m.group(2).strip() in ("survived", "no tests")]


def report(files: list[str]) -> None:
    print(f"\n{'file':24s} {'mutants':>7s} {'killed':>7s} {'crashed':>7s} {'survived':>8s} {'no tests':>8s} "
          f"{'unchecked':>9s} {'kill rate':>9s}")
    for name in files:
        c = counts_of(name)
        # a mutant that hangs (timeout) or crashes the test process (segfault; "suspicious": any other exit
        # code, e.g. an abort inside a kernel) is caught too
        crashed = c["timeout"] + c["segfault"] + c["suspicious"]
        killed = c["killed"] + crashed
        judged = killed + c["survived"] + c["no tests"]
        unchecked = sum(c.values()) - judged
        rate = f"{100 * killed / judged:.1f}%" if judged else "-"
        print(f"{name:24s} {sum(c.values()):7d} {c['killed']:7d} {crashed:7d} {c['survived']:8d} {c['no tests']:8d} "
              f"{unchecked:9d} {rate:>9s}")


def plant(name: str, mutants: list[str]) -> None:
    """Put each mutant (as ``mutmut show`` prints it) into the work copy's source by hand and run the file's
    current tests there: what mutmut's ``--survivors`` cannot tell, since it reuses the first run's map of
    which tests reach which function and so never runs a test added since. The source is restored after each."""
    work = prepare(name)
    source = work / SELECTIONS[name][0]
    original = source.read_text()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    for mutant in mutants:
        shown = mutmut(work, "show", mutant, capture=True).splitlines()
        old = "\n".join(line[1:] for line in shown if line.startswith("-") and not line.startswith("---"))
        new = "\n".join(line[1:] for line in shown if line.startswith("+") and not line.startswith("+++"))
        if not old or original.count(old) != 1:
            print(f"{'cannot plant':14s} {mutant}", flush=True)
            continue
        source.write_text(original.replace(old, new, 1))
        try:  # run in the work copy, whose package shadows the installed one
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly", "-m", "not slow",
                                   *SELECTIONS[name][1]], cwd=work, env=env, capture_output=True, text=True)
        finally:
            source.write_text(original)
        print(f"{'caught' if done.returncode != 0 else 'NOT caught':14s} {mutant}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", default=",".join(SELECTIONS),
                        help=f"comma-separated core files to mutate, from: {', '.join(SELECTIONS)}")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested in parallel (one per CPU core)")
    parser.add_argument("--report-only", action="store_true", help="print the table of the last runs without testing")
    parser.add_argument("--survivors", action="store_true",
                        help="test again only the mutants that survived (or had no tests) in the last run, e.g. after adding tests")
    parser.add_argument("--plant", action="store_true",
                        help="plant the last run's survivors by hand, one at a time, and run the file's current tests "
                             "(sees tests added since the run, which --survivors does not)")
    parser.add_argument("--sample", type=int, default=None,
                        help="test only this many mutants per file, drawn at random (seed 0): an estimate, much faster")
    args = parser.parse_args(argv)
    files = [name.strip() for name in args.files.split(",") if name.strip()]
    unknown = sorted(set(files) - set(SELECTIONS))
    if unknown:
        parser.error(f"--files: unknown {unknown}; valid: {', '.join(SELECTIONS)}")
    if args.plant:
        for name in files:
            print(f"== {name}: planting the last run's survivors, tests {' '.join(SELECTIONS[name][1])}", flush=True)
            plant(name, survivors_of(name))
        return 0
    if not args.report_only:
        for name in files:
            print(f"== {name}: mutmut run on {SELECTIONS[name][0]} with {' '.join(SELECTIONS[name][1])}", flush=True)
            work = prepare(name)
            chosen = sample_of(work, name, args.sample) if args.sample else []
            if args.survivors:
                chosen = survivors_of(name)
                if not chosen:
                    continue
            mutmut(work, "run", "--max-children", str(args.max_children), *chosen)
    report(files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
