"""``run_translation``: train a study encoder-decoder to translate, the recipe of Vaswani et al. 2017.

The recipe (arXiv:1706.03762, section 5) is the default of ``TranslationTrainingArguments``: Adam with
betas (0.9, 0.98), a linear warmup then inverse-square-root decay (``lr_scheduler_type="inverse_sqrt"``),
label smoothing 0.1, dropout 0.1, shared source/target embeddings tied to the output layer, a joint BPE
vocabulary for both languages, beam search at evaluation. Data: the embedded English-Spanish Bible
(``modeling_study.data.parallel``). Scores: sacreBLEU's BLEU and chrF on the test split, with signatures,
each printed beside three no-model baselines on the same verses (``translation_baselines``: the Spanish of
the most similar English training verse, one fixed training sentence, the source copied).

Model selection: with ``--eval_strategy steps`` the validation verses are translated (beam search) and
scored at every ``--eval_steps`` (default: ``--save_steps``); the checkpoint with the best validation BLEU
is the final model (``load_best_model_at_end``, ``metric_for_best_model="bleu"``), ``--early_stopping_patience``
stops after that many evaluations without improvement, and ``--average_last_n N`` instead averages the
weights of the last N checkpoints. The test verses are scored once, at the end; every hypothesis is written
to ``hypotheses.<split>.txt`` beside results.json.

The tokenizer saved with the model appends ``</s>`` to every text (``with_source_eos``), as the training
pipeline does to every source, so ``model.generate(**tokenizer(sources, return_tensors="pt", padding=True))``
sees what training saw; ``modeling_study.translate`` (``python scripts/translate.py``) translates a file.

Every check (languages, lengths against a learned position table, the tokenizer against the model, the
checkpoint to resume from) runs before training; a bad input is a ``BadInputError`` naming the fix.
"""

from __future__ import annotations

import math
import time
import warnings
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
from .translation_baselines import format_baselines, score_baselines

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
    max_source_length: int = field(default=160, metadata=_help("Source tokens kept per verse (with </s>). The default "
                                                                  "cuts no verse (longest training source: 119 tokens "
                                                                  "at vocabulary 8000, 131 at 4000); a run that cuts "
                                                                  "some warns with their number."))
    max_target_length: int = field(default=160, metadata=_help("Target tokens kept per training verse (with </s>); "
                                                                  "also the generation limit (longest training target: "
                                                                  "112 tokens at vocabulary 8000, 128 at 4000). BLEU is "
                                                                  "scored against the untruncated reference."))
    max_train_samples: int | None = field(default=None, metadata=_help("Keep only the first N training pairs."))
    max_eval_samples: int | None = field(default=None, metadata=_help("Keep only the first N pairs of --eval_split."))
    max_validation_samples: int | None = field(
        default=None, metadata=_help("Translate only the first N validation verses at each evaluation during training."))
    eval_split: str = field(default="test", metadata=_help("Split scored once at the end (beam search, BLEU, chrF).",
                                                           EVAL_SPLITS))
    generation_length_penalty: float = field(
        default=1.0, metadata=_help("Beam search length penalty (exponent of the length normaliser; >1 favours longer "
                                    "translations). Saved in the model's generation_config."))
    generation_no_repeat_ngram_size: int = field(
        default=0, metadata=_help("Forbid repeating any n-gram of this size in a translation (0: off). Saved in the "
                                  "model's generation_config."))
    average_last_n: int = field(
        default=0, metadata=_help("Make the final model the average of the weights of the last N step checkpoints "
                                  "(N >= 2; 0: off). Needs --save_total_limit >= N (or unset)."))
    early_stopping_patience: int | None = field(
        default=None, metadata=_help("Stop after N evaluations without a better validation BLEU (needs --eval_strategy)."))
    baselines: bool = field(
        default=True, metadata=_help("Score the no-model baselines (retrieval, constant, copy) on the same verses."))


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
    eval_strategy: str = field(default="no", metadata=_help(
        "Translate and score the validation verses during training (no/steps/epoch); the test verses are scored "
        "once at the end either way."))
    eval_steps: float | None = field(default=None, metadata=_help("Validate every N steps (default: --save_steps)."))
    load_best_model_at_end: bool = field(
        default=True, metadata=_help("End with the checkpoint of the best validation --metric_for_best_model "
                                     "(only when evaluating during training)."))
    metric_for_best_model: str | None = field(default="bleu", metadata=_help("Validation metric that picks the best "
                                                                               "checkpoint (bleu, chrf or loss)."))
    logging_nan_inf_filter: bool = field(default=False, metadata=_help("Keep False: True hides NaN losses from the divergence check."))
    report_to: None | str | list[str] = field(default="none", metadata=_help("Experiment trackers."))
    seed: int = field(default=42, metadata=_help("Seed for weights, data order and dropout."))
    use_cpu: bool = field(default=False, metadata=_help("Train on CPU (turned on when no accelerator is present)."))
    dataloader_pin_memory: bool = field(default=False, metadata=_help("Pin batches in page-locked memory (GPU only)."))

    def __post_init__(self):
        if not self.use_cpu and _no_accelerator():
            self.use_cpu = True
        if str(getattr(self.eval_strategy, "value", self.eval_strategy)) == "no":
            self.load_best_model_at_end = False  # nothing to select on
        elif self.eval_steps is None:
            self.eval_steps = self.save_steps  # every checkpoint has a validation score
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
    if args.average_last_n < 0 or args.average_last_n == 1:
        raise BadInputError(f"--average_last_n must be 0 (off) or >= 2 checkpoints, got {args.average_last_n}.")
    if args.generation_no_repeat_ngram_size < 0:
        raise BadInputError(f"--generation_no_repeat_ngram_size must be >= 0, got {args.generation_no_repeat_ngram_size}.")
    for name in ("max_validation_samples", "early_stopping_patience"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise BadInputError(f"--{name} must be >= 1, got {getattr(args, name)}.")


def _check_training_arguments(args: TranslationArguments, training_args: TranslationTrainingArguments) -> None:
    evaluating = str(getattr(training_args.eval_strategy, "value", training_args.eval_strategy)) != "no"
    if args.early_stopping_patience is not None and not (evaluating and training_args.load_best_model_at_end):
        raise BadInputError("--early_stopping_patience needs validation during training: add --eval_strategy steps "
                            "(and keep --load_best_model_at_end).")
    if evaluating and training_args.metric_for_best_model not in (None, "bleu", "chrf", "loss", "eval_bleu",
                                                                  "eval_chrf", "eval_loss"):
        raise BadInputError(f"--metric_for_best_model must be bleu, chrf or loss, got "
                            f"{training_args.metric_for_best_model!r}.")
    limit = training_args.save_total_limit
    if args.average_last_n and limit is not None and limit < args.average_last_n:
        raise BadInputError(f"--average_last_n {args.average_last_n} needs that many checkpoints kept: raise "
                            f"--save_total_limit (now {limit}) to >= {args.average_last_n}.")


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
    return with_source_eos(tokenizer)


def with_source_eos(tokenizer):
    """``tokenizer``, changed in place to append ``</s>`` to every text it encodes with special tokens
    (``"$A </s>"``, pairs ``"$A </s> $B </s>"``), after its byte-level post-processing: exactly the ids the
    training pipeline builds for a source (``tokenized_splits``), truncation included (``max_length`` counts
    the ``</s>``). A fast tokenizer whose encodings already end with ``</s>`` is left as it is."""
    from tokenizers import processors

    eos, eos_id = tokenizer.eos_token, tokenizer.eos_token_id
    if tokenizer("a")["input_ids"][-1:] == [eos_id]:
        return tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise BadInputError("translation needs a fast tokenizer (a tokenizer.json) to append </s> to every source.")
    steps = [backend.post_processor] if backend.post_processor is not None else []
    steps.append(processors.TemplateProcessing(single=f"$A {eos}", pair=f"$A {eos} $B {eos}",
                                               special_tokens=[(eos, eos_id)]))
    backend.post_processor = processors.Sequence(steps)
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
        return with_source_eos(AutoTokenizer.from_pretrained(directory))
    tokenizer = with_source_eos(train_bpe_tokenizer(dataset=joint_text(train_samples), vocab_size=vocab_size,
                                                    output_dir=directory))
    tokenizer.save_pretrained(str(directory))
    return tokenizer


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


def encode_pairs(pairs: list[dict], tokenizer, args: TranslationArguments) -> tuple[dict, dict]:
    """The training pipeline's ids for ``pairs``: ``({"input_ids": [...], "labels": [...]}, cut)``, each source
    and target its tokens cut to ``max_*_length - 1`` then ``</s>`` (for a source, what
    ``tokenizer(source, max_length=max_source_length, truncation=True)`` gives with ``with_source_eos``);
    ``cut`` counts the sources and targets that lost tokens."""
    eos = tokenizer.eos_token_id
    sources = tokenizer([p[args.source_lang] for p in pairs], add_special_tokens=False)["input_ids"]
    targets = tokenizer([p[args.target_lang] for p in pairs], add_special_tokens=False)["input_ids"]
    cut = {"sources": sum(len(ids) > args.max_source_length - 1 for ids in sources),
           "targets": sum(len(ids) > args.max_target_length - 1 for ids in targets),
           "longest_source": max((len(ids) + 1 for ids in sources), default=0),
           "longest_target": max((len(ids) + 1 for ids in targets), default=0)}
    return ({"input_ids": [ids[: args.max_source_length - 1] + [eos] for ids in sources],
             "labels": [ids[: args.max_target_length - 1] + [eos] for ids in targets]}, cut)


def tokenized_splits(args: TranslationArguments, tokenizer, *, validation: bool = False) -> dict:
    """``{"train": Dataset, "eval": Dataset[, "validation": Dataset]}`` of input_ids/labels, each ending with
    </s>, truncated to the limits; ``<name>_pairs`` the verse pairs, ``<name>_cut`` the truncation counts.
    A warning names how many training sources/targets were cut (a cut target ends with </s> too early and
    teaches the model to stop early)."""
    from datasets import Dataset

    from ..data.parallel import load_pairs

    splits = {}
    wanted = [("train", "train", args.max_train_samples), ("eval", args.eval_split, args.max_eval_samples)]
    if validation:
        wanted.append(("validation", "validation", args.max_validation_samples))
    for name, split, limit in wanted:
        pairs = load_pairs(split, limit)
        columns, cut = encode_pairs(pairs, tokenizer, args)
        splits[name] = Dataset.from_dict(columns)
        splits[name + "_pairs"], splits[name + "_cut"] = pairs, cut
    cut = splits["train_cut"]
    if cut["targets"] or cut["sources"]:
        message = (f"--max_target_length {args.max_target_length} cuts {cut['targets']} of {len(splits['train_pairs'])} "
                   f"training targets (longest {cut['longest_target']} tokens with </s>) and --max_source_length "
                   f"{args.max_source_length} cuts {cut['sources']} sources (longest {cut['longest_source']}); a cut "
                   f"target still ends with </s>, which teaches stopping early. Raise the limits to keep every verse whole.")
        warnings.warn(message, stacklevel=2)  # once per run (a logger warning as well would print it twice)
    return splits


def translation_metrics(tokenizer, references: list[str] | None = None):
    """``compute_metrics`` for Seq2SeqTrainer: decode generated ids, score with sacreBLEU against
    ``compute_metrics.references`` (the evaluated split's untruncated target texts, in order; set it before
    evaluating another split), or against the decoded labels when it is None or of another length.
    ``compute_metrics.last`` holds the last (hypotheses, references)."""
    import numpy as np

    from ..metrics import load_metric

    metric = load_metric("translation")

    def compute_metrics(prediction):
        predictions, labels = prediction.predictions, prediction.label_ids
        predictions = np.where(predictions < 0, tokenizer.pad_token_id, predictions)  # generate pads with -100
        labels = np.where(labels < 0, tokenizer.pad_token_id, labels)
        hypotheses = [text.strip() for text in tokenizer.batch_decode(predictions, skip_special_tokens=True)]
        references = compute_metrics.references
        if references is not None and len(references) == len(hypotheses):
            targets = list(references)
        else:
            targets = [text.strip() for text in tokenizer.batch_decode(labels, skip_special_tokens=True)]
        scores = metric.compute(predictions=hypotheses, references=targets)
        compute_metrics.last = (hypotheses, targets)
        return {key: scores[key] for key in ("bleu", "chrf", "bleu_signature", "chrf_signature")}

    compute_metrics.last = None
    compute_metrics.references = references
    return compute_metrics


def checkpoint_dirs(output_dir: str | Path, up_to_step: int | None = None) -> list[Path]:
    """The ``checkpoint-<step>`` folders of ``output_dir`` (at most ``up_to_step``), oldest first."""
    found = []
    for path in Path(output_dir).glob("checkpoint-*"):
        step = path.name.removeprefix("checkpoint-")
        if path.is_dir() and step.isdigit() and (up_to_step is None or int(step) <= up_to_step):
            found.append((int(step), path))
    return [path for _, path in sorted(found)]


def average_checkpoints(model, checkpoints: list[str | Path]) -> None:
    """Load into ``model`` the element-wise mean of the floating-point weights of ``checkpoints`` (each
    loaded with ``from_pretrained``, so tied weights are handled); other tensors come from the last one."""
    import torch

    if not checkpoints:
        raise ValueError("no checkpoints to average")
    total = None
    for checkpoint in checkpoints:
        state = type(model).from_pretrained(str(checkpoint)).state_dict()
        if total is None:
            total = {k: v.double() if v.is_floating_point() else v for k, v in state.items()}
        else:
            for key, value in state.items():
                total[key] = total[key] + value.double() if value.is_floating_point() else value
    reference = model.state_dict()
    averaged = {k: (v / len(checkpoints)).to(reference[k].dtype) if v.is_floating_point() else v for k, v in total.items()}
    with torch.no_grad():
        model.load_state_dict(averaged)


def write_hypotheses(path: Path, hypotheses: list[str]) -> None:
    """One hypothesis per line, in the split's order (line breaks inside one become spaces)."""
    path.write_text("".join(" ".join(h.splitlines()) + "\n" for h in hypotheses), encoding="utf-8")


def format_summary(results: dict) -> str:
    """The lines a run prints: scores, the baselines beside them, the BLEU signature."""
    lines = [f"done: step {results['global_step']}, BLEU {results['bleu']:.2f}, chrF {results['chrf']:.2f} "
             f"({results['eval_split']}, {results['eval_pairs']} verses, beam {results['num_beams']}), "
             f"eval loss {results['eval_loss'] if results['eval_loss'] is not None else float('nan'):.3f}, "
             f"{results.get('wall_time') or 0:.0f} s -> {results['final_dir']}"]
    if results.get("baselines"):
        lines.append(f"same verses, {format_baselines(results['baselines'])}")
    if results.get("validation_bleu") is not None:
        lines.append(f"validation: BLEU {results['validation_bleu']:.2f}, chrF {results['validation_chrf']:.2f} "
                     f"({results['selected']})")
    lines.append(f"BLEU signature: {results['bleu_signature']}")
    return "\n".join(lines)


def translation_card(results: dict, args: TranslationArguments, config) -> str:
    """A short model card (README.md) for the final folder: scores beside the baselines, how to translate."""
    rows = [f"| this model | {results['bleu']:.2f} | {results['chrf']:.2f} |"]
    for name, baseline in (results.get("baselines") or {}).items():
        rows.append(f"| baseline: {baseline['description']} | {baseline['bleu']:.2f} | {baseline['chrf']:.2f} |")
    validation = ""
    if results.get("validation_bleu") is not None:
        validation = (f"\nModel selection on {results['validation_pairs']} validation verses: BLEU "
                      f"{results['validation_bleu']:.2f}, chrF {results['validation_chrf']:.2f} ({results['selected']}).\n")
    return f"""---
library_name: transformers
license: apache-2.0
pipeline_tag: translation
language: [{args.source_lang}, {args.target_lang}]
tags: [modeling-study, custom_code]
---

# Study encoder-decoder, {args.source_lang} -> {args.target_lang} (embedded Bible verses)

{config.num_hidden_layers} + {config.num_decoder_layers} layers, d_model {config.hidden_size}, \
{results['num_parameters']:,} parameters, trained {results['global_step']} steps on {results['train_pairs']} verse pairs \
(`modeling_study.training.translation`).

Scores on {results['eval_pairs']} {results['eval_split']} verses (beam {results['num_beams']}; sacreBLEU \
`{results['bleu_signature']}`, `{results['chrf_signature']}`), beside no-model baselines on the same verses:

| system | BLEU | chrF |
|---|---|---|
{chr(10).join(rows)}
{validation}
Translate a file (one English line in, one Spanish line out):

```bash
python scripts/translate.py THIS_FOLDER verses.en.txt --output verses.es.txt
```

The tokenizer appends `</s>` to every source, as training did, so
`model.generate(**tokenizer(lines, return_tensors="pt", padding=True))` also works.
"""


def _evaluating(training_args) -> bool:
    return str(getattr(training_args.eval_strategy, "value", training_args.eval_strategy)) != "no"


def run_translation(args: TranslationArguments, training_args: TranslationTrainingArguments, *,
                    callbacks: list | None = None, divergence_factor: float | None = 3.0) -> dict:
    """Train one translation model, score it, save it; returns (and writes to results.json) a dict:
    ``bleu``, ``chrf`` (sacreBLEU, beam search on ``eval_split``, scored once at the end), their
    ``*_signature``, ``eval_loss`` (label-smoothed cross-entropy on that split), ``baselines`` (no-model
    scores on the same verses), ``validation_history`` / ``validation_bleu`` / ``selected`` (when validating
    during training), ``hypotheses_file``, ``loss_history``, ``diverged``, ``examples`` (the first three
    source / reference / hypothesis triples), ``truncated``, ``wall_time``, ``final_dir``, ..."""
    from transformers import EarlyStoppingCallback

    start = time.perf_counter()
    _check_arguments(args)
    _check_training_arguments(args, training_args)
    checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
    tokenizer = load_or_train_tokenizer(args, training_args.output_dir)
    config = build_config(args, tokenizer)
    if training_args.logging_nan_inf_filter:
        training_args.logging_nan_inf_filter = False
    training_args.generation_max_length = training_args.generation_max_length or args.max_target_length
    validating = _evaluating(training_args)
    data = tokenized_splits(args, tokenizer, validation=validating)

    set_seed(training_args.seed)
    if args.model_name_or_path:
        model = StudyForConditionalGeneration.from_pretrained(args.model_name_or_path)
    else:
        model = StudyForConditionalGeneration(config)
    model.generation_config.update(decoder_start_token_id=config.decoder_start_token_id, eos_token_id=config.eos_token_id,
                                   pad_token_id=config.pad_token_id, bos_token_id=config.bos_token_id,
                                   max_length=args.max_target_length, num_beams=training_args.generation_num_beams or 1,
                                   length_penalty=args.generation_length_penalty,
                                   no_repeat_ngram_size=args.generation_no_repeat_ngram_size)
    history, divergence = HistoryCallback(), DivergenceCallback(blowup_factor=divergence_factor)
    extra = [EarlyStoppingCallback(args.early_stopping_patience)] if args.early_stopping_patience else []
    compute_metrics = translation_metrics(
        tokenizer, [p[args.target_lang] for p in data["validation_pairs"]] if validating else None)
    trainer = Seq2SeqTrainer(
        model=model,
        args=training_args,
        train_dataset=data["train"],
        eval_dataset=data["validation"] if validating else None,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),  # adds decoder_input_ids (labels shifted right)
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        callbacks=[history, divergence, *extra, *(callbacks or [])],
    )
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    validation_history = [{"step": entry["step"], "bleu": entry["eval_bleu"], "chrf": entry.get("eval_chrf"),
                           "loss": entry.get("eval_loss")}
                          for entry in trainer.state.log_history if "eval_bleu" in entry]
    selected, averaged = "last step", []
    if args.average_last_n:
        averaged = checkpoint_dirs(training_args.output_dir, trainer.state.global_step)[-args.average_last_n:]
        if len(averaged) < 2:
            logger.warning(f"--average_last_n {args.average_last_n}: only {len(averaged)} checkpoint(s) in "
                           f"{training_args.output_dir}; the final model is the last step's.")
            averaged = []
        else:
            if len(averaged) < args.average_last_n:
                logger.warning(f"--average_last_n {args.average_last_n}: averaging the {len(averaged)} checkpoints there are.")
            average_checkpoints(trainer.model, averaged)
            selected = "average of " + ", ".join(path.name for path in averaged)
    elif validating and training_args.load_best_model_at_end and trainer.state.best_model_checkpoint:
        selected = f"best validation {training_args.metric_for_best_model}: {Path(trainer.state.best_model_checkpoint).name}"
    validation_scores = {}
    if validating:
        if averaged or not validation_history:
            compute_metrics.references = [p[args.target_lang] for p in data["validation_pairs"]]
            validation_scores = trainer.evaluate(eval_dataset=data["validation"], metric_key_prefix="validation")
            validation_scores = {"bleu": validation_scores.get("validation_bleu"),
                                 "chrf": validation_scores.get("validation_chrf")}
        else:
            best_path = trainer.state.best_model_checkpoint
            best_step = int(Path(best_path).name.removeprefix("checkpoint-")) if best_path else None
            chosen = next((e for e in validation_history if e["step"] == best_step), validation_history[-1])
            if not training_args.load_best_model_at_end:
                chosen = validation_history[-1]
            validation_scores = {"bleu": chosen["bleu"], "chrf": chosen["chrf"]}
    compute_metrics.references = [p[args.target_lang] for p in data["eval_pairs"]]
    metrics = trainer.evaluate(eval_dataset=data["eval"], metric_key_prefix="eval")
    trainer.log_metrics("eval", metrics)
    hypotheses, references = compute_metrics.last
    pairs = data["eval_pairs"]
    baselines = score_baselines(data["train_pairs"], pairs, args.source_lang, args.target_lang) if args.baselines else None
    hypotheses_name = f"hypotheses.{args.eval_split}.txt"
    results = {
        "bleu": metrics.get("eval_bleu"),
        "chrf": metrics.get("eval_chrf"),
        "bleu_signature": metrics.get("eval_bleu_signature"),
        "chrf_signature": metrics.get("eval_chrf_signature"),
        "eval_loss": metrics.get("eval_loss"),
        "eval_split": args.eval_split,
        "eval_pairs": len(pairs),
        "num_beams": training_args.generation_num_beams,
        "length_penalty": args.generation_length_penalty,
        "no_repeat_ngram_size": args.generation_no_repeat_ngram_size,
        "baselines": baselines,
        "validation_bleu": validation_scores.get("bleu"),
        "validation_chrf": validation_scores.get("chrf"),
        "validation_pairs": len(data["validation_pairs"]) if validating else 0,
        "validation_history": validation_history,
        "selected": selected,
        "averaged_checkpoints": [str(path) for path in averaged],
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "hypotheses_file": hypotheses_name,
        "truncated": {"train": data["train_cut"], args.eval_split: data["eval_cut"]},
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
            write_hypotheses(directory / hypotheses_name, hypotheses)
            (directory / "README.md").write_text(translation_card(results, args, config), encoding="utf-8")

    save_final_atomic(training_args.output_dir, write, is_main=is_main, barrier=trainer.accelerator.wait_for_everyone,
                      tmp_name=f"{TMP_PREFIX}step{trainer.state.global_step}")
    results["wall_time"] = time.perf_counter() - start
    if is_main:
        write_json_atomic(Path(training_args.output_dir) / RESULTS_NAME, results)
        write_hypotheses(Path(training_args.output_dir) / hypotheses_name, hypotheses)
    return results


__all__ = ["ARGUMENT_CLASSES", "TranslationArguments", "TranslationTrainingArguments", "average_checkpoints",
           "encode_pairs", "format_summary", "run_translation", "with_source_eos"]
