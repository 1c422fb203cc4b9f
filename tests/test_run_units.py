"""modeling_study.training.run, function by function: checkpoints, earlier runs, messages, the card, the push.

These pin the small promises of ``run_training`` that a whole training run does not notice when they
break (found by mutation testing, docs/mutation/): which folder counts as a checkpoint, what "last"
and "true" mean, which earlier run is listed and how, what each warning and error says from its first
character, what a run returns, what the model card carries and what ``--push_to_hub`` sends. Most
need no training; the few that do train 1-4 steps each.
"""

import json
import time
from pathlib import Path
from unittest import mock

import pytest
from transformers.testing_utils import CaptureLogger

from modeling_study.training import run
from modeling_study.training.run import (
    BadInputError,
    check_output_dir,
    earlier_run,
    last_complete_checkpoint,
    resolve_checkpoint,
    run_training,
)
from test_train import text_files, tiny_arguments  # noqa: F401  (fixture)


def checkpoint(folder: Path, name: str, complete: bool = True) -> Path:
    path = folder / name
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text("{}")
    return path


# -- which folder is a checkpoint ------------------------------------------------------------------


def test_last_complete_checkpoint_is_the_highest_step_not_the_last_name(tmp_path):
    for name in ("checkpoint-9", "checkpoint-10", "checkpoint-2"):
        checkpoint(tmp_path, name)
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")  # 10 > 9 although "10" < "9"


def test_last_complete_checkpoint_skips_half_written_and_foreign_folders(tmp_path):
    checkpoint(tmp_path, "checkpoint-3")
    checkpoint(tmp_path, "checkpoint-30", complete=False)  # killed while saving: no trainer_state.json
    checkpoint(tmp_path, "checkpoint-old-40")  # a renamed copy, not a Trainer name
    checkpoint(tmp_path, "checkpoint-50-old")
    checkpoint(tmp_path, "checkpoint-x")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-3")


def test_last_complete_checkpoint_is_none_without_a_complete_one(tmp_path):
    assert last_complete_checkpoint(tmp_path / "missing") is None
    assert last_complete_checkpoint(tmp_path) is None
    checkpoint(tmp_path, "checkpoint-5", complete=False)
    assert last_complete_checkpoint(tmp_path) is None


# -- --resume_from_checkpoint ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", False])
def test_no_resume(value, tmp_path):
    checkpoint(tmp_path, "checkpoint-4")
    assert resolve_checkpoint(value, tmp_path) is None


@pytest.mark.parametrize("value", [True, "last", "LAST", "true", "True", "TRUE"])
def test_last_and_true_mean_the_newest_complete_checkpoint(value, tmp_path):
    checkpoint(tmp_path, "checkpoint-4")
    checkpoint(tmp_path, "checkpoint-8")
    with CaptureLogger(run.logger) as captured:
        assert resolve_checkpoint(value, tmp_path) == str(tmp_path / "checkpoint-8")
    assert captured.out == ""  # found one: nothing to warn about


def test_last_without_a_checkpoint_warns_and_starts_from_scratch(tmp_path):
    with CaptureLogger(run.logger) as captured:
        assert resolve_checkpoint("last", tmp_path) is None
    assert captured.out == (f"--resume_from_checkpoint last: no complete checkpoint in {tmp_path}; "
                            "starting from scratch.\n")


def test_a_named_checkpoint_must_be_complete(tmp_path):
    path = checkpoint(tmp_path, "checkpoint-6")
    assert resolve_checkpoint(str(path), tmp_path / "elsewhere") == str(path)
    half = checkpoint(tmp_path, "checkpoint-7", complete=False)
    with pytest.raises(ValueError, match=(
            rf"^--resume_from_checkpoint {half}: not a complete Trainer checkpoint \(no trainer_state.json\). "
            r"Pass a checkpoint-N folder, or 'last' for the newest complete one in --output_dir.$")):
        resolve_checkpoint(str(half), tmp_path)


# -- an earlier run in --output_dir -----------------------------------------------------------------


def test_earlier_run_lists_final_then_checkpoints_by_step(tmp_path):
    assert earlier_run(tmp_path / "missing") == []
    for name in ("checkpoint-10", "checkpoint-9", "checkpoint-100"):
        (tmp_path / name).mkdir()
    (tmp_path / "checkpoint-1.txt").write_text("a file, not a checkpoint")
    assert earlier_run(tmp_path) == ["checkpoint-9", "checkpoint-10", "checkpoint-100"]  # no final/ yet
    (tmp_path / "final").mkdir()
    assert earlier_run(tmp_path) == ["final", "checkpoint-9", "checkpoint-10", "checkpoint-100"]


def args_for(output_dir, resume=None, overwrite=False):
    return mock.Mock(output_dir=str(output_dir), resume_from_checkpoint=resume, overwrite_output_dir=overwrite)


@pytest.mark.parametrize("count, listed", [
    (4, "final, checkpoint-1, checkpoint-2, checkpoint-3"),
    (5, "final, checkpoint-1, checkpoint-2, checkpoint-3, ..."),
    (6, "final, checkpoint-1, checkpoint-2, checkpoint-3, ..."),
])
def test_check_output_dir_names_at_most_four_entries(count, listed, tmp_path):
    (tmp_path / "final").mkdir()
    for step in range(1, count):
        (tmp_path / f"checkpoint-{step}").mkdir()
    with pytest.raises(ValueError) as error:
        check_output_dir(args_for(tmp_path))
    assert str(error.value) == (
        f"--output_dir {tmp_path} already holds an earlier run ({listed}); training again would replace its "
        "final model. Pass --overwrite_output_dir to replace it, --resume_from_checkpoint last to continue it, "
        "or choose another --output_dir.")


def test_check_output_dir_allows_resume_overwrite_and_an_empty_folder(tmp_path):
    assert check_output_dir(args_for(tmp_path)) == []
    (tmp_path / "final").mkdir()
    assert check_output_dir(args_for(tmp_path, resume="last")) == ["final"]
    assert check_output_dir(args_for(tmp_path, overwrite=True)) == ["final"]


# -- messages raised before training -------------------------------------------------------------


@pytest.mark.parametrize("field, value, message", [
    ("objective", "causal", r"^--objective must be one of \['clm', 'mlm'\], got 'causal'\.$"),
    ("sample_by", "verse", r"^--sample_by must be one of \['line', 'paragraph', 'document'\], got 'verse'\.$"),
    ("block_size", 1, r"^--block_size must be >= 2, got 1\.$"),
])
def test_bad_choices_are_named_with_the_valid_ones(field, value, message, text_files, tmp_path):  # noqa: F811
    model_args, data_args, training_args = tiny_arguments(tmp_path / "out", text_files)
    setattr(data_args, field, value)
    with pytest.raises(BadInputError, match=message):
        run_training(model_args, data_args, training_args)
    assert not (tmp_path / "out").exists()


def test_block_size_two_passes_the_block_size_check(text_files, tmp_path):  # noqa: F811
    """2 is the smallest block with a next-token target: the check lets it through to the next one."""
    model_args, data_args, training_args = tiny_arguments(tmp_path / "out", text_files, block_size=2)
    model_args.tokenizer_name = str(tmp_path / "no_tokenizer")
    with pytest.raises(BadInputError) as error:
        run_training(model_args, data_args, training_args)
    assert str(error.value).startswith(f"tokenizer not found: {tmp_path / 'no_tokenizer'} is not a folder.")


# -- short runs: what run_training returns, resume "last", the overwrite warning ---------------------
# Each test trains its own run (about a second): a shared fixture would be attributed to the first test
# that uses it, and mutation testing would run only that one against the code it exercises.


SHORT = dict(max_steps=4, save_steps=2, logging_steps=2, max_eval_samples=8)
PROMISED = {  # run_training's docstring, key by key
    "final_train_loss", "train_loss_mean", "eval_loss", "eval_perplexity", "eval_token_accuracy", "eval_num_tokens",
    "loss_history", "grad_norm_history", "learning_rate_history", "diverged", "diverged_step", "divergence_reason",
    "global_step", "resumed_from", "num_parameters", "num_parameters_non_embedding", "train_runtime", "wall_time",
    "train_blocks", "eval_blocks", "objective", "block_size", "seed", "world_size", "effective_batch_size", "config",
    "output_dir", "final_dir",
}


def test_a_run_returns_what_it_promises(text_files, tmp_path, monkeypatch, capsys):  # noqa: F811
    import torch
    from transformers import AutoModelForCausalLM

    from modeling_study.training.data import build_datasets as real_build_datasets

    contexts = []

    def build_datasets(data_args, tokenizer, main_process_first=None):
        contexts.append(main_process_first)
        return real_build_datasets(data_args, tokenizer, main_process_first=main_process_first)

    monkeypatch.setattr(run, "build_datasets", build_datasets)
    # the NaN filter on, as Trainer's own TrainingArguments has it (StudyTrainingArguments' default is off)
    model_args, data_args, training_args = tiny_arguments(
        tmp_path / "run", text_files, **SHORT, per_device_train_batch_size=4, gradient_accumulation_steps=2,
        logging_nan_inf_filter=True)
    began = time.perf_counter()
    with CaptureLogger(run.logger) as captured:
        results = run_training(model_args, data_args, training_args)
    took = time.perf_counter() - began
    assert "***** eval metrics *****" in capsys.readouterr().out  # Trainer.log_metrics prints them
    assert captured.out == "logging_nan_inf_filter=True hides NaN losses from the divergence check; turning it off.\n"
    assert training_args.logging_nan_inf_filter is False
    assert contexts == [training_args.main_process_first]  # processes take turns filling the datasets cache

    assert set(results) == PROMISED  # no "model" / "tokenizer": keep_model defaults to False
    assert results["final_train_loss"] == results["loss_history"][-1][1]
    assert [step for step, _ in results["loss_history"]] == [2, 4]
    assert results["learning_rate_history"] == [(2, 3e-3), (4, 3e-3)]  # constant schedule, no warmup
    assert results["train_loss_mean"] == pytest.approx(sum(v for _, v in results["loss_history"]) / 2, abs=1e-4)
    assert results["world_size"] == 1 and results["effective_batch_size"] == 4 * 1 * 2
    assert type(results["effective_batch_size"]) is int  # a count of blocks, "8" in results.json
    assert 0 < results["train_runtime"] <= results["wall_time"] <= took

    # final/: weights, tokenizer, the training arguments as JSON (no pickle), results, and a card naming the data
    final = Path(results["final_dir"])
    assert final == Path(results["output_dir"]) / "final" and not list(final.parent.glob(".tmp*"))
    assert {"model.safetensors", "config.json", "tokenizer.json", "training_args.json", "results.json",
            "README.md"} <= {p.name for p in final.iterdir()}
    assert not (final / "training_args.bin").exists()
    assert json.loads((final / "training_args.json").read_text(encoding="utf-8"))["gradient_accumulation_steps"] == 2
    saved = json.loads((final / "results.json").read_text())
    assert saved["global_step"] == 4 and 0 < saved["wall_time"] <= results["wall_time"]
    assert json.loads((final.parent / "results.json").read_text())["wall_time"] == pytest.approx(results["wall_time"])
    assert "Measured on local text file train.txt." in (final / "README.md").read_text()

    # eval loss: the final model's next-token loss on the validation blocks, computed here in float64
    model = AutoModelForCausalLM.from_pretrained(final).eval()
    blocks = torch.tensor(real_build_datasets(data_args, run.load_tokenizer(model_args.tokenizer_name))
                          ["validation"]["input_ids"])
    assert results["eval_blocks"] == len(blocks) == 8
    assert results["eval_num_tokens"] == 8 * (data_args.block_size - 1)
    with torch.no_grad():
        log_probs = torch.log_softmax(model(blocks).logits[:, :-1].double(), dim=-1)
    nll = -log_probs.gather(-1, blocks[:, 1:, None]).mean().item()
    assert results["eval_loss"] == pytest.approx(nll, rel=1e-5)
    embedding = model.get_input_embeddings().weight.numel()
    assert results["num_parameters_non_embedding"] == results["num_parameters"] - embedding

    # checkpoints carry the tokenizer (Trainer saves its processing_class), so each one loads on its own
    assert (Path(results["output_dir"]) / "checkpoint-2" / "tokenizer.json").is_file()


def test_resume_last_continues_the_newest_checkpoint_and_keeps_them(text_files, tmp_path):  # noqa: F811
    import shutil

    output_dir = tmp_path / "run"
    run_training(*tiny_arguments(output_dir, text_files, **SHORT))
    shutil.rmtree(output_dir / "checkpoint-4")  # as if stopped after step 2
    arguments = tiny_arguments(output_dir, text_files, **SHORT, resume_from_checkpoint="last")
    with CaptureLogger(run.logger) as captured:
        resumed = run_training(*arguments)
    assert resumed["resumed_from"] == str(output_dir / "checkpoint-2")
    assert resumed["global_step"] == 4 and [step for step, _ in resumed["loss_history"]] == [4]
    assert (output_dir / "checkpoint-2").is_dir()  # resuming replaces nothing
    assert "replacing the earlier run" not in captured.out


def test_overwrite_warns_with_what_it_replaces(text_files, tmp_path):  # noqa: F811
    output_dir = tmp_path / "run"
    run_training(*tiny_arguments(output_dir, text_files, **SHORT))
    arguments = tiny_arguments(output_dir, text_files, **{**SHORT, "max_steps": 1, "save_steps": 1},
                               overwrite_output_dir=True)
    with CaptureLogger(run.logger) as captured:
        run_training(*arguments)
    assert captured.out == (f"--overwrite_output_dir: replacing the earlier run in {output_dir} (final, checkpoint-2, "
                            "checkpoint-4); its final/ stays until the new one is complete.\n")
    assert sorted(p.name for p in output_dir.glob("checkpoint-*")) == ["checkpoint-1"]


def test_no_overwrite_warning_for_a_fresh_folder(text_files, tmp_path):  # noqa: F811
    arguments = tiny_arguments(tmp_path / "run", text_files, **{**SHORT, "max_steps": 1}, overwrite_output_dir=True)
    with CaptureLogger(run.logger) as captured:
        run_training(*arguments)
    assert captured.out == ""


# -- the model card ----------------------------------------------------------------------------------


def test_the_model_card_carries_the_eval_results_the_data_and_the_run(tmp_path):
    from conftest import tiny_config

    summary = dict(global_step=7, final_train_loss=2.5, diverged=False, diverged_step=None, num_parameters=1234,
                   effective_batch_size=24, block_size=48, seed=11)
    results = dict(summary, eval_loss=2.0625, eval_perplexity=7.8633, eval_token_accuracy=0.3125, wall_time=9.0)
    run._write_card(tmp_path, tiny_config(), results, "local text file psalms.txt")
    card = (tmp_path / "README.md").read_text()
    for value in ("2.0625", "7.8633", "0.3125"):
        assert value in card
    assert "Measured on local text file psalms.txt." in card  # not on the package's default data
    for key, value in summary.items():
        assert f"| {key} | {value} |" in card, key
    assert "wall_time" not in card  # only the summary's keys


# -- --push_to_hub -----------------------------------------------------------------------------------


@pytest.mark.parametrize("hub_model_id, repo_id", [(None, "my-run"), ("user/named", "user/named")])
def test_push_final_creates_the_repo_and_uploads_final(hub_model_id, repo_id, tmp_path, monkeypatch):
    """What ``--push_to_hub`` sends, checked against huggingface_hub's own signatures (autospec)."""
    import huggingface_hub

    create = mock.create_autospec(huggingface_hub.create_repo, return_value=mock.Mock(repo_id=f"resolved/{repo_id}"))
    upload = mock.create_autospec(huggingface_hub.upload_folder)
    monkeypatch.setattr(huggingface_hub, "create_repo", create)
    monkeypatch.setattr(huggingface_hub, "upload_folder", upload)
    training_args = mock.Mock(hub_model_id=hub_model_id, output_dir=str(tmp_path / "my-run"), hub_token="hf_x",
                              hub_private_repo=True)
    run._push_final(training_args, tmp_path / "my-run" / "final")
    create.assert_called_once_with(repo_id, token="hf_x", private=True, exist_ok=True)
    upload.assert_called_once_with(repo_id=f"resolved/{repo_id}", folder_path=str(tmp_path / "my-run" / "final"),
                                   token="hf_x", commit_message="Final model")


# -- which loss Trainer is given -------------------------------------------------------------------------


class _Built(Exception):
    pass


@pytest.mark.parametrize("objective, smoothing, own_loss", [
    ("clm", 0.1, True),  # shifted labels: Trainer would not shift them for a model outside its causal-LM table
    ("clm", 0.0, False),  # the model's own loss (self.loss_function)
    ("mlm", 0.1, False),  # Trainer's own label smoother: a masked LM's labels are not shifted
])
def test_a_custom_loss_only_for_label_smoothing_of_a_causal_lm(objective, smoothing, own_loss, text_files, tmp_path,  # noqa: F811
                                                               monkeypatch):
    """The smoothed causal loss is checked against a hand-computed one in test_references_training.py; here,
    that a masked LM (whose labels must not shift) and an unsmoothed run never get it."""
    given = {}

    def trainer(**kwargs):
        given.update(kwargs)
        raise _Built

    monkeypatch.setattr(run, "Trainer", trainer)
    arguments = tiny_arguments(tmp_path / "run", text_files, objective=objective, label_smoothing_factor=smoothing)
    with pytest.raises(_Built):
        run_training(*arguments)
    assert (given["compute_loss_func"] is not None) is own_loss


def test_push_to_hub_pushes_final_once_training_is_done(text_files, tmp_path, monkeypatch):  # noqa: F811
    """``--push_to_hub``: the complete final/ goes up with the run's own arguments (Trainer's own repo
    creation and checkpoint pushes are stubbed: this machine has no Hub)."""
    from transformers import Trainer

    pushed = []
    monkeypatch.setattr(Trainer, "init_hf_repo", lambda self, *args, **kwargs: None)
    monkeypatch.setattr(Trainer, "_push_from_checkpoint", lambda self, folder: None)
    monkeypatch.setattr(run, "_push_final", lambda args, final: pushed.append((args, final, sorted(
        p.name for p in final.iterdir()))))
    model_args, data_args, training_args = tiny_arguments(tmp_path / "run", text_files, **{**SHORT, "max_steps": 1},
                                                          push_to_hub=True, hub_model_id="user/pushed")
    results = run_training(model_args, data_args, training_args)
    assert len(pushed) == 1
    args, final, names = pushed[0]
    assert args is training_args and final == Path(results["final_dir"]) and "model.safetensors" in names


# -- build_config ------------------------------------------------------------------------------------


def built(text_files, tmp_path, **overrides):  # noqa: F811
    model_args, data_args, _ = tiny_arguments(tmp_path / "out", text_files, **overrides)
    tokenizer = run.load_tokenizer(model_args.tokenizer_name)
    return run.build_config(model_args, data_args, tokenizer), tokenizer


def test_a_fresh_config_takes_the_tokenizers_special_tokens_and_the_rope_base(text_files, tmp_path):  # noqa: F811
    config, tokenizer = built(text_files, tmp_path, rope_theta=500.0)
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (
        tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id) != (None, None, None)
    assert config.rope_parameters == {"rope_type": "default", "rope_theta": 500.0, "partial_rotary_factor": 1.0}
    assert config.vocab_size == len(tokenizer) and config.is_causal is True


@pytest.mark.parametrize("objective, is_causal, message", [
    ("clm", False, "--objective clm needs is_causal=True (a causal LM), but the config has is_causal=False."),
    ("mlm", True, "--objective mlm needs is_causal=False (a masked LM), but the config has is_causal=True."),
])
def test_objective_and_causality_must_agree(objective, is_causal, message, text_files, tmp_path):  # noqa: F811
    with pytest.raises(ValueError) as error:
        built(text_files, tmp_path, objective=objective, is_causal=is_causal)
    assert str(error.value) == message


def test_a_vocabulary_smaller_than_the_tokenizer_names_the_ids_without_embedding(text_files, tmp_path):  # noqa: F811
    model_args, _, _ = tiny_arguments(tmp_path / "out", text_files)
    size = len(run.load_tokenizer(model_args.tokenizer_name))
    with pytest.raises(ValueError) as error:
        built(text_files, tmp_path, vocab_size=size - 3)
    assert str(error.value) == (
        f"the tokenizer has {size} tokens but the model's vocab_size is {size - 3}: ids {size - 3}..{size - 1} have no "
        f"embedding. Use a matching tokenizer or --vocab_size {size} (the default when building a fresh model).")


@pytest.mark.parametrize("encoding, block_size, fits", [
    ("learned", 64, True), ("learned", 65, False), ("rope", 65, True)])
def test_block_size_against_the_positions_a_bounded_encoding_has(encoding, block_size, fits, text_files, tmp_path):  # noqa: F811
    settings = dict(position_encoding=encoding, block_size=block_size, max_position_embeddings=64)
    if fits:
        assert built(text_files, tmp_path, **settings)[0].max_position_embeddings == 64
        return
    with pytest.raises(ValueError) as error:
        built(text_files, tmp_path, **settings)
    assert str(error.value) == (
        "--block_size 65 is larger than max_position_embeddings=64, the number of positions the 'learned' encoding "
        "has. Lower --block_size or raise --max_position_embeddings.")


def test_a_saved_config_of_another_family_is_refused(text_files, tmp_path):  # noqa: F811
    from transformers import LlamaConfig

    LlamaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path / "llama")
    with pytest.raises(ValueError) as error:
        built(text_files, tmp_path, config_name=str(tmp_path / "llama"))
    assert str(error.value) == "expected a StudyConfig (model_type 'study'), got model_type 'llama'."


def test_the_card_names_a_local_file_and_leaves_the_default_data_to_the_card():
    files = {"train": "/data/psalms/train.txt"}
    assert run._dataset_name(mock.Mock(train_file=None), files) is None
    assert run._dataset_name(mock.Mock(train_file="/data/psalms/train.txt"), files) == "local text file train.txt"
