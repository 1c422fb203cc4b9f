"""Synthetic length-generalisation tasks: generators, scorer, training recipe, runner interface."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from modeling_study.study.spec import DIVERGED, FINISHED, NOT_APPLICABLE
from modeling_study.study.tasks import (
    BOS,
    EOS,
    FIRST_SYMBOL,
    IGNORE,
    PAD,
    SEP,
    TASK_SETTINGS,
    TASKS,
    TaskSettings,
    build_task_model,
    collate,
    in_distribution_instances,
    instances_at_length,
    measure_task,
    plan_tasks,
    score_predictions,
    training_instances,
)

ENCODINGS = ["none", "integer", "binary", "sinusoidal", "learned", "rope", "alibi", "t5"]


class FixedDraws:
    """A stand-in generator whose draws are written in the test."""

    def __init__(self, draws):
        self.draws = np.array(draws)

    def integers(self, low, high, size):
        assert self.draws.shape == tuple(size) and self.draws.min() >= low and self.draws.max() < high
        return self.draws


# -- generators ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task, expected",
    [  # x = symbols 3 1 2 3 -> tokens 7 5 6 7; BOS=1, SEP=2, EOS=3
        ("copy", [1, 7, 5, 6, 7, 2, 7, 5, 6, 7, 3]),
        ("reverse", [1, 7, 5, 6, 7, 2, 7, 6, 5, 7, 3]),
        ("sort", [1, 7, 5, 6, 7, 2, 5, 6, 7, 7, 3]),
    ],
)
def test_instances_by_hand(task, expected):
    assert (BOS, SEP, EOS, PAD, FIRST_SYMBOL) == (1, 2, 3, 0, 4)
    sequence = TASKS[task].instances(FixedDraws([[3, 1, 2, 3]]), 4, 1, alphabet_size=4)
    assert sequence.tolist() == [expected]
    assert TASKS[task].sequence_length(4) == len(expected) == 11


@pytest.mark.parametrize("task", sorted(TASKS))
def test_training_instances_lengths_ranges_and_labels(task):
    examples = training_instances(TASKS[task], seed=7, count=400, max_length=6, alphabet_size=5)
    lengths = []
    for example in examples:
        ids, labels = example["input_ids"].numpy(), example["labels"].numpy()
        n = (len(ids) - 3) // 2
        lengths.append(n)
        assert ids[0] == BOS and ids[n + 1] == SEP and ids[-1] == EOS and len(ids) == 2 * n + 3
        x, y = ids[1:n + 1] - FIRST_SYMBOL, ids[n + 2:-1] - FIRST_SYMBOL
        assert x.min() >= 0 and x.max() < 5 and y.min() >= 0 and y.max() < 5
        assert y.tolist() == {"copy": list(x), "reverse": list(x[::-1]), "sort": sorted(x)}[task]
        assert (labels[: n + 2] == IGNORE).all() and (labels[n + 2:] == ids[n + 2:]).all()  # answer + EOS scored
    counts = np.bincount(lengths, minlength=7)
    assert counts[0] == 0 and (counts[1:] > 400 / 6 * 0.6).all()  # every length 1..6 drawn, roughly uniformly


def test_same_seed_same_instances_different_seed_different():
    task = TASKS["copy"]
    a = training_instances(task, seed=3, count=50, max_length=8, alphabet_size=10)
    b = training_instances(task, seed=3, count=50, max_length=8, alphabet_size=10)
    c = training_instances(task, seed=4, count=50, max_length=8, alphabet_size=10)
    assert all(torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, b))
    assert sum(not torch.equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, c)) > 40
    ids, _ = instances_at_length(task, 3, 12, 20, 10)
    assert torch.equal(ids, instances_at_length(task, 3, 12, 20, 10)[0])
    assert not torch.equal(ids, instances_at_length(task, 4, 12, 20, 10)[0])


def test_train_and_test_streams_are_separate():
    task, n = TASKS["copy"], 8
    train = {tuple(e["input_ids"].tolist()) for e in training_instances(task, 0, 2000, n, 10)}
    test, _ = instances_at_length(task, 0, n, 200, 10)
    # 10^8 strings of length 8: a shared stream would repeat whole instances, independent ones almost never
    assert not train & {tuple(row) for row in test.tolist()}
    held_out = {tuple(e["input_ids"].tolist()) for e in in_distribution_instances(task, 0, 200, n, 10)}
    assert not train & {s for s in held_out if len(s) > 2 * 5 + 3}  # long enough to be rare by chance
    # one length's test set does not depend on which other lengths are drawn
    assert torch.equal(test, instances_at_length(task, 0, n, 200, 10)[0])


def test_test_lengths_round_half_up():
    assert TaskSettings("x", train_max_length=5).test_lengths == [5, 8, 10, 15]
    assert TaskSettings("x", train_max_length=20).test_lengths == [20, 30, 40, 60]


# -- scorer -------------------------------------------------------------------------------------


def test_scorer_on_hand_made_predictions():
    # sequence BOS 5 SEP 5 EOS: labels score the answer 5 and EOS (positions 3 and 4)
    labels = torch.tensor([[IGNORE, IGNORE, IGNORE, 5, EOS]] * 3 + [[IGNORE, IGNORE, 5, EOS, IGNORE]])
    predictions = torch.tensor([
        [9, 9, 5, EOS, 9],  # position 2 predicts 5, position 3 predicts EOS: exact
        [9, 9, 6, EOS, 9],  # one wrong answer token
        [9, 9, 5, PAD, 9],  # EOS missed
        [9, 5, EOS, 9, 9],  # a shorter padded row, right
    ])
    exact, correct, total = score_predictions(predictions, labels)
    assert exact.tolist() == [True, False, False, True]
    assert (correct, total) == (2 + 1 + 1 + 2, 8)
    with pytest.raises(ValueError, match="one shape"):
        score_predictions(predictions[:, :-1], labels)
    with pytest.raises(ValueError, match="at least one scored token"):
        score_predictions(predictions, torch.full_like(labels, IGNORE))


def test_teacher_forced_verdict_equals_greedy_generate():
    """Exact match by one forward pass == exact match of generate()'s greedy continuation."""
    settings = TASK_SETTINGS["smoke"]
    torch.manual_seed(0)
    model = build_task_model(settings, TASKS["copy"], "rope").eval()
    n, m = 4, 5  # answer + EOS
    prompts, _ = instances_at_length(TASKS["copy"], 0, n, 6, settings.alphabet_size)
    prompts = prompts[:, : n + 2]
    greedy = model.generate(prompts, max_new_tokens=m, min_new_tokens=m, do_sample=False, eos_token_id=None,
                            pad_token_id=PAD)[:, n + 2:]
    # targets: greedy's own output (rows 0-2) or it with one token changed at position 0, 2, 4 (rows 3-5)
    targets = greedy.clone()
    for row, position in ((3, 0), (4, 2), (5, 4)):
        targets[row, position] = (targets[row, position] + 1) % model.config.vocab_size
    sequences = torch.cat([prompts, targets], dim=1)
    labels = sequences.clone()
    labels[:, : n + 2] = IGNORE
    with torch.no_grad():
        predictions = model(input_ids=sequences).logits.argmax(-1)
    exact, _, _ = score_predictions(predictions, labels)
    assert exact.tolist() == [True, True, True, False, False, False]
    # the teacher-forced arg-max equals greedy's token wherever the prefix so far is greedy's own
    teacher = predictions[:, n + 1:-1]
    for row, first_error in ((0, m), (1, m), (2, m), (3, 0), (4, 2), (5, 4)):
        assert torch.equal(teacher[row, : first_error + 1], greedy[row, : first_error + 1])


# -- collator and model -------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_right_padding_without_mask_leaves_real_tokens_alone(encoding):
    settings = TASK_SETTINGS["smoke"]
    task = TASKS["copy"]
    model = build_task_model(settings, task, encoding).eval()
    examples = training_instances(task, 1, 6, settings.train_max_length, settings.alphabet_size)
    batch = collate(examples)
    assert batch.keys() == {"input_ids", "labels"}
    with torch.no_grad():
        padded = model(input_ids=batch["input_ids"]).logits
        for row, example in enumerate(examples):
            length = len(example["input_ids"])
            assert (batch["input_ids"][row, length:] == PAD).all() and (batch["labels"][row, length:] == IGNORE).all()
            alone = model(input_ids=example["input_ids"][None]).logits[0]
            torch.testing.assert_close(padded[row, :length], alone, rtol=1e-5, atol=1e-5)  # float32 reordering only


def test_loss_counts_only_answer_and_eos():
    settings = TASK_SETTINGS["smoke"]
    task = TASKS["reverse"]
    model = build_task_model(settings, task, "alibi")
    batch = collate(training_instances(task, 2, 5, settings.train_max_length, settings.alphabet_size))
    logits = model(input_ids=batch["input_ids"]).logits
    # closed form: mean over scored positions of -log softmax(logits[t])[token t + 1]
    log_probs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    targets = batch["labels"][:, 1:]
    scored = targets != IGNORE
    expected = -log_probs[scored].gather(-1, targets[scored][:, None]).mean()
    n_scored = sum(len(e) for e in [row[row != IGNORE] for row in batch["labels"]])
    assert int(scored.sum()) == n_scored
    torch.testing.assert_close(model(**batch).loss, expected)


def test_learned_table_is_the_longest_training_sequence():
    settings = TASK_SETTINGS["default"]
    model = build_task_model(settings, TASKS["copy"], "learned")
    assert model.config.max_position_embeddings == 2 * settings.train_max_length + 3
    assert model.config.vocab_size == FIRST_SYMBOL + settings.alphabet_size


# -- runner interface ---------------------------------------------------------------------------


def test_plan_tasks():
    specs = plan_tasks("default", [42, 43, 44], tuple(ENCODINGS))
    assert len(specs) == 3 * 8 * 3 == len({s.key() for s in specs})
    assert specs[0].name == "copy/none/seed42" and specs[0].experiment == "tasks"
    assert specs[0].labels == {"task": "copy", "encoding": "none", "seed": 42}
    assert TaskSettings.from_dict(json.loads(json.dumps(specs[0].train["settings"]))) == TASK_SETTINGS["default"]
    with pytest.raises(ValueError, match="preset_name must be one of"):
        plan_tasks("huge", [42], ("rope",))
    with pytest.raises(ValueError, match=r"unknown \['rotary'\]"):
        plan_tasks("smoke", [42], ("rotary",))


def test_settings_errors():
    with pytest.raises(ValueError, match=r"TaskSettings.tasks .* got \['add'\]"):
        TaskSettings("x", tasks=("add",))
    with pytest.raises(ValueError, match="TaskSettings.steps must be a positive integer, got 0"):
        TaskSettings("x", steps=0)
    with pytest.raises(ValueError, match=r"TaskSettings.model may not set \['position_encoding'\]"):
        TaskSettings("x", model={"hidden_size": 32, "position_encoding": "rope"})
    with pytest.raises(ValueError, match="test_multipliers must be >= 1"):
        TaskSettings("x", test_multipliers=(0.5, 1))


def _spec(encoding, seed=42):
    return plan_tasks("smoke", [seed], (encoding,))[0]


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    work = tmp_path_factory.mktemp("tasks")
    return {(encoding, seed): measure_task(_spec(encoding, seed), work / f"{encoding}{seed}")
            for encoding, seed in (("rope", 42), ("rope", 43), ("learned", 42))}


def test_measure_task_end_to_end(smoke_runs):
    settings = TASK_SETTINGS["smoke"]
    result = smoke_runs["rope", 42]
    json.dumps(result, allow_nan=False)
    assert result["status"] == FINISHED and result["train_lengths"] == [1, settings.train_max_length]
    training = result["training"]
    assert training["steps"] == settings.steps == len(training["loss_history"])
    assert training["num_parameters"] > 0 and training["train_runtime"] > 0
    assert training["final_train_loss"] == training["loss_history"][-1][1] > 0
    assert list(result["accuracy"]) == [str(n) for n in settings.test_lengths] == ["4", "6", "8", "12"]
    for cell in result["accuracy"].values():
        assert cell["status"] == FINISHED and cell["n"] == settings.n_test
        assert 0 <= cell["exact_match"] <= cell["token_accuracy"] <= 1  # an exact row has every token right
    assert 0 <= result["in_distribution_exact_match"] <= 1


def test_same_seed_same_numbers_different_seed_different(smoke_runs, tmp_path):
    again = measure_task(_spec("rope", 42), tmp_path)
    assert again["training"]["loss_history"] == smoke_runs["rope", 42]["training"]["loss_history"]
    assert again["accuracy"] == smoke_runs["rope", 42]["accuracy"]
    assert again["training"]["loss_history"] != smoke_runs["rope", 43]["training"]["loss_history"]


def test_learned_past_its_table_is_not_applicable(smoke_runs):
    accuracy = smoke_runs["learned", 42]["accuracy"]
    assert accuracy["4"]["status"] == FINISHED  # n = L: 2L + 3 tokens, exactly the table
    for n in ("6", "8", "12"):
        assert accuracy[n]["status"] == NOT_APPLICABLE and "cannot run past its table" in accuracy[n]["reason"]
        assert f"has {2 * int(n) + 3} tokens" in accuracy[n]["reason"]


def test_bad_run_spec(tmp_path):
    spec = _spec("rope")
    bad = dataclasses.replace(spec, train={**spec.train, "encoding": "rotary"})
    with pytest.raises(ValueError, match=r"RunSpec.train\['encoding'\] must be one of .* got 'rotary'"):
        measure_task(bad, tmp_path)
    with pytest.raises(ValueError, match=r"missing \['seed'\]"):
        measure_task(dataclasses.replace(spec, train={k: v for k, v in spec.train.items() if k != "seed"}), tmp_path)


@pytest.mark.slow  # 120 steps: 9-15 s of training on 2 shared CPU cores
def test_a_tiny_model_learns_copy(tmp_path):
    """The training recipe works: rope learns copy in distribution (the threshold the report applies).

    The "long" model at L=3 and 120 steps; measured 0.98 exact in distribution, 0.99 at n = L.
    """
    settings = dataclasses.replace(TASK_SETTINGS["long"], name="learns", train_max_length=3, steps=120, warmup_steps=30,
                                   n_test=100)
    spec = plan_tasks("long", [42], ("rope",))[0]
    spec = dataclasses.replace(spec, train={**spec.train, "settings": dataclasses.asdict(settings)})
    result = measure_task(spec, tmp_path)
    assert result["in_distribution_exact_match"] >= 0.95
    assert result["accuracy"]["3"]["exact_match"] >= 0.95
