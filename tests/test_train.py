"""scripts/train.py and modeling_study.training: tiny runs, resume, data cache, bad inputs, accelerate.

Every run here is tiny (hidden 32, 2 layers, block 32, <= 20 steps on a few hundred corpus lines).
"""

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
if not os.environ.get("HF_HOME", "").startswith(tempfile.gettempdir()):
    os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="modeling_study_hf_home_")

import pytest
import torch

from modeling_study.data import corpus_path

REPO = Path(__file__).resolve().parent.parent
TRAIN_SCRIPT = REPO / "scripts" / "train.py"

TINY_RUN = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    block_size=32,
    max_steps=20,
    per_device_train_batch_size=8,
    per_device_eval_batch_size=16,
    learning_rate=3e-3,
    warmup_steps=0,
    lr_scheduler_type="constant",
    logging_steps=5,
    save_steps=10,
    disable_tqdm=True,
)


def cli_flags(**kwargs) -> list[str]:
    return [item for key, value in kwargs.items() for item in (f"--{key}", str(value))]


@pytest.fixture(scope="session")
def text_files(tmp_path_factory):
    """A few hundred lines of the embedded corpus (fast to tokenise)."""
    folder = tmp_path_factory.mktemp("text")
    lines = corpus_path("train").read_text(encoding="utf-8").splitlines()
    (folder / "train.txt").write_text("\n".join(lines[:400]) + "\n", encoding="utf-8")
    val = corpus_path("validation").read_text(encoding="utf-8").splitlines()
    (folder / "val.txt").write_text("\n".join(val[:60]) + "\n", encoding="utf-8")
    return folder / "train.txt", folder / "val.txt"


def tiny_arguments(output_dir, text_files, **overrides):
    from modeling_study.training import make_arguments

    train, val = text_files
    return make_arguments(
        **{**TINY_RUN, "output_dir": str(output_dir), "train_file": str(train), "validation_file": str(val), **overrides}
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, text_files):
    """One uninterrupted 20-step run (checkpoints at 10 and 20), shared by several tests."""
    from modeling_study.training import run_training

    output_dir = tmp_path_factory.mktemp("runs") / "tiny"
    return run_training(*tiny_arguments(output_dir, text_files))


# -- a run ---------------------------------------------------------------------------------------


def test_twenty_steps_lower_the_loss(tiny_run):
    losses = [loss for _, loss in tiny_run["loss_history"]]
    assert [step for step, _ in tiny_run["loss_history"]] == [5, 10, 15, 20]
    assert losses[-1] < losses[0] - 0.3, losses
    assert tiny_run["global_step"] == 20 and not tiny_run["diverged"]
    assert tiny_run["eval_loss"] < 8.0 and tiny_run["eval_perplexity"] == pytest.approx(torch.tensor(tiny_run["eval_loss"]).exp().item())
    assert 0 <= tiny_run["eval_token_accuracy"] <= 1
    assert len(tiny_run["grad_norm_history"]) == 4 and tiny_run["wall_time"] > 0
    # tied embedding 4096 x 32; per layer q, k, v, o 4 x 32 x 32, swiglu 3 x 32 x 64, two RMSNorms; final norm
    assert tiny_run["num_parameters"] == 4096 * 32 + 2 * (4 * 32 * 32 + 3 * 32 * 64 + 2 * 32) + 32


def test_final_folder_is_loadable_and_complete(tiny_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import modeling_study  # noqa: F401  (registers the Auto classes)

    final = Path(tiny_run["final_dir"])
    names = {p.name for p in final.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "results.json", "README.md", "training_args.json"} <= names
    # no pickles: Trainer's training_args.bin stays in the checkpoints; everything here is JSON, text or safetensors
    assert "training_args.bin" not in names and (final.parent / "checkpoint-20" / "training_args.bin").is_file()
    assert {p.suffix for p in final.iterdir()} <= {".json", ".safetensors", ".py", ".md", ".txt"}, names
    for path in final.glob("*.json"):
        json.loads(path.read_text())
    saved_args = json.loads((final / "training_args.json").read_text())
    assert (saved_args["learning_rate"], saved_args["max_steps"], saved_args["seed"]) == (3e-3, 20, 42)
    assert not list(final.parent.glob(".tmp-final-*"))
    model = AutoModelForCausalLM.from_pretrained(final)
    tokenizer = AutoTokenizer.from_pretrained(final)
    assert model.config.vocab_size == len(tokenizer) == 4096
    saved = json.loads((final / "results.json").read_text())
    assert saved["eval_loss"] == pytest.approx(tiny_run["eval_loss"])
    assert json.loads((final.parent / "results.json").read_text())["global_step"] == 20
    assert "perplexity" in (final / "README.md").read_text().lower()


def test_evaluate_perplexity_matches_trainer_eval(tiny_run, text_files):
    """Windows of block_size over the same validation text give the Trainer's token-weighted eval loss."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from modeling_study.training import evaluate_perplexity

    final = tiny_run["final_dir"]
    model, tokenizer = AutoModelForCausalLM.from_pretrained(final), AutoTokenizer.from_pretrained(final)
    result = evaluate_perplexity(model, tokenizer, 32, path=text_files[1])
    assert result["loss"] == pytest.approx(tiny_run["eval_loss"], rel=1e-5)
    assert result["num_tokens"] == tiny_run["eval_num_tokens"] == result["num_windows"] * 31
    longer = evaluate_perplexity(model, tokenizer, 64, path=text_files[1], max_tokens=result["num_windows"] * 32)
    assert longer["num_windows"] == result["num_windows"] // 2 and longer["perplexity"] > 1


def test_evaluate_perplexity_on_token_ids():
    from conftest import tiny_config

    from modeling_study import StudyForCausalLM, StudyForMaskedLM
    from modeling_study.training import evaluate_perplexity

    model = StudyForCausalLM(tiny_config())
    ids = torch.randint(0, 99, (100,))
    result = evaluate_perplexity(model, ids, 16, batch_size=2)
    assert result["num_windows"] == 6 and result["num_tokens"] == 6 * 15
    logits = model(input_ids=ids[:96].view(6, 16)).logits
    manual = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 99), ids[:96].view(6, 16)[:, 1:].reshape(-1))
    assert result["loss"] == pytest.approx(manual.item(), rel=1e-5)
    with pytest.raises(ValueError, match="fewer than one window"):
        evaluate_perplexity(model, ids[:10], 16)
    with pytest.raises(ValueError, match="causal"):
        evaluate_perplexity(StudyForMaskedLM(tiny_config(is_causal=False)), ids, 16)


# -- resume --------------------------------------------------------------------------------------


def test_resume_continues_from_the_checkpoint_and_ends_where_the_full_run_ends(tiny_run, text_files, tmp_path):
    from modeling_study.training import run_training

    checkpoint = Path(tiny_run["output_dir"]) / "checkpoint-10"
    resumed = run_training(*tiny_arguments(tmp_path / "resumed", text_files, resume_from_checkpoint=str(checkpoint)))
    assert resumed["resumed_from"] == str(checkpoint)
    assert [step for step, _ in resumed["loss_history"]] == [15, 20]  # steps 1-10 were not run again
    assert [loss for _, loss in resumed["loss_history"]] == pytest.approx([loss for _, loss in tiny_run["loss_history"][2:]], rel=1e-5)
    assert resumed["eval_loss"] == pytest.approx(tiny_run["eval_loss"], rel=1e-5)


# -- mlm and label smoothing ------------------------------------------------------------------------


def test_mlm_run(text_files, tmp_path):
    from transformers import AutoModelForMaskedLM

    from modeling_study.training import run_training

    results = run_training(*tiny_arguments(tmp_path / "mlm", text_files, objective="mlm", max_steps=4, save_steps=100))
    assert results["objective"] == "mlm" and results["config"]["is_causal"] is False
    # an untrained model predicts uniformly: ln(4096) = 8.32 nats per masked token; 4 steps reach 8.10
    assert results["eval_loss"] < math.log(4096) - 0.1
    model = AutoModelForMaskedLM.from_pretrained(results["final_dir"])
    assert type(model).__name__ == "StudyForMaskedLM"


def test_label_smoothing_shifts_causal_labels(text_files, tmp_path):
    """With smoothing ~0 the loss must equal the unsmoothed (shifted) loss of the same run."""
    from modeling_study.training import run_training

    args = dict(max_steps=2, logging_steps=1, save_steps=100, max_eval_samples=4)
    plain = run_training(*tiny_arguments(tmp_path / "a", text_files, **args))
    smoothed = run_training(*tiny_arguments(tmp_path / "b", text_files, label_smoothing_factor=1e-9, **args))
    assert [loss for _, loss in smoothed["loss_history"]] == pytest.approx([loss for _, loss in plain["loss_history"]], rel=1e-4)


# -- data cache ----------------------------------------------------------------------------------


def test_changed_file_is_never_served_stale(tmp_path):
    """Same path, same size, same mtime, new content: new tokens come out of the cache."""
    from modeling_study.training import load_tokenizer
    from modeling_study.training.data import build_split

    tokenizer = load_tokenizer(str(REPO / "tokenizer"))
    path = tmp_path / "doc.txt"
    path.write_text("In the beginning God created the heaven and the earth.\n" * 8)
    stat = path.stat()
    first = build_split(path, tokenizer, 8, cache_root=tmp_path / "cache")
    again = build_split(path, tokenizer, 8, cache_root=tmp_path / "cache")
    assert again.cache_files == first.cache_files  # unchanged file: served from the cache
    path.write_text("In the beginning God created the heaven and the water.\n" * 8)
    assert path.stat().st_size == stat.st_size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    changed = build_split(path, tokenizer, 8, cache_root=tmp_path / "cache")
    assert changed["input_ids"] != first["input_ids"]
    expected = tokenizer("In the beginning God created the heaven and the water.", add_special_tokens=False)["input_ids"]
    assert changed["input_ids"][0] == (expected + [tokenizer.eos_token_id])[:8]


# -- bad inputs: a clear error before training, nothing in output_dir -----------------------------


def run_cli(argv):
    sys.path.insert(0, str(TRAIN_SCRIPT.parent))
    try:
        import train
    finally:
        sys.path.pop(0)
    return train.main(argv)


@pytest.mark.parametrize(
    "case, extra, message",
    [
        ("missing train file", dict(train_file="{tmp}/nope.txt"), "training file not found"),
        ("empty train file", dict(train_file="{tmp}/empty.txt"), "training file is empty"),
        ("missing validation file", dict(validation_file="{tmp}/nope.txt"), "validation file not found"),
        ("block size > learned positions", dict(position_encoding="learned", max_position_embeddings=16), "larger than max_position_embeddings"),
        ("tokenizer larger than the model", dict(vocab_size=1000), "tokenizer has 4096 tokens"),
        ("missing tokenizer", dict(tokenizer_name="{tmp}/no_tokenizer"), "tokenizer not found"),
        ("unknown flag value", dict(position_encoding="rotary"), "invalid choice: 'rotary'"),
        ("unknown objective", dict(objective="seq2seq"), "invalid choice: 'seq2seq'"),
        ("mlm with causal attention", dict(objective="mlm", is_causal="True"), "needs is_causal=False"),
        ("not a checkpoint", dict(resume_from_checkpoint="{tmp}"), "not a complete Trainer checkpoint"),
    ],
)
def test_bad_input_fails_before_training(case, extra, message, text_files, tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("\n  \n")
    output_dir = tmp_path / "out"
    flags = {**TINY_RUN, "train_file": text_files[0], "validation_file": text_files[1], "output_dir": output_dir}
    flags.update({key: str(value).format(tmp=tmp_path) for key, value in extra.items()})
    with pytest.raises(SystemExit) as exit_info:
        run_cli(cli_flags(**flags))
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not output_dir.exists()


def test_usage_errors_are_one_line_and_help_lists_everything(capsys, monkeypatch):
    """An error prints one short usage line and the message (not the ~130-line usage block); --help keeps it all."""
    for argv, message in ((["--bogus"], "unrecognized arguments: --bogus"),
                          (["--max_steps", "x"], "argument --max_steps/--max-steps: invalid int value: 'x'"),
                          (["--train_file", "/no/such/file.txt"], "training file not found: /no/such/file.txt")):
        with pytest.raises(SystemExit) as exit_info:
            run_cli(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2
        assert err == ["usage: train.py [-h] [options]  (--help lists every option)", f"train.py: error: {message}"]

    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    for flag in ("--position_encoding", "--lr_scheduler_type", "--overwrite_output_dir", "--ddp_find_unused_parameters"):
        assert f"\n  {flag} " in out, flag
    # the description's example commands keep their lines (a raw formatter), as in the script's docstring
    assert "\n    python scripts/train.py --output_dir runs/tiny --hidden_size 32 --intermediate_size 64 \\\n" in out
    assert "\n    python scripts/train.py --output_dir runs/train --resume_from_checkpoint last\n" in out
    negative = out.split("--no_tie_word_embeddings, --no-tie-word-embeddings")[1].split("\n  --")[0]
    assert "own weight matrix" in " ".join(negative.split()) and "Share input embedding" not in negative


def test_every_parameter_gets_a_gradient():
    """Why ddp_find_unused_parameters defaults to False: no study model has a parameter outside the forward.

    With it True, DDP searches the graph after every backward and warns that it found nothing; with it
    False, a parameter without a gradient would hang or fail DDP's reduction. Both heads train.py
    builds (the masked LM differs only in its head), every encoding and placement, LayerNorm (weight
    and bias) and the optional parts.
    """
    from conftest import ENCODINGS, PLACEMENTS, tiny_config

    from modeling_study import StudyForCausalLM, StudyForMaskedLM

    cases = [(StudyForCausalLM, dict(position_encoding=e, norm_placement=p, norm_type="layernorm"))
             for e in ENCODINGS for p in PLACEMENTS]
    cases += [(StudyForMaskedLM, dict(position_encoding=e, is_causal=False)) for e in ("learned", "t5")]  # its head
    cases += [(StudyForCausalLM, dict(tie_word_embeddings=False, embedding_norm=True, type_vocab_size=2,
                                      attention_bias=True, mlp_bias=True, norm_type="rmsnorm"))]
    x = torch.randint(1, 99, (2, 8))
    for cls, overrides in cases:
        model = cls(tiny_config(**overrides))
        model(x, labels=x).loss.backward()
        unused = [name for name, parameter in model.named_parameters() if parameter.grad is None]
        assert not unused, f"{cls.__name__} {overrides}: {unused}"
    from modeling_study.training import make_arguments

    assert make_arguments(output_dir="unused")[2].ddp_find_unused_parameters is False


def test_an_earlier_run_is_not_replaced_silently(tiny_run, text_files, tmp_path, capsys):
    """Training from scratch into the folder of a finished run is refused unless --overwrite_output_dir."""
    import shutil

    output_dir = tmp_path / "again"
    shutil.copytree(tiny_run["output_dir"], output_dir)
    before = sorted(p.name for p in output_dir.iterdir())
    flags = {**TINY_RUN, "train_file": text_files[0], "validation_file": text_files[1], "output_dir": output_dir}
    with pytest.raises(SystemExit) as exit_info:
        run_cli(cli_flags(**flags))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"train.py: error: --output_dir {output_dir} already holds an earlier run (final, checkpoint-10, checkpoint-20); "
        "training again would replace its final model. Pass --overwrite_output_dir to replace it, "
        "--resume_from_checkpoint last to continue it, or choose another --output_dir.")
    assert sorted(p.name for p in output_dir.iterdir()) == before  # nothing touched

    # --overwrite_output_dir: a fresh 2-step run; the old checkpoints go, final/ is the new run's
    results = run_cli(cli_flags(**{**flags, "max_steps": 2, "save_steps": 2, "max_eval_samples": 4}) + ["--overwrite_output_dir"])
    assert sorted(p.name for p in output_dir.iterdir() if p.name.startswith("checkpoint-")) == ["checkpoint-2"]
    assert results["global_step"] == 2 and json.loads((output_dir / "final" / "results.json").read_text())["global_step"] == 2


def test_bad_input_raises_value_error_programmatically(text_files, tmp_path):
    from modeling_study.training import BadInputError, run_training

    with pytest.raises(BadInputError, match="position_encoding must be one of"):
        run_training(*tiny_arguments(tmp_path / "out", text_files, position_encoding="rotary"))
    assert not (tmp_path / "out").exists()


# -- accelerate ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_accelerate_two_processes_match_one(text_files, tmp_path):
    """2 CPU processes x batch 4 see the same examples per step as 1 process x batch 8, so the curves agree.

    accelerate 1.x's ``--cpu`` flag always starts a single process (multi-CPU there means mpirun);
    ``--multi_gpu`` starts torchrun-style workers, which run data parallel over gloo on CPU because
    StudyTrainingArguments turns ``use_cpu`` on when there is no GPU.
    """
    from modeling_study.training import run_training

    single = run_training(*tiny_arguments(tmp_path / "single", text_files, save_steps=100))
    flags = cli_flags(
        **{**TINY_RUN, "save_steps": 100, "per_device_train_batch_size": 4, "output_dir": tmp_path / "ddp",
           "train_file": text_files[0], "validation_file": text_files[1]}
    )
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(TRAIN_SCRIPT), *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "find_unused_parameters=True was specified" not in done.stderr  # ddp_find_unused_parameters=False
    ddp = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert ddp["world_size"] == 2 and ddp["effective_batch_size"] == single["effective_batch_size"] == 8
    assert ddp["global_step"] == 20
    assert [loss for _, loss in ddp["loss_history"]] == pytest.approx([loss for _, loss in single["loss_history"]], rel=1e-4)
    assert ddp["eval_loss"] == pytest.approx(single["eval_loss"], rel=1e-4)
    assert (tmp_path / "ddp" / "final" / "model.safetensors").is_file()


def test_config_overrides_win_over_flag_fields(text_files, tmp_path):
    """config_overrides may set a field that also has a flag (the study varies tie_word_embeddings so)."""
    from modeling_study.training import build_config, load_tokenizer

    model_args, data_args, _ = tiny_arguments(tmp_path, text_files)
    tokenizer = load_tokenizer(model_args.tokenizer_name)
    assert build_config(model_args, data_args, tokenizer).tie_word_embeddings is True
    config = build_config(model_args, data_args, tokenizer, {"tie_word_embeddings": False, "embedding_norm": True})
    assert config.tie_word_embeddings is False and config.embedding_norm is True
