"""Command-line plumbing shared by the scripts: help that wraps at spaces, errors on one line.

``HelpFormatter`` keeps a description's example commands as written (raw description) and wraps
help text only at spaces (``DefaultsHelpFormatter`` also shows each flag's default): argparse's own wrapping breaks long words and
hyphenated ids ("no ne,integer", "meta- llama/Llama-3.2-1B").

``ShortErrorsMixin`` makes a usage error print one short usage line and the error, not argparse's
full usage block (129 lines for ``train.py``, whose parser holds every ``TrainingArguments`` flag);
``--help`` still lists everything.

Not remote code: only the scripts import this.
"""

from __future__ import annotations

import argparse
import textwrap


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description as written (its example commands keep their lines); no line break inside a word."""

    def _split_lines(self, text, width):
        text = self._whitespace_matcher.sub(" ", text).strip()
        return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


class DefaultsHelpFormatter(HelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """``HelpFormatter`` that also appends ``(default: ...)`` to every flag's help (``HfArgumentParser``'s habit)."""


class ShortErrorsMixin:
    """``error()`` prints ``usage: prog [-h] ...`` and the message, then exits with status 2."""

    def error(self, message: str):
        self.exit(2, f"usage: {self.prog} [-h] [options]  (--help lists every option)\n{self.prog}: error: {message}\n")


class ArgumentParser(ShortErrorsMixin, argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with short errors and ``HelpFormatter``."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def describe_negative_flags(parser: argparse.ArgumentParser, helps: dict[str, str] | None = None) -> None:
    """Give each ``--no_X`` flag that ``HfArgumentParser`` adds for a boolean ``X`` (default True) its own help.

    ``HfArgumentParser`` copies the positive flag's help ("Share input embedding and output head.")
    onto ``--no_X`` and shows a misleading ``(default: False)``. ``helps`` maps a field name to its
    own text; every other ``--no_X`` says what it turns off.
    """
    helps = helps or {}
    for action in parser._actions:
        negative = [option for option in action.option_strings if option.startswith("--no_")]
        if negative and isinstance(action, argparse._StoreFalseAction):
            action.help = helps.get(action.dest, f"Turn --{action.dest} off (sets it to False).")
            action.default = argparse.SUPPRESS  # the positive flag holds the default; don't print "(default: False)"


__all__ = ["ArgumentParser", "DefaultsHelpFormatter", "HelpFormatter", "ShortErrorsMixin", "describe_negative_flags"]
