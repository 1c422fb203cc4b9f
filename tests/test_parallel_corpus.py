"""scripts/make_parallel_corpus.py on a few verses (no apt needed: diatheke's output is written here as
it prints it), and the shipped parallel corpus: alignment, cleaning, disjoint splits."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest

from modeling_study.data.parallel import PARALLEL_DIR, load_pairs, parallel_path

REPO_ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("make_parallel_corpus", REPO_ROOT / "scripts" / "make_parallel_corpus.py")
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)

# As `diatheke -f OSIS -k Psalms` prints them (abridged): WEB repeats the psalm title before each reference
# and runs some words together; a verse may continue on the next line; the module name ends the output.
WEB_PSALMS = """Psalms 1:1: <w>Blessed</w> <w>is</w> <w>the</w> <w>man</w><w>who</w> doesn’t walk.<milestone type="line"/>
A Psalm by David.  Psalms 3:1: Yahweh, how <w>my</w> adversaries <w>have</w> increased!<note type="x">Or, foes</note>
<w>Many</w> rise up &amp; stand.<milestone type="line"/>
Psalms 3:2: <title>Heading</title><w>Selah</w>.
(engWEB2015eb)
"""
RV_PSALMS = """Psalms 1:1: <w>BIENAVENTURADO</w> <w>el varón</w> que no anduvo.<milestone type="line"/>
Psalms 3:1: ¡<w>OH</w> <w>Jehová</w>, <w>cuánto se</w> <w>han multiplicado</w> <w>mis enemigos</w>!
Psalms 3:2: 
(spaRV1909eb)
"""


def test_parse_book_cleans_and_aligns_by_reference():
    english = script.parse_book(WEB_PSALMS, "Ps")
    spanish = script.parse_book(RV_PSALMS, "Ps")
    assert english == {
        "Ps 1:1": "Blessed is the man who doesn’t walk.",
        "Ps 3:1": "Yahweh, how my adversaries have increased! Many rise up & stand.",
        "Ps 3:2": "Selah.",
    }
    assert spanish == {"Ps 1:1": "Bienaventurado el varón que no anduvo.",
                       "Ps 3:1": "¡Oh Jehová, cuánto se han multiplicado mis enemigos!", "Ps 3:2": ""}
    splits = script.build_splits(english, spanish, test_percent=50, validation_percent=0)
    pairs = {p["ref"]: p for split in splits.values() for p in split}
    assert set(pairs) == {"Ps 1:1", "Ps 3:1"}  # 3:2 is empty in Spanish
    assert pairs["Ps 3:1"]["es"].startswith("¡Oh Jehová") and pairs["Ps 3:1"]["en"].startswith("Yahweh")


def test_split_is_the_reference_hash():
    for ref in ("Gen 1:1", "Rev 22:21", "Ps 119:176"):
        bucket = int(hashlib.sha256(ref.encode()).hexdigest(), 16) % 100
        expected = "test" if bucket < 3 else "validation" if bucket < 5 else "train"
        assert script.split_of(ref, 3, 2) == expected


def test_held_out_text_never_in_train_and_misaligned_pairs_dropped():
    english = {f"Lev {i}:1": "Yahweh spoke to Moses, saying," for i in range(1, 40)}
    english |= {"Gen 1:1": "In the beginning.", "Job 39:30": "Short."}
    spanish = {ref: "Y habló Jehová á Moisés, diciendo:" for ref in english}
    spanish |= {"Gen 1:1": "En el principio.", "Job 39:30": "Un versículo mucho más largo que el inglés."}
    splits = script.build_splits(english, spanish, test_percent=3, validation_percent=2)
    held_out = [p for split in ("validation", "test") for p in splits[split]]
    assert any(p["ref"].startswith("Lev") for p in held_out)  # the formula is held out somewhere...
    assert not any(p["ref"].startswith("Lev") for p in splits["train"])  # ...so train has none of its copies
    assert "Job 39:30" not in {p["ref"] for split in splits.values() for p in split}  # length ratio > 2


def test_shipped_splits_are_disjoint_and_aligned():
    splits = {split: load_pairs(split) for split in ("train", "validation", "test")}
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [29318, 611, 917]  # as docs/translation.md states
    refs = {split: {p["ref"] for p in pairs} for split, pairs in splits.items()}
    assert not refs["train"] & refs["test"] and not refs["train"] & refs["validation"]
    assert not refs["validation"] & refs["test"]
    for split, pairs in splits.items():
        assert all(script.split_of(p["ref"], 3, 2) == split for p in pairs)
    test_text = {p[lang] for p in splits["test"] for lang in ("en", "es")}
    assert not any(p["en"] in test_text or p["es"] in test_text for p in splits["train"])
    first = {p["ref"]: p for p in splits["train"][:5]}
    assert first["Gen 1:1"] == {"ref": "Gen 1:1", "en": "In the beginning, God created the heavens and the earth.",
                                "es": "En el principio crió Dios los cielos y la tierra."}
    assert not any("<" in p["en"] + p["es"] for pairs in splits.values() for p in pairs)  # no markup left
    assert (PARALLEL_DIR / "README.md").is_file()


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown parallel corpus split 'dev'; valid splits: train, validation, test"):
        parallel_path("dev")
