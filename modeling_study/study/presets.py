"""What each preset trains: the questions are the same in every preset, only the budget changes.

* ``smoke``: checks the machinery (the tests run it): 2 seeds, two encodings, one task; 22 s from an
  empty cache on 2 CPU cores (measured, machine nearly idle).
* ``default``: the README's command; its models are small: where they cannot answer, the report says
  "inconclusive at this budget". Its measured wall time is in docs/study.md.
* ``long``: the committed report (docs/study), sized by measurement (``LM_SIZING``, ``tasks.LONG_SIZING``)
  to finish within about 90 minutes on 2 CPU cores (its measured time is in docs/study.md). Its rope,
  ALiBi and T5 language models beat the trigram; NoPE and the absolute encodings do not at this budget.
* ``gpu``: the same questions at a GPU's scale, translation included, in groups (``GROUPS``) that each
  fit one short GPU window and add up (``--group``, ``--time_budget``); see ``GPU_SIZING``.

Everything a verdict depends on (seeds, learning rates, warmup lengths, margins) is fixed here,
before any run: the norm-placement grid is pre-registered, not chosen after seeing which cell trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LM_SIZING = """How the language models were sized (seed 42, rope unless stated, one torch thread, 2 CPU cores
otherwise idle or running one other probe; loss in nats per token on the same 512 validation targets as
the Kneser-Ney trigram fitted on the training split, context cut to k = L - 1).

| tokenizer | model (width x layers) | L | steps x batch | lr | train s | loss k=L-1 | trigram | k=4 -> L-1 |
|---|---|---|---|---|---|---|---|---|
| bpe (4,096) | 128 x 3 | 64 | 1200 x 16 | 3e-3 | 202 | 3.751 | 3.664 | -0.16 |
| bpe (4,096) | 128 x 3 | 64 | 1600 x 16 | 5e-3 | 327 | 3.680 | 3.664 | -0.17 |
| bytes | 128 x 3 | 128 | 1000 x 16 | 3e-3 | 198 | 1.297 (k=64) | 1.667 | -0.10 |
| bytes | 128 x 3 | 64 | 1200 x 16 | 3e-3 | 129 | 1.451 | 1.754 | -0.07 |
| bytes, none | 128 x 3 | 64 | 1200 x 16 | 3e-3 | 105 | 2.226 | 1.754 | +0.21 |
| bytes | 64 x 2 | 32 | 150 x 16 | 3e-3 | 3 | 2.307 | 1.813 | +0.01 |
| bytes | 64 x 2 | 64 | 300 x 16 | 3e-3 | 9 | 2.035 | 1.754 | -0.02 |

On the 4,096-token BPE the KJV trigram is strong (perplexity 39) and 42 language-model runs of 200-330 s
each, still not below it, do not fit in 90 minutes; one token per byte makes the trigram weaker (it sees
2 bytes of context) and each step cheaper (a 261-row output layer), and the same model beats it by 0.3
nats in 129 s. So every preset trains its corpus models on bytes, and ``long`` uses the fourth row. At
this budget NoPE (``none``) does not learn to use its context (its loss rises with k). ``default`` takes
64 x 2 at L = 32 for 400 steps: it is there to be quick, not to answer.
"""

# A preset's runs in groups that can be trained on their own (``run_study(group=...)``, ``--group``): the
# experiments (``RunSpec.experiment``) each group trains. Each GPU group is sized to fit one short GPU window.
GROUPS: dict[str, tuple[str, ...]] = {
    "lm": ("lm",),
    "ablations": ("ablation",),
    "norm": ("init_grad", "norm_grid"),
    "tasks": ("tasks",),
    "translation": ("translation",),
}

GPU_SIZING = """How ``gpu`` is sized, and what is still to measure.

Targets (the study issue): byte-level LMs at L = 256 with about 10M parameters, >= 20M training tokens
per run, scored on >= 16,384 target bytes at every k up to 8L; tasks at Kazemnejad et al.'s L = 20;
the norm grid at depth >= 12 with learning rates that bracket each placement's optimum.

| group | model | tokens per run | runs |
|---|---|---|---|
| lm | 384 x 6 layers (10.6M parameters with the 261-token byte vocabulary) | 1,250 x 64 x 256 = 20.5M | 8 encodings x 3 seeds |
| ablations | the lm baseline with one change | 20.5M | 6 x 3 |
| norm | 256 x 12 layers, 5 learning rates (2.5e-4 to 4e-3) x warmup 200 / none | 1,000 x 32 x 256 = 8.2M | 3 x 5 x 2 x 3 + 9 at init |
| tasks | tasks.TASK_SETTINGS["gpu"] (L = 20) | 10,000 steps x 64 instances | 3 x 8 x 3 |
| translation | translation.TRANSLATION_SETTINGS["gpu"] | | 3 x 3 |

The KJV training split is 3.9 MB, so 20.5M byte tokens are about 5 passes over it: the lm verdicts are
those of models that have seen each verse five times (the report says so beside them).
Throughput measured on one H200 (../shared/GPU.md, bf16): d512 x 8 layers at 32 x 512 tokens, 150 steps
in 12 s (about 200k tokens/s for one process), so one lm run is in the order of 100 s and a group of 24
needs several runs at once (``--jobs``) or several windows (``--time_budget``). Not yet run on a GPU:
these sizes are the plan, not a measurement, until a GPU run replaces this note with its timings.
"""

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
    # the corpus runs' tokenizer (modeling_study.data.tokenizer_path): "bytes", one token per byte of text, is where
    # CPU-sized models beat the trigram; on the 4,096-token "bpe" they do not (see LM_SIZING)
    tokenizer: str = "bytes"
    tasks: bool = True  # the synthetic tasks of modeling_study.study.tasks, sized by TASK_SETTINGS[name]
    translation: bool = False  # modeling_study.study.translation, sized by TRANSLATION_SETTINGS[name]
    ambiguity_models: tuple[str, ...] = ("attention", "study_model")
    # torch threads while a run trains (restored after). Models this small gain nothing from a second thread,
    # and on shared cores lose a lot: one default LM run took 180 s with 2 threads, 43 s with 1 (2 CPU cores,
    # load average 14). None: torch's own choice (a GPU, or a bigger machine).
    num_threads: int | None = 1
    # Margins fixed before running, each from the effect it is meant to resolve:
    # "holds" = loss at 8L - 1 within this many nats of loss at L - 1 (95% CI); the effect it separates
    # from is Press et al.'s Fig. 1, where sinusoidal and rotary models degrade by whole nats past L.
    holds_margin: float = 0.05
    # "about equal" (RMSNorm vs LayerNorm, GEGLU vs SwiGLU) = the paired difference's 95% CI inside +- this:
    # half the smallest gap the same table calls a difference (Shazeer 2020, Table 1: ReLU 1.997 vs
    # SwiGLU 1.944, 0.053), so "equal" can never be said of a gap as large as ReLU's.
    equal_margin: float = 0.025
    uses_context_margin: float = 0.02  # loss(k=4) - loss(k=L-1): a model gaining less uses no context past 4 tokens
    # Xiong et al. Fig. 3 (gradient norm of each layer's FFN at initialisation): post-norm's grows toward the
    # last layer, pre-norm's stays level. Read qualitatively (the figure gives no table), so this is our
    # pre-registered tolerance: "flat" = last/first within this factor either way, "grows" = above it.
    flat_ratio: float = 1.5


# The smoke presets' language models: seconds a run, learning nothing (they check the machinery).
SMOKE_LM = LMSettings(model=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2),
                      train_length=16, steps=8, warmup_steps=2, batch_size=4, context_targets=32, position_tokens=1024,
                      max_eval_samples=16)

PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        name="smoke",
        seeds=(42, 43),
        encodings=("rope", "alibi"),
        lm=SMOKE_LM,
        ablations=("layernorm",),
        norm=NormGrid(model=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2),
                      placements=("post",), learning_rates=(1e-3,), warmup_steps=4, steps=8,
                      train_length=16, batch_size=4, grad_batches=2, max_eval_samples=16),
        ambiguity_models=("attention",),
    ),
    "default": Preset(
        name="default",
        lm=LMSettings(model=dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4),
                      train_length=32, steps=400, lr=3e-3, warmup_steps=40, batch_size=16, context_targets=256,
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
    # The gpu preset's workflow at smoke size, on the CPU in seconds (the tests run it group by group, packed and
    # rebuilt like a GPU run): every group of ``gpu``, two encodings, one task, two seeds.
    "gpu_smoke": Preset(
        name="gpu_smoke",
        seeds=(42, 43),
        encodings=("rope", "alibi"),
        lm=SMOKE_LM,
        ablations=("geglu",),
        norm=NormGrid(model=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2),
                      placements=("post", "pre"), learning_rates=(1e-3,), warmup_steps=4, steps=8,
                      train_length=16, batch_size=4, grad_batches=2, max_eval_samples=16),
        translation=True,
        ambiguity_models=("attention",),
    ),
    # The GPU's scale, in groups that each fit one short GPU window (presets.GROUPS; ../shared/GPU.md: 15 minutes
    # of GPU time at once). NOT YET MEASURED ON A GPU: the sizes follow the study issue's targets and the
    # throughput measured there (GPU_SIZING); --time_budget makes a group that overruns continue next window.
    "gpu": Preset(
        name="gpu",
        lm=LMSettings(model=dict(hidden_size=384, intermediate_size=1024, num_hidden_layers=6, num_attention_heads=6),
                      train_length=256, steps=1250, lr=1e-3, warmup_steps=100, batch_size=64, context_targets=16384,
                      position_tokens=262144, max_eval_samples=512),
        norm=NormGrid(model=dict(hidden_size=256, intermediate_size=704, num_hidden_layers=12, num_attention_heads=4),
                      learning_rates=(2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3), warmup_steps=200, steps=1000, train_length=256,
                      batch_size=32, grad_batches=8, max_eval_samples=512),
        translation=True,
        num_threads=None,
    ),
}
