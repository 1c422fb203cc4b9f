"""The layer rules of docs/architecture.md, read from the source: which module may import which.

Every ``import`` and ``from ... import`` counts, including those inside functions (a lazy import is
still a dependency). A rule broken fails here with the file, the line and the rule's reason.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "modeling_study"

# The study, bottom to top: a module imports only modules of lower layers (docs/architecture.md).
STUDY_LAYERS = [
    {"spec", "presets", "stats"},  # what a run is; the settings; statistics
    {"store", "lm", "ngram", "tasks", "translation"},  # run files | the experiments' measurements
    {"experiments"},  # the experiments' registry: plan and measure by name
    {"runner", "analysis", "plots"},  # scheduling and caching | verdicts | figures
    {"report"},  # analysis and figures into report.md / results.json
    {"pipeline"},  # run_study: plan -> runner -> report
    {"__init__"},
]
LAYER = {name: i for i, names in enumerate(STUDY_LAYERS) for name in names}
# The classes registered for the Hub's remote code: their files, and every file these import, travel
# with a checkpoint (transformers copies them), so they may import only torch, transformers, the
# standard library and each other.
REMOTE_ROOTS = ("configuration_study", "modeling_study", "configuration_seq2seq", "modeling_seq2seq")
REMOTE_ALLOWED = {"torch", "transformers"}


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute dotted name)`` of everything ``path`` imports (relative imports resolved)."""
    module = path.relative_to(ROOT).with_suffix("").parts
    package = module[:-1] if module[-1] != "__init__" else module[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            if node.module is None:  # from . import x: each x is a module
                out += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
            else:
                out.append((node.lineno, name))
    return out


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_import_reader_resolves_relative_imports(tmp_path):
    found = dict((name, line) for line, name in imports(PACKAGE / "study" / "pipeline.py"))
    assert "modeling_study.study.runner" in found and "modeling_study.study.report" in found
    assert any(name == "modeling_study.study.spec" for _, name in imports(PACKAGE / "study" / "analysis.py"))


def test_every_study_module_has_a_layer():
    names = {p.stem for p in (PACKAGE / "study").glob("*.py")}
    assert names == set(LAYER), f"add {names - set(LAYER)} to STUDY_LAYERS (and docs/architecture.md)"


def upward_imports(study: Path) -> list[str]:
    """Every import in the study folder ``study`` of a module that is not in a lower layer."""
    broken = []
    for path in sorted(study.glob("*.py")):
        for line, name in imports(path):
            if name.startswith("modeling_study.study."):
                target = name.split(".")[2]
                if LAYER[target] >= LAYER[path.stem]:
                    broken.append(f"study/{path.name}:{line} imports {target} (layer {LAYER[target]}, "
                                  f"not below {path.stem}'s {LAYER[path.stem]})")
    return broken


def test_study_modules_import_only_lower_layers():
    broken = upward_imports(PACKAGE / "study")
    assert not broken, "\n".join(broken)


def test_the_study_has_no_import_loop():
    graph = {p.stem: {n.split(".")[2] for _, n in imports(p) if n.startswith("modeling_study.study.")}
             for p in (PACKAGE / "study").glob("*.py")}
    seen, stack = set(), []

    def visit(node):
        assert node not in stack, "import loop: " + " -> ".join(stack[stack.index(node):] + [node])
        if node in seen:
            return
        stack.append(node)
        for target in graph.get(node, ()):
            visit(target)
        stack.pop()
        seen.add(node)

    for node in graph:
        visit(node)


def remote_code_files() -> set[str]:
    """The transitive closure of the package's relative imports from the registered model files."""
    files, todo = set(), list(REMOTE_ROOTS)
    while todo:
        name = todo.pop()
        if name in files:
            continue
        files.add(name)
        todo += [n.split(".")[1] for _, n in imports(PACKAGE / f"{name}.py")
                 if n.startswith("modeling_study.") and n.count(".") == 1]
    return files


def test_remote_code_imports_only_torch_transformers_and_itself():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    broken = []
    remote = remote_code_files()
    assert {"norms", "position_encodings", "learned_bias_attention"} <= remote  # the closure is followed
    for name in sorted(remote):
        for line, target in imports(PACKAGE / f"{name}.py"):
            top = target.split(".")[0]
            if top == "modeling_study":
                ok = target.count(".") == 1 and target.split(".")[1] in remote
            else:
                ok = top in stdlib or top in REMOTE_ALLOWED
            if not ok:
                broken.append(f"{name}.py:{line} imports {target}: remote code may import only torch, transformers, "
                              "the standard library and the other model files")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(("folder", "forbidden", "reason"), [
    ("training", "modeling_study.study", "training never imports the study (the study builds on training)"),
    ("", "scripts", "scripts are leaves: the package never imports them"),
    ("", "tests", "the package never imports its tests"),
])
def test_package_rules(folder, forbidden, reason):
    broken = [f"{path.relative_to(ROOT)}:{line} imports {name}: {reason}"
              for path in sorted((PACKAGE / folder).rglob("*.py")) for line, name in imports(path)
              if name == forbidden or name.startswith(forbidden + ".")]
    assert not broken, "\n".join(broken)


def test_only_the_entry_points_import_the_commands():
    """The commands (``modeling-study ...``) sit on top: no library module depends on them."""
    broken = [f"{path.relative_to(ROOT)}:{line} imports {name}" for path in package_files()
              if "commands" not in path.relative_to(PACKAGE).parts[:1] and path.name != "__main__.py"
              for line, name in imports(path) if name.startswith("modeling_study.commands")]
    assert not broken, "\n".join(broken)


def test_a_planted_upward_import_is_caught(tmp_path, monkeypatch):
    """The rule is not vacuous: a spec that imported the runner, even inside a function, fails it."""
    study = tmp_path / "modeling_study" / "study"
    study.mkdir(parents=True)
    (study / "spec.py").write_text("def key():\n    from .runner import run_one\n")
    (study / "report.py").write_text("from . import analysis\nfrom .stats import summarise\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert upward_imports(study) == ["study/spec.py:2 imports runner (layer 3, not below spec's 0)"]
