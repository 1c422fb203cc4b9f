["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]""Mutation testing of the core files with mutmut 3: do the tests notice a changed operator, constant or call?

["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   pip install -e ".[mutation]"
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   nice -n 10 python scripts/mutation_test.py --files norms          # one small file: minutes on 2 CPU cores
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   nice -n 10 python scripts/mutation_test.py                        # all seven core files: hours
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   nice -n 10 python scripts/mutation_test.py --sample 30            # 30 random mutants per file: an estimate
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   nice -n 10 python scripts/mutation_test.py --survivors            # re-test the last run's survivors
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   python scripts/mutation_test.py --report-only                     # the table of the last runs, no testing

["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]utmut (https://github.com/boxed/mutmut) turns every function of a file into a switch between the
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]riginal and its mutants (``<`` -> ``<=``, ``+`` -> ``-``, a constant changed, an argument dropped,
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"] string changed, ...), runs the selected tests once to learn which tests reach which function, and
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]hen, for each mutant, runs only those tests. A mutant is *killed* when a test fails, *survives* when
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]ll pass, has *no tests* when no selected test reaches it. mutmut mutates functions and methods, not
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]odule-level tables (``NORM_PLACEMENTS``, ``FAMILIES``) nor decorated functions other than
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]tatic/class methods (``StudyModel.forward``, ``RotaryPositionEncoding._cos_sin``); the reference
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]ests cover those.

F["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]r each core file this script copies the repository (its git-tracked files) to
``["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]uns/mutation/<file>/``, adds to pyproject's ``[tool.mutmut]`` settings that file and the fast
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]ests that check it (``SELECTIONS`` below: the whole suite per mutant would take days on 2 cores),
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]uns ``mutmut run`` there, and prints per file the counts and the kill rate
``k["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]lled / (killed + survived + no tests)``. A second invocation resumes where the last stopped.
L["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]ok at a survivor with ``cd runs/mutation/<file> && mutmut show <name>``; docs/mutation/ lists the
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]urvivors of the last full run with the reason each one is equivalent or not caught.

CPU["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]heavy and not part of ``python -m pytest``: run it under ``nice`` on a shared machine.
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]""

["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]rom __future__ import annotations

["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]mport argparse
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]mport os
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]mport re
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]mport shutil
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]mport subprocess
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]mport sys
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]rom collections import Counter
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]rom pathlib import Path

REPO["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]= Path(__file__).resolve().parent.parent
WORK["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]= REPO / "runs" / "mutation"

#["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]core file -> (its path, the fast tests that check it)
SELECTIONS:["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]dict[str, tuple[str, list[str]]] = {
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   "norms": ("modeling_study/norms.py", ["tests/test_references.py", "tests/test_components.py"]),
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   "position_encodings": ("modeling_study/position_encodings.py",
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]                          ["tests/test_references.py", "tests/test_components.py", "tests/test_properties.py"]),
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   "learned_bias_attention": ("modeling_study/learned_bias_attention.py",
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]                              ["tests/test_learned_bias_attention.py", "tests/test_references.py"]),
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   "configuration_study": ("modeling_study/configuration_study.py",
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]                           ["tests/test_config.py", "tests/test_config_boundaries.py", "tests/test_references.py",
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]                            "tests/test_embedding_multiplier.py"]),
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   "modeling_study": ("modeling_study/modeling_study.py",
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]                      ["tests/test_references.py", "tests/test_components.py", "tests/test_inputs.py",
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]                       "tests/test_features.py", "tests/test_properties.py", "tests/test_packed.py",
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]                       "tests/test_learned_bias_attention.py", "tests/test_cache_deprecation.py"]),
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   "convert": ("modeling_study/convert.py",
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]               ["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py"]),
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   "run": ("modeling_study/training/run.py",
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]           ["tests/test_references_training.py", "tests/test_train.py", "tests/test_run_units.py"]),
}
RESULT["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]LINE = re.compile(r"^\s*(\S+__mutmut_\d+): (.+)$")
MUTANT["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]ENTRY = re.compile(r"\['(x\S*?__mutmut_\d+)'\] = ")


d["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]f module_of(name: str) -> str:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   return SELECTIONS[name][0].removesuffix(".py").replace("/", ".")


d["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]f sample_of(work: Path, name: str, size: int, seed: int = 0) -> list[str]:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   """``size`` mutants of the file drawn at random (seeded): an estimate of its kill rate when the whole
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   file would take too long. mutmut generates the mutants first (a run that matches no mutant)."""
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   import random

["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   mutated = work / "mutants" / SELECTIONS[name][0]
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   if not mutated.is_file():
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       # fails after generating them ("nothing matches"), before any test runs
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       mutmut(work, "run", "--max-children", "1", f"{module_of(name)}.no_such_mutant", capture=True, check=False)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   names = sorted(set(MUTANT_ENTRY.findall(mutated.read_text())))
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   return [f"{module_of(name)}.{mutant}" for mutant in random.Random(seed).sample(names, min(size, len(names)))]


d["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]f prepare(name: str) -> Path:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   """A copy of the repository's tracked files whose pyproject names this file and its tests."""
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   path, tests = SELECTIONS[name]
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   work = WORK / name
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   for relative in filter(None, tracked.split("\0")):
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       source, target = REPO / relative, work / relative
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       if source.is_file() and (not target.exists() or target.read_bytes() != source.read_bytes()):
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]           target.parent.mkdir(parents=True, exist_ok=True)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]           shutil.copy2(source, target)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   pyproject = (REPO / "pyproject.toml").read_text()
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   extra = (f"only_mutate = [{path!r}]\n"
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]            f"pytest_add_cli_args_test_selection = {['-m', 'not slow', *tests]!r}\n").replace("'", '"')
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   (work / "pyproject.toml").write_text(pyproject.replace("[tool.mutmut]\n", "[tool.mutmut]\n" + extra, 1))
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   return work


d["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]f mutmut(work: Path, *args: str, capture: bool = False, check: bool = True) -> str:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   command = [sys.executable, "-m", "mutmut", *args]
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   # no PYTHONPATH: mutmut puts its mutated copy first on sys.path, and nothing else may shadow it
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   done = subprocess.run(command, cwd=work, env=env, text=True, capture_output=capture)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   if check and done.returncode != 0:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       raise SystemExit(f"{' '.join(command)} in {work} failed with exit code {done.returncode}\n{done.stderr or ''}")
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   return done.stdout or ""


d["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]f counts_of(name: str) -> Counter:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   work = WORK / name
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   if not (work / "mutants").is_dir():
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       return Counter()
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   counts = Counter()
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   for line in mutmut(work, "results", "--all", "true", capture=True).splitlines():
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       match = RESULT_LINE.match(line)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       if match:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]           counts[match.group(2).strip()] += 1
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   return counts


d["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]f survivors_of(name: str) -> list[str]:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   work = WORK / name
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   if not (work / "mutants").is_dir():
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       return []
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   lines = mutmut(work, "results", "--all", "true", capture=True).splitlines()
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   return [m.group(1) for m in map(RESULT_LINE.match, lines) if m and m.group(2).strip() in ("survived", "no tests")]


d["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]f report(files: list[str]) -> None:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   print(f"\n{'file':24s} {'mutants':>7s} {'killed':>7s} {'survived':>8s} {'no tests':>8s} {'unchecked':>9s} {'kill rate':>9s}")
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   for name in files:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       c = counts_of(name)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       killed = c["killed"] + c["timeout"]  # a mutant that hangs the tests is caught too
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       judged = killed + c["survived"] + c["no tests"]
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       unchecked = sum(c.values()) - judged
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       rate = f"{100 * killed / judged:.1f}%" if judged else "-"
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       print(f"{name:24s} {sum(c.values()):7d} {killed:7d} {c['survived']:8d} {c['no tests']:8d} {unchecked:9d} {rate:>9s}")


d["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]f main(argv=None) -> int:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   parser.add_argument("--files", default=",".join(SELECTIONS),
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]                       help=f"comma-separated core files to mutate, from: {', '.join(SELECTIONS)}")
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   parser.add_argument("--max-children", type=int, default=2, help="mutants tested in parallel (one per CPU core)")
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   parser.add_argument("--report-only", action="store_true", help="print the table of the last runs without testing")
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   parser.add_argument("--survivors", action="store_true",
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]                       help="test again only the mutants that survived (or had no tests) in the last run, e.g. after adding tests")
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   parser.add_argument("--sample", type=int, default=None,
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]                       help="test only this many mutants per file, drawn at random (seed 0): an estimate, much faster")
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   args = parser.parse_args(argv)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   files = [name.strip() for name in args.files.split(",") if name.strip()]
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   unknown = sorted(set(files) - set(SELECTIONS))
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   if unknown:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       parser.error(f"--files: unknown {unknown}; valid: {', '.join(SELECTIONS)}")
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   if not args.report_only:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]       for name in files:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]           print(f"== {name}: mutmut run on {SELECTIONS[name][0]} with {' '.join(SELECTIONS[name][1])}", flush=True)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]           work = prepare(name)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]           chosen = sample_of(work, name, args.sample) if args.sample else []
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]           if args.survivors:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]               chosen = survivors_of(name)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]               if not chosen:
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]                   continue
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]           mutmut(work, "run", "--max-children", str(args.max_children), *chosen)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   report(files)
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   return 0


["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]f __name__ == "__main__":
["tests/test_convert.py", "tests/test_convert_families.py", "tests/test_to_hf.py",
                 "tests/test_convert_configs.py"]   sys.exit(main())
