"""Synthetic length generalisation: train on short instances of a task, test on longer ones.

Copy and reverse, whose answers are decided by positions, and sort, decided by content (a contrast),
after Kazemnejad et al. 2023, "The Impact of Positional Encoding on Length Generalization in
Transformers", arXiv:2305.19466, and Delétang et al. 2023, "Neural Networks and the Chomsky
Hierarchy", arXiv:2207.02098. A decoder-only ``StudyForCausalLM`` is
trained on instances of length ``n`` uniform in ``[1, L]`` and scored by exact match at
``n = L, 1.5L, 2L, 3L``, once per positional encoding and seed.

An instance of length ``n`` is the token sequence ``BOS x_1..x_n SEP y_1..y_m EOS`` over a fixed
vocabulary: ``PAD=0, BOS=1, SEP=2, EOS=3``, then ``alphabet_size`` symbols. Only ``y`` and ``EOS`` are
scored (training loss and accuracy); the prompt and the padding carry label -100.

Scoring is greedy by teacher forcing: one forward pass over ``prompt + answer``; the arg-max at each
answer position is compared with the target. Its exact-match verdict is that of greedy decoding
(``generate``): up to the first wrong token both see the same inputs and make the same choices, so
greedy reproduces the answer iff every teacher-forced arg-max is right (tests/test_tasks.py checks it
against ``generate``). Token accuracy is the teacher-forced per-token accuracy (each token given the
right prefix), which greedy decoding would lower after a first error.

``measure_task(spec, work_dir)`` trains and scores one ``RunSpec``; ``plan_tasks`` lists the runs of a
preset of ``TASK_SETTINGS``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from .spec import DIVERGED, FINISHED, NOT_APPLICABLE, RunSpec

PAD, BOS, SEP, EOS = 0, 1, 2, 3
FIRST_SYMBOL = 4  # symbol i (0-based) is token FIRST_SYMBOL + i
IGNORE = -100  # label of a token that is not scored (transformers' loss functions skip it)
ENCODINGS = ("none", "integer", "binary", "sinusoidal", "learned", "rope", "alibi", "t5")
TRAIN_STREAM, TEST_STREAM, IN_DISTRIBUTION_STREAM = 0, 1, 2  # separate random streams per seed


# --------------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """A map from an input string ``x`` (symbols ``0..alphabet_size-1``) to its answer ``y``.

    ``answer`` takes a ``(count, n)`` array of symbols and returns ``(count, m)``; every task here
    has ``m = n`` (``answer_length``). ``source`` names the paper the task comes from.
    """

    name: str
    answer: Callable[[np.ndarray], np.ndarray]
    source: str

    def answer_length(self, n: int) -> int:
        return n

    def sequence_length(self, n: int) -> int:
        """Tokens of an instance of length ``n``: BOS, x, SEP, y, EOS."""
        return n + self.answer_length(n) + 3

    def instances(self, rng: np.random.Generator, n: int, count: int, alphabet_size: int) -> np.ndarray:
        """``count`` token sequences of input length ``n``, ``(count, sequence_length(n))`` int64.

        Symbols are drawn uniformly (with repeats) from ``rng``: the same generator state gives the
        same instances.
        """
        x = rng.integers(0, alphabet_size, size=(count, n))
        y = self.answer(x)
        column = lambda token: np.full((count, 1), token)  # noqa: E731
        return np.concatenate([column(BOS), x + FIRST_SYMBOL, column(SEP), y + FIRST_SYMBOL, column(EOS)], axis=1)


TASKS: dict[str, Task] = {
    # Copy: y = x. Kazemnejad et al. 2023 ("Copy"); Delétang et al. 2023 ("Duplicate String" writes x twice).
    "copy": Task("copy", lambda x: x.copy(), "Kazemnejad et al. 2023, arXiv:2305.19466"),
    # Reverse: y = x_n..x_1. Kazemnejad et al. 2023; Delétang et al. 2023 ("Reverse String", context-free).
    "reverse": Task("reverse", lambda x: x[:, ::-1].copy(), "Kazemnejad et al. 2023, arXiv:2305.19466; "
                    "Delétang et al. 2023, arXiv:2207.02098"),
    # Sort: y = x in ascending order. Kazemnejad et al. 2023 ("Sort"); Delétang et al. 2023 ("Bucket Sort").
    "sort": Task("sort", lambda x: np.sort(x, axis=1), "Kazemnejad et al. 2023, arXiv:2305.19466; "
                 "Delétang et al. 2023, arXiv:2207.02098"),
}


def _rng(seed: int, stream: int, *key: int) -> np.random.Generator:
    """An independent generator per (seed, stream, key): train and test never share draws, and adding
    a test length does not change the instances of the others."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream, *key)))


def answer_start(n: int) -> int:
    """Index of y_1 in an instance of input length n (after BOS, x_1..x_n, SEP)."""
    return n + 2


def labels_for(sequence: np.ndarray, n: int) -> np.ndarray:
    """Labels of one or more sequences of input length ``n``: the tokens of ``y`` and EOS, -100 elsewhere."""
    labels = np.array(sequence, dtype=np.int64, copy=True)
    labels[..., : answer_start(n)] = IGNORE
    return labels


class MixedLengthInstances(torch.utils.data.Dataset):
    """``count`` examples ``{"input_ids", "labels"}`` (1-D int64 tensors, unpadded) with input lengths
    uniform in ``[1, max_length]``, drawn from ``rng``; instances of one length are drawn together.

    Held as one small-integer array per length and turned into tensors when read, so the "full"
    preset's 1.3 M instances take tens of MB, not a Python object each.
    """

    def __init__(self, task: Task, rng: np.random.Generator, count: int, max_length: int, alphabet_size: int):
        if FIRST_SYMBOL + alphabet_size > 2 ** 15:
            raise ValueError(f"alphabet_size={alphabet_size} is too large: token ids must fit in int16.")
        lengths = rng.integers(1, max_length + 1, size=count)
        self.groups: dict[int, np.ndarray] = {}  # n -> (instances of length n, sequence_length(n)) int16
        self.where = np.empty((count, 2), dtype=np.int64)  # example i -> (n, row in its group)
        for n in np.unique(lengths):
            rows = np.flatnonzero(lengths == n)
            self.groups[int(n)] = task.instances(rng, int(n), len(rows), alphabet_size).astype(np.int16)
            self.where[rows] = np.stack([np.full(len(rows), n), np.arange(len(rows))], axis=1)

    def __len__(self) -> int:
        return len(self.where)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} instances")
        n, row = self.where[index]
        sequence = self.groups[int(n)][row].astype(np.int64)
        return {"input_ids": torch.from_numpy(sequence), "labels": torch.from_numpy(labels_for(sequence, int(n)))}


def training_instances(task: Task, seed: int, count: int, max_length: int, alphabet_size: int) -> MixedLengthInstances:
    """``count`` training examples, input lengths uniform in ``[1, max_length]``, from the train stream."""
    return MixedLengthInstances(task, _rng(seed, TRAIN_STREAM), count, max_length, alphabet_size)


def in_distribution_instances(task: Task, seed: int, count: int, max_length: int,
                              alphabet_size: int) -> MixedLengthInstances:
    """``count`` held-out examples from the training distribution (lengths uniform in ``[1, max_length]``),
    from their own stream. Short lengths have few distinct strings (``alphabet_size ** n``), so some
    of these also occur in training, as in any i.i.d. test set."""
    return MixedLengthInstances(task, _rng(seed, IN_DISTRIBUTION_STREAM), count, max_length, alphabet_size)


def instances_at_length(task: Task, seed: int, n: int, count: int,
                        alphabet_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` test instances of input length exactly ``n``: ``(input_ids, labels)``, each ``(count, T)``."""
    batch = task.instances(_rng(seed, TEST_STREAM, n), n, count, alphabet_size)
    return torch.from_numpy(batch), torch.from_numpy(labels_for(batch, n))


def collate(examples: list[dict]) -> dict:
    """Right-pad a list of examples: input_ids with PAD, labels with -100.

    No attention mask: in a causal decoder a real token never attends to the padding that follows it,
    and positions count from 0 either way, so the mask would change nothing but the speed (sdpa's
    causal kernel needs no mask).
    """
    pad = torch.nn.utils.rnn.pad_sequence
    return {
        "input_ids": pad([e["input_ids"] for e in examples], batch_first=True, padding_value=PAD),
        "labels": pad([e["labels"] for e in examples], batch_first=True, padding_value=IGNORE),
    }


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------


def score_predictions(predictions: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Exact match and per-token correctness of next-token predictions against scored labels.

    Args:
        predictions: ``(B, T)`` arg-max token at every position (the prediction for position ``t + 1``).
        labels: ``(B, T)`` targets, -100 where not scored (prompt, padding).

    Returns ``(exact (B,) bool, correct tokens, scored tokens)``: a row is exact when every scored
    token (the answer and EOS) is predicted; one wrong token, or EOS missed, makes it not exact.
    """
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} "
                         f"must have one shape.")
    targets, guesses = labels[:, 1:], predictions[:, :-1]  # position t predicts token t + 1
    scored = targets != IGNORE
    if not scored.any(dim=1).all():
        raise ValueError("every row of labels needs at least one scored token (an answer and EOS).")
    right = (guesses == targets) & scored
    exact = (right | ~scored).all(dim=1)
    return exact, int(right.sum()), int(scored.sum())


@torch.no_grad()
def evaluate_batches(model, batches) -> dict:
    """Exact match and token accuracy of ``model`` over batches ``{"input_ids", "labels"}`` (teacher forced)."""
    model.eval()
    exact, correct, total = [], 0, 0
    for batch in batches:
        predictions = model(input_ids=batch["input_ids"].to(model.device), use_cache=False).logits.argmax(-1).cpu()
        rows, right, scored = score_predictions(predictions, batch["labels"])
        exact.append(rows)
        correct, total = correct + right, total + scored
    exact = torch.cat(exact)
    return {"status": FINISHED, "exact_match": float(exact.float().mean()), "token_accuracy": correct / total,
            "n": int(exact.numel())}


def _chunks(input_ids: torch.Tensor, labels: torch.Tensor, size: int):
    for start in range(0, len(input_ids), size):
        yield {"input_ids": input_ids[start:start + size], "labels": labels[start:start + size]}


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------


# StudyConfig fields that build_task_model sets from the task and the run, never from TaskSettings.model
TASK_DECIDES = frozenset({"vocab_size", "position_encoding", "max_position_embeddings", "is_causal", "pad_token_id",
                          "bos_token_id", "eos_token_id"})


@dataclass(frozen=True)
class TaskSettings:
    """Everything a task run depends on; ``dataclasses.asdict`` of it travels in ``RunSpec.train``.

    Args:
        name: the preset's name.
        tasks: task names (keys of ``TASKS``).
        train_max_length: L; training input lengths are uniform in ``[1, L]``.
        test_multipliers: test at ``n = round(m * L)`` for each m.
        alphabet_size: number of symbols (the vocabulary is 4 specials + these).
        model: ``StudyConfig`` fields (sizes, and any other choice held fixed across encodings).
        steps, batch_size, learning_rate, warmup_steps, weight_decay, lr_scheduler_type: the
            ``Trainer``'s optimisation (AdamW); every step sees fresh instances.
        n_test: instances per test length, and in the in-distribution set.
        eval_batch_size: instances per forward pass when scoring.
        logging_steps: training-loss log interval (the loss history's resolution).
        use_cpu: train on the CPU even when an accelerator is present (the CPU presets), else
            the Trainer's device.
        num_threads: torch intra-op threads during the run (restored after), None to leave torch's
            setting. Tiny models gain nothing from a second thread and lose much when the cores are
            shared: one copy step of the default model took 0.029 s with 1 thread, 0.53 s with 2 (2 CPU
            cores at load average ~7).
    """

    name: str
    tasks: tuple[str, ...] = ("copy", "reverse", "sort")
    train_max_length: int = 8
    test_multipliers: tuple[float, ...] = (1, 1.5, 2, 3)
    alphabet_size: int = 10
    model: dict = field(default_factory=dict)
    steps: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 10
    weight_decay: float = 0.0
    lr_scheduler_type: str = "cosine"
    n_test: int = 100
    eval_batch_size: int = 100
    logging_steps: int = 10
    num_threads: int | None = 1
    use_cpu: bool = True

    def __post_init__(self):
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise ValueError(f"TaskSettings.tasks must be a non-empty subset of {sorted(TASKS)}, "
                             f"got {list(self.tasks)}.")
        for name in ("train_max_length", "alphabet_size", "steps", "batch_size", "n_test", "eval_batch_size",
                     "logging_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TaskSettings.{name} must be a positive integer, got {value!r}.")
        if reserved := sorted(set(self.model) & TASK_DECIDES):
            raise ValueError(f"TaskSettings.model may not set {reserved}: the task decides them (vocabulary, "
                             f"special tokens, the learned table's size) and the run its position_encoding.")
        if not self.test_multipliers or min(self.test_multipliers) < 1:
            raise ValueError(f"TaskSettings.test_multipliers must be >= 1 (test at L and beyond), "
                             f"got {list(self.test_multipliers)}.")

    @property
    def test_lengths(self) -> list[int]:
        """``n = m * L`` rounded half up (1.5 x 5 = 7.5 -> 8), without repeats."""
        lengths = [math.floor(m * self.train_max_length + 0.5) for m in self.test_multipliers]
        return sorted(set(lengths))

    @classmethod
    def from_dict(cls, data: dict) -> "TaskSettings":
        """Inverse of ``dataclasses.asdict`` (lists from JSON back to tuples)."""
        known = {f.name for f in fields(cls)}
        if unknown := set(data) - known:
            raise ValueError(f"TaskSettings has no fields {sorted(unknown)}; known: {sorted(known)}.")
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data)


TASK_SETTINGS: dict[str, TaskSettings] = {
    # Checks the machinery in seconds: one task, a model that learns nothing.
    "smoke": TaskSettings(
        name="smoke", tasks=("copy",), train_max_length=4, alphabet_size=6,
        model=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2),
        steps=4, batch_size=8, warmup_steps=1, n_test=8, eval_batch_size=8, logging_steps=1,
    ),
    # 3 tasks x 8 encodings x 3 seeds: too small to learn (0-53% exact in distribution), so the report
    # reads "did not learn". Measured: 2-5 s a run at load average ~7 on the 2 shared cores; the whole
    # 72 runs (seeds 42-44) 533 s, 7.4 s a run (3.3-24.6) at load average 10-14.
    "default": TaskSettings(
        name="default", train_max_length=5, alphabet_size=10,
        model=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4),
        steps=100, batch_size=32, learning_rate=3e-3, warmup_steps=10, n_test=100,
    ),
    # Sized by measurement (see LONG_SIZING): 19-29 s a run on one thread, machine otherwise idle.
    "long": TaskSettings(
        name="long", train_max_length=5, alphabet_size=10,
        model=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4),
        steps=1200, batch_size=64, learning_rate=3e-3, warmup_steps=120, n_test=200,
    ),
    "gpu_smoke": TaskSettings(
        name="gpu_smoke", tasks=("reverse",), train_max_length=4, alphabet_size=6,
        model=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2),
        steps=4, batch_size=8, warmup_steps=1, n_test=8, eval_batch_size=8, logging_steps=1,
    ),
    # A GPU's scale: Kazemnejad et al.'s L=20 (exact match at L, 1.5L, 2L and 3L), a larger model, many more
    # steps; not yet measured on a GPU (presets.GPU_SIZING).
    "gpu": TaskSettings(
        name="gpu", train_max_length=20, alphabet_size=20,
        model=dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=6, num_attention_heads=8),
        steps=10000, batch_size=64, learning_rate=3e-4, warmup_steps=1000, n_test=500, logging_steps=100,
        num_threads=None, use_cpu=False,
    ),
}

LONG_SIZING = """How "long" was sized (seed 42, 2 CPU cores shared with other jobs, load average 7-8, 1 torch thread).

Exact match in distribution (held-out, n uniform in [1, L]); wall s per run. All: 2 layers, 4 heads,
alphabet 10, AdamW, cosine schedule, lr 3e-3 unless stated.

| config                               | task    | rope        | none        | alibi       | t5          | learned    |
|--------------------------------------|---------|-------------|-------------|-------------|-------------|------------|
| A: L=8, d=32, bs 32, 500 steps       | copy    | 0.67 (27 s) | 0.61 (18 s) | 0.32 (30 s) | 0.70 (73 s) |            |
|                                      | reverse | 0.46 (27 s) | 0.51 (23 s) | 0.51 (31 s) | 0.81 (43 s) |            |
| B: L=8, d=64, bs 32, 300 steps       | copy    | 0.95 (27 s) | 0.69 (16 s) | 0.94 (21 s) | 0.82 (29 s) |            |
|                                      | reverse | 0.49 (27 s) | 0.58 (18 s) | 0.89 (16 s) | 0.73 (20 s) |            |
| L=8, d=64, bs 32, 600 steps          | copy    | 0.99 (35 s) | 0.85 (29 s) | 0.99 (32 s) |             | 1.00 (26 s)|
|                                      | reverse | 0.96 (38 s) | 0.70 (37 s) | 0.99 (40 s) |             | 0.85 (31 s)|
| C: L=5, d=64, bs 64, 250 steps       | copy    | 0.99 (13 s) | 0.94 (12 s) | 0.99 (17 s) | 1.00 (17 s) |            |
|                                      | reverse | 0.98 (18 s) | 0.89 (20 s) | 1.00 (18 s) | 0.94 (18 s) |            |
| D: L=5, d=64, bs 32, 400 steps       | copy    | 0.99 (17 s) | 0.96 (17 s) | 0.99 (14 s) | 0.99 (25 s) |            |
|                                      | reverse | 0.94 (19 s) | 0.92 (25 s) | 0.99 (16 s) |             |            |
| E: C with lr 5e-3                    | copy    |             | 0.93 (14 s) |             | 0.99 (23 s) |            |
|                                      | reverse |             | 0.90 (22 s) |             | 0.94 (21 s) |            |

Sinusoidal at C and E: 0.03 on copy and reverse (loss stuck at 1.7): the sinusoids (RMS 0.71) drown
token embeddings initialised at std 0.02. Scaling tokens by sqrt(d) = 8 (C, copy) helped sinusoidal
(0.69) and binary (0.90) but hurt rope (0.74) and none (0.25), so the presets keep the multiplier at
1.0; the fair scale for the absolute encodings is a question of its own (issue 12, item 5).
Per-step cost is mostly fixed overhead at these sizes: d=32 and d=64 cost about the same, bs 64 is
~1.3x bs 32, L=5 is cheaper than L=8 at bs >= 64, t5 is up to ~1.5x the others. The chosen "long" is
C with 300 steps instead of 250 (the reverse runs of none and t5 were just under 0.95 at 250).

The chosen "long", all 72 runs (seeds 42 / 43 / 44), exact match in distribution:

| encoding   | copy               | reverse            | sort               |
|------------|--------------------|--------------------|--------------------|
| none       | 0.98 / 0.96 / 0.97 | 0.93 / 0.93 / 0.93 | 0.94 / 0.89 / 0.88 |
| integer    | 0.03 / 0.03 / 0.00 | 0.01 / 0.02 / 0.03 | 0.02 / 0.03 / 0.00 |
| binary     | 1.00 / 1.00 / 0.70 | 1.00 / 0.64 / 0.68 | 0.95 / 0.88 / 0.91 |
| sinusoidal | 0.02 / 0.03 / 0.03 | 0.05 / 0.03 / 0.01 | 0.77 / 0.56 / 0.68 |
| learned    | 1.00 / 1.00 / 0.96 | 0.85 / 0.79 / 0.86 | 0.97 / 0.95 / 0.96 |
| rope       | 1.00 / 1.00 / 1.00 | 0.97 / 0.98 / 1.00 | 0.97 / 0.94 / 0.92 |
| alibi      | 1.00 / 1.00 / 1.00 | 1.00 / 0.98 / 0.94 | 0.97 / 0.92 / 0.94 |
| t5         | 0.99 / 0.98 / 1.00 | 0.96 / 0.98 / 0.98 | 0.88 / 0.94 / 0.92 |

At 300 steps (the "long" preset until 2026-11-26) copy: 6 of 8 encodings learn (>= 0.95 on every seed:
none, learned, rope, alibi, t5; binary on 2 of 3). Reverse: rope, t5 and alibi (2 of 3 seeds for alibi);
none stops at 0.93, learned at 0.79-0.86. Sort: only learned. Past L no encoding got a single copy or
reverse instance right, so every exact-match comparison past L was 0 against 0.

Then, on the otherwise idle machine (2 runs at a time, 1 thread each), C with 1,200 steps and 120 warmup
steps, seed 42, with the token embeddings as above (std 0.02, multiplier 1: "plain") and scaled as the
language models are (std d^-0.5, multiplier sqrt(d) = 8: "fair"). Exact match held out, n <= L (at n = 8
for sort); 18-29 s a run:

| encoding   | copy plain | copy fair | reverse plain | reverse fair | sort plain (n=8)  | sort fair (n=8) |
|------------|------------|-----------|---------------|--------------|-------------------|-----------------|
| none       | 1.00       | 0.80      | 1.00          | 0.56         | 1.00 (1.00)       | 0.78 (0.05)     |
| integer    | 0.03       | 1.00      | 0.03          | 0.99         | 0.26 (0)          | 1.00 (0)        |
| binary     | 1.00       | 0.60      | 1.00          | 0.85         | 1.00 (0)          | 0.89 (0.06)     |
| sinusoidal | 0.96       | 1.00      | 0.10          | 1.00         | 1.00 (0)          | 1.00 (0)        |
| learned    | 1.00       | 0.97      | 1.00          | 1.00         | 1.00 (n/a)        | 0.95 (n/a)      |
| rope       | 1.00       | 0.82      | 1.00          | 0.92         | 1.00 (0)          | 1.00 (0.01)     |
| alibi      | 1.00       | 0.96      | 1.00          | 0.93         | 1.00 (0.50)       | 0.85 (0.09)     |
| t5         | 1.00       | 0.95      | 1.00          | 0.97         | 1.00 (0.65)       | 0.96 (0.04)     |

The scale decides which encodings learn: token vectors of RMS 8 let integer positions (values up to 11)
and sinusoids be read past, and the same scale drowns the weak order signal that none, rope and the
biases use at this budget. With "plain" every encoding but integer (and sinusoidal on reverse) learns all
three tasks, and sort separates the encodings past L in Kazemnejad et al.'s order (none > t5 > alibi >
rope = absolute). "long" therefore trains 1,200 steps with plain embeddings; the fair scale is what its
language models use, and the report says which encodings each choice favours (n = 1 here: a probe, not
a result).
"""


# --------------------------------------------------------------------------------------------------
# Training and measurement
# --------------------------------------------------------------------------------------------------


def build_task_model(settings: TaskSettings, task: Task, encoding: str):
    """A fresh decoder over the task vocabulary; ``learned`` gets exactly the longest training sequence."""
    from modeling_study import StudyConfig, StudyForCausalLM

    config = StudyConfig(**{  # the TASK_DECIDES fields
        **settings.model,
        "vocab_size": FIRST_SYMBOL + settings.alphabet_size,
        "position_encoding": encoding,
        "max_position_embeddings": task.sequence_length(settings.train_max_length),
        "is_causal": True,
        "pad_token_id": PAD, "bos_token_id": BOS, "eos_token_id": EOS,
    })
    return StudyForCausalLM(config)


def _check_train(train: dict) -> tuple[Task, str, int, TaskSettings]:
    missing = {"task", "encoding", "seed", "settings"} - set(train)
    if missing:
        raise ValueError(f"RunSpec.train of a task run needs keys task, encoding, seed, settings; "
                         f"missing {sorted(missing)}.")
    if train["task"] not in TASKS:
        raise ValueError(f"RunSpec.train['task'] must be one of {sorted(TASKS)}, got {train['task']!r}.")
    if train["encoding"] not in ENCODINGS:
        raise ValueError(f"RunSpec.train['encoding'] must be one of {list(ENCODINGS)}, got {train['encoding']!r}.")
    settings = TaskSettings.from_dict(train["settings"])
    return TASKS[train["task"]], train["encoding"], int(train["seed"]), settings


def measure_task(spec: RunSpec, work_dir: Path) -> dict:
    """Train one (task, encoding, seed) with ``Trainer`` and score it at every test length.

    Returns ``status`` ("finished" or "diverged": NaN/Inf loss or gradient; no accuracy then),
    ``training`` (final_train_loss, loss_history, train_runtime, num_parameters, steps),
    ``accuracy`` per test length ``{str(n): {status, exact_match, token_accuracy, n, reason?}}``
    ("not_applicable" past a learned table), ``train_lengths`` [1, L] and
    ``in_distribution_exact_match`` (held-out instances with n uniform in [1, L]).
    """
    task, encoding, seed, settings = _check_train(spec.train)
    threads = torch.get_num_threads()
    if settings.num_threads is not None:
        torch.set_num_threads(settings.num_threads)
    try:
        model, result = _train(task, encoding, seed, settings, work_dir)
        if result["status"] == FINISHED:
            start = time.perf_counter()
            result["accuracy"] = _score(model, task, encoding, seed, settings)
            held_out = in_distribution_instances(task, seed, settings.n_test, settings.train_max_length,
                                                 settings.alphabet_size)
            batches = torch.utils.data.DataLoader(held_out, batch_size=settings.eval_batch_size, collate_fn=collate)
            result["in_distribution_exact_match"] = evaluate_batches(model, batches)["exact_match"]
            result["eval_time"] = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return result


def _train(task: Task, encoding: str, seed: int, settings: TaskSettings, work_dir: Path):
    """The trained model and the result skeleton (status, training record, empty accuracy)."""
    from transformers import Trainer, TrainingArguments, set_seed

    from modeling_study.training import DivergenceCallback, HistoryCallback

    train_data = training_instances(task, seed, settings.steps * settings.batch_size, settings.train_max_length,
                                    settings.alphabet_size)
    set_seed(seed)  # the same weights for the same seed, whatever ran before in this process
    model = build_task_model(settings, task, encoding)
    args = TrainingArguments(
        output_dir=str(work_dir), max_steps=settings.steps, per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate, warmup_steps=settings.warmup_steps, weight_decay=settings.weight_decay,
        lr_scheduler_type=settings.lr_scheduler_type, logging_steps=settings.logging_steps,
        logging_nan_inf_filter=False,  # the divergence check must see a NaN loss
        save_strategy="no", report_to="none", disable_tqdm=True, use_cpu=settings.use_cpu, seed=seed, data_seed=seed,
        dataloader_num_workers=0,
    )
    history = HistoryCallback()
    # NaN/Inf only: a loss near 0 makes any ratio test fire on noise (0.001 -> 0.004 is "4x")
    divergence = DivergenceCallback(blowup_factor=None)
    trainer = Trainer(model=model, args=args, train_dataset=train_data, data_collator=collate,
                      callbacks=[history, divergence])
    train_result = trainer.train()
    result = {
        "status": DIVERGED if divergence.diverged else FINISHED,
        "training": {
            "final_train_loss": history.loss[-1][1] if history.loss else None,
            "loss_history": history.loss,
            "train_runtime": train_result.metrics.get("train_runtime"),
            "num_parameters": model.num_parameters(),
            "steps": trainer.state.global_step,
            **divergence.summary(),
        },
        "accuracy": {},  # a diverged run is not scored: its weights hold NaN
        "train_lengths": [1, settings.train_max_length],
        "in_distribution_exact_match": None,
    }
    return model, result


def _score(model, task: Task, encoding: str, seed: int, settings: TaskSettings) -> dict:
    """Exact match and token accuracy at each test length; past a learned table, not_applicable."""
    accuracy = {}
    for n in settings.test_lengths:
        length = task.sequence_length(n)
        if model.model.position_encoding.bounded and length > model.config.max_position_embeddings:
            accuracy[str(n)] = {
                "status": NOT_APPLICABLE,
                "reason": f"{encoding} cannot run past its table: an instance of length {n} has {length} tokens, "
                          f"the table {model.config.max_position_embeddings} rows (the longest training sequence)",
            }
            continue
        input_ids, labels = instances_at_length(task, seed, n, settings.n_test, settings.alphabet_size)
        accuracy[str(n)] = evaluate_batches(model, _chunks(input_ids, labels, settings.eval_batch_size))
    return accuracy


def plan_tasks(preset_name: str, seeds: list[int], encodings: tuple[str, ...] = ENCODINGS) -> list[RunSpec]:
    """Every (task, encoding, seed) run of a ``TASK_SETTINGS`` preset, named like "copy/rope/seed42"."""
    if preset_name not in TASK_SETTINGS:
        raise ValueError(f"preset_name must be one of {sorted(TASK_SETTINGS)}, got {preset_name!r}.")
    if unknown := [e for e in encodings if e not in ENCODINGS]:
        raise ValueError(f"encodings must be among {list(ENCODINGS)}, got unknown {unknown}.")
    if not seeds:
        raise ValueError("seeds must hold at least one seed, got an empty list.")
    settings = TASK_SETTINGS[preset_name]
    specs = []
    for task in settings.tasks:
        for encoding in encodings:
            for seed in seeds:
                train = {"task": task, "encoding": encoding, "seed": int(seed), "settings": asdict(settings)}
                specs.append(RunSpec("tasks", f"{task}/{encoding}/seed{seed}", train,
                                     labels={"task": task, "encoding": encoding, "seed": int(seed)}))
    return specs


__all__ = ["BOS", "EOS", "PAD", "SEP", "TASKS", "TASK_SETTINGS", "Task", "TaskSettings", "collate", "measure_task",
           "plan_tasks", "score_predictions"]
