"""The three argument dataclasses of ``scripts/train.py``: model, data, and Trainer's own.

``HfArgumentParser((ModelArguments, DataArguments, StudyTrainingArguments))`` turns every field
into a ``--flag`` with its help string; ``choices`` make an unknown value an argparse error that
lists the valid ones, before anything runs. Programmatic callers (the study runner) can skip the
parser with ``make_arguments(output_dir=..., hidden_size=32, max_steps=20)``, which routes each
keyword to the dataclass that owns it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments

from ..configuration_study import FFN_ACTIVATIONS
from ..data import tokenizer_path
from ..norms import NORM_PLACEMENTS, NORM_TYPES
from ..position_encodings import POSITION_ENCODINGS, ROPE_LAYOUTS

DEFAULT_TOKENIZER: Path = tokenizer_path("bpe")  # the repository's tokenizer/, shipped in the package when installed
OBJECTIVES = ("clm", "mlm")
SAMPLE_BY = ("line", "paragraph", "document")


def _no_accelerator() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    xpu = getattr(torch, "xpu", None)
    return not (
        torch.cuda.is_available()
        or (mps is not None and mps.is_available())
        or (xpu is not None and xpu.is_available())
    )


def _help(text: str, choices=None) -> dict:
    metadata = {"help": text}
    if choices is not None:
        metadata["choices"] = sorted(choices)
    return metadata


@dataclass
class ModelArguments:
    """Which model to train: a fresh ``StudyConfig`` built from these flags, or a given config/checkpoint."""

    model_name_or_path: str | None = field(
        default=None, metadata=_help("Start from this checkpoint (weights and config); the size/choice flags are ignored.")
    )
    config_name: str | None = field(
        default=None, metadata=_help("Start from this config (path or Hub id) with fresh weights; the size/choice flags are ignored.")
    )
    tokenizer_name: str = field(
        default=str(DEFAULT_TOKENIZER),
        metadata=_help("Tokenizer folder or Hub id. Default: the repository's byte-level BPE tokenizer/ (vocab 4096)."),
    )
    position_encoding: str = field(
        default="rope", metadata=_help("Where position enters: see modeling_study/position_encodings.py.", POSITION_ENCODINGS)
    )
    norm_placement: str = field(
        default="pre", metadata=_help("pre (stable without warmup), post (the original; needs warmup), sandwich.", NORM_PLACEMENTS)
    )
    norm_type: str = field(default="rmsnorm", metadata=_help("Normalisation layer.", NORM_TYPES))
    ffn_activation: str = field(default="swiglu", metadata=_help("Feed-forward activation; swiglu/geglu are gated.", FFN_ACTIVATIONS))
    rope_layout: str = field(default="half", metadata=_help("RoPE channel pairing: half (Llama) or interleaved (GPT-J).", ROPE_LAYOUTS))
    rope_theta: float = field(default=10000.0, metadata=_help("RoPE base frequency."))
    is_causal: bool | None = field(
        default=None, metadata=_help("Causal (decoder) or bidirectional attention. Default: True for clm, False for mlm.")
    )
    vocab_size: int | None = field(default=None, metadata=_help("Embedding rows. Default: len(tokenizer)."))
    hidden_size: int = field(default=128, metadata=_help("Model width."))
    intermediate_size: int = field(default=256, metadata=_help("Feed-forward width."))
    num_hidden_layers: int = field(default=2, metadata=_help("Number of transformer blocks."))
    num_attention_heads: int = field(default=4, metadata=_help("Query heads."))
    num_key_value_heads: int | None = field(default=None, metadata=_help("Key/value heads (grouped-query attention). Default: = heads."))
    max_position_embeddings: int = field(
        default=1024, metadata=_help("Positions the model is built for; the 'learned' table has this many rows.")
    )
    hidden_dropout: float = field(default=0.0, metadata=_help("Dropout on residual branches."))
    attention_dropout: float = field(default=0.0, metadata=_help("Dropout on attention probabilities."))
    tie_word_embeddings: bool = field(default=True, metadata=_help("Share input embedding and output head."))

    # fields passed straight to StudyConfig when building a fresh model
    CONFIG_FIELDS = (
        "position_encoding", "norm_placement", "norm_type", "ffn_activation", "rope_layout", "vocab_size",
        "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
        "max_position_embeddings", "hidden_dropout", "attention_dropout", "tie_word_embeddings",
    )


@dataclass
class DataArguments:
    """What to train on; the default is the embedded KJV corpus."""

    train_file: str | None = field(default=None, metadata=_help("UTF-8 text file. Default: the embedded corpus train split."))
    validation_file: str | None = field(
        default=None, metadata=_help("UTF-8 text file. Default: the embedded validation split (with the default train file).")
    )
    objective: str = field(default="clm", metadata=_help("clm: next-token prediction; mlm: masked LM (BERT).", OBJECTIVES))
    block_size: int = field(default=128, metadata=_help("Tokens per training sequence (text is concatenated, then cut)."))
    sample_by: str = field(
        default="line",
        metadata=_help("What one document is (an </s> follows each): a line, a blank-line paragraph, or the whole file.", SAMPLE_BY),
    )
    mlm_probability: float = field(default=0.15, metadata=_help("Share of tokens masked for mlm."))
    max_train_samples: int | None = field(default=None, metadata=_help("Keep only the first N training blocks (quick runs)."))
    max_eval_samples: int | None = field(default=None, metadata=_help("Keep only the first N validation blocks."))
    cache_dir: str | None = field(
        default=None,
        metadata=_help("datasets cache root. Default: HF_DATASETS_CACHE. Entries are keyed by file content, never by path."),
    )
    preprocessing_num_workers: int | None = field(default=None, metadata=_help("Processes for tokenisation."))


@dataclass
class StudyTrainingArguments(TrainingArguments):
    """transformers' TrainingArguments with defaults for a tiny CPU run (all its flags still work)."""

    output_dir: str = field(default="runs/train", metadata=_help("Checkpoints go here; the final model into <output_dir>/final."))
    max_steps: int = field(default=400, metadata=_help("Optimizer steps."))
    per_device_train_batch_size: int = field(default=16, metadata=_help("Blocks per step per process."))
    per_device_eval_batch_size: int = field(default=32, metadata=_help("Blocks per eval step per process."))
    learning_rate: float = field(default=2e-3, metadata=_help("Peak learning rate."))
    warmup_steps: float = field(default=40, metadata=_help("Linear warmup steps (a float < 1 is a fraction of max_steps)."))
    lr_scheduler_type: str = field(default="cosine", metadata=_help("linear, cosine, inverse_sqrt, constant_with_warmup, ..."))
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay."))
    logging_steps: float = field(default=10, metadata=_help("Log loss and grad norm every N steps."))
    save_steps: float = field(default=100, metadata=_help("Checkpoint every N steps."))
    save_total_limit: int | None = field(default=2, metadata=_help("Keep at most N checkpoints."))
    eval_strategy: str = field(default="no", metadata=_help("Evaluate during training (no/steps/epoch); a final eval always runs."))
    logging_nan_inf_filter: bool = field(
        default=False, metadata=_help("Keep False: True hides NaN/Inf losses from the divergence check.")
    )
    report_to: None | str | list[str] = field(default="none", metadata=_help("Experiment trackers (none, tensorboard, ...)."))
    seed: int = field(default=42, metadata=_help("Seed for weights, data order and dropout."))
    use_cpu: bool = field(
        default=False,
        metadata=_help("Train on CPU. Turned on when no GPU/MPS/XPU is present, so that a multi-process launch "
                       "(accelerate launch --multi_gpu / torchrun) runs data parallel over CPU processes."),
    )
    dataloader_pin_memory: bool = field(default=False, metadata=_help("Pin batches in page-locked memory (GPU only)."))
    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata=_help("Data parallel: let DDP search for parameters without a gradient after every backward. Off: "
                       "every parameter of a study model takes part in each forward (tested), so the search only "
                       "costs time and warns. Turn it on for a model that skips parameters."),
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata=_help("Train from scratch into an --output_dir that holds an earlier run (final/, checkpoint-N): "
                       "its checkpoints are deleted and its final/ replaced when the new one is complete. Without "
                       "it such a folder is refused (or pass --resume_from_checkpoint last to continue the run)."),
    )

    def __post_init__(self):
        if not self.use_cpu and _no_accelerator():
            # transformers sets up CPU data parallelism (gloo) only when use_cpu is on; without it
            # each launched process would train alone, all writing into the same output_dir
            self.use_cpu = True
        super().__post_init__()


ARGUMENT_CLASSES = (ModelArguments, DataArguments, StudyTrainingArguments)

# Help of the --no_X flags HfArgumentParser adds for boolean fields that default to True (the rest
# get a generic "Turn --X off" from modeling_study.cli.describe_negative_flags).
NEGATIVE_FLAG_HELP = {
    "tie_word_embeddings": "Give the output head its own weight matrix instead of sharing the input embedding "
                           "(more parameters: vocab_size x hidden_size).",
}


def make_arguments(**kwargs) -> tuple[ModelArguments, DataArguments, StudyTrainingArguments]:
    """Build the three argument objects from keyword arguments, each routed to the class that owns it.

    >>> model_args, data_args, training_args = make_arguments(output_dir="runs/x", hidden_size=32, max_steps=20)
    """
    owned = [{f.name for f in dataclasses.fields(cls) if f.init} for cls in ARGUMENT_CLASSES]
    unknown = set(kwargs) - set().union(*owned)
    if unknown:
        raise ValueError(f"unknown training arguments {sorted(unknown)}; see `python scripts/train.py --help`.")
    return tuple(cls(**{k: v for k, v in kwargs.items() if k in names}) for cls, names in zip(ARGUMENT_CLASSES, owned))


__all__ = ["ARGUMENT_CLASSES", "NEGATIVE_FLAG_HELP", "DataArguments", "ModelArguments", "StudyTrainingArguments", "make_arguments", "OBJECTIVES"]
