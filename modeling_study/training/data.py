"""Text files -> tokenised blocks of ``block_size`` tokens, with a cache keyed by file content.

``datasets.load_dataset("text", ...)`` reads the files; a batched ``map`` tokenises each document
(a line, a paragraph or the whole file) and appends ``</s>``; a second batched ``map`` concatenates
and cuts the stream into blocks (the tail shorter than a block is dropped).

Caching: ``datasets`` keys a local file by its path and mtime, so a file rewritten in place with an
old mtime (``cp -p``, ``touch -r``, a checkout) would be served stale. Here every cache entry lives
under ``<cache root>/modeling_study/<sha256 of the file contents>`` and each ``map`` gets a
fingerprint made from that hash, the tokenizer's own hash and the block size: a changed file is a
new key, an unchanged one is reused across runs and processes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..data import corpus_path

PIPELINE_VERSION = "1"  # bump when the tokenise/group code changes, so old cache entries are not reused


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    """Hash of everything that changes the ids: the full tokenizer.json and the special tokens."""
    state = tokenizer.backend_tokenizer.to_str() if hasattr(tokenizer, "backend_tokenizer") else repr(tokenizer.get_vocab())
    extra = json.dumps({"eos": tokenizer.eos_token_id, "specials": tokenizer.all_special_tokens}, sort_keys=True)
    return hashlib.sha256((state + extra).encode()).hexdigest()


def check_text_file(path: str | os.PathLike, role: str) -> Path:
    """Raise ValueError unless ``path`` is a file holding some non-whitespace text."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{role} file not found: {path}")
    if not path.is_file():
        raise ValueError(f"{role} path is not a file: {path}")
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            if chunk.strip():
                return path
    raise ValueError(f"{role} file is empty (no non-whitespace text): {path}")


def resolve_data_files(data_args) -> dict[str, Path]:
    """{"train": path, "validation": path}; the embedded corpus fills whatever is not given.

    Without a validation file, the embedded validation split is used only with the embedded train
    split; for your own train file, the last 5% of its blocks become the validation set.
    """
    train = data_args.train_file if data_args.train_file is not None else corpus_path("train")
    files = {"train": check_text_file(train, "training")}
    if data_args.validation_file is not None:
        files["validation"] = check_text_file(data_args.validation_file, "validation")
    elif data_args.train_file is None:
        files["validation"] = corpus_path("validation")
    return files


def load_tokenizer(name_or_path: str):
    """AutoTokenizer with a clear error for a missing folder or a tokenizer without ``</s>``."""
    from transformers import AutoTokenizer

    if os.path.sep in str(name_or_path) or str(name_or_path).startswith("."):
        if not Path(name_or_path).is_dir():
            raise ValueError(
                f"tokenizer not found: {name_or_path} is not a folder. Train one with "
                f"`modeling-study tokenizer --output_dir {name_or_path}` (scripts/train_tokenizer.py in a checkout) "
                f"or pass --tokenizer_name."
            )
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as error:
        raise ValueError(f"could not load a tokenizer from {name_or_path!r}: {error}") from error
    if tokenizer.eos_token_id is None:
        raise ValueError(f"tokenizer {name_or_path!r} has no eos_token; the data pipeline ends every document with it.")
    return tokenizer


def _tokenize_fn(tokenizer):
    eos = tokenizer.eos_token_id

    def tokenize(batch):
        texts = [text for text in batch["text"] if text.strip()]
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return {"input_ids": [row + [eos] for row in ids]}

    return tokenize


def _group_fn(block_size: int):
    def group(batch):
        stream = [token for row in batch["input_ids"] for token in row]
        usable = len(stream) // block_size * block_size
        return {"input_ids": [stream[i : i + block_size] for i in range(0, usable, block_size)]}

    return group


def _fingerprint(*parts) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32]


def build_split(path: Path, tokenizer, block_size: int, *, sample_by: str = "line", cache_root=None, num_proc=None):
    """One text file -> a Dataset of ``input_ids`` blocks, cached by (content, tokenizer, block_size)."""
    import datasets

    content = file_sha256(path)
    root = Path(cache_root or datasets.config.HF_DATASETS_CACHE) / "modeling_study" / content[:32]
    raw = datasets.load_dataset(
        "text", data_files={"data": str(path)}, split="data", sample_by=sample_by, cache_dir=str(root)
    )
    tok_hash = tokenizer_fingerprint(tokenizer)
    tokenized = raw.map(
        _tokenize_fn(tokenizer),
        batched=True,
        remove_columns=raw.column_names,
        num_proc=num_proc,
        new_fingerprint=_fingerprint("tokenize", PIPELINE_VERSION, content, tok_hash, sample_by),
        desc=f"Tokenizing {path.name}",
    )
    return tokenized.map(
        _group_fn(block_size),
        batched=True,
        batch_size=1000,
        num_proc=num_proc,
        new_fingerprint=_fingerprint("group", PIPELINE_VERSION, content, tok_hash, sample_by, block_size),
        desc=f"Grouping {path.name} into blocks of {block_size}",
    )


def build_datasets(data_args, tokenizer, main_process_first=None) -> dict:
    """{"train": Dataset, "validation": Dataset} of ``input_ids`` blocks (labels come from the collator).

    ``main_process_first`` (``training_args.main_process_first``) lets process 0 fill the cache while
    the others wait and then read it. Raises ValueError when a split has fewer tokens than one block.
    """
    from contextlib import nullcontext

    files = resolve_data_files(data_args)
    splits = {}
    for split, path in files.items():
        context = main_process_first(desc=f"{split} dataset") if main_process_first else nullcontext()
        with context:
            splits[split] = build_split(
                path,
                tokenizer,
                data_args.block_size,
                sample_by=data_args.sample_by,
                cache_root=data_args.cache_dir,
                num_proc=data_args.preprocessing_num_workers,
            )
        if len(splits[split]) == 0:
            raise ValueError(
                f"{split} file {path} holds fewer than block_size={data_args.block_size} tokens; "
                f"give more text or a smaller --block_size."
            )
    if "validation" not in splits:
        if len(splits["train"]) < 2:
            raise ValueError(f"{files['train']} gives one block; need two or more to hold some out for validation.")
        held_out = max(1, len(splits["train"]) // 20)
        cut = len(splits["train"]) - held_out
        splits["validation"] = splits["train"].select(range(cut, len(splits["train"])))
        splits["train"] = splits["train"].select(range(cut))
    if data_args.max_train_samples is not None:
        splits["train"] = splits["train"].select(range(min(data_args.max_train_samples, len(splits["train"]))))
    if data_args.max_eval_samples is not None:
        splits["validation"] = splits["validation"].select(range(min(data_args.max_eval_samples, len(splits["validation"]))))
    return splits


__all__ = ["build_datasets", "build_split", "check_text_file", "file_sha256", "load_tokenizer", "resolve_data_files"]
