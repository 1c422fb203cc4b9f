"""Data shipped with the package: the embedded King James Bible corpus.

>>> from modeling_study.data import corpus_path
>>> corpus_path("train").name
'train.txt'
"""

from __future__ import annotations

from pathlib import Path

CORPUS_DIR: Path = Path(__file__).resolve().parent / "corpus"
"""Directory holding ``train.txt`` and ``validation.txt`` (one KJV verse per line)."""

CORPUS_SPLITS: tuple[str, ...] = ("train", "validation")


def corpus_path(split: str) -> Path:
    """Return the path of the embedded corpus file for ``split`` ("train" or "validation").

    Raises ValueError naming the valid splits for any other value.
    """
    if split not in CORPUS_SPLITS:
        raise ValueError(f"unknown corpus split {split!r}; valid splits: {', '.join(CORPUS_SPLITS)}")
    return CORPUS_DIR / f"{split}.txt"


__all__ = ["CORPUS_DIR", "CORPUS_SPLITS", "corpus_path"]
