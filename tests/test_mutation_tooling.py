"""The mutation-testing tools stay in step with the code they mutate (docs/mutation/).

``docs/mutation/planted_bugs.py`` plants each wrong formula by replacing a line's text: when the code is
rewritten, the text is no longer there and the plant can no longer run (this happened once, unnoticed).
``scripts/mutation_test.py`` names each core file and the tests that check it.
"""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def load(relative: str):
    spec = importlib.util.spec_from_file_location(Path(relative).stem, REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLANTS = load("docs/mutation/planted_bugs.py").PLANTS


@pytest.mark.parametrize("name, path, old, new, tests", PLANTS, ids=[plant[0] for plant in PLANTS])
def test_every_plant_finds_its_text_once_and_names_existing_tests(name, path, old, new, tests):
    assert (REPO / path).read_text().count(old) == 1
    assert old != new
    for test in tests:
        file, _, function = test.partition("::")
        assert f"def {function.split('[')[0]}(" in (REPO / file).read_text(), test


def test_every_mutation_selection_names_existing_files():
    for name, (path, tests) in load("scripts/mutation_test.py").SELECTIONS.items():
        assert (REPO / path).is_file(), name
        assert all((REPO / test).is_file() for test in tests), name
