"""``run_training``: check every input, build data and model, train with ``Trainer``, save atomically.

All checks (files, tokenizer, config choices, block size against positions, vocab against the
tokenizer, the checkpoint to resume from) run before anything is written to ``output_dir``; a bad
input is a ``ValueError`` naming the fix. The function keeps no global state between calls, so a
study runner can call it many times in one process.
"""

from __future__ import annotations

import math
import re
import shutil
import time
from pathlib import Path

from transformers import AutoConfig, DataCollatorForLanguageModeling, Trainer, set_seed
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_pt_utils import LabelSmoother
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging

from ..configuration_study import StudyConfig
from ..modeling_study import StudyForCausalLM, StudyForMaskedLM
from ..position_encodings import POSITION_ENCODINGS
from .arguments import OBJECTIVES, SAMPLE_BY, ModelArguments
from .callbacks import DivergenceCallback, HistoryCallback
from .data import build_datasets, load_tokenizer, resolve_data_files
from .evaluation import trainer_metric_hooks
from .saving import FINAL_DIRNAME, RESULTS_NAME, TMP_PREFIX, TRAINING_ARGS_JSON, save_final_atomic, write_json_atomic

logger = logging.get_logger(__name__)



class BadInputError(ValueError):
    """A bad input found before training starts (nothing has been written to ``output_dir``)."""


MODEL_CLASSES = {"clm": StudyForCausalLM, "mlm": StudyForMaskedLM}
_CHECKPOINT_NAME = re.compile(rf"{PREFIX_CHECKPOINT_DIR}-(\d+)")


def _choice(name: str, value, valid) -> None:
    if value not in valid:
        raise ValueError(f"--{name} must be one of {list(valid)}, got {value!r}.")


def build_config(model_args: ModelArguments, data_args, tokenizer, config_overrides: dict | None = None) -> StudyConfig:
    """The model's config, checked against the tokenizer, the objective and ``block_size``."""
    causal = data_args.objective == "clm"
    if model_args.model_name_or_path or model_args.config_name:
        config = AutoConfig.from_pretrained(model_args.model_name_or_path or model_args.config_name, **(config_overrides or {}))
        if not isinstance(config, StudyConfig):
            raise ValueError(f"expected a StudyConfig (model_type 'study'), got model_type {config.model_type!r}.")
    else:
        fields = {name: getattr(model_args, name) for name in ModelArguments.CONFIG_FIELDS}
        fields["vocab_size"] = fields["vocab_size"] or len(tokenizer)
        fields.update(
            is_causal=causal if model_args.is_causal is None else model_args.is_causal,
            rope_parameters={"rope_type": "default", "rope_theta": model_args.rope_theta},
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        config = StudyConfig(**{**fields, **(config_overrides or {})})  # an override wins over a flag's value
    if config.is_causal != causal:
        raise ValueError(
            f"--objective {data_args.objective} needs is_causal={causal} (a {'causal' if causal else 'masked'} LM), "
            f"but the config has is_causal={config.is_causal}."
        )
    if config.vocab_size < len(tokenizer):
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is {config.vocab_size}: ids "
            f"{config.vocab_size}..{len(tokenizer) - 1} have no embedding. Use a matching tokenizer or "
            f"--vocab_size {len(tokenizer)} (the default when building a fresh model)."
        )
    if POSITION_ENCODINGS[config.position_encoding].bounded and data_args.block_size > config.max_position_embeddings:
        raise ValueError(
            f"--block_size {data_args.block_size} is larger than max_position_embeddings="
            f"{config.max_position_embeddings}, the number of positions the {config.position_encoding!r} encoding has. "
            f"Lower --block_size or raise --max_position_embeddings."
        )
    if data_args.objective == "mlm" and tokenizer.mask_token_id is None:
        raise ValueError("--objective mlm needs a tokenizer with a mask token (<mask>).")
    return config


def last_complete_checkpoint(output_dir) -> str | None:
    """The highest ``checkpoint-N`` holding ``trainer_state.json``, which Trainer writes last.

    A process killed while saving leaves a checkpoint folder without it; that one is skipped. Only
    Trainer's own names count (``checkpoint-<digits>``, as ``transformers.trainer_utils.get_last_checkpoint``
    reads them): a copy such as ``checkpoint-10-old`` is not a checkpoint of this run.
    """
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    steps = {}
    for path in folder.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        match = _CHECKPOINT_NAME.fullmatch(path.name)
        if match and (path / "trainer_state.json").is_file():
            steps[int(match.group(1))] = path
    return str(steps[max(steps)]) if steps else None


def resolve_checkpoint(resume_from_checkpoint, output_dir) -> str | None:
    """``None``/"" -> None; "last"/"true" -> the last complete checkpoint (None if there is none yet); else a checked path."""
    if resume_from_checkpoint in (None, "", False):
        return None
    if str(resume_from_checkpoint).lower() in ("last", "true"):  # True too
        checkpoint = last_complete_checkpoint(output_dir)
        if checkpoint is None:
            logger.warning(f"--resume_from_checkpoint last: no complete checkpoint in {output_dir}; starting from scratch.")
        return checkpoint
    path = Path(resume_from_checkpoint)
    if not (path / "trainer_state.json").is_file():
        raise ValueError(
            f"--resume_from_checkpoint {path}: not a complete Trainer checkpoint (no trainer_state.json). "
            f"Pass a checkpoint-N folder, or 'last' for the newest complete one in --output_dir."
        )
    return str(path)


def earlier_run(output_dir) -> list[str]:
    """What an earlier run left in ``output_dir``: its ``final`` folder and ``checkpoint-N`` folders (sorted)."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    final = [FINAL_DIRNAME] if (folder / FINAL_DIRNAME).exists() else []
    checkpoints = sorted((p.name for p in folder.glob("checkpoint-*") if p.is_dir()),
                         key=lambda name: (len(name), name))
    return final + checkpoints


def check_output_dir(training_args) -> list[str]:
    """Refuse to train from scratch into the folder of an earlier run, unless told to replace it.

    Training again into the same ``--output_dir`` would silently replace its ``final`` model and
    mix the new checkpoints with the old ones (and ``--resume_from_checkpoint last`` would later
    pick an old one). Allowed: ``--resume_from_checkpoint`` (continue that run) and
    ``--overwrite_output_dir`` (replace it). Returns what would be replaced.
    """
    found = earlier_run(training_args.output_dir)
    if found and not training_args.resume_from_checkpoint and not training_args.overwrite_output_dir:
        listed = ", ".join(found[:4]) + (", ..." if len(found) > 4 else "")
        raise ValueError(
            f"--output_dir {training_args.output_dir} already holds an earlier run ({listed}); training again would "
            f"replace its final model. Pass --overwrite_output_dir to replace it, --resume_from_checkpoint last to "
            f"continue it, or choose another --output_dir."
        )
    return found


def build_model(config: StudyConfig, model_args: ModelArguments, objective: str):
    cls = MODEL_CLASSES[objective]
    if model_args.model_name_or_path:
        return cls.from_pretrained(model_args.model_name_or_path, config=config)
    return cls(config)


def _dataset_name(data_args, files: dict) -> str | None:
    """What the card says the model was trained on: None = the package's default data, which the card
    describes itself; a local file by its name (it is not a Hub dataset id)."""
    return None if data_args.train_file is None else f"local text file {Path(files['train']).name}"


def _write_card(directory: Path, config, results: dict, dataset_name: str) -> None:
    from ..model_card import build_model_card

    eval_results = {
        k: float(results[k]) for k in ("eval_loss", "eval_perplexity", "eval_token_accuracy")
        if results.get(k) is not None and math.isfinite(results[k])
    }
    summary = {k: results[k] for k in ("global_step", "final_train_loss", "diverged", "diverged_step",
                                       "num_parameters", "effective_batch_size", "block_size", "seed")}
    card = build_model_card(config, eval_results=eval_results, dataset_name=dataset_name, training_summary=summary)
    card.save(str(directory / "README.md"))


def run_training(
    model_args,
    data_args,
    training_args,
    *,
    config_overrides: dict | None = None,
    callbacks: list | None = None,
    divergence_factor: float | None = 3.0,
    keep_model: bool = False,
) -> dict:
    """Train one model and return its results (also written to ``<output_dir>/results.json``).

    Args:
        model_args, data_args, training_args: ``ModelArguments``, ``DataArguments`` and
            (``Study``)``TrainingArguments``; ``make_arguments(**kwargs)`` builds all three.
        config_overrides: extra ``StudyConfig`` fields (e.g. ``{"rope_parameters": {...}}``).
        callbacks: extra ``TrainerCallback``s.
        divergence_factor: loss / best-loss ratio that marks the run diverged (None: NaN/Inf only).
        keep_model: also return the trained ``model`` and ``tokenizer`` under those keys.

    Returns a dict: ``final_train_loss`` (last logged), ``train_loss_mean``, ``eval_loss`` (nats per
    token, token-weighted), ``eval_perplexity``, ``eval_token_accuracy``, ``eval_num_tokens``,
    ``loss_history`` / ``grad_norm_history`` / ``learning_rate_history`` (lists of ``(step, value)``),
    ``diverged``, ``diverged_step``, ``divergence_reason``, ``global_step``, ``resumed_from``,
    ``num_parameters``, ``num_parameters_non_embedding``, ``train_runtime``, ``wall_time`` (s),
    ``train_blocks``, ``eval_blocks``, ``objective``, ``block_size``, ``seed``, ``world_size``,
    ``effective_batch_size``, ``config``,
    ``output_dir``, ``final_dir``.

    Raises BadInputError (a ValueError), before anything is written to ``output_dir``, for a missing or empty data
    file, a missing tokenizer, an unknown choice, a block size beyond learned positions, a
    tokenizer larger than the model's vocabulary, a resume path that is not a checkpoint, or an
    ``output_dir`` that holds an earlier run (``final``, ``checkpoint-N``) when neither resuming nor
    ``overwrite_output_dir``.
    """
    start = time.perf_counter()
    try:
        _choice("objective", data_args.objective, OBJECTIVES)
        _choice("sample_by", data_args.sample_by, SAMPLE_BY)
        if data_args.block_size < 2:
            raise ValueError(f"--block_size must be >= 2, got {data_args.block_size}.")
        tokenizer = load_tokenizer(model_args.tokenizer_name)
        files = resolve_data_files(data_args)
        config = build_config(model_args, data_args, tokenizer, config_overrides)
        checkpoint = resolve_checkpoint(training_args.resume_from_checkpoint, training_args.output_dir)
        replaced = check_output_dir(training_args)
        splits = build_datasets(data_args, tokenizer, main_process_first=training_args.main_process_first)
    except BadInputError:
        raise
    except (ValueError, OSError) as error:  # OSError: a config or checkpoint path that does not load
        raise BadInputError(str(error)) from error
    if training_args.logging_nan_inf_filter:
        logger.warning("logging_nan_inf_filter=True hides NaN losses from the divergence check; turning it off.")
        training_args.logging_nan_inf_filter = False

    if replaced and training_args.overwrite_output_dir and not training_args.resume_from_checkpoint:
        logger.warning(f"--overwrite_output_dir: replacing the earlier run in {training_args.output_dir} "
                       f"({', '.join(replaced)}); its final/ stays until the new one is complete.")
        if training_args.should_save:  # old checkpoints would mix with the new ones (and be picked by resume)
            for name in replaced:
                if name != FINAL_DIRNAME:
                    shutil.rmtree(Path(training_args.output_dir) / name, ignore_errors=True)

    set_seed(training_args.seed)  # the same weights for the same seed, whatever ran before in this process
    model = build_model(config, model_args, data_args.objective)
    collator = DataCollatorForLanguageModeling(
        tokenizer, mlm=data_args.objective == "mlm", mlm_probability=data_args.mlm_probability
    )
    history = HistoryCallback()
    divergence = DivergenceCallback(blowup_factor=divergence_factor)
    preprocess, compute_metrics = trainer_metric_hooks(config.is_causal)
    compute_loss_func = None
    if training_args.label_smoothing_factor > 0 and config.is_causal:
        # Trainer shifts labels for label smoothing only for models in its static causal-LM table,
        # which a registered custom model is not; without this the loss would be off by one token.
        smoother = LabelSmoother(epsilon=training_args.label_smoothing_factor)

        def compute_loss_func(outputs, labels, num_items_in_batch=None):
            return smoother(outputs, labels, shift_labels=True, num_items_in_batch=num_items_in_batch)
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        data_collator=collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=preprocess,
        compute_loss_func=compute_loss_func,
        callbacks=[history, divergence, *(callbacks or [])],
    )
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    eval_metrics = trainer.evaluate()
    trainer.log_metrics("eval", eval_metrics)

    results = {
        "final_train_loss": history.loss[-1][1] if history.loss else None,
        "train_loss_mean": train_result.training_loss,
        "eval_loss": eval_metrics.get("eval_loss_per_token"),
        "eval_perplexity": eval_metrics.get("eval_perplexity"),
        "eval_token_accuracy": eval_metrics.get("eval_token_accuracy"),
        "eval_num_tokens": eval_metrics.get("eval_num_tokens"),
        "loss_history": history.loss,
        "grad_norm_history": history.grad_norm,
        "learning_rate_history": history.learning_rate,
        **divergence.summary(),
        "global_step": trainer.state.global_step,
        "resumed_from": checkpoint,
        "num_parameters": model.num_parameters(),
        "num_parameters_non_embedding": model.num_parameters(exclude_embeddings=True),
        "train_runtime": train_result.metrics.get("train_runtime"),
        "train_blocks": len(splits["train"]),
        "eval_blocks": len(splits["validation"]),
        "objective": data_args.objective,
        "block_size": data_args.block_size,
        "seed": training_args.seed,
        "world_size": training_args.world_size,
        "effective_batch_size": training_args.per_device_train_batch_size * training_args.world_size
        * training_args.gradient_accumulation_steps,
        "config": config.to_diff_dict(),
        "output_dir": str(training_args.output_dir),
        "final_dir": str(Path(training_args.output_dir) / FINAL_DIRNAME),
    }
    dataset_name = _dataset_name(data_args, files)
    is_main = trainer.is_world_process_zero()

    def write(directory: Path) -> None:
        # every process: FSDP/DeepSpeed gather the weights collectively; the main one also saves the
        # tokenizer (Trainer's processing_class) and training_args.bin. _internal_call: a user's call of
        # save_model also pushes the whole output_dir (the half-written temporary folder included) when
        # --push_to_hub is set; final/ is pushed by _push_final once it is complete.
        trainer.save_model(str(directory), _internal_call=True)
        if is_main:
            # save_model also pickles the TrainingArguments (training_args.bin); the final folder holds no
            # pickles, so they go in as JSON (hub tokens masked by to_json_string). Checkpoints keep Trainer's files.
            (directory / TRAINING_ARGS_NAME).unlink(missing_ok=True)
            (directory / TRAINING_ARGS_JSON).write_text(training_args.to_json_string() + "\n", encoding="utf-8")
            results["wall_time"] = time.perf_counter() - start
            write_json_atomic(directory / RESULTS_NAME, results)
            _write_card(directory, config, results, dataset_name)

    save_final_atomic(
        training_args.output_dir,
        write,
        is_main=is_main,
        barrier=trainer.accelerator.wait_for_everyone,
        tmp_name=f"{TMP_PREFIX}step{trainer.state.global_step}",
    )
    results["wall_time"] = time.perf_counter() - start
    if is_main:
        write_json_atomic(Path(training_args.output_dir) / RESULTS_NAME, results)
        if training_args.push_to_hub:
            _push_final(training_args, Path(results["final_dir"]))
    if keep_model:
        results.update(model=model, tokenizer=tokenizer)
    else:
        del trainer, model
    return results


def _push_final(training_args, final_dir: Path) -> None:
    from huggingface_hub import create_repo, upload_folder

    repo_id = training_args.hub_model_id or Path(training_args.output_dir).name
    repo = create_repo(repo_id, token=training_args.hub_token, private=training_args.hub_private_repo, exist_ok=True)
    upload_folder(repo_id=repo.repo_id, folder_path=str(final_dir), token=training_args.hub_token, commit_message="Final model")


__all__ = ["BadInputError", "build_config", "build_model", "check_output_dir", "earlier_run", "last_complete_checkpoint", "resolve_checkpoint", "run_training"]
