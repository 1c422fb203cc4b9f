"""What each preset trains: sizes, steps and learning rates, chosen to fit a time budget.

``smoke`` checks the machinery in under two minutes (the tests run it); ``default`` answers the
questions on 2 CPU cores in about ten minutes; ``full`` is for a GPU or a bigger machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ENCODINGS = ("none", "integer", "binary", "sinusoidal", "learned", "rope", "alibi", "t5")
PLACEMENTS = ("post", "pre", "sandwich")


@dataclass(frozen=True)
class Preset:
    name: str
    # 1. Length extrapolation (Press et al. 2022): causal LMs differing only in position_encoding.
    encodings: tuple[str, ...] = ENCODINGS
    extrapolation_model: dict = field(default_factory=dict)  # StudyConfig sizes
    train_length: int = 64  # L: the block size trained on, and the learned table's size
    eval_multipliers: tuple[int, ...] = (1, 2, 4, 8)  # evaluate at L, 2L, 4L, 8L
    eval_tokens: int = 32768  # the same validation tokens at every length
    extrapolation_steps: int = 300
    extrapolation_lr: float = 2e-3
    scale_embeddings: bool = True  # token embeddings x sqrt(d) (Vaswani et al., fairseq) for every encoding
    # 2. Norm placement (Xiong et al. 2020): deep and narrow, with and without learning-rate warmup.
    placements: tuple[str, ...] = PLACEMENTS
    norm_model: dict = field(default_factory=dict)
    norm_steps: int = 300
    norm_lr: float = 1e-3
    norm_warmup_steps: int = 150  # half the run: a post-norm stack needs a slow ramp (measured: 60 steps was too short)
    # shared
    batch_size: int = 16
    max_eval_samples: int = 256  # validation blocks for the Trainer's own eval
    ambiguity_models: tuple[str, ...] = ("attention", "study_model")

    @property
    def eval_lengths(self) -> list[int]:
        return [self.train_length * m for m in self.eval_multipliers]


PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        name="smoke",
        extrapolation_model=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
        train_length=16,
        eval_tokens=2048,
        extrapolation_steps=8,
        norm_model=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2),
        norm_steps=8,
        norm_warmup_steps=4,
        batch_size=4,
        max_eval_samples=16,
        ambiguity_models=("attention",),
    ),
    "default": Preset(
        name="default",
        extrapolation_model=dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4),
        norm_model=dict(hidden_size=64, intermediate_size=256, num_hidden_layers=8, num_attention_heads=4),
    ),
    "full": Preset(
        name="full",
        extrapolation_model=dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=6, num_attention_heads=8),
        train_length=256,
        eval_tokens=262144,
        extrapolation_steps=5000,
        extrapolation_lr=1e-3,
        norm_model=dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=18, num_attention_heads=8),
        norm_steps=3000,
        norm_lr=1e-3,
        norm_warmup_steps=500,
        batch_size=32,
        max_eval_samples=2048,
    ),
}
