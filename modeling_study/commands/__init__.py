"""The ``modeling-study`` command: one entry point, a subcommand per job.

    modeling-study train --max_steps 20 --output_dir runs/tiny   # scripts/train.py
    modeling-study study --preset smoke                          # scripts/run_study.py
    modeling-study train-translation --help                      # scripts/train_translation.py
    modeling-study translate runs/translate/final verses.txt     # scripts/translate.py
    modeling-study tokenizer --output_dir my_tok                 # scripts/train_tokenizer.py
    modeling-study demo                                          # scripts/positional_ambiguity.py
    modeling-study benchmark --size tiny --repeats 1             # scripts/benchmark.py

``python -m modeling_study ...`` is the same command. Each subcommand lives in its own module here
(``modeling_study.commands.<name>``, exposing ``main(argv=None)`` as the script did and ``cli(argv, prog)``,
which returns the exit status); the scripts in a checkout are thin wrappers around them, so a subcommand
and its script take the same flags and print the same help and errors. This module imports none of them
until one is chosen (``--help`` and a mistyped subcommand load only the package itself).

Not remote code: only the command line imports this.
"""

from __future__ import annotations

import importlib
import sys

PROG = "modeling-study"

# subcommand -> (module in this package, the checkout's script, one line for --help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "train": ("train", "train.py", "train a study model (causal or masked LM) with Hugging Face Trainer"),
    "study": ("study", "run_study.py",
              "the study: variants that differ in one choice, over seeds, reported with verdicts"),
    "train-translation": ("train_translation", "train_translation.py",
                          "train an English -> Spanish encoder-decoder (Vaswani et al.'s recipe), scored with BLEU and chrF"),
    "translate": ("translate", "translate.py", "translate English lines (a file or stdin) to Spanish with a trained model"),
    "tokenizer": ("tokenizer", "train_tokenizer.py", "train a byte-level BPE tokenizer (default: on the embedded corpus)"),
    "demo": ("demo", "positional_ambiguity.py",
             'the positional-ambiguity demo: without positions, attention cannot tell "dog" from "dog"'),
    "benchmark": ("benchmark", "benchmark.py",
                  "benchmarks: the study model against transformers' Llama, and what each position encoding costs"),
}


def describe(doc: str, script: str, prog: str) -> str:
    """A script's docstring as the help of ``prog``: its ``python scripts/<script>`` examples name ``prog``.

    Unchanged when ``prog`` is the script itself (``train.py``): the checkout's scripts print what they always did.
    """
    if prog == script or not prog:
        return doc
    return doc.replace(f"python scripts/{script}", prog)


def help_text(prog: str = PROG) -> str:
    from modeling_study import __version__

    width = max(len(name) for name in COMMANDS) + 2
    lines = [
        f"usage: {prog} COMMAND [options]",
        "",
        f"modeling-study {__version__}: a Hugging Face transformer whose positional encoding and norm placement "
        "are one config string each.",
        "",
        "commands:",
        *(f"  {name:<{width}}{summary}" for name, (_, _, summary) in COMMANDS.items()),
        "",
        "options:",
        f"  {'-h, --help':<{width}}show this help message and exit",
        f"  {'--version':<{width}}print the version and exit",
        "",
        f"`{prog} COMMAND --help` lists a command's options. In a checkout, scripts/<script>.py runs the same code.",
    ]
    return "\n".join(lines) + "\n"


def _error(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)  # one line
    return 2


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    """Run ``prog COMMAND ...``; returns the exit status (2 for an unknown or missing command, as argparse)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        return _error(prog, f"a command is required: {', '.join(COMMANDS)} (`{prog} --help` describes them)")
    name, rest = argv[0], argv[1:]
    if name in ("-h", "--help"):
        sys.stdout.write(help_text(prog))
        return 0
    if name == "--version":
        from modeling_study import __version__

        print(f"{PROG} {__version__}")
        return 0
    if name not in COMMANDS:
        return _error(prog, f"unknown command {name!r}; choose from {', '.join(COMMANDS)} "
                            f"(`{prog} --help` describes them)")
    module = importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")
    return module.cli(rest, prog=f"{prog} {name}")


def run_as_script(module: str, name: str, namespace: dict) -> None:
    """What each of the checkout's ``scripts/<script>.py`` does with its command module ``module``.

    Run (``name == "__main__"``): exit with the command's status. Imported (``import train``, or loaded
    from its file): hold the command's public names and stand in ``sys.modules`` for the command
    module itself, so a test's monkeypatch of a name reaches the command's ``main``. A spawned worker
    of the script (``__mp_main__``) keeps its own module.
    """
    command = importlib.import_module(f"{__name__}.{module}")
    if name == "__main__":
        sys.exit(command.cli())
    namespace.update({key: value for key, value in vars(command).items() if not key.startswith("_")})
    if name != "__mp_main__":
        sys.modules[name] = command


def entry_point() -> None:
    """The ``modeling-study`` console script (pyproject.toml ``[project.scripts]``)."""
    sys.exit(main())


__all__ = ["COMMANDS", "PROG", "describe", "entry_point", "help_text", "main", "run_as_script"]
