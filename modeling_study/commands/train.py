"""Train a study model (causal or masked LM) with Hugging Face Trainer.

Every StudyConfig choice is a flag, data flags choose the text, and all of transformers'
TrainingArguments work (``--help`` lists them). A run that takes seconds on a laptop CPU::

    python scripts/train.py --output_dir runs/tiny --hidden_size 32 --intermediate_size 64 \\
        --block_size 32 --max_steps 20 --max_train_samples 200 --max_eval_samples 20

The default (no flags) trains a 0.85M-parameter model for 400 steps (batch 16 x 128 tokens) on the
embedded KJV corpus with the repository tokenizer: 446 s measured on 2 CPU cores shared with other
jobs (load average 12, OMP_NUM_THREADS=1). Your own text, a masked LM, a post-norm ALiBi model::

    python scripts/train.py --train_file my.txt --validation_file my_val.txt --output_dir runs/mine
    python scripts/train.py --objective mlm --position_encoding learned --output_dir runs/mlm
    python scripts/train.py --position_encoding alibi --norm_placement post --warmup_steps 100

Resume after an interruption (``last`` = newest complete checkpoint in --output_dir)::

    python scripts/train.py --output_dir runs/train --resume_from_checkpoint last

Data parallel over 2 CPU processes: ``accelerate launch --multi_gpu --num_processes 2 scripts/train.py ...``
(accelerate's ``--cpu`` flag starts one process only).
The final model, tokenizer, results.json and README.md card land in ``<output_dir>/final``
(written to a temporary folder, then renamed); results.json is also copied to ``<output_dir>``.
"""

from __future__ import annotations

import os

import transformers
from transformers import HfArgumentParser

from modeling_study.cli import DefaultsHelpFormatter, ShortErrorsMixin, describe_negative_flags
from modeling_study.commands import describe
from modeling_study.training import BadInputError, run_training
from modeling_study.training.arguments import ARGUMENT_CLASSES, NEGATIVE_FLAG_HELP

SCRIPT = "train.py"  # the checkout's scripts/train.py, and this parser's name when run as that script


class TrainArgumentParser(ShortErrorsMixin, HfArgumentParser):
    """``HfArgumentParser`` whose errors are one line (its full usage block is ~130 lines); ``--help`` lists all."""


def build_parser(prog: str = SCRIPT) -> TrainArgumentParser:
    description = describe(__doc__, SCRIPT, prog)
    if prog != SCRIPT:  # accelerate runs a module with -m: `accelerate launch ... -m modeling_study train ...`
        description = description.replace("scripts/train.py", "-m modeling_study train")
    parser = TrainArgumentParser(ARGUMENT_CLASSES, prog=prog, description=description,
                                 formatter_class=DefaultsHelpFormatter)
    describe_negative_flags(parser, NEGATIVE_FLAG_HELP)
    return parser


def main(argv: list[str] | None = None, prog: str = SCRIPT) -> dict:
    parser = build_parser(prog)
    try:
        model_args, data_args, training_args, unknown = parser.parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True)
    except ValueError as error:  # TrainingArguments' own checks (__post_init__), e.g. conflicting flags
        parser.error(str(error))
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    try:
        results = run_training(model_args, data_args, training_args)
    except BadInputError as error:  # raised before training starts; the message names the fix
        parser.error(str(error))
    if training_args.should_log:
        print(
            f"done: step {results['global_step']}, train loss {results['final_train_loss']}, "
            f"eval loss {results['eval_loss']}, perplexity {results['eval_perplexity']}, "
            f"diverged {results['diverged']}, {results['wall_time']:.1f} s -> {results['final_dir']}"
        )
    return results


def cli(argv: list[str] | None = None, prog: str = SCRIPT) -> int:
    """``modeling-study train`` / ``python scripts/train.py``: ``main`` in a process of its own; the exit status."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main(argv, prog)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
