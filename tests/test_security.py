"""Security: safetensors only, and the code that travels with a checkpoint is inert at import.

A Hub user loading a study model with ``trust_remote_code=True`` executes the package's config and
modeling files. They must import only the standard library, torch and transformers (and each
other), and do nothing but define things at import time.
"""

import ast
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

import modeling_study
from modeling_study import StudyForCausalLM

PACKAGE = Path(modeling_study.__file__).parent
ALLOWED_TOP_LEVEL = set(sys.stdlib_module_names) | {"torch", "transformers"}


def remote_code_files() -> list[Path]:
    """The files transformers copies next to a checkpoint: config + modeling and what they import."""
    from transformers.dynamic_module_utils import get_relative_import_files

    roots = [PACKAGE / "configuration_study.py", PACKAGE / "modeling_study.py"]
    files = set(roots)
    for root in roots:
        files |= {Path(f) for f in get_relative_import_files(root)}
    return sorted(files)


def test_remote_code_is_the_expected_small_set():
    names = {f.name for f in remote_code_files()}
    assert {"configuration_study.py", "modeling_study.py", "position_encodings.py", "norms.py"} <= names
    assert not names & {"training", "ambiguity.py", "plots.py", "tokenization.py"}


@pytest.mark.parametrize("path", remote_code_files(), ids=lambda p: p.name)
def test_remote_code_imports_only_stdlib_torch_transformers(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            tops = [node.module.split(".")[0]]
        else:
            continue
        for top in tops:
            assert top in ALLOWED_TOP_LEVEL, f"{path.name}:{node.lineno} imports {top!r}"


@pytest.mark.parametrize("path", remote_code_files(), ids=lambda p: p.name)
def test_remote_code_does_nothing_at_import_but_define(path):
    """Module level holds imports, definitions, constants and asserts: no calls that could do I/O."""
    tree = ast.parse(path.read_text())
    defined_here = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    allowed_calls = {"set", "dict", "tuple", "list", "frozenset", "field", "NormPlacement"} | defined_here
    for node in tree.body:
        assert isinstance(
            node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.Expr, ast.Assert)
        ), f"{path.name}:{node.lineno}: unexpected module-level {type(node).__name__}"
        if isinstance(node, ast.Expr):
            assert isinstance(node.value, ast.Constant), f"{path.name}:{node.lineno}: module-level expression"
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
                name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
                assert name in allowed_calls, f"{path.name}:{node.lineno}: module-level call {name}()"
    source = path.read_text()
    for word in ("open(", "urlopen", "requests.", "subprocess", "socket", "os.system"):
        assert word not in source, f"{path.name} mentions {word}"


def test_nothing_in_the_package_unpickles():
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        for word in ("import pickle", "torch.load(", "allow_pickle=True", "joblib", "dill"):
            assert word not in source, f"{path.relative_to(PACKAGE)} uses {word}"


def test_weights_are_saved_and_loaded_as_safetensors_only(tmp_path):
    model = StudyForCausalLM(tiny_config())
    model.save_pretrained(tmp_path)
    assert [p.name for p in tmp_path.glob("*.safetensors")] == ["model.safetensors"]
    assert not list(tmp_path.glob("*.bin")) and not list(tmp_path.glob("*.pt"))

    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (tmp_path / "config.json").rename(pickled / "config.json")
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")  # a pickle, as old checkpoints ship
    with pytest.raises(OSError, match="safetensors"):
        StudyForCausalLM.from_pretrained(pickled)
    with pytest.raises(ValueError, match="safetensors weights only"):
        StudyForCausalLM.from_pretrained(pickled, use_safetensors=False)
