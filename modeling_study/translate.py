"""Translate lines of text with a trained study encoder-decoder (``python scripts/translate.py``).

One English line in, one Spanish line out, in order (a blank line stays blank), in batches, with a
progress bar on stderr::

    python scripts/translate.py runs/translate/final verses.en.txt --output verses.es.txt
    echo "In the beginning God created the heaven and the earth." | python scripts/translate.py runs/translate/final

MODEL is a folder written by ``scripts/train_translation.py`` (``<output_dir>/final``, or a
``checkpoint-N``) or a Hub id; its tokenizer appends ``</s>`` to every source as training did
(``modeling_study.training.translation.with_source_eos``; older folders are fixed up on load). Beam size,
length penalty and the no-repeat n-gram size default to the model's ``generation_config.json`` (what it was
scored with); ``--max_new_tokens`` defaults to its ``max_length``. Bad input (no such model folder, an empty
input, a bad flag value) stops with a one-line error and exit status 2.

``transformers`` 5 has no ``translation`` pipeline; in Python, ``translate_lines(lines, model, tokenizer)``
does what this command does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli import ArgumentParser

DEFAULT_BATCH_SIZE = 32


def _bounded_int(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def build_parser(prog: str | None = None) -> ArgumentParser:
    """The command's parser; ``prog`` (default "translate") names it in usage and errors."""
    description = "\n\n".join(__doc__.split("\n\n")[:4])
    if prog and prog != "translate.py":  # installed (``modeling-study translate``): its examples name the command
        description = description.replace("python scripts/translate.py", prog)
    parser = ArgumentParser(prog=prog or "translate", description=description)
    parser.add_argument("model", help="A trained model folder (with its tokenizer) or a Hub id.")
    parser.add_argument("input", nargs="?", default="-", help="Text file, one source sentence a line (default: stdin).")
    parser.add_argument("-o", "--output", default="-", help="Write the translations here (default: stdout).")
    parser.add_argument("--num_beams", type=_bounded_int(1), default=None,
                        help="Beam size (default: the model's generation_config; 1 = greedy).")
    parser.add_argument("--length_penalty", type=_finite_float, default=None,
                        help="Beam search length penalty; > 1 favours longer translations (default: the model's).")
    parser.add_argument("--no_repeat_ngram_size", type=_bounded_int(0), default=None,
                        help="Never repeat an n-gram of this size in one translation; 0 = off (default: the model's).")
    parser.add_argument("--max_new_tokens", type=_bounded_int(1), default=None,
                        help="Longest translation in tokens (default: the model's max_length).")
    parser.add_argument("--batch_size", type=_bounded_int(1), default=DEFAULT_BATCH_SIZE,
                        help=f"Sentences per generate call (default {DEFAULT_BATCH_SIZE}).")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, mps ... (default: cuda when available).")
    parser.add_argument("--quiet", action="store_true", help="No progress bar.")
    return parser


class TranslateError(ValueError):
    """Bad input for the translate command; the message is one line that names the fix."""


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") != 1 or Path(name).exists()


def load_translator(model_name: str, device: str | None = None):
    """``(model, tokenizer)`` from a folder or Hub id; ``TranslateError`` when it is missing or not a
    study encoder-decoder with a tokenizer. The tokenizer appends ``</s>`` to every source."""
    import torch
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    from . import StudySeq2SeqConfig  # noqa: F401  (registers the study classes with the Auto classes)
    from .training.run import BadInputError
    from .training.translation import with_source_eos

    path = Path(model_name).expanduser()
    if _looks_like_path(model_name):
        if not path.is_dir():
            raise TranslateError(f"no model folder {model_name}: give the folder a training run wrote "
                                 f"(<output_dir>/final) or a Hub id.")
        if not (path / "config.json").is_file():
            raise TranslateError(f"{model_name} holds no config.json: not a saved model folder (use <output_dir>/final).")
        model_name = str(path)
    try:
        config = AutoConfig.from_pretrained(model_name)
    except (OSError, ValueError) as error:
        raise TranslateError(f"cannot load {model_name}: not a local folder, and the Hub said: "
                             f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    if not getattr(config, "is_encoder_decoder", False):
        raise TranslateError(f"{model_name} is not an encoder-decoder (model_type {config.model_type!r}); translate "
                             f"needs a model from scripts/train_translation.py.")
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_name)
    except (OSError, ValueError) as error:
        raise TranslateError(f"{model_name} has no usable tokenizer ({str(error).splitlines()[0]}); save the "
                             f"training tokenizer next to the model.") from None
    if tokenizer.eos_token_id is None or tokenizer.pad_token_id is None:
        raise TranslateError(f"the tokenizer of {model_name} has no </s> or <pad> token.")
    try:
        tokenizer = with_source_eos(tokenizer)
    except BadInputError as error:
        raise TranslateError(f"{model_name}: {error}") from None
    model = AutoModelForSeq2SeqLM.from_pretrained(model_name)
    if len(tokenizer) > model.config.vocab_size:
        raise TranslateError(f"the tokenizer of {model_name} has {len(tokenizer)} tokens but the model only "
                             f"{model.config.vocab_size}: they were not trained together.")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model.to(device)
    except (RuntimeError, AssertionError) as error:
        raise TranslateError(f"cannot use --device {device}: {str(error).splitlines()[0]}") from None
    return model.eval(), tokenizer


def _source_limit(model) -> int | None:
    """The longest source the model can read: its learned position table, else None (no limit)."""
    from .position_encodings import POSITION_ENCODINGS

    encoding = POSITION_ENCODINGS.get(getattr(model.config, "position_encoding", None))
    return model.config.max_position_embeddings if encoding is not None and encoding.bounded else None


def translate_lines(lines: list[str], model, tokenizer, *, num_beams: int | None = None,
                    length_penalty: float | None = None, no_repeat_ngram_size: int | None = None,
                    max_new_tokens: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                    progress: bool = False) -> list[str]:
    """The translation of each line, in order; a blank line gives "". Sources are batched by length (less
    padding); unset generation settings come from ``model.generation_config``."""
    import torch
    from tqdm.auto import tqdm

    settings = {key: value for key, value in (("num_beams", num_beams), ("length_penalty", length_penalty),
                                              ("no_repeat_ngram_size", no_repeat_ngram_size)) if value is not None}
    if max_new_tokens is not None:  # as max_length (the decoder start token + N), which the saved config also sets
        settings["max_length"] = max_new_tokens + 1
    sources = [line.strip() for line in lines]
    todo = sorted((i for i, text in enumerate(sources) if text), key=lambda i: (-len(sources[i]), i))
    outputs = [""] * len(sources)
    limit = _source_limit(model)
    device = next(model.parameters()).device
    with tqdm(total=len(todo), unit="line", desc="translating", file=sys.stderr, disable=not progress) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start: start + batch_size]
            encoded = tokenizer([sources[i] for i in batch], return_tensors="pt", padding=True,
                                truncation=limit is not None, max_length=limit)
            encoded.pop("token_type_ids", None)
            with torch.no_grad():
                generated = model.generate(**encoded.to(device), **settings)
            for i, text in zip(batch, tokenizer.batch_decode(generated, skip_special_tokens=True)):
                outputs[i] = " ".join(text.split("\n")).strip()
            bar.update(len(batch))
    return outputs


def _read_lines(name: str) -> list[str]:
    if name == "-":
        return sys.stdin.read().splitlines()
    path = Path(name)
    if not path.is_file():
        raise TranslateError(f"input file {name} not found" if not path.exists() else f"input {name} is not a file")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise TranslateError(f"input file {name} is not UTF-8 text (byte {error.start}).") from None


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """The command: parse ``argv``, translate, write; a bad input exits with status 2 and one line."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        lines = _read_lines(args.input)
        if not any(line.strip() for line in lines):
            raise TranslateError(f"{'stdin' if args.input == '-' else args.input} holds no text to translate "
                                 f"(one sentence a line).")
        if args.output != "-" and not Path(args.output).expanduser().parent.is_dir():
            raise TranslateError(f"--output {args.output}: no folder {Path(args.output).parent}.")
        model, tokenizer = load_translator(args.model, args.device)
    except TranslateError as error:
        parser.error(str(error))
    translations = translate_lines(lines, model, tokenizer, num_beams=args.num_beams,
                                   length_penalty=args.length_penalty,
                                   no_repeat_ngram_size=args.no_repeat_ngram_size,
                                   max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                                   progress=not args.quiet)
    text = "".join(line + "\n" for line in translations)
    if args.output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(args.output).expanduser().write_text(text, encoding="utf-8")
    return 0


__all__ = ["TranslateError", "build_parser", "load_translator", "main", "translate_lines"]
