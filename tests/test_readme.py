"""Every ```python and ```bash block of README.md and of every page docs/*.md runs as written (or is skipped here).

Each page is self-contained: its blocks run in page order in the page's own scratch copy of the
repository (so ``scripts/...``, ``tokenizer`` and ``runs/...`` resolve as they do for a reader in a
fresh clone, and nothing lands in the repository), offline, with a temporary ``HF_HOME``. A block
that depends on an earlier block *of its page* finds its output there; nothing of another page's
is there. Output blocks (``` or ```text) are not run.

The rule is general: a block runs unless a ``Skip`` below matches it. Skipped are only what needs
the Hugging Face Hub, a GPU, or minutes of CPU; each skip names its page and its reason, and a
skipped command still has its arguments parsed by the script's own parser (``accelerate``'s and
``torchrun``'s for a launch line), so a renamed flag fails here. A skip that matches nothing fails
too, so the list cannot go stale. ``readme_blocks.py`` extracts and runs the blocks. The pages'
relative links (images included) must point at files that exist, and the README must link every page.
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
# The pages: the README, then docs/*.md in the order of the README's list "The pages" (a page it does not list
# comes last, and fails the link test). docs/mutation/README.md has no code blocks and is no task page.
_LISTED = re.findall(r"\]\((docs/[^)#\s]+\.md)", README.read_text(encoding="utf-8").partition("\n## The pages\n")[2])
PAGES = ["README.md", *sorted((p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md")),
                              key=lambda page: (_LISTED.index(page) if page in _LISTED else len(_LISTED), page))]
# What a scratch copy leaves out: version control, caches, and the (git-ignored) outputs of earlier runs.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "venv", "__pycache__", "*.egg-info", ".pytest_cache",
                                   ".hypothesis", "runs", "study_out", "output")
# Files a page assumes the reader brings (training's "On your own text": my.txt); the test brings these.
READER_FILES = {"docs/training.md": {"my.txt": lambda: "\n".join(
    (REPO / "modeling_study/data/corpus/train.txt").read_text(encoding="utf-8").splitlines()[:1000]) + "\n"}}
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
    compile(code, "<page block>", "exec")


@dataclass(frozen=True)
class Skip:
    page: str  # the page it applies to, as in PAGES
    pattern: str  # regex searched in the command (bash) or the block's code (python)
    reason: str
    check: Callable | None = None  # bash: check(argv); python: check(code). None: nothing to check offline


R, STUDY, AMBIGUITY, TRAINING, TRANSLATION = "README.md", "docs/study.md", "docs/ambiguity.md", "docs/training.md", \
    "docs/translation.md"
HUB, PERFORMANCE, DEPLOY, TESTING = "docs/hub.md", "docs/performance.md", "docs/deploy.md", "docs/testing.md"
BASH_SKIPS = [
    Skip(R, r"^python3 -m venv ", "creates the virtualenv the tests already run in"),
    Skip(R, r"^\. \.venv/bin/activate", "activates that virtualenv"),
    Skip(R, r"^pip install ", "installs packages: the tests run inside that install (CI runs these lines)"),
    Skip(R, r"^pip wheel ", "builds the wheel; tests/test_install.py builds it and installs it in a fresh venv"),
    Skip(R, r"^python -m pytest", "the test suite itself"),
    Skip(R, r"^python scripts/run_study\.py\s*($|#)", "the default study trains 141 runs: minutes", check_script),
    Skip(STUDY, r"^python scripts/run_study\.py\s*($|#)", "the default study trains 141 runs: minutes", check_script),
    Skip(STUDY, r"^python scripts/run_study\.py --preset long\s*($|#)", "the long preset: about an hour",
         check_script),
    Skip(AMBIGUITY, r"^python scripts/positional_ambiguity\.py ",
         "the whole demo at width 2048 takes ~40 s of CPU; tests/test_ambiguity.py runs the script", check_script),
    Skip(TRAINING, r"^python scripts/train\.py\s*($|#)", "the default training run: 400 steps, minutes",
         check_script),
    Skip(TRAINING, r"^accelerate launch .*--(multi_gpu|num_processes)", "several processes (or GPUs); "
         "tests/test_train.py runs a 2-process gloo run", check_accelerate_launch),
    Skip(TRAINING, r"^accelerate launch --config_file ", "needs the GPU machine its YAML file describes",
         check_accelerate_launch),
    Skip(TRAINING, r"^torchrun ", "two processes for 50 steps; tests/test_train.py runs a 2-process gloo run",
         check_torchrun),
    Skip(TRAINING, r"^accelerate config ", "an interactive questionnaire about the machine", check_accelerate_config),
    Skip(TRANSLATION, r"^apt-get install ", "installs Debian packages as root; tests/test_parallel_corpus.py checks "
         "the corpus script on diatheke-shaped verses"),
    Skip(TRANSLATION, r"^python scripts/make_parallel_corpus\.py\s*($|#)", "needs the Debian packages above "
         "(diatheke)", check_script),
    Skip(TRANSLATION, r"^OMP_NUM_THREADS=1 python scripts/train_translation\.py --output_dir runs/translate ",
         "the translation run of the page's numbers: about 11 minutes; the cheap variant below runs",
         check_script_with_env),
    Skip(PERFORMANCE, r"^python scripts/benchmark\.py --size (small|medium)", "the benchmark at small/medium size: "
         "minutes", check_script),
    Skip(PERFORMANCE, r"^python scripts/benchmark\.py --size tiny --repeats 1\s*($|#)",
         "tests/test_benchmark.py runs this exact command", check_script),
    Skip(TESTING, r"^python -m pytest", "the test suite itself"),
    Skip(TESTING, r"^pip install -U transformers$", "upgrades the install the tests run in; a deliberate step"),
]
PYTHON_SKIPS = [
    Skip(HUB, r"push_to_hub_with_card\(", "pushes to the Hugging Face Hub (tests/test_hub.py does it against a "
         "loopback stand-in)", check_compiles),
    Skip(HUB, r"from_pretrained\(repo_id, revision=commit", "downloads a repository from the Hub", check_compiles),
    Skip(DEPLOY, r"^# slow: compiling", "compiles with inductor (tens of seconds); tests/test_deploy.py compiles "
         "every encoding", check_compiles),
    Skip(DEPLOY, r"^# slow: the ONNX export", "needs the onnx extra, which CI does not install; tests/test_deploy.py "
         "runs the ONNX export when it is installed", check_compiles),
]


def skip_for(step) -> Skip | None:
    skips = PYTHON_SKIPS if step.kind == "python" else BASH_SKIPS
    text = step.code if step.kind == "python" else " ".join(step.code.split())
    return next((skip for skip in skips if skip.page == step.page and re.search(skip.pattern, text, re.MULTILINE)),
                None)


STEPS, NOT_CODE = [], []  # every page's steps, in page order; (page, language, line) of the blocks not run
for _page in PAGES:
    _steps, _not_code = readme_steps((REPO / _page).read_text(encoding="utf-8"), _page)
    STEPS += _steps
    NOT_CODE += [(_page, language, line) for language, line in _not_code]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


# -- the tests ------------------------------------------------------------------------------------------


def test_the_pages_have_code_and_every_skip_matches_something():
    readme = [s for s in STEPS if s.page == "README.md"]
    assert len([s for s in readme if s.kind == "python"]) >= 1 and len([s for s in readme if s.kind == "bash"]) >= 4
    assert len([s for s in STEPS if s.kind == "python"]) >= 10 and len([s for s in STEPS if s.kind == "bash"]) >= 20
    assert all(skip.page in PAGES for skip in BASH_SKIPS + PYTHON_SKIPS)
    for skip in BASH_SKIPS + PYTHON_SKIPS:
        kind = "python" if skip in PYTHON_SKIPS else "bash"
        assert any(skip_for(step) is skip for step in STEPS if step.kind == kind), \
            f"stale skip: {skip.page} {skip.pattern!r}"
    assert all(language in ("", "text", "yaml", "json", "toml") for _, language, _ in NOT_CODE), NOT_CODE


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


def test_the_readme_links_every_page_and_every_relative_link_resolves():
    readme_links = set()
    for page in PAGES:
        text = re.sub(r"```.*?```", "", (REPO / page).read_text(encoding="utf-8"), flags=re.DOTALL)  # not code
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            file, _, anchor = target.partition("#")
            path = (REPO / page).parent / file if file else REPO / page
            resolved = path.resolve().relative_to(REPO).as_posix()
            if page == "README.md":
                readme_links.add(resolved)
            assert path.exists(), f"{page}: broken link {target}"
            if anchor and path.suffix == ".md" and path.exists():
                assert anchor in anchors(path), f"{page}: {target}: no such heading in {resolved}"
    assert set(PAGES[1:]) <= readme_links, f"pages the README does not link: {sorted(set(PAGES[1:]) - readme_links)}"


@pytest.mark.parametrize("step", [s for s in STEPS if skip_for(s) is not None and skip_for(s).check is not None],
                         ids=lambda s: s.where)
def test_a_skipped_block_still_has_valid_arguments(step):
    skip = skip_for(step)
    skip.check(step.code if step.kind == "python" else step.argv)


@pytest.mark.slow
def test_every_page_runs_as_written(tmp_path):
    """Every block not skipped runs, in page order, each page in its own scratch copy (46-63 s on 2 shared cores)."""
    pages = []  # (page, scratch, runnable steps, root entries before, tokenizer files before)
    for page in PAGES:
        runnable = [step for step in STEPS if step.page == page and skip_for(step) is None]
        if not runnable:
            continue
        scratch = tmp_path / re.sub(r"\W", "_", page)
        shutil.copytree(REPO, scratch, ignore=NOT_COPIED)
        for name, make in READER_FILES.get(page, {}).items():
            (scratch / name).write_text(make(), encoding="utf-8")
        tokenizer = {p.name: p.read_bytes() for p in (scratch / "tokenizer").iterdir() if p.is_file()}
        pages.append((page, scratch, runnable, {p.name for p in scratch.iterdir()}, tokenizer))
    write_plan([(page, scratch, runnable) for page, scratch, runnable, _, _ in pages], tmp_path / "plan.json")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": tempfile.mkdtemp(prefix="readme-hf-home-", dir=tmp_path),
           "TOKENIZERS_PARALLELISM": "false", "MPLBACKEND": "Agg",
           "OMP_NUM_THREADS": "1"}  # tiny models: threads only contend on a shared 2-core machine (as test_train)
    env.pop("HF_DATASETS_CACHE", None)
    env.pop("PYTHONPATH", None)  # the runner puts each page's scratch copy first
    # what a reader's activated environment puts on the PATH (the `modeling-study` command), activated or not here
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("readme_blocks.py")), str(tmp_path / "plan.json")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    failed = re.findall(r"^##### page FAILED (\S+)", done.stdout, re.MULTILINE)
    assert done.returncode == 0, \
        f"pages that failed: {failed}\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
    assert done.stdout.count("##### ok ") == sum(len(runnable) for _, _, runnable, _, _ in pages)

    for page, scratch, _, before, tokenizer_before in pages:
        new = {p.name for p in scratch.iterdir()} - before
        assert new <= ALLOWED_NEW_ENTRIES, \
            f"{page}: blocks wrote into the repository root: {sorted(new)}; write under runs/"
        # "the repository's tokenizer/ was made with the first command": rebuilding it gives the same files
        assert {p.name: p.read_bytes() for p in (scratch / "tokenizer").iterdir() if p.is_file()} == tokenizer_before
