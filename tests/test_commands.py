"""The ``modeling-study`` dispatcher, the scripts that wrap its subcommands, and the packaged tokenizers."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import pytest

from modeling_study.commands import COMMANDS, describe, entry_point, main
from modeling_study.data import TOKENIZERS, tokenizer_path

REPO = Path(__file__).resolve().parents[1]
EXPECTED = {"train": "train.py", "study": "run_study.py", "train-translation": "train_translation.py", "translate": "translate.py",
            "tokenizer": "train_tokenizer.py", "demo": "positional_ambiguity.py", "benchmark": "benchmark.py"}


def test_help_lists_every_subcommand_on_one_line(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: modeling-study COMMAND [options]\n")
    assert list(COMMANDS) == list(EXPECTED)
    for name in EXPECTED:
        (line,) = [line for line in out.splitlines() if line.startswith(f"  {name} ")]
        assert len(line.split(maxsplit=1)[1]) > 20  # a one-line description


@pytest.mark.parametrize("argv, message", [(["trian"], "unknown command 'trian'; choose from train, study"),
                                           ([], "a command is required: train, study"),
                                           (["--bogus"], "unknown command '--bogus'")])
def test_unknown_or_missing_subcommand_is_one_line_and_status_2(argv, message, capsys, monkeypatch):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"modeling-study: error: {message}")
    monkeypatch.setattr(sys, "argv", ["modeling-study", *argv])
    with pytest.raises(SystemExit) as exit_info:  # the console script
        entry_point()
    assert exit_info.value.code == 2


def test_python_dash_m_runs_the_dispatcher(capsys, monkeypatch):
    import runpy

    monkeypatch.setattr(sys, "argv", ["__main__.py", "trian"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("modeling_study", run_name="__main__", alter_sys=True)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("python -m modeling_study: error: unknown command 'trian'")


def test_version(capsys):
    from modeling_study import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"modeling-study {__version__}\n"


@pytest.mark.parametrize("name", ["tokenizer", "demo"])  # the two whose parsers build without heavy imports
def test_subcommand_help_names_the_command(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and out.startswith(f"usage: modeling-study {name} [-h]")
    assert "python scripts/" not in out


def test_subcommand_usage_error_names_the_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--num_heads", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert err == ["usage: modeling-study demo [-h] [options]  (--help lists every option)",
                   "modeling-study demo: error: argument --num_heads: must be a positive integer, got 0"]


def test_describe_names_the_command_only_outside_the_script():
    doc = "Run it::\n\n    python scripts/train.py --max_steps 3\n"
    assert describe(doc, "train.py", "train.py") is doc
    assert describe(doc, "train.py", None) is doc
    assert describe(doc, "train.py", "modeling-study train") == "Run it::\n\n    modeling-study train --max_steps 3\n"


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_script_runs_its_subcommand(name):
    """scripts/<script> is a wrapper: loaded from its file it offers the command's main; imported, it is the command."""
    script = REPO / "scripts" / EXPECTED[name]
    command = importlib.import_module(f"modeling_study.commands.{COMMANDS[name][0]}")
    spec = importlib.util.spec_from_file_location(f"wrapper_{name}", script)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        assert module.main is command.main and callable(command.cli)
        assert sys.modules[spec.name] is command  # `import <script>` gets the command module (monkeypatch reaches it)
    finally:
        sys.modules.pop(spec.name, None)


@pytest.mark.parametrize("name", TOKENIZERS)
def test_tokenizer_path(name):
    folder = tokenizer_path(name)
    assert (folder / "tokenizer.json").is_file() and (folder / "tokenizer_config.json").is_file()
    assert folder == (tokenizer_path() if name == "bpe" else tokenizer_path() / "bytes")


def test_tokenizer_path_refuses_other_names():
    with pytest.raises(ValueError, match="tokenizer must be one of bpe, bytes, got 'gpt2'"):
        tokenizer_path("gpt2")


def test_default_training_tokenizer_is_the_packaged_one():
    from modeling_study.training.arguments import DEFAULT_TOKENIZER, ModelArguments

    assert DEFAULT_TOKENIZER == tokenizer_path("bpe") and ModelArguments().tokenizer_name == str(DEFAULT_TOKENIZER)
