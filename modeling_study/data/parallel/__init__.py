"""The embedded English-Spanish Bible, verse by verse (see README.md here; built by
``scripts/make_parallel_corpus.py``).

>>> from modeling_study.data.parallel import load_pairs
>>> load_pairs("test")[0]["ref"]
'Gen 2:3'
"""

from __future__ import annotations

import gzip
import json
from itertools import islice
from pathlib import Path

PARALLEL_DIR: Path = Path(__file__).resolve().parent
PARALLEL_SPLITS: tuple[str, ...] = ("train", "validation", "test")


def parallel_path(split: str) -> Path:
    """The ``.jsonl.gz`` file of ``split`` ("train", "validation" or "test"); ValueError for another name."""
    if split not in PARALLEL_SPLITS:
        raise ValueError(f"unknown parallel corpus split {split!r}; valid splits: {', '.join(PARALLEL_SPLITS)}")
    return PARALLEL_DIR / f"{split}.jsonl.gz"


def load_pairs(split: str, limit: int | None = None) -> list[dict]:
    """The verse pairs of ``split`` (the first ``limit`` of them): dicts with "ref", "en" and "es"."""
    with gzip.open(parallel_path(split), "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in islice(lines, limit)]


__all__ = ["PARALLEL_DIR", "PARALLEL_SPLITS", "load_pairs", "parallel_path"]
