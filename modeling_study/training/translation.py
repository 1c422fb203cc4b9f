"""``run_translation``: train a study encoder-decoder to translate, the recipe of Vaswani et al. 2017.

The recipe (arXiv:1706.03762, section 5) is the default of ``TranslationTrainingArguments``: Adam with
betas (0.9, 0.98), a linear warmup then inverse-square-root decay (``lr_scheduler_type="inverse_sqrt"``),
label smoothing 0.1, dropout 0.1, shared source/target embeddings tied to the output layer, a joint BPE
vocabulary for both languages, beam search at evaluation. Data: the embedded English-Spanish Bible
(``modeling_study.data.parallel``). Scores: sacreBLEU's BLEU and chrF on the test split, with signatures.

Every check (languages, lengths against a learned position table, the tokenizer against the model, the
checkpoint to resume from) runs before training; a bad input is a ``BadInputError`` naming the fix.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers import AutoConfig, DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments, set_seed
from transformers.utils import logging

from ..configuration_seq2seq import StudySeq2SeqConfig
from ..configuration_study import FFN_ACTIVATIONS
from ..modeling_seq2seq import StudyForConditionalGeneration
from ..norms import NORM_PLACEMENTS, NORM_TYPES
from ..position_encodings import POSITION_ENCODINGS
from .arguments import _help, _no_accelerator
from .callbacks import DivergenceCallback, HistoryCallback
from .run import BadInputError, resolve_checkpoint
from .saving import FINAL_DIRNAME, RESULTS_NAME, TMP_PREFIX, save_final_atomic, write_json_atomic

logger = logging.get_logger(__name__)
LANGUAGES = ("en", "es")
EVAL_SPLITS = ("validation", "test")


@dataclass
class TranslationArguments:
    """The model (a fresh ``StudySeq2SeqConfig`` from these flags, or a checkpoint) and the data."""

    source_lang: str = field(default="en", metadata=_help("Source language of the embedded Bible.", LANGUAGES))
    target_lang: str = field(default="es", metadata=_help("Target language.", LANGUAGES))
    tokenizer_name: str | None = field(
        default=None, metadata=_help("Tokenizer folder. Default: train a joint BPE tokenizer on both sides of the train "
                                     "split into <output_dir>/tokenizer (reused when it is already there)."))
    tokenizer_vocab_size: int = field(default=8000, metadata=_help("Vocabulary of the joint BPE tokenizer trained by default."))
    tokenizer_train_samples: int | None = field(
        default=None, metadata=_help("Train that tokenizer on the first N verse pairs only (default: all)."))
    model_name_or_path: str | None = field(
        default=None, metadata=_help("Start from this study seq2seq checkpoint; the size/choice flags are then ignored."))
    hidden_size: int = field(default=256, metadata=_help("Model width d_model."))
    intermediate_size: int = field(default=1024, metadata=_help("Feed-forward width d_ff."))
    num_hidden_layers: int = field(default=3, metadata=_help("Encoder layers."))
    num_decoder_layers: int = field(default=3, metadata=_help("Decoder layers."))
    num_attention_heads: int = field(default=4, metadata=_help("Attention heads."))
    position_encoding: str = field(default="sinusoidal", metadata=_help("Where position enters.", POSITION_ENCODINGS))
    max_position_embeddings: int = field(default=256, metadata=_help("Rows of a learned position table."))
    norm_placement: str = field(default="post", metadata=_help("The paper's is post.", NORM_PLACEMENTS))
    norm_type: str = field(default="layernorm", metadata=_help("Norm type.", NORM_TYPES))
    ffn_activation: str = field(default="relu", metadata=_help("The paper's is relu.", FFN_ACTIVATIONS))
    shared_embeddings: bool = field(
        default=True, metadata=_help("One embedding for source, target and the output layer (the paper's 3.4)."))
    scale_embeddings: bool = field(default=True, metadata=_help("Multiply embeddings by sqrt(d_model) (the paper's 3.4)."))
    dropout: float = field(default=0.1, metadata=_help("Residual, attention and embedding dropout (the paper's 0.1)."))
    max_source_length: int = field(default=128, metadata=_help("Source tokens kept per verse (with </s>)."))
    max_target_length: int = field(default=128, metadata=_help("Target tokens kept per training verse (with </s>); "
                                                                  "also the generation limit. BLEU is scored against "
                                                                  "the untruncated reference."))
    max_train_samples: int | None = field(default=None, metadata=_help("Keep only the first N training pairs."))
    max_eval_samples: int | None = field(default=None, metadata=_help("Keep only the first N pairs of --eval_split."))
    eval_split: str = field(default="test", metadata=_help("Split scored at the end (beam search, BLEU, chrF).", EVAL_SPLITS))


@dataclass
class TranslationTrainingArguments(Seq2SeqTrainingArguments):
    """transformers' Seq2SeqTrainingArguments with the paper's recipe as defaults (all its flags still work)."""

    output_dir: str = field(default="runs/translate", metadata=_help("Checkpoints; the final model in <output_dir>/final."))
    max_steps: int = field(default=2000, metadata=_help("Optimizer steps."))
    per_device_train_batch_size: int = field(default=32, metadata=_help("Verse pairs per step per process."))
    per_device_eval_batch_size: int = field(default=64, metadata=_help("Verse pairs per evaluation step."))
    learning_rate: float = field(default=1e-3, metadata=_help("Peak learning rate, reached at the end of the warmup."))
    warmup_steps: float = field(default=200, metadata=_help("Linear warmup steps (0: none)."))
    lr_scheduler_type: str = field(default="inverse_sqrt", metadata=_help("The paper's: warmup, then 1/sqrt(step)."))
    adam_beta1: float = field(default=0.9, metadata=_help("Adam beta1 (the paper's 0.9)."))
    adam_beta2: float = field(default=0.98, metadata=_help("Adam beta2 (the paper's 0.98)."))
    weight_decay: float = field(default=0.0, metadata=_help("Weight decay (the paper uses none)."))
    label_smoothing_factor: float = field(default=0.1, metadata=_help("Label smoothing (the paper's 0.1)."))
    predict_with_generate: bool = field(default=True, metadata=_help("Score generated translations (BLEU, chrF)."))
    generation_num_beams: int | None = field(default=4, metadata=_help("Beam size at evaluation (the paper's 4)."))
    logging_steps: float = field(default=25, metadata=_help("Log loss and grad norm every N steps."))
    save_steps: float = field(default=500, metadata=_help("Checkpoint every N steps."))
    save_total_limit: int | None = field(default=2, metadata=_help("Keep at most N checkpoints."))
    eval_strategy: str = field(default="no", metadata=_help("Evaluate during training (no/steps/epoch); a final one always runs."))
    logging_nan_inf_filter: bool = field(default=False, metadata=_help("Keep False: True hides NaN losses from the divergence check."))
    report_to: None | str | list[str] = field(default="none", metadata=_help("Experiment trackers."))
    seed: int = field(default=42, metadata=_help("Seed for weights, data order and dropout."))
    use_cpu: bool = field(default=False, metadata=_help("Train on CPU (turned on when no accelerator is present)."))
    dataloader_pin_memory: bool = field(default=False, metadata=_help("Pin batches in page-locked memory (GPU only)."))

    def __post_init__(self):
        if not self.use_cpu and _no_accelerator():
            self.use_cpu = True
        super().__post_init__()


ARGUMENT_CLASSES = (TranslationArguments, TranslationTrainingArguments)


def _check_arguments(args: TranslationArguments) -> None:
    for name, valid in (("source_lang", LANGUAGES), ("target_lang", LANGUAGES), ("eval_split", EVAL_SPLITS)):
        if getattr(args, name) not in valid:
            raise BadInputError(f"--{name} must be one of {list(valid)}, got {getattr(args, name)!r}.")
    if args.source_lang == args.target_lang:
        raise BadInputError(f"--source_lang and --target_lang are both {args.source_lang!r}; pick two languages.")
    for name in ("max_source_length", "max_target_length"):
        if getattr(args, name) < 2:
            raise BadInputError(f"--{name} must be >= 2 (a token and </s>), got {getattr(args, name)}.")


def load_or_train_tokenizer(args: TranslationArguments, output_dir: str):
    """The given tokenizer, or a joint byte-level BPE tokenizer trained on both sides of the train split."""
    from transformers import AutoTokenizer

    if args.tokenizer_name is not None:
        if not Path(args.tokenizer_name).is_dir():
            raise BadInputError(f"--tokenizer_name {args.tokenizer_name}: no such folder. Train one with "
                                f"`python scripts/train_tokenizer.py --parallel --output_dir DIR`, or leave it unset.")
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer_name)
    else:
        tokenizer = joint_tokenizer(Path(output_dir) / "tokenizer", args.tokenizer_vocab_size, args.tokenizer_train_samples)
    missing = [role for role in ("pad_token_id", "eos_token_id", "bos_token_id") if getattr(tokenizer, role) is None]
    if missing:
        raise BadInputError(f"the tokenizer has no {', '.join(missing)}; translation needs <s>, </s> and <pad>.")
    return tokenizer


def joint_text(train_samples: int | None = None):
    """Both sides of the first ``train_samples`` (default all) pairs of the embedded train split, one verse
    per row of a ``datasets.Dataset`` ("text" column): what a joint BPE vocabulary is trained on."""
    from datasets import Dataset

    from ..data.parallel import load_pairs

    pairs = load_pairs("train", train_samples)
    return Dataset.from_dict({"text": [p[lang] for lang in LANGUAGES for p in pairs]})


def joint_tokenizer(directory: Path, vocab_size: int, train_samples: int | None = None):
    """The joint byte-level BPE tokenizer saved in ``directory``, trained there on ``joint_text`` first if it
    is not there yet."""
    from transformers import AutoTokenizer

    from ..tokenization import train_bpe_tokenizer

    if (Path(directory) / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(directory)
    return train_bpe_tokenizer(dataset=joint_text(train_samples), vocab_size=vocab_size, output_dir=directory)


def build_config(args: TranslationArguments, tokenizer) -> StudySeq2SeqConfig:
    """The model's config, checked against the tokenizer and the lengths."""
    if args.model_name_or_path:
        config = AutoConfig.from_pretrained(args.model_name_or_path)
        if not isinstance(config, StudySeq2SeqConfig):
            raise BadInputError(f"{args.model_name_or_path} is not a study seq2seq model (model_type "
                                f"{config.model_type!r}, expected 'study_seq2seq').")
    else:
        config = StudySeq2SeqConfig(
            vocab_size=len(tokenizer), hidden_size=args.hidden_size, intermediate_size=args.intermediate_size,
            num_hidden_layers=args.num_hidden_layers, num_decoder_layers=args.num_decoder_layers,
            num_attention_heads=args.num_attention_heads, max_position_embeddings=args.max_position_embeddings,
            position_encoding=args.position_encoding, norm_placement=args.norm_placement, norm_type=args.norm_type,
            ffn_activation=args.ffn_activation, share_encoder_decoder_embeddings=args.shared_embeddings,
            tie_word_embeddings=args.shared_embeddings,
            embedding_multiplier=math.sqrt(args.hidden_size) if args.scale_embeddings else 1.0,
            hidden_dropout=args.dropout, attention_dropout=args.dropout, embedding_dropout=args.dropout,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.bos_token_id,
        )
    if config.vocab_size != len(tokenizer) or config.pad_token_id != tokenizer.pad_token_id:
        raise BadInputError(
            f"the tokenizer ({len(tokenizer)} tokens, pad id {tokenizer.pad_token_id}) does not match the model "
            f"(vocab_size {config.vocab_size}, pad id {config.pad_token_id}): use the tokenizer the model was trained "
            f"with (saved in its folder), or train a fresh model with this one."
        )
    if POSITION_ENCODINGS[config.position_encoding].bounded:
        for name in ("max_source_length", "max_target_length"):
            if getattr(args, name) > config.max_position_embeddings:
                raise BadInputError(
                    f"--{name} {getattr(args, name)} is longer than max_position_embeddings="
                    f"{config.max_position_embeddings}, the rows of the {config.position_encoding!r} table. Lower "
                    f"--{name} or raise --max_position_embeddings.")
    return config


def tokenized_splits(args: TranslationArguments, tokenizer) -> dict:
    """``{"train": Dataset, "eval": Dataset}`` of input_ids/labels, each ending with </s>, truncated to the limits."""
    from datasets import Dataset

    from ..data.parallel import load_pairs

    def encode(batch):
        sources = tokenizer(batch[args.source_lang], add_special_tokens=False)["input_ids"]
        targets = tokenizer(batch[args.target_lang], add_special_tokens=False)["input_ids"]
        eos = tokenizer.eos_token_id
        return {"input_ids": [ids[: args.max_source_length - 1] + [eos] for ids in sources],
                "labels": [ids[: args.max_target_length - 1] + [eos] for ids in targets]}

    splits = {}
    for name, split, limit in (("train", "train", args.max_train_samples), ("eval", args.eval_split, args.max_eval_samples)):
        pairs = load_pairs(split, limit)
        dataset = Dataset.from_list(pairs)
        splits[name] = dataset.map(encode, batched=True, remove_columns=["ref", "en", "es"])
        splits[name + "_pairs"] = pairs
    return splits


def translation_metrics(tokenizer, references: list[str] | None = None):
    """``compute_metrics`` for Seq2SeqTrainer: decode generated ids, score with sacreBLEU against ``references``
    (the evaluation split's untruncated target texts, in order), or against the decoded labels when not given."""
    import numpy as np

    from ..metrics import load_metric

    metric = load_metric("translation")

    def compute_metrics(prediction):
        predictions, labels = prediction.predictions, prediction.label_ids
        predictions = np.where(predictions < 0, tokenizer.pad_token_id, predictions)  # generate pads with -100
        labels = np.where(labels < 0, tokenizer.pad_token_id, labels)
        hypotheses = [text.strip() for text in tokenizer.batch_decode(predictions, skip_special_tokens=True)]
        if references is not None and len(references) == len(hypotheses):
            targets = list(references)
        else:
            targets = [text.strip() for text in tokenizer.batch_decode(labels, skip_special_tokens=True)]
        scores = metric.compute(predictions=hypotheses, references=targets)
        compute_metrics.last = (hypotheses, targets)
        return {key: scores[key] for key in ("bleu", "chrf", "bleu_signature", "chrf_signature")}

    compute_metrics.last = None
    return compute_metrics


def run_translation(args: TranslationArguments, training_args: TranslationTrainingArguments, *,
                    callbacks: list | None = None, divergence_factor: float | None = 3.0) -> dict:
    """Train one translation model, score it, save it; returns (and writes to results.json) a dict:
    ``bleu``, ``chrf`` (sacreBLEU, beam search on ``eval_split``), their ``*_signature``, ``eval_loss``
    (label-smoothed cross-entropy on that split), ``loss_history``, ``diverged``, ``examples``
    (the first three source / reference / hypothesis triples), ``wall_time``, ``final_dir``, ..."""
    start = time.perf_counter()
    _check_arguments(args)
    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    tokenizer = load_or_train_tokenizer(args, training_args.output_dir)
    config = build_config(args, tokenizer)
    if training_args.logging_nan_inf_filter:
        training_args.logging_nan_inf_filter = False
    training_args.generation_max_length = training_args.generation_max_length or args.max_target_length
    data = tokenized_splits(args, tokenizer)

    set_seed(training_args.seed)
    if args.model_name_or_path:
        model = StudyForConditionalGeneration.from_pretrained(args.model_name_or_path)
    else:
        model = StudyForConditionalGeneration(config)
    model.generation_config.update(decoder_start_token_id=config.decoder_start_token_id, eos_token_id=config.eos_token_id,
                                   pad_token_id=config.pad_token_id, bos_token_id=config.bos_token_id,
                                   max_length=args.max_target_length, num_beams=training_args.generation_num_beams or 1)
    history, divergence = HistoryCallback(), DivergenceCallback(blowup_factor=divergence_factor)
    compute_metrics = translation_metrics(tokenizer, [p[args.target_lang] for p in data["eval_pairs"]])
    trainer = Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),  # adds decoder_input_ids (labels shifted right)
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[history, divergence, *(callbacks or [])],
    )
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = trainer.evaluate(eval_dataset=data["eval"], metric_key_prefix="eval")
    trainer.log_metrics("eval", metrics)
    hypotheses, references = compute_metrics.last
    pairs = data["eval_pairs"]
    results = {
        "bleu": metrics.get("eval_bleu"),
        "chrf": metrics.get("eval_chrf"),
        "bleu_signature": metrics.get("eval_bleu_signature"),
        "chrf_signature": metrics.get("eval_chrf_signature"),
        "eval_loss": metrics.get("eval_loss"),
        "eval_split": args.eval_split,
        "eval_pairs": len(pairs),
        "num_beams": training_args.generation_num_beams,
        "examples": [{"ref": p["ref"], "source": p[args.source_lang], "reference": ref, "hypothesis": hyp}
                     for p, ref, hyp in zip(pairs[:3], references[:3], hypotheses[:3])],
        "final_train_loss": history.loss[-1][1] if history.loss else None,
        "loss_history": history.loss,
        "grad_norm_history": history.grad_norm,
        "learning_rate_history": history.learning_rate,
        **divergence.summary(),
        "global_step": trainer.state.global_step,
        "resumed_from": checkpoint,
        "num_parameters": model.num_parameters(),
        "train_pairs": len(data["train"]),
        "train_runtime": train_result.metrics.get("train_runtime"),
        "seed": training_args.seed,
        "config": config.to_diff_dict(),
        "output_dir": str(training_args.output_dir),
        "final_dir": str(Path(training_args.output_dir) / FINAL_DIRNAME),
    }
    is_main = trainer.is_world_process_zero()

    def write(directory: Path) -> None:
        trainer.save_model(str(directory), _internal_call=True)  # no push of a half-written folder (see run.py)
        if is_main:
            tokenizer.save_pretrained(str(directory))
            results["wall_time"] = time.perf_counter() - start
            write_json_atomic(directory / RESULTS_NAME, results)

    save_final_atomic(training_args.output_dir, write, is_main=is_main, barrier=trainer.accelerator.wait_for_everyone,
                      tmp_name=f"{TMP_PREFIX}step{trainer.state.global_step}")
    results["wall_time"] = time.perf_counter() - start
    if is_main:
        write_json_atomic(Path(training_args.output_dir) / RESULTS_NAME, results)
    return results


__all__ = ["ARGUMENT_CLASSES", "TranslationArguments", "TranslationTrainingArguments", "run_translation"]
