"""modeling_study.training.run, function by function: checkpoints, earlier runs, messages, the card, the push.

These pin the small promises of ``run_training`` that a whole training run does not notice when they
break (found by mutation testing, docs/mutation/): which folder counts as a checkpoint, what "last"
and "true" mean, which earlier run is listed and how, what each warning and error says from its first
character, what the model card carries and what ``--push_to_hub`` sends. Most need no training; the
three that do share one 4-step run.
"""

import os
import tempfile
from pathlib import Path
from unittest import mock

os.environ["HF_HUB_OFFLINE"] = "1"
if not os.environ.get("HF_HOME", "").startswith(tempfile.gettempdir()):
    os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="modeling_study_hf_home_")

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


# -- one short run: resume "last", warnings, the card ---------------------------------------------


SHORT = dict(max_steps=4, save_steps=2, logging_steps=2, max_eval_samples=8)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory, text_files):  # noqa: F811
    output_dir = tmp_path_factory.mktemp("short") / "run"
    # Trainer's default (StudyTrainingArguments' is False): a plain TrainingArguments would bring it
    _, _, training_args = arguments = tiny_arguments(output_dir, text_files, **SHORT, logging_nan_inf_filter=True)
    with CaptureLogger(run.logger) as captured:
        results = run_training(*arguments)
    return results, training_args, captured.out


def test_the_nan_filter_is_turned_off_with_a_warning(short_run):
    results, training_args, log = short_run
    assert training_args.logging_nan_inf_filter is False
    assert log == ("logging_nan_inf_filter=True hides NaN losses from the divergence check; turning it off.\n")
    assert "model" not in results and "tokenizer" not in results  # keep_model defaults to False


def test_the_model_card_carries_the_eval_results_and_the_run(short_run):
    results, _, _ = short_run
    card = (Path(results["final_dir"]) / "README.md").read_text()
    assert f"{results['eval_loss']:.4f}"[:5] in card
    assert f"{results['eval_perplexity']:.2f}"[:4] in card
    assert "local text file train.txt" in card  # the data it was trained on, not the package default
    for key in ("global_step", "effective_batch_size", "block_size", "seed", "num_parameters"):
        assert f"| {key} |" in card, key


def test_resume_last_continues_the_newest_checkpoint_and_keeps_them(short_run, text_files, tmp_path):  # noqa: F811
    import shutil

    results, _, _ = short_run
    output_dir = tmp_path / "run"
    shutil.copytree(results["output_dir"], output_dir)
    shutil.rmtree(output_dir / "checkpoint-4")  # as if stopped after step 2
    arguments = tiny_arguments(output_dir, text_files, **SHORT, resume_from_checkpoint="last")
    with CaptureLogger(run.logger) as captured:
        resumed = run_training(*arguments)
    assert resumed["resumed_from"] == str(output_dir / "checkpoint-2")
    assert resumed["global_step"] == 4 and [step for step, _ in resumed["loss_history"]] == [4]
    assert (output_dir / "checkpoint-2").is_dir()  # resuming replaces nothing
    assert "replacing the earlier run" not in captured.out


def test_overwrite_warns_with_what_it_replaces(short_run, text_files, tmp_path):  # noqa: F811
    import shutil

    results, _, _ = short_run
    output_dir = tmp_path / "run"
    shutil.copytree(results["output_dir"], output_dir)
    arguments = tiny_arguments(output_dir, text_files, **{**SHORT, "max_steps": 1, "save_steps": 1},
                               overwrite_output_dir=True)
    with CaptureLogger(run.logger) as captured:
        run_training(*arguments)
    assert (f"--overwrite_output_dir: replacing the earlier run in {output_dir} (final, checkpoint-2, checkpoint-4); "
            "its final/ stays until the new one is complete.\n") in captured.out
    assert sorted(p.name for p in output_dir.glob("checkpoint-*")) == ["checkpoint-1"]


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
