"""Every ```python and ```bash block of README.md runs as written (or is skipped here, with the reason).

The blocks run in README order in one scratch copy of the repository (so ``scripts/...``,
``tokenizer`` and ``runs/...`` resolve as they do for a reader in a fresh clone, and nothing lands
in the repository), offline, with a temporary ``HF_HOME``. Blocks that depend on an earlier block's
output find it there. Output blocks (``` or ```text) are not run.

The rule is general: a block runs unless a ``Skip`` below matches it. Skipped are only what needs
the Hugging Face Hub, a GPU, or minutes of CPU; each skip names its reason, and a skipped command
still has its arguments parsed by the script's own parser (``accelerate``'s and ``torchrun``'s
for a launch line), so a renamed flag fails here. A skip that matches nothing fails too, so the
list cannot go stale. ``readme_blocks.py`` extracts and runs the blocks.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from readme_blocks import python_invocation, readme_steps, write_plan

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
# What a scratch copy leaves out: version control, caches, and the (git-ignored) outputs of earlier runs.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "venv", "__pycache__", "*.egg-info", ".pytest_cache",
                                   ".hypothesis", "runs", "study_out", "output")
# Files the README assumes the reader brings ("On your own text": my.txt); the test brings these.
READER_FILES = {"my.txt": lambda: "\n".join(
    (REPO / "modeling_study/data/corpus/train.txt").read_text(encoding="utf-8").splitlines()[:1000]) + "\n"}
# What the blocks may create in the repository root: everything they write goes under runs/.
ALLOWED_NEW_ENTRIES = {"runs"}
TIMEOUT_S = 600


# -- argument checks for the commands that are skipped -----------------------------------------------


class _Parsed(Exception):
    """Raised by the patched parser once a script's arguments parsed: stops the script before it works."""


def parse_script_arguments(script: Path, args: list[str]) -> argparse.Namespace:
    """Parse ``args`` with the script's own parser by calling its ``main(args)``, stopping right after parsing.

    Unknown flags (abbreviations too), bad values and invalid choices fail (argparse exits with
    status 2). ``...`` is the
    README's placeholder for "the flags above" and is dropped.
    """
    args = [arg for arg in args if arg != "..."]
    original = argparse.ArgumentParser.parse_known_args

    def parse_known_args(self, args=None, namespace=None):
        self.allow_abbrev = False  # a README flag must be the flag's full name, not a prefix of a renamed one
        namespace, extras = original(self, args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        raise _Parsed(namespace)

    spec = importlib.util.spec_from_file_location(f"readme_{script.stem}", script)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
    spec.loader.exec_module(module)
    with mock.patch.object(argparse.ArgumentParser, "parse_known_args", parse_known_args):
        try:
            module.main(args)
        except _Parsed as parsed:
            return parsed.args[0]
    raise AssertionError(f"{script.name}: main() returned without parsing its arguments")


def check_script(argv: list[str]) -> None:
    _, script, args = python_invocation(argv)
    parse_script_arguments(REPO / script, args)


def check_script_with_env(argv: list[str]) -> None:
    """``VAR=value ... python scripts/x.py ARGS``: the environment assignments, then the script's flags."""
    while argv and "=" in argv[0] and not argv[0].startswith("-"):
        argv = argv[1:]
    check_script(argv)


def check_accelerate_launch(argv: list[str]) -> None:
    from accelerate.commands.launch import launch_command_parser

    parser = launch_command_parser()
    parser.allow_abbrev = False
    launch = parser.parse_args(argv[2:])
    parse_script_arguments(REPO / launch.training_script, launch.training_script_args)
    if launch.fsdp_transformer_layer_cls_to_wrap:  # FSDP wraps the layer class it names: it must exist
        import modeling_study.modeling_study as modeling

        assert hasattr(modeling, launch.fsdp_transformer_layer_cls_to_wrap), launch.fsdp_transformer_layer_cls_to_wrap


def check_torchrun(argv: list[str]) -> None:
    from torch.distributed.run import get_args_parser

    parser = get_args_parser()
    parser.allow_abbrev = False
    launch = parser.parse_args(argv[1:])
    parse_script_arguments(REPO / launch.training_script, launch.training_script_args)


def check_accelerate_config(argv: list[str]) -> None:
    from accelerate.commands.config import get_config_parser

    get_config_parser().parse_args(argv[2:])


def check_compiles(code: str) -> None:
    compile(code, "<README block>", "exec")


@dataclass(frozen=True)
class Skip:
    pattern: str  # regex searched in the command (bash) or the block's code (python)
    reason: str
    check: Callable | None = None  # bash: check(argv); python: check(code). None: nothing to check offline


BASH_SKIPS = [
    Skip(r"^python3 -m venv ", "creates the virtualenv the tests already run in"),
    Skip(r"^\. \.venv/bin/activate", "activates that virtualenv"),
    Skip(r"^pip install ", "installs packages: the tests run inside that install (CI runs these lines)"),
    Skip(r"^python -m pytest", "the test suite itself"),
    Skip(r"^python scripts/run_study\.py\s*($|#)", "the default study trains 14 models: minutes", check_script),
    Skip(r"^python scripts/train\.py\s*($|#)", "the default training run: 400 steps, minutes", check_script),
    Skip(r"^python scripts/positional_ambiguity\.py ",
         "the whole demo at width 2048 takes ~40 s of CPU; tests/test_ambiguity.py runs the script", check_script),
    Skip(r"^python scripts/benchmark\.py --size (small|medium)", "the benchmark at small/medium size: minutes",
         check_script),
    Skip(r"^python scripts/benchmark\.py --size tiny --repeats 1\s*($|#)",
         "tests/test_benchmark.py runs this exact command", check_script),
    Skip(r"^accelerate launch .*--(multi_gpu|num_processes)", "several processes (or GPUs); tests/test_train.py "
         "runs a 2-process gloo run", check_accelerate_launch),
    Skip(r"^accelerate launch --config_file ", "needs the GPU machine its YAML file describes", check_accelerate_launch),
    Skip(r"^torchrun ", "two processes for 50 steps; tests/test_train.py runs a 2-process gloo run", check_torchrun),
    Skip(r"^accelerate config ", "an interactive questionnaire about the machine", check_accelerate_config),
    Skip(r"^apt-get install ", "installs Debian packages as root; tests/test_parallel_corpus.py checks the corpus "
         "script on diatheke-shaped verses"),
    Skip(r"^python scripts/make_parallel_corpus\.py\s*($|#)", "needs the Debian packages above (diatheke)",
         check_script),
    Skip(r"^OMP_NUM_THREADS=1 python scripts/train_translation\.py --output_dir runs/translate ",
         "the translation run of the README's numbers: about 11 minutes; the cheap variant below runs",
         check_script_with_env),
]
PYTHON_SKIPS = [
    Skip(r"push_to_hub_with_card\(", "pushes to the Hugging Face Hub (tests/test_hub.py does it against a loopback "
         "stand-in)", check_compiles),
    Skip(r"from_pretrained\(repo_id, revision=commit", "downloads a repository from the Hub", check_compiles),
    Skip(r"^# slow: compiling", "compiles with inductor (tens of seconds); tests/test_deploy.py compiles every "
         "encoding", check_compiles),
    Skip(r"^# slow: the ONNX export", "needs the onnx extra, which CI does not install; tests/test_deploy.py runs "
         "the ONNX export when it is installed", check_compiles),
]


def skip_for(step) -> Skip | None:
    skips = PYTHON_SKIPS if step.kind == "python" else BASH_SKIPS
    text = step.code if step.kind == "python" else " ".join(step.code.split())
    return next((skip for skip in skips if re.search(skip.pattern, text, re.MULTILINE)), None)


STEPS, NOT_CODE = readme_steps(README.read_text(encoding="utf-8"))


# -- the tests ------------------------------------------------------------------------------------------


def test_the_readme_has_code_and_every_skip_matches_something():
    assert len([s for s in STEPS if s.kind == "python"]) >= 3 and len([s for s in STEPS if s.kind == "bash"]) >= 10
    for skip in BASH_SKIPS + PYTHON_SKIPS:
        kind = "python" if skip in PYTHON_SKIPS else "bash"
        assert any(skip_for(step) is skip for step in STEPS if step.kind == kind), f"stale skip: {skip.pattern!r}"
    assert all(language in ("", "text", "yaml", "json", "toml") for language, _ in NOT_CODE), NOT_CODE


@pytest.mark.parametrize("step", [s for s in STEPS if skip_for(s) is not None and skip_for(s).check is not None],
                         ids=lambda s: s.where)
def test_a_skipped_block_still_has_valid_arguments(step):
    skip = skip_for(step)
    skip.check(step.code if step.kind == "python" else step.argv)


@pytest.mark.slow
def test_the_readme_blocks_run_as_written(tmp_path):
    """Every block not skipped runs, in README order, in one scratch copy of the repository (~35 s)."""
    scratch = tmp_path / "repo"
    shutil.copytree(REPO, scratch, ignore=NOT_COPIED)
    for name, make in READER_FILES.items():
        (scratch / name).write_text(make(), encoding="utf-8")
    before = {p.name for p in scratch.iterdir()}
    tokenizer_before = {p.name: p.read_bytes() for p in (scratch / "tokenizer").iterdir() if p.is_file()}
    runnable = [step for step in STEPS if skip_for(step) is None]
    write_plan(runnable, tmp_path / "plan.json")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": tempfile.mkdtemp(prefix="readme-hf-home-", dir=tmp_path),
           "PYTHONPATH": str(scratch), "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1"}  # tiny models: threads only contend on a shared 2-core machine (as test_train)
    env.pop("HF_DATASETS_CACHE", None)
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("readme_blocks.py")), str(tmp_path / "plan.json")],
                          cwd=scratch, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
    assert done.stdout.count("##### ok ") == len(runnable)

    new = {p.name for p in scratch.iterdir()} - before
    assert new <= ALLOWED_NEW_ENTRIES, f"README blocks wrote into the repository root: {sorted(new)}; write under runs/"
    # "the repository's tokenizer/ was made with the first command": rebuilding it gives the same files
    assert {p.name: p.read_bytes() for p in (scratch / "tokenizer").iterdir() if p.is_file()} == tokenizer_before
