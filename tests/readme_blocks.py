"""The fenced code blocks of the README and the docs pages: extract them, split bash blocks into commands, run them.

Used by ``test_readme.py``. Run as a script (``python readme_blocks.py plan.json``) it is the
*runner*: one fresh interpreter that imports torch and transformers once, then forks one child per
page. The child works in that page's own scratch copy of the repository (its working directory and
the first entry of its import path), executes the page's steps in page order and stops at the
page's first failure; the next page starts from a clean fork, so no page sees another's files,
imports or registrations:

- a ``python`` block: executed as a file would be (``__name__ == "__main__"``, its own globals);
- ``python scripts/x.py ARGS`` / ``python -m module ARGS``: through ``runpy`` with ``sys.argv`` set,
  as the ``python`` command would run it (one interpreter pays torch's import once for all steps);
- any other command: ``bash -c`` with the line exactly as written.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
PYTHON = {"python", "py", "python3"}
BASH = {"bash", "sh", "shell", "console"}


@dataclass
class Step:
    kind: str  # "python" (a whole block) or "bash" (one command of a block)
    code: str  # the block's code, or the command line as written (comments kept: bash ignores them)
    line: int  # the page's line of the block's opening fence (python) or of the command (bash)
    argv: list[str] = field(default_factory=list)  # bash: the command's words, comments dropped
    page: str = "README.md"  # the page, relative to the repository root

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def fenced_blocks(text: str, page: str = "README.md") -> list[tuple[str, str, int]]:
    """``(language, code, line of the opening fence)`` for every fenced block, in order."""
    blocks, language, start, lines = [], None, 0, []
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if language is None and match:
            language, start, lines = match.group(1).lower(), number, []
        elif language is not None and line.strip() == "```":
            blocks.append((language, "\n".join(lines) + "\n", start))
            language = None
        elif language is not None:
            lines.append(line)
    if language is not None:
        raise ValueError(f"{page}:{start}: a fenced block is never closed")
    return blocks


def bash_commands(code: str, first_line: int, page: str = "README.md") -> list[Step]:
    """One step per command: continuation lines joined, blank and comment-only lines dropped, ``&&`` split."""
    steps, pending, pending_line = [], "", 0
    for offset, line in enumerate(code.splitlines()):
        if not pending:
            pending_line = first_line + 1 + offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical, pending = pending + line, ""
        words = shlex.split(logical, comments=True)
        if not words:
            continue
        if "&&" in words:  # `a && b`: two commands, run in turn (the second only if the first succeeded)
            parts = [part.strip() for part in logical.split("#")[0].split("&&")]
            steps += [Step("bash", part, pending_line, shlex.split(part), page) for part in parts]
        else:
            steps.append(Step("bash", logical, pending_line, words, page))
    return steps


def readme_steps(text: str, page: str = "README.md") -> tuple[list[Step], list[tuple[str, int]]]:
    """A page's runnable steps (python blocks, bash commands) and the ``(language, line)`` of blocks that are not code."""
    steps, not_code = [], []
    for language, code, line in fenced_blocks(text, page):
        if language in PYTHON:
            steps.append(Step("python", code, line, page=page))
        elif language in BASH:
            steps += bash_commands(code, line, page)
        else:  # output (``` or ```text), YAML, JSON, ...: shown, not run
            not_code.append((language, line))
    return steps, not_code


def python_invocation(argv: list[str]) -> tuple[str, str, list[str]] | None:
    """``("path", script, args)`` for ``python x.py ...``, ``("module", name, args)`` for ``python -m name ...``."""
    if len(argv) >= 2 and argv[0] in ("python", "python3"):
        if argv[1] == "-m" and len(argv) >= 3:
            return "module", argv[2], argv[3:]
        if argv[1].endswith(".py"):
            return "path", argv[1], argv[2:]
    return None


# -- the runner (a fresh interpreter in the scratch folder) -------------------------------------------


def _run_step(step: Step) -> None:
    import runpy
    import subprocess

    if step.kind == "python":
        exec(compile(step.code, f"<{step.where}>", "exec"), {"__name__": "__main__"})
        return
    invocation = python_invocation(step.argv)
    if invocation is None:
        subprocess.run(["bash", "-c", step.code], check=True)
        return
    how, target, args = invocation
    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = [target, *args]
    if how == "path":
        sys.path.insert(0, str(Path(target).resolve().parent))  # what `python script.py` puts first
    try:
        if how == "path":
            runpy.run_path(target, run_name="__main__")
        else:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            raise RuntimeError(f"exited with status {exit_.code}") from None
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path


def run_steps(steps: list[Step]) -> int:
    """Run one page's steps in the current directory; 1 at the first failure."""
    import time
    import traceback

    for step in steps:
        print(f"\n##### {step.where} ({step.kind}): {step.code.strip().splitlines()[0][:100]}", flush=True)
        start = time.perf_counter()
        try:
            _run_step(step)
        except BaseException:
            traceback.print_exc()
            print(f"##### FAILED {step.where}", flush=True)
            sys.stderr.flush()
            return 1
        print(f"##### ok {step.where} in {time.perf_counter() - start:.1f} s", flush=True)
    return 0


def _run_page(scratch: str, steps: list[Step]) -> int:
    """In a forked child: make ``scratch`` the working directory and the first import path, then run."""
    import os

    os.chdir(scratch)
    sys.path.insert(0, scratch)  # the scratch copy's modeling_study, not the installed one
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [scratch, os.environ.get("PYTHONPATH")]))
    return run_steps(steps)


def run_plan(plan: list[dict]) -> int:
    """``plan``: ``[{"page", "scratch", "steps"}, ...]``. Each page in a forked child; 1 if any page failed."""
    import os

    import torch  # noqa: F401  (imported once here, not once per page)
    import transformers.modeling_utils  # noqa: F401
    import transformers.trainer  # noqa: F401

    failed = []
    for entry in plan:
        steps = [Step(**data) for data in entry["steps"]]
        print(f"\n##### page {entry['page']} in {entry['scratch']}", flush=True)
        sys.stderr.flush()
        child = os.fork()
        if child == 0:  # the child: never returns into the loop
            code = 1
            try:
                code = _run_page(entry["scratch"], steps)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(child, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            failed.append(entry["page"])
            print(f"##### page FAILED {entry['page']}", flush=True)
        else:
            print(f"##### page ok {entry['page']}", flush=True)
    return 1 if failed else 0


def write_plan(pages: list[tuple[str, Path, list[Step]]], path: Path) -> None:
    """``pages``: ``(page, scratch folder, runnable steps)`` in the order they run."""
    path.write_text(json.dumps([{"page": page, "scratch": str(scratch), "steps": [asdict(step) for step in steps]}
                                for page, scratch, steps in pages]))


if __name__ == "__main__":
    sys.exit(run_plan(json.loads(Path(sys.argv[1]).read_text())))
