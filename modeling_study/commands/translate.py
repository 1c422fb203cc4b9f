"""``modeling-study translate``: English lines in, Spanish lines out, with a trained translation model.

The command's code is ``modeling_study.translate`` (``translate_lines`` and ``load_translator`` are its
Python interface); in a checkout ``python scripts/translate.py`` runs the same.
"""

from __future__ import annotations

import os

from modeling_study.translate import main


def cli(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The exit status of ``main`` (2 for bad input, with a one-line error)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return main(argv, prog)


__all__ = ["cli", "main"]
