"""Byte-level BPE tokenizer training (the repository's ``tokenizer/`` folder is made with this).

The tokenizer is GPT-2 style byte-level BPE with no normalizer and no prefix space, so it
is lossless on any UTF-8 string: ``tok.decode(tok.encode(text)) == text`` (no special
tokens are added automatically; a causal-LM data pipeline appends ``tok.eos_token_id``
itself). Training is deterministic: the same input and arguments give a byte-identical
``tokenizer.json``.

Example::

    from modeling_study.tokenization import train_bpe_tokenizer
    tok = train_bpe_tokenizer(vocab_size=4096, output_dir="tokenizer")  # embedded train split
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

# Role -> token. The order here is also the id order: <s>=0, </s>=1, <pad>=2, <unk>=3, <mask>=4.
DEFAULT_SPECIAL_TOKENS: dict[str, str] = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}
SPECIAL_TOKEN_ROLES: tuple[str, ...] = tuple(DEFAULT_SPECIAL_TOKENS)
BYTE_ALPHABET_SIZE = 256
DEFAULT_MODEL_MAX_LENGTH = 1024


def _normalize_special_tokens(special_tokens: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """Return a role -> token dict from a mapping or a 5-item sequence (bos, eos, pad, unk, mask)."""
    if special_tokens is None:
        return dict(DEFAULT_SPECIAL_TOKENS)
    if isinstance(special_tokens, str):
        raise ValueError("special_tokens must be a mapping or a sequence of 5 strings, not a single string")
    if isinstance(special_tokens, Mapping):
        unknown = set(special_tokens) - set(SPECIAL_TOKEN_ROLES)
        if unknown:
            raise ValueError(f"unknown special token roles {sorted(unknown)}; valid roles: {', '.join(SPECIAL_TOKEN_ROLES)}")
        missing = [role for role in SPECIAL_TOKEN_ROLES if role not in special_tokens]
        if missing:
            raise ValueError(f"special_tokens is missing roles: {', '.join(missing)}")
        result = {role: special_tokens[role] for role in SPECIAL_TOKEN_ROLES}
    else:
        tokens = list(special_tokens)
        if len(tokens) != len(SPECIAL_TOKEN_ROLES):
            raise ValueError(
                f"special_tokens needs {len(SPECIAL_TOKEN_ROLES)} tokens "
                f"({', '.join(SPECIAL_TOKEN_ROLES)}), got {len(tokens)}: {tokens}"
            )
        result = dict(zip(SPECIAL_TOKEN_ROLES, tokens))
    for role, token in result.items():
        if not isinstance(token, str) or not token:
            raise ValueError(f"special token for {role} must be a non-empty string, got {token!r}")
    if len(set(result.values())) != len(result):
        raise ValueError(f"special tokens must be distinct, got {list(result.values())}")
    return result


def _check_text_file(path: Path) -> None:
    if not path.exists():
        raise ValueError(f"training file not found: {path}")
    if not path.is_file():
        raise ValueError(f"training path is not a file: {path}")
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 16):
            if chunk.strip():
                return
    raise ValueError(f"training file is empty (no non-whitespace text): {path}")


def _dataset_text_iterator(dataset, text_column: str, batch_size: int = 1000) -> Iterator[list[str]]:
    for batch in dataset.iter(batch_size=batch_size):
        yield [text for text in batch[text_column] if isinstance(text, str) and text]


def _load_text_dataset(dataset, text_column: str, dataset_split: str):
    """Load (if given a path) a ``datasets`` Dataset saved with save_to_disk and validate it."""
    import datasets

    if isinstance(dataset, (str, os.PathLike)):
        path = Path(dataset)
        if not path.exists():
            raise ValueError(f"dataset directory not found: {path}")
        dataset = datasets.load_from_disk(str(path))
    if isinstance(dataset, datasets.DatasetDict):
        if dataset_split not in dataset:
            raise ValueError(f"dataset has no split {dataset_split!r}; available splits: {', '.join(dataset)}")
        dataset = dataset[dataset_split]
    if not isinstance(dataset, datasets.Dataset):
        raise ValueError(f"dataset must be a datasets.Dataset, a DatasetDict or a save_to_disk path, got {type(dataset)}")
    if text_column not in dataset.column_names:
        raise ValueError(f"dataset has no column {text_column!r}; columns: {', '.join(dataset.column_names)}")
    if len(dataset) == 0:
        raise ValueError("dataset is empty")
    if not any(any(text.strip() for text in batch) for batch in _dataset_text_iterator(dataset, text_column)):
        raise ValueError(f"dataset column {text_column!r} holds no non-empty text")
    return dataset


def build_untrained_tokenizer() -> Tokenizer:
    """The byte-level BPE pipeline (no normalizer, no prefix space, byte-level decoder)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    return tokenizer


def train_bpe_tokenizer(
    files: Sequence[str | os.PathLike] | None = None,
    dataset=None,
    text_column: str = "text",
    vocab_size: int = 4096,
    min_frequency: int = 2,
    special_tokens: Mapping[str, str] | Sequence[str] | None = None,
    output_dir: str | os.PathLike | None = "tokenizer",
    *,
    dataset_split: str = "train",
    model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
    show_progress: bool = False,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer and (if ``output_dir`` is not None) save it with save_pretrained.

    Args:
        files: UTF-8 text files to train on. If neither ``files`` nor ``dataset`` is given,
            the embedded corpus train split (``modeling_study.data.corpus_path("train")``) is used.
        dataset: a ``datasets.Dataset`` / ``DatasetDict`` or the path of one saved with
            ``save_to_disk``; mutually exclusive with ``files``.
        text_column: the dataset column holding the text.
        vocab_size: final vocabulary size including the 256 byte tokens and the special tokens.
        min_frequency: minimum pair count for a merge.
        special_tokens: role -> token mapping (roles bos_token, eos_token, pad_token,
            unk_token, mask_token) or a sequence of 5 tokens in that order. They get ids 0..4.
        output_dir: where to save (``tokenizer.json``, ``tokenizer_config.json``, ...);
            None to skip saving.
        dataset_split: split used when ``dataset`` is a DatasetDict.
        model_max_length: recorded in the tokenizer config.
        show_progress: show the ``tokenizers`` progress bar.

    Raises:
        ValueError: for missing or empty inputs, bad special tokens, or a ``vocab_size`` too
            small to hold the byte alphabet and the special tokens. All checks run before training.
    """
    specials = _normalize_special_tokens(special_tokens)
    min_vocab = BYTE_ALPHABET_SIZE + len(specials)
    if not isinstance(vocab_size, int) or vocab_size < min_vocab:
        raise ValueError(
            f"vocab_size must be an integer >= {min_vocab} (256 byte tokens + {len(specials)} special tokens), got {vocab_size!r}"
        )
    if not isinstance(min_frequency, int) or min_frequency < 0:
        raise ValueError(f"min_frequency must be a non-negative integer, got {min_frequency!r}")
    if not isinstance(model_max_length, int) or model_max_length < 1:
        raise ValueError(f"model_max_length must be a positive integer, got {model_max_length!r}")
    if files is not None and dataset is not None:
        raise ValueError("pass either files or dataset, not both")
    if dataset is not None:
        dataset = _load_text_dataset(dataset, text_column, dataset_split)
    else:
        if files is None:
            from modeling_study.data import corpus_path

            files = [corpus_path("train")]
        if isinstance(files, (str, os.PathLike)):
            files = [files]
        files = [Path(f) for f in files]
        if not files:
            raise ValueError("files is empty; give at least one training file")
        for path in files:
            _check_text_file(path)

    tokenizer = build_untrained_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(specials.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    if dataset is not None:
        tokenizer.train_from_iterator(_dataset_text_iterator(dataset, text_column), trainer=trainer, length=len(dataset))
    else:
        tokenizer.train([str(p) for p in files], trainer=trainer)

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
        **specials,
    )
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        fast.save_pretrained(str(output_dir))
    return fast


__all__ = [
    "DEFAULT_MODEL_MAX_LENGTH",
    "DEFAULT_SPECIAL_TOKENS",
    "SPECIAL_TOKEN_ROLES",
    "build_untrained_tokenizer",
    "train_bpe_tokenizer",
]
