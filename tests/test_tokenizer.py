"""Byte-level BPE tokenizer: modeling_study.tokenization, scripts/train_tokenizer.py and tokenizer/."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
if not os.environ.get("HF_HOME", "").startswith(tempfile.gettempdir()):
    os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="modeling_study_hf_home_")

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from modeling_study.data import corpus_path
from modeling_study.tokenization import DEFAULT_SPECIAL_TOKENS, train_bpe_tokenizer

REPO_ROOT = Path(__file__).resolve().parent.parent
REPO_TOKENIZER = REPO_ROOT / "tokenizer"
SCRIPT = REPO_ROOT / "scripts" / "train_tokenizer.py"

ROUND_TRIP_TEXTS = [
    "In the beginning God created the heaven and the earth.",
    "  leading spaces, trailing spaces  \n\nand blank lines\n",
    "위치 정보가 없다면",
    "emoji 😀👍🏽🇰🇷 and a family 👨\u200d👩\u200d👧 ✨",
    'def f(x: int) -> int:\n\treturn x ** 2  # comment\r\n\nprint(f"{f(3)=}")\n',
    "<s>special tokens in the text</s><pad><unk><mask>",
    "mixed: Ünïcödé café naïve — “quotes” 中文 العربية \u00a0\u200b\ufeff",
    "",
    " ",
]


@pytest.fixture(scope="module")
def repo_tokenizer():
    return AutoTokenizer.from_pretrained(str(REPO_TOKENIZER))


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "small.txt"
    lines = corpus_path("validation").read_text(encoding="utf-8").splitlines()[:400]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_repo_tokenizer_loads_with_auto_tokenizer(repo_tokenizer):
    tok = repo_tokenizer
    assert len(tok) == 4096
    assert [tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token, tok.mask_token] == list(
        DEFAULT_SPECIAL_TOKENS.values()
    )
    assert [tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id, tok.mask_token_id] == [0, 1, 2, 3, 4]
    assert tok.model_max_length == 1024
    # trained on the KJV: common words are single tokens
    assert tok.tokenize("And God said") == ["And", "ĠGod", "Ġsaid"]
    # no special tokens are added implicitly
    assert tok("hello")["input_ids"] == tok.encode("hello", add_special_tokens=False)


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_round_trip(repo_tokenizer, text):
    ids = repo_tokenizer.encode(text)
    assert repo_tokenizer.decode(ids) == text
    assert repo_tokenizer.decode(repo_tokenizer(text)["input_ids"]) == text


def test_round_trip_batch_and_korean_is_bytes(repo_tokenizer):
    ids = repo_tokenizer(ROUND_TRIP_TEXTS)["input_ids"]
    assert repo_tokenizer.batch_decode(ids) == ROUND_TRIP_TEXTS
    # Korean is unseen in training: falls back to byte tokens, no <unk>
    ids = repo_tokenizer.encode("위치 정보가 없다면")
    assert repo_tokenizer.unk_token_id not in ids


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_round_trip_arbitrary_unicode(repo_tokenizer, text):
    assert repo_tokenizer.decode(repo_tokenizer.encode(text)) == text


def test_training_is_deterministic(tmp_path):
    # same input, two runs, byte-identical files
    for name in ("a", "b"):
        train_bpe_tokenizer(output_dir=tmp_path / name)
    for filename in ("tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "a" / filename).read_bytes() == (tmp_path / "b" / filename).read_bytes()


def test_script_reproduces_repo_tokenizer_byte_for_byte(tmp_path):
    out = tmp_path / "tok"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--vocab_size", "4096", "--output_dir", str(out), "--no_progress"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    repo_files = sorted(p.name for p in REPO_TOKENIZER.iterdir() if p.is_file())  # bytes/ is the next test's
    assert sorted(p.name for p in out.iterdir()) == repo_files
    for name in repo_files:
        assert (out / name).read_bytes() == (REPO_TOKENIZER / name).read_bytes(), name


def test_script_reproduces_the_studys_byte_tokenizer(tmp_path):
    """tokenizer/bytes (the study's): no merges, so one token per byte of text, and the exact command is known."""
    out = tmp_path / "bytes"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--vocab_size", "261", "--output_dir", str(out), "--no_progress"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    repo = REPO_TOKENIZER / "bytes"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in repo.iterdir())
    for path in repo.iterdir():
        assert (out / path.name).read_bytes() == path.read_bytes(), path.name
    tokenizer = AutoTokenizer.from_pretrained(str(repo))
    text = "In the beginning God created the heaven and the earth."
    ids = tokenizer(text)["input_ids"]
    assert len(tokenizer) == 261 and len(ids) == len(text.encode())
    assert tokenizer.decode(ids) == text


def test_train_from_files_custom_options(tmp_path, small_corpus):
    tok = train_bpe_tokenizer(
        files=[small_corpus],
        vocab_size=300,
        min_frequency=1,
        special_tokens=["[BOS]", "[EOS]", "[PAD]", "[UNK]", "[MASK]"],
        output_dir=tmp_path / "tok",
    )
    assert len(tok) == 300
    loaded = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert loaded.bos_token == "[BOS]" and loaded.mask_token_id == 4
    for text in ROUND_TRIP_TEXTS:
        assert loaded.decode(loaded.encode(text)) == text


def test_train_from_saved_dataset(tmp_path, small_corpus):
    import datasets

    lines = small_corpus.read_text(encoding="utf-8").splitlines()
    ds = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"content": lines, "n": list(range(len(lines)))})})
    ds.save_to_disk(str(tmp_path / "ds"))
    tok = train_bpe_tokenizer(dataset=tmp_path / "ds", text_column="content", vocab_size=400, output_dir=None)
    # same text as files -> same vocabulary
    from_files = train_bpe_tokenizer(files=[small_corpus], vocab_size=400, output_dir=None)
    assert tok.get_vocab() == from_files.get_vocab()

    with pytest.raises(ValueError, match="no column 'text'"):
        train_bpe_tokenizer(dataset=tmp_path / "ds", vocab_size=400, output_dir=None)
    with pytest.raises(ValueError, match="no split 'validation'"):
        train_bpe_tokenizer(dataset=tmp_path / "ds", text_column="content", dataset_split="validation", output_dir=None)
    with pytest.raises(ValueError, match="not found"):
        train_bpe_tokenizer(dataset=tmp_path / "missing", output_dir=None)


def test_bad_inputs_raise_before_training(tmp_path, small_corpus):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n", encoding="utf-8")
    out = tmp_path / "never"
    with pytest.raises(ValueError, match="not found"):
        train_bpe_tokenizer(files=[tmp_path / "missing.txt"], output_dir=out)
    with pytest.raises(ValueError, match="empty"):
        train_bpe_tokenizer(files=[small_corpus, empty], output_dir=out)
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe_tokenizer(files=[small_corpus], vocab_size=260, output_dir=out)
    with pytest.raises(ValueError, match="distinct"):
        train_bpe_tokenizer(files=[small_corpus], special_tokens=["<s>", "<s>", "<pad>", "<unk>", "<mask>"], output_dir=out)
    with pytest.raises(ValueError, match="5 tokens"):
        train_bpe_tokenizer(files=[small_corpus], special_tokens=["<s>", "</s>"], output_dir=out)
    with pytest.raises(ValueError, match="either files or dataset"):
        train_bpe_tokenizer(files=[small_corpus], dataset=tmp_path, output_dir=out)
    assert not out.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--files", "/nonexistent/file.txt"], "training file not found"),
        (["--vocab_size", "100"], "vocab_size must be"),
        (["--special_tokens", "<s>", "</s>"], "expected 5 arguments"),
    ],
)
def test_cli_errors(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--output_dir", str(tmp_path / "tok"), *args], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert not (tmp_path / "tok").exists()


def test_cli_help_documents_every_flag():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ["--files", "--dataset", "--text_column", "--vocab_size", "--min_frequency", "--special_tokens", "--output_dir"]:
        assert flag in result.stdout
    assert "python scripts/train_tokenizer.py" in result.stdout
