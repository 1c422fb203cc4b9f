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


TOKENIZERS: tuple[str, ...] = ("bpe", "bytes")
"""The default tokenizers, by name: the byte-level BPE (4,096 tokens) and the byte tokenizer (256 bytes + 5 specials)."""

_TOKENIZER_FOLDERS = {"bpe": (), "bytes": ("bytes",)}
PACKAGED_TOKENIZER_DIR: Path = Path(__file__).resolve().parent / "tokenizer"
"""Where an installed package keeps the tokenizers: setup.py's build step copies the repository's
``tokenizer/`` (the one copy, where ``train_tokenizer.py`` writes them) here into a wheel; absent in a checkout."""
CHECKOUT_TOKENIZER_DIR: Path = Path(__file__).resolve().parents[2] / "tokenizer"
"""The repository's ``tokenizer/``, read in a checkout (an editable install or ``python scripts/...``)."""


def tokenizer_path(name: str = "bpe") -> Path:
    """The folder of one of the default tokenizers: ``"bpe"`` (byte-level BPE, 4,096 tokens) or ``"bytes"``.

    Both were made by ``train_tokenizer.py`` from the corpus train split. An installed package (wheel or
    sdist) ships them as package data (``PACKAGED_TOKENIZER_DIR``); a checkout reads the repository's
    ``tokenizer/``. Raises ValueError for any other name. Should neither folder exist (an install built
    without them), the packaged location is returned and loading it fails with a "tokenizer not found" error.

    >>> (tokenizer_path("bpe") / "tokenizer.json").is_file(), tokenizer_path("bytes").name
    (True, 'bytes')
    """
    if name not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {name!r}.")
    for root in (PACKAGED_TOKENIZER_DIR, CHECKOUT_TOKENIZER_DIR):
        folder = root.joinpath(*_TOKENIZER_FOLDERS[name])
        if (folder / "tokenizer.json").is_file():
            return folder
    return PACKAGED_TOKENIZER_DIR.joinpath(*_TOKENIZER_FOLDERS[name])


__all__ = ["CORPUS_DIR", "CORPUS_SPLITS", "TOKENIZERS", "corpus_path", "tokenizer_path"]
