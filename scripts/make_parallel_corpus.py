#!/usr/bin/env python
"""Build the embedded English-Spanish parallel corpus: the Bible, verse by verse.

Needs the Debian packages (once, as root)::

    apt-get install -y diatheke sword-text-web sword-text-sparv
    python scripts/make_parallel_corpus.py

For each of the 66 books it runs ``diatheke -b engWEB2015eb -f OSIS -k <book>`` (World English Bible)
and the same with ``spaRV1909eb`` (Reina-Valera 1909), and writes
``modeling_study/data/parallel/{train,validation,test}.jsonl.gz``: one JSON object per verse,
``{"ref": "Gen 1:1", "en": "...", "es": "..."}``.

Cleaning: the OSIS markup is removed (``<w>`` word tags, with a space restored between adjacent
ones, which the WEB text runs together: ``<w>God</w><w>created</w>``; milestones; notes and titles
with their content), the verse reference and any heading that diatheke prints before it (the WEB
psalm titles) are dropped, entities are unescaped and whitespace collapsed; the Reina-Valera's
all-capital first word of a chapter ("EN el principio") is written as a word ("En el principio").
A verse empty in either Bible (a verse the other versification lacks) is left out, and so is a pair
whose lengths differ by more than a factor ``--max_length_ratio`` (2; about 0.25% of the verses): where
the two versifications number a passage differently (Job 39-41, 2 Cor 13, psalm titles counted as
verse 1 in Spanish) or the WEB appends its glossary to Rev 22:21, the "pair" is not a translation.
Misaligned pairs of similar length remain (a few dozen, mostly in Job and the Psalms).

Split, deterministic: by a hash of the verse reference. ``sha256(ref) mod 100`` below
``--test_percent`` goes to test, the next ``--validation_percent`` to validation, the rest to train;
so test verses come from every book, and no test verse is in train. A verse repeated word for word
elsewhere (e.g. "Yahweh spoke to Moses, saying,") would still leak, so train also drops every pair
whose English or Spanish text equals that of a test or validation verse.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT_DIR = REPO_ROOT / "modeling_study" / "data" / "parallel"
MODULES = {"en": "engWEB2015eb", "es": "spaRV1909eb"}

# (the name diatheke parses, the OSIS abbreviation used in references)
BOOKS: tuple[tuple[str, str], ...] = (
    ("Genesis", "Gen"), ("Exodus", "Exod"), ("Leviticus", "Lev"), ("Numbers", "Num"), ("Deuteronomy", "Deut"),
    ("Joshua", "Josh"), ("Judges", "Judg"), ("Ruth", "Ruth"), ("1 Samuel", "1Sam"), ("2 Samuel", "2Sam"),
    ("1 Kings", "1Kgs"), ("2 Kings", "2Kgs"), ("1 Chronicles", "1Chr"), ("2 Chronicles", "2Chr"), ("Ezra", "Ezra"),
    ("Nehemiah", "Neh"), ("Esther", "Esth"), ("Job", "Job"), ("Psalms", "Ps"), ("Proverbs", "Prov"),
    ("Ecclesiastes", "Eccl"), ("Song of Solomon", "Song"), ("Isaiah", "Isa"), ("Jeremiah", "Jer"),
    ("Lamentations", "Lam"), ("Ezekiel", "Ezek"), ("Daniel", "Dan"), ("Hosea", "Hos"), ("Joel", "Joel"),
    ("Amos", "Amos"), ("Obadiah", "Obad"), ("Jonah", "Jonah"), ("Micah", "Mic"), ("Nahum", "Nah"),
    ("Habakkuk", "Hab"), ("Zephaniah", "Zeph"), ("Haggai", "Hag"), ("Zechariah", "Zech"), ("Malachi", "Mal"),
    ("Matthew", "Matt"), ("Mark", "Mark"), ("Luke", "Luke"), ("John", "John"), ("Acts", "Acts"),
    ("Romans", "Rom"), ("1 Corinthians", "1Cor"), ("2 Corinthians", "2Cor"), ("Galatians", "Gal"),
    ("Ephesians", "Eph"), ("Philippians", "Phil"), ("Colossians", "Col"), ("1 Thessalonians", "1Thess"),
    ("2 Thessalonians", "2Thess"), ("1 Timothy", "1Tim"), ("2 Timothy", "2Tim"), ("Titus", "Titus"),
    ("Philemon", "Phlm"), ("Hebrews", "Heb"), ("James", "Jas"), ("1 Peter", "1Pet"), ("2 Peter", "2Pet"),
    ("1 John", "1John"), ("2 John", "2John"), ("3 John", "3John"), ("Jude", "Jude"), ("Revelation", "Rev"),
)

DROPPED_ELEMENTS = re.compile(r"<(note|title)\b[^>]*>.*?</\1>", re.DOTALL)  # footnotes, headings: not the verse
ADJACENT_WORDS = re.compile(r"</w>(?=<w\b)")
TAG = re.compile(r"<[^>]+>")
CAPITAL_OPENING = re.compile(r"^([¡¿(«“\"]?)([A-ZÁÉÍÓÚÑÜ]{2,})(?=[\s,;:.!?]|$)")


def clean_osis(text: str) -> str:
    """Plain text of one verse of diatheke's OSIS output."""
    text = DROPPED_ELEMENTS.sub(" ", text)
    text = ADJACENT_WORDS.sub("</w> ", text)
    text = html.unescape(TAG.sub("", text))
    text = " ".join(text.split())
    # the first word of a chapter in capitals (a drop cap in print): "EN el" -> "En el", "OH Jehová" -> "Oh Jehová"
    return CAPITAL_OPENING.sub(lambda m: m.group(1) + m.group(2).capitalize(), text)


def parse_book(output: str, book_abbrev: str) -> dict[str, str]:
    """``{"Gen 1:1": text, ...}`` from ``diatheke -f OSIS -k <book>`` output.

    Each verse starts with ``<display name> <chapter>:<verse>: `` (possibly after a heading, dropped);
    a line without one continues the previous verse; the final ``(module)`` line is not text.
    """
    lines = [line for line in output.splitlines() if not re.fullmatch(r"\(\w+\)", line.strip())]
    if not lines:
        return {}
    first = re.search(r"^(?:.*?\s)?(\S.*?) 1:1: ", lines[0])
    if first is None:
        raise ValueError(f"Cannot find the first verse of {book_abbrev} in diatheke's output: {lines[0][:80]!r}")
    start = re.compile(re.escape(first.group(1)) + r" (\d+):(\d+): ")
    raw: dict[str, list[str]] = {}
    current = None
    for line in lines:
        match = start.search(line)
        if match:
            current = f"{book_abbrev} {match.group(1)}:{match.group(2)}"
            raw[current] = [line[match.end():]]
        elif current is not None:
            raw[current].append(line)
    return {ref: clean_osis(" ".join(parts)) for ref, parts in raw.items()}


def split_of(ref: str, test_percent: int, validation_percent: int) -> str:
    """The split of a verse, from a hash of its reference: the same on every machine and run."""
    bucket = int(hashlib.sha256(ref.encode("utf-8")).hexdigest(), 16) % 100
    if bucket < test_percent:
        return "test"
    return "validation" if bucket < test_percent + validation_percent else "train"


def build_splits(english: dict[str, str], spanish: dict[str, str], test_percent: int = 3,
                 validation_percent: int = 2, max_length_ratio: float = 2.0) -> dict[str, list[dict]]:
    """Pair the verses both Bibles have (in ``english``'s order) and split them; see the module docstring."""
    splits: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for ref, en in english.items():
        es = spanish.get(ref, "")
        if en and es and 1 / max_length_ratio <= len(en) / len(es) <= max_length_ratio:
            splits[split_of(ref, test_percent, validation_percent)].append({"ref": ref, "en": en, "es": es})
    held_out = {text for split in ("validation", "test") for pair in splits[split] for text in (pair["en"], pair["es"])}
    splits["train"] = [p for p in splits["train"] if p["en"] not in held_out and p["es"] not in held_out]
    return splits


def read_module(module: str) -> dict[str, str]:
    verses: dict[str, str] = {}
    for name, abbrev in BOOKS:
        output = subprocess.run(["diatheke", "-b", module, "-f", "OSIS", "-k", name], check=True,
                                capture_output=True, text=True).stdout
        verses |= parse_book(output, abbrev)
    return verses


def write_splits(splits: dict[str, list[dict]], output_dir: Path) -> None:
    output_dir.mkdir(parents=True, exist_ok=True)
    for split, pairs in splits.items():
        # mtime=0 and a fixed order: the same bytes on every run
        with open(output_dir / f"{split}.jsonl.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
            for pair in pairs:
                out.write((json.dumps(pair, ensure_ascii=False) + "\n").encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="Where the .jsonl.gz files go.")
    parser.add_argument("--test_percent", type=int, default=3, help="Percent of verses (by reference hash) for test.")
    parser.add_argument("--validation_percent", type=int, default=2, help="Percent of verses for validation.")
    parser.add_argument("--max_length_ratio", type=float, default=2.0,
                        help="Drop a pair whose character lengths differ by more than this factor (misaligned).")
    args = parser.parse_args(argv)
    if shutil.which("diatheke") is None:
        print("diatheke not found: apt-get install -y diatheke sword-text-web sword-text-sparv", file=sys.stderr)
        return 1
    english, spanish = read_module(MODULES["en"]), read_module(MODULES["es"])
    splits = build_splits(english, spanish, args.test_percent, args.validation_percent, args.max_length_ratio)
    write_splits(splits, args.output_dir)
    for split, pairs in splits.items():
        print(f"{split}: {len(pairs)} verse pairs")
    print(f"({len(english)} English verses, {len(spanish)} Spanish verses)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
