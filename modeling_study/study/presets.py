"""What each preset trains: the questions are the same in every preset, only the budget changes.

* ``smoke``: checks the machinery (the tests run it): 2 seeds, two encodings, one task; 22 s from an
  empty cache on 2 CPU cores (measured, machine nearly idle).
* ``default``: the README's command. 141 runs over 3 seeds; measured from an empty cache: 526 s of
  CPU time on one torch thread (28 min wall on 2 cores shared with other jobs, load 11-14). Its
  models are small: where they cannot answer, the report says "inconclusive at this budget".
* ``long``: meant to answer the questions within about 90 minutes on 2 CPU cores. Its task settings
  are sized by measurement (``tasks.LONG_SIZING``); its language-model and norm-grid sizes below are
  a first guess, not yet shown to beat the trigram over seeds: issue 12 stays open until a run shows
  it. One probe (rope, seed 42, 2 CPU cores nearly idle, one thread): 226 s for the run, loss 3.751
  at k = 63 against the trigram's 3.664 on the same targets (ppl 42.6 vs 39.0), a gain of 0.16 nats
  from k = 4 to k = 63 (it uses context), and 3.995 / 4.294 at k = 127 / 511 (RoPE degrades past L).
  So these models nearly beat the trigram, but 42 language-model runs of 226 s are 2.6 hours: more
  steps AND fewer runs (or a cheaper token: a character-level tokenizer) are what to measure next.
* ``full``: the same questions at a GPU's scale, translation included.

Everything a verdict depends on (seeds, learning rates, warmup lengths, margins) is fixed here,
before any run: the norm-placement grid is pre-registered, not chosen after seeing which cell trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ENCODINGS = ("none", "integer", "binary", "sinusoidal", "learned", "rope", "alibi", "t5")
PLACEMENTS = ("post", "pre", "sandwich")
# One change at a time against the language-model baseline (rope, pre-RMSNorm, SwiGLU, cosine schedule,
# no label smoothing). Values: make_arguments keywords and StudyConfig overrides of the variant.
ABLATIONS = {
    "layernorm": {"train": {"norm_type": "layernorm"}},
    "relu": {"train": {"ffn_activation": "relu"}, "ffn_scale": 1.5},
    "gelu": {"train": {"ffn_activation": "gelu"}, "ffn_scale": 1.5},
    "geglu": {"train": {"ffn_activation": "geglu"}},
    "label_smoothing": {"train": {"label_smoothing_factor": 0.1}},
    "inverse_sqrt": {"train": {"lr_scheduler_type": "inverse_sqrt"}},
}
# relu/gelu get 1.5x the feed-forward width of the gated variants, so all have the same parameter count
# (Shazeer 2020, arXiv:2002.05202, section 2: d_ff 3072 ungated vs 2048 gated).


@dataclass(frozen=True)
class LMSettings:
    """Causal LMs on the embedded corpus: the extrapolation models and the ablation baseline."""

    model: dict = field(default_factory=dict)  # StudyConfig sizes (the SwiGLU baseline's intermediate_size)
    train_length: int = 64  # L: training block size, and the learned table's size
    factor: int = 8  # contexts up to factor * L - 1
    steps: int = 300
    lr: float = 2e-3
    warmup_steps: int = 30
    batch_size: int = 16
    context_targets: int = 512  # target tokens scored at every context length
    position_tokens: int = 32768  # validation tokens in windows of factor * L for the loss-by-position curve
    fair_embeddings: bool = True  # tokens x sqrt(d) with std d^-0.5 init (fairseq): token RMS 1, sinusoid RMS 0.71
    max_eval_samples: int = 256


@dataclass(frozen=True)
class NormGrid:
    """Xiong et al. (2020, arXiv:2002.04745): every placement x learning rate x warmup cell, with seeds."""

    model: dict = field(default_factory=dict)
    placements: tuple[str, ...] = PLACEMENTS
    learning_rates: tuple[float, ...] = (5e-4, 1e-3, 2e-3)
    warmup_steps: int = 100  # the "with warmup" arm; the other arm has none
    steps: int = 200
    train_length: int = 64
    batch_size: int = 16
    grad_batches: int = 4  # batches averaged for the gradient norm at initialisation (Fig. 3)
    max_eval_samples: int = 256


@dataclass(frozen=True)
class Preset:
    name: str
    seeds: tuple[int, ...] = (42, 43, 44)
    encodings: tuple[str, ...] = ENCODINGS
    lm: LMSettings = field(default_factory=LMSettings)
    ablations: tuple[str, ...] = tuple(ABLATIONS)
    norm: NormGrid = field(default_factory=NormGrid)
    tasks: bool = True  # the synthetic tasks of modeling_study.study.tasks, sized by TASK_SETTINGS[name]
    translation: bool = False  # modeling_study.study.translation, sized by TRANSLATION_SETTINGS[name]
    ambiguity_models: tuple[str, ...] = ("attention", "study_model")
    # torch threads while a run trains (restored after). Models this small gain nothing from a second thread,
    # and on shared cores lose a lot: one default LM run took 180 s with 2 threads, 43 s with 1 (2 CPU cores,
    # load average 14). None: torch's own choice (a GPU, or a bigger machine).
    num_threads: int | None = 1
    # margins fixed before running: "holds" = loss at 8L - 1 within this many nats of loss at L - 1 (95% CI);
    # "about equal" (RMSNorm vs LayerNorm) = the paired difference's 95% CI inside +- this
    holds_margin: float = 0.05
    equal_margin: float = 0.05
    uses_context_margin: float = 0.02  # loss(k=4) - loss(k=L-1): a model gaining less uses no context past 4 tokens


PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        name="smoke",
        seeds=(42, 43),
        encodings=("rope", "alibi"),
        lm=LMSettings(model=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
                      train_length=16, steps=8, warmup_steps=2, batch_size=4, context_targets=32,
                      position_tokens=1024, max_eval_samples=16),
        ablations=("layernorm",),
        norm=NormGrid(model=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2),
                      placements=("post",), learning_rates=(1e-3,), warmup_steps=4, steps=8,
                      train_length=16, batch_size=4, grad_batches=2, max_eval_samples=16),
        ambiguity_models=("attention",),
    ),
    "default": Preset(
        name="default",
        lm=LMSettings(model=dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4),
                      train_length=32, steps=150, lr=3e-3, warmup_steps=15, batch_size=16, context_targets=256,
                      position_tokens=16384),
        norm=NormGrid(model=dict(hidden_size=32, intermediate_size=96, num_hidden_layers=6, num_attention_heads=2),
                      learning_rates=(2e-3,), warmup_steps=50, steps=100, train_length=32),
    ),
    "long": Preset(
        name="long",
        lm=LMSettings(model=dict(hidden_size=128, intermediate_size=352, num_hidden_layers=3, num_attention_heads=4),
                      train_length=64, steps=1200, lr=3e-3, warmup_steps=60, batch_size=16, context_targets=512,
                      position_tokens=32768),
        norm=NormGrid(model=dict(hidden_size=64, intermediate_size=176, num_hidden_layers=8, num_attention_heads=4),
                      learning_rates=(5e-4, 1e-3, 2e-3), warmup_steps=100, steps=250, train_length=64),
    ),
    "full": Preset(
        name="full",
        lm=LMSettings(model=dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=6, num_attention_heads=8),
                      train_length=256, steps=5000, lr=1e-3, warmup_steps=500, batch_size=32, context_targets=2048,
                      position_tokens=262144, max_eval_samples=2048),
        norm=NormGrid(model=dict(hidden_size=256, intermediate_size=704, num_hidden_layers=18, num_attention_heads=8),
                      learning_rates=(2.5e-4, 5e-4, 1e-3, 2e-3), warmup_steps=500, steps=3000, train_length=256,
                      batch_size=32, grad_batches=8, max_eval_samples=2048),
        translation=True,
        num_threads=None,
    ),
}
