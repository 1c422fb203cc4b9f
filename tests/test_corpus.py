"""The embedded KJV corpus and scripts/make_corpus.py."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
if not os.environ.get("HF_HOME", "").startswith(tempfile.gettempdir()):
    os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="modeling_study_hf_home_")

import pytest

from modeling_study.data import CORPUS_DIR, corpus_path

REPO_ROOT = Path(__file__).resolve().parent.parent
VERSE_REF = re.compile(r"\b[1-3]?[A-Z][A-Za-z]*\d+:\d+\b")


def _lines(split):
    return corpus_path(split).read_text(encoding="utf-8").splitlines()


def test_corpus_path_and_dir():
    assert corpus_path("train") == CORPUS_DIR / "train.txt"
    assert corpus_path("validation") == CORPUS_DIR / "validation.txt"
    assert (CORPUS_DIR / "README.md").is_file()


def test_unknown_split_names_valid_splits():
    with pytest.raises(ValueError, match="train.*validation"):
        corpus_path("test")


@pytest.mark.parametrize("split", ["train", "validation"])
def test_files_exist_nonempty_and_clean(split):
    path = corpus_path(split)
    assert path.is_file() and path.stat().st_size > 0
    raw = path.read_bytes()
    raw.decode("utf-8")  # valid UTF-8
    assert b"\r" not in raw and raw.endswith(b"\n")
    lines = _lines(split)
    assert all(line and line == line.strip() and "  " not in line for line in lines)
    assert not any(VERSE_REF.search(line) for line in lines)
    assert not any(re.search(r"\d+:\d+", line) for line in lines)


def test_split_sizes_and_content():
    train, validation = _lines("train"), _lines("validation")
    assert len(train) + len(validation) == 31102  # every KJV verse exactly once
    assert 0.04 < len(validation) / (len(train) + len(validation)) < 0.07
    total_bytes = corpus_path("train").stat().st_size + corpus_path("validation").stat().st_size
    assert 3_500_000 < total_bytes < 5_000_000
    assert train[0] == "In the beginning God created the heaven and the earth."
    assert validation[-1] == "The grace of our Lord Jesus Christ be with you all. Amen."
    assert not set(train) >= set(validation)  # validation is not a subset of train


def _run_make_corpus(tmp_path, raw):
    raw_file = tmp_path / "raw.txt"
    raw_file.write_text(raw, encoding="utf-8")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "make_corpus.py"), "--input", str(raw_file), "--output_dir", str(out)],
        capture_output=True,
        text=True,
    )
    return result, out


def test_make_corpus_strips_references_and_splits_per_book(tmp_path):
    raw = "".join(f"Ge1:{i} Verse  {chr(96 + i)} of Genesis.\n" for i in range(1, 21))
    raw += "".join(f"1Sm2:{i} Samuel verse {chr(96 + i)}.\n" for i in range(1, 11))
    result, out = _run_make_corpus(tmp_path, raw)
    assert result.returncode == 0, result.stderr
    train = (out / "train.txt").read_text().splitlines()
    validation = (out / "validation.txt").read_text().splitlines()
    # ceil(5% of 20) = 1 and ceil(5% of 10) = 1 verse per book held out, from the end of each book
    assert validation == ["Verse t of Genesis.", "Samuel verse j."]
    assert train[0] == "Verse a of Genesis." and len(train) == 28


def test_make_corpus_rejects_garbage(tmp_path):
    result, _ = _run_make_corpus(tmp_path, "no verse references here\n")
    assert result.returncode != 0 and "verse reference" in result.stderr


@pytest.mark.skipif(not Path("/usr/bin/bible").exists(), reason="Debian package bible-kjv not installed")
def test_make_corpus_reproduces_embedded_files(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "make_corpus.py"), "--output_dir", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    for split in ("train", "validation"):
        assert (out / f"{split}.txt").read_bytes() == corpus_path(split).read_bytes()
