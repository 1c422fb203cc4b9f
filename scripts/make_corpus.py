#!/usr/bin/env python
"""Build the embedded King James Bible corpus (train/validation split).

Example (needs the Debian package ``bible-kjv``: ``apt-get install -y bible-kjv``)::

    python scripts/make_corpus.py

which runs ``bible -f "gen1:1-rev22:21"`` and writes
``modeling_study/data/corpus/train.txt`` and ``modeling_study/data/corpus/validation.txt``.
Without the ``bible`` program, save its output elsewhere and pass it in::

    bible -f "gen1:1-rev22:21" > kjv_raw.txt
    python scripts/make_corpus.py --input kjv_raw.txt

Every input line looks like ``Ge1:1 In the beginning God created ...``. The verse
reference is stripped, runs of whitespace are collapsed to one space, and each verse is
written on its own line (UTF-8, ``\\n`` line endings, trailing newline).

Split rule (deterministic, no randomness): within each book, the last
``ceil(val_fraction * verses_in_book)`` verses go to ``validation.txt`` and the rest to
``train.txt``; both files keep canonical book order. With the default
``--val_fraction 0.05`` this holds out about 5% of the verses, a contiguous passage at the
end of each of the 66 books, so validation text is never interleaved with training text.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT_DIR = REPO_ROOT / "modeling_study" / "data" / "corpus"
BIBLE_COMMAND = ["bible", "-f", "gen1:1-rev22:21"]

# "Ge1:1 text", "1Sm3:4 text", "SSol1:1 text", ...
VERSE_RE = re.compile(r"^(?P<book>[1-3]?[A-Za-z]+)(?P<chapter>\d+):(?P<verse>\d+)\s+(?P<text>.*)$")


def read_raw(input_path: Path | None) -> str:
    """Return the raw ``bible`` output, from ``input_path`` or by running the program."""
    if input_path is not None:
        if not input_path.is_file():
            raise FileNotFoundError(f"input file not found: {input_path}")
        return input_path.read_text(encoding="utf-8")
    if shutil.which(BIBLE_COMMAND[0]) is None:
        raise RuntimeError(
            "the `bible` program was not found; install the Debian package bible-kjv "
            "(apt-get install -y bible-kjv) or pass --input FILE with its saved output"
        )
    result = subprocess.run(BIBLE_COMMAND, check=True, capture_output=True, text=True, encoding="utf-8")
    return result.stdout


def parse_verses(raw: str) -> list[tuple[str, str]]:
    """Parse raw ``bible`` output into ``(book, text)`` pairs, one per verse, in order.

    Blank lines are ignored; a non-blank line without a verse reference is treated as a
    continuation of the previous verse. Raises ValueError if no verses are found.
    """
    verses: list[tuple[str, list[str]]] = []
    for line in raw.splitlines():
        line = line.strip()
        if not line:
            continue
        match = VERSE_RE.match(line)
        if match:
            verses.append((match["book"], [match["text"]]))
        elif verses:
            verses[-1][1].append(line)
        else:
            raise ValueError(f"text before the first verse reference: {line[:80]!r}")
    if not verses:
        raise ValueError("no verses found in the input")
    return [(book, " ".join(" ".join(parts).split())) for book, parts in verses]


def split_verses(
    verses: list[tuple[str, str]], val_fraction: float
) -> tuple[list[str], list[str]]:
    """Deterministic split: the last ``ceil(val_fraction * n)`` verses of every book go to validation."""
    books: dict[str, list[str]] = {}
    for book, text in verses:  # dicts keep insertion (canonical) order
        books.setdefault(book, []).append(text)
    train: list[str] = []
    validation: list[str] = []
    for texts in books.values():
        n_val = math.ceil(val_fraction * len(texts)) if val_fraction > 0 else 0
        n_val = min(n_val, len(texts) - 1)  # keep at least one training verse per book
        train.extend(texts[: len(texts) - n_val])
        validation.extend(texts[len(texts) - n_val :])
    return train, validation


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--input",
        type=Path,
        default=None,
        help='file holding the output of `bible -f "gen1:1-rev22:21"`; by default the command is run',
    )
    parser.add_argument(
        "--output_dir",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        help=f"directory for train.txt and validation.txt (default: {DEFAULT_OUTPUT_DIR.relative_to(REPO_ROOT)})",
    )
    parser.add_argument(
        "--val_fraction",
        type=float,
        default=0.05,
        help="fraction of each book's verses (taken from its end) held out for validation (default: 0.05)",
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.val_fraction < 1.0:
        parser.error(f"--val_fraction must be in [0, 1), got {args.val_fraction}")

    try:
        verses = parse_verses(read_raw(args.input))
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        parser.error(str(error))
    train, validation = split_verses(verses, args.val_fraction)
    write_lines(args.output_dir / "train.txt", train)
    write_lines(args.output_dir / "validation.txt", validation)
    n_books = len({book for book, _ in verses})
    for name, lines in (("train", train), ("validation", validation)):
        path = args.output_dir / f"{name}.txt"
        print(f"{path}: {len(lines)} verses, {path.stat().st_size} bytes", file=sys.stderr)
    print(f"{len(verses)} verses from {n_books} books", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
