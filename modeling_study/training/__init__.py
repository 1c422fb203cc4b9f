"""Training tooling for study models: data pipeline, Trainer run, evaluation, callbacks, atomic save.

Nothing here is imported by the model files, so a Hub user loading a checkpoint never needs it.

>>> from modeling_study.training import make_arguments, run_training, evaluate_perplexity
>>> results = run_training(*make_arguments(output_dir="runs/tiny", hidden_size=32, max_steps=20))
>>> results["eval_perplexity"], results["diverged"]
"""

from .arguments import DataArguments, ModelArguments, StudyTrainingArguments, make_arguments
from .callbacks import DivergenceCallback, HistoryCallback
from .data import build_datasets, load_tokenizer
from .evaluation import evaluate_perplexity, trainer_metric_hooks
from .run import BadInputError, build_config, build_model, last_complete_checkpoint, run_training
from .saving import save_final_atomic

__all__ = [
    "BadInputError",
    "DataArguments",
    "DivergenceCallback",
    "HistoryCallback",
    "ModelArguments",
    "StudyTrainingArguments",
    "build_config",
    "build_datasets",
    "build_model",
    "evaluate_perplexity",
    "last_complete_checkpoint",
    "load_tokenizer",
    "make_arguments",
    "run_training",
    "save_final_atomic",
    "trainer_metric_hooks",
]
