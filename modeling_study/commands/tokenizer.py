"""Train a byte-level BPE tokenizer and save it as a transformers PreTrainedTokenizerFast.

The repository's ``tokenizer/`` folder was made with (from the repository root)::

    python scripts/train_tokenizer.py --vocab_size 4096 --output_dir tokenizer

which trains on the embedded corpus train split (modeling_study/data/corpus/train.txt).
Other inputs::

    python scripts/train_tokenizer.py --files a.txt b.txt --vocab_size 8000 --output_dir my_tok
    python scripts/train_tokenizer.py --dataset path/to/saved_dataset --text_column text
    python scripts/train_tokenizer.py --parallel --vocab_size 4000 --output_dir runs/translate/tokenizer  # en+es

Load the result with ``transformers.AutoTokenizer.from_pretrained(OUTPUT_DIR)``. Training
is deterministic: the same inputs and flags give a byte-identical tokenizer.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from modeling_study.commands import describe
from modeling_study.tokenization import (
    DEFAULT_MODEL_MAX_LENGTH,
    DEFAULT_SPECIAL_TOKENS,
    SPECIAL_TOKEN_ROLES,
    train_bpe_tokenizer,
)

SCRIPT = "train_tokenizer.py"  # the checkout's scripts/train_tokenizer.py


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """``prog`` None: argparse's own (the script's file name)."""
    parser = argparse.ArgumentParser(prog=prog, description=describe(__doc__, SCRIPT, prog),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="UTF-8 text files to train on (default: the embedded corpus train split)",
    )
    source.add_argument(
        "--dataset",
        type=Path,
        metavar="PATH",
        help="a datasets.Dataset or DatasetDict saved with save_to_disk, used instead of --files",
    )
    source.add_argument(
        "--parallel",
        action="store_true",
        help="train a joint vocabulary on both sides (English and Spanish) of the embedded parallel train split",
    )
    parser.add_argument(
        "--text_column", default="text", help="dataset column holding the text (with --dataset; default: text)"
    )
    parser.add_argument(
        "--dataset_split",
        default="train",
        help="split to use when --dataset is a DatasetDict (default: train)",
    )
    parser.add_argument(
        "--vocab_size",
        type=int,
        default=4096,
        help="final vocabulary size, including 256 byte tokens and the special tokens (default: 4096)",
    )
    parser.add_argument(
        "--min_frequency", type=int, default=2, help="minimum count for a pair to be merged (default: 2)"
    )
    parser.add_argument(
        "--special_tokens",
        nargs=len(SPECIAL_TOKEN_ROLES),
        metavar=("BOS", "EOS", "PAD", "UNK", "MASK"),
        default=list(DEFAULT_SPECIAL_TOKENS.values()),
        help="the bos, eos, pad, unk and mask tokens, in that order; they get ids 0-4 "
        f"(default: {' '.join(DEFAULT_SPECIAL_TOKENS.values())})",
    )
    parser.add_argument(
        "--model_max_length",
        type=int,
        default=DEFAULT_MODEL_MAX_LENGTH,
        help=f"model_max_length recorded in tokenizer_config.json (default: {DEFAULT_MODEL_MAX_LENGTH})",
    )
    parser.add_argument(
        "--output_dir", type=Path, default=Path("tokenizer"), help="directory to save the tokenizer in (default: tokenizer/)"
    )
    parser.add_argument("--no_progress", action="store_true", help="hide the tokenizers training progress bar")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        if args.parallel:
            from modeling_study.training.translation import joint_text

            args.dataset = joint_text()
        tokenizer = train_bpe_tokenizer(
            files=args.files,
            dataset=args.dataset,
            text_column=args.text_column,
            vocab_size=args.vocab_size,
            min_frequency=args.min_frequency,
            special_tokens=args.special_tokens,
            output_dir=args.output_dir,
            dataset_split=args.dataset_split,
            model_max_length=args.model_max_length,
            show_progress=not args.no_progress,
        )
    except ValueError as error:
        parser.error(str(error))
    elapsed = time.perf_counter() - start
    print(
        f"saved tokenizer with {len(tokenizer)} tokens to {args.output_dir} in {elapsed:.1f}s",
        file=sys.stderr,
    )
    return 0


def cli(argv: list[str] | None = None, prog: str | None = None) -> int:
    """``modeling-study tokenizer`` / ``python scripts/train_tokenizer.py``: the exit status."""
    return main(argv, prog)


if __name__ == "__main__":
    sys.exit(cli())
