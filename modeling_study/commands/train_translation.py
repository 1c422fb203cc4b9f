"""Train a study encoder-decoder to translate English -> Spanish (the embedded Bible), the recipe of
Vaswani et al. 2017: post-norm, sinusoidal positions, label smoothing 0.1, warmup + inverse-square-root
decay, Adam betas (0.9, 0.98), shared embeddings, a joint BPE vocabulary, beam search (4) at evaluation,
scored with sacreBLEU's BLEU and chrF on the test split.

Every choice is a flag (``--help`` lists them with transformers' Seq2SeqTrainingArguments). Seconds on a
laptop CPU (a tiny model, 20 steps; BLEU near 0)::

    python scripts/train_translation.py --output_dir runs/translate-tiny --hidden_size 32 \\
        --intermediate_size 64 --num_hidden_layers 1 --num_decoder_layers 1 --max_steps 20 \\
        --max_train_samples 400 --max_eval_samples 8 --tokenizer_vocab_size 1000 --max_target_length 24

The default trains a 3 + 3 layer, d_model 256 model for 2000 steps (batch 32); see
docs/translation.md for its time and scores. Resume after an interruption::

    python scripts/train_translation.py --output_dir runs/translate --resume_from_checkpoint last

The final model, tokenizer and results.json land in ``<output_dir>/final``; results.json (BLEU, chrF,
their sacreBLEU signatures, loss curve, three example translations) is also copied to ``<output_dir>``.
"""

from __future__ import annotations

import os

import transformers
from transformers import HfArgumentParser

from modeling_study.commands import describe
from modeling_study.training.run import BadInputError
from modeling_study.training.translation import ARGUMENT_CLASSES, format_summary, run_translation

SCRIPT = "train_translation.py"  # the checkout's scripts/train_translation.py


def main(argv: list[str] | None = None, prog: str | None = None) -> dict:
    """``prog`` None: argparse's own (the script's file name)."""
    parser = HfArgumentParser(ARGUMENT_CLASSES, prog=prog, description=describe(__doc__, SCRIPT, prog))
    args, training_args = parser.parse_args_into_dataclasses(args=argv)
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())
    try:
        results = run_translation(args, training_args)
    except BadInputError as error:  # raised before training starts; the message names the fix
        parser.error(str(error))
    if training_args.should_log:
        print(format_summary(results))  # the scores, the no-model baselines beside them, the BLEU signature
    return results


def cli(argv: list[str] | None = None, prog: str | None = None) -> int:
    """``modeling-study train-translation`` / ``python scripts/train_translation.py``: the exit status."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main(argv, prog)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
