"""The study's translation section: two of the notes' questions, asked again where they were first answered.

1. **Sinusoidal vs learned positions** (Vaswani et al. 2017, arXiv:1706.03762, Table 3 row (E): learned
   positional embeddings instead of sinusoids, 25.7 vs 25.8 BLEU on newstest2013 English-German, "nearly
   identical results"). Runs: the base recipe with ``position_encoding`` sinusoidal, then learned.
2. **Post-norm with vs without warmup** (Xiong et al. 2020, arXiv:2002.04745, section 3 and Figure 2:
   on IWSLT14 German-English, post-LN Transformers trained without the warmup stage reach far worse
   BLEU, "the warm-up stage is essential"). Runs: post-norm with the recipe's warmup, then with none
   (the same peak learning rate from step 0).

Every run is one ``RunSpec`` per (variant, seed); the runner trains them, ``measure_translation`` turns
one into numbers (BLEU and chrF from sacreBLEU with beam search on the validation split, the label-smoothed
eval loss, the loss curve), ``report_translation`` writes the markdown section. A claim is judged only
from paired per-seed differences: "agrees"/"disagrees" when their 95% t-interval excludes zero (or, for
a claim of equality, lies inside a stated band), otherwise "inconclusive at this budget".
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from .spec import DIVERGED, FINISHED, RunSpec

EXPERIMENT = "translation"
EQUIVALENCE_BAND = 1.0  # BLEU: "about equal" = the 95% interval of the difference lies within +-1 BLEU
# (Vaswani et al.'s 0.1 BLEU difference is far inside it; at small budgets a +-1 band is what can be resolved)


@dataclass(frozen=True)
class TranslationSettings:
    """What one translation run of a preset trains (``TranslationArguments`` / training argument values)."""

    model: dict  # hidden_size, intermediate_size, num_hidden_layers, num_decoder_layers, num_attention_heads
    steps: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 200
    tokenizer_vocab_size: int = 8000
    tokenizer_train_samples: int | None = None  # None: the joint BPE sees the whole train split
    max_length: int = 128  # source and target tokens kept per verse; the learned table has this many rows
    max_train_samples: int | None = None
    max_eval_samples: int | None = None  # validation verses scored (None: all 611)
    num_beams: int = 4


# None = the preset skips translation. The default preset's 15 minutes on 2 cores are spent on the
# decoder-only questions: a translation model that learns anything takes minutes per run there
# (docs/translation.md: 11 minutes for one run, BLEU 1.6), and each question needs two runs per seed.
SMOKE = TranslationSettings(
    model=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_decoder_layers=1, num_attention_heads=2),
    steps=6, batch_size=8, warmup_steps=3, tokenizer_vocab_size=400, tokenizer_train_samples=300, max_length=32,
    max_train_samples=200,
    max_eval_samples=4, num_beams=2,
)

TRANSLATION_SETTINGS: dict[str, TranslationSettings | None] = {
    "smoke": SMOKE,
    "gpu_smoke": SMOKE,
    "default": None,
    # None too: docs/translation.md's one run (2 + 2 layers, d_model 128, 300 steps) took 11 minutes on this machine,
    # and a verdict needs 3 runs per seed for at least 2 seeds
    "long": None,
    # the paper's base size is 512/2048/6+6; this is half its width, sized to the study's short GPU windows
    # (presets.GPU_SIZING; not yet measured on a GPU)
    "gpu": TranslationSettings(
        model=dict(hidden_size=256, intermediate_size=1024, num_hidden_layers=6, num_decoder_layers=6, num_attention_heads=8),
        steps=6000, batch_size=64, warmup_steps=1000, learning_rate=7e-4,
    ),
}

# (question, variant) -> what differs from the base recipe (post-norm, sinusoidal, with warmup)
VARIANTS: dict[tuple[str, str], dict] = {
    ("positions", "sinusoidal"): dict(position_encoding="sinusoidal"),
    ("positions", "learned"): dict(position_encoding="learned"),
    ("warmup", "post, warmup"): dict(position_encoding="sinusoidal"),
    ("warmup", "post, no warmup"): dict(position_encoding="sinusoidal", warmup_steps=0),
}

QUESTIONS = {
    "positions": dict(
        title="Sinusoidal vs learned positions",
        claim="learned positional embeddings give nearly the same BLEU as sinusoids (25.7 vs 25.8)",
        source="Vaswani et al. 2017, arXiv:1706.03762, Table 3 row (E)",
        pair=("learned", "sinusoidal"), kind="equal",
    ),
    "warmup": dict(
        title="Post-norm with vs without warmup",
        claim="a post-norm Transformer trained without learning-rate warmup translates far worse",
        source="Xiong et al. 2020, arXiv:2002.04745, section 3.1 and Figure 2",
        pair=("post, warmup", "post, no warmup"), kind="greater",
    ),
}


def _train_arguments(settings: TranslationSettings, seed: int, overrides: dict) -> dict:
    train = dict(
        **settings.model,
        max_position_embeddings=settings.max_length,
        max_source_length=settings.max_length,
        max_target_length=settings.max_length,
        tokenizer_vocab_size=settings.tokenizer_vocab_size,
        tokenizer_train_samples=settings.tokenizer_train_samples,
        max_train_samples=settings.max_train_samples,
        max_eval_samples=settings.max_eval_samples,
        eval_split="validation",  # design choices are compared on validation; the test verses are not read
        max_steps=settings.steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        warmup_steps=settings.warmup_steps,
        generation_num_beams=settings.num_beams,
        logging_steps=max(1, settings.steps // 40),
        save_strategy="no",
        disable_tqdm=True,
        seed=seed,
    )
    train.update(overrides)
    return train


def plan_translation(preset_name: str, seeds: list[int]) -> list[RunSpec]:
    """The translation runs of a preset (none when it skips translation): every variant for every seed.

    The base run (post-norm, sinusoidal, warmup) answers both questions; it is planned once per seed,
    under the positions question, and the warmup question reads it from there.
    """
    if preset_name not in TRANSLATION_SETTINGS:
        raise ValueError(f"unknown preset {preset_name!r}; translation settings exist for {sorted(TRANSLATION_SETTINGS)}.")
    settings = TRANSLATION_SETTINGS[preset_name]
    if settings is None:
        return []
    specs = []
    for seed in seeds:
        for (question, variant), overrides in VARIANTS.items():
            if (question, variant) == ("warmup", "post, warmup"):
                continue  # the same run as ("positions", "sinusoidal")
            specs.append(RunSpec(
                experiment=EXPERIMENT,
                name=f"translation {variant} seed {seed}",
                train=_train_arguments(settings, seed, overrides),
                labels={"question": question, "variant": variant, "seed": seed},
            ))
    return specs


def measure_translation(spec: RunSpec, work_dir: Path) -> dict:
    """Train and score one run; JSON-able. "status" is "diverged" when training stopped on a NaN/blow-up."""
    from modeling_study.training.translation import TranslationArguments, TranslationTrainingArguments, run_translation

    from modeling_study.training.translation import joint_tokenizer

    names = set(TranslationArguments.__dataclass_fields__)
    model_args = TranslationArguments(**{k: v for k, v in spec.train.items() if k in names})
    if model_args.tokenizer_name is None:  # one joint tokenizer for all runs of the study, next to their folders
        shared = Path(work_dir).parent / f"translation-tokenizer-{model_args.tokenizer_vocab_size}-" \
                                         f"{model_args.tokenizer_train_samples or 'all'}"
        joint_tokenizer(shared, model_args.tokenizer_vocab_size, model_args.tokenizer_train_samples)
        model_args.tokenizer_name = str(shared)
    training_args = TranslationTrainingArguments(output_dir=str(work_dir),
                                                 **{k: v for k, v in spec.train.items() if k not in names})
    results = run_translation(model_args, training_args)
    keep = ("bleu", "chrf", "bleu_signature", "chrf_signature", "eval_loss", "final_train_loss", "loss_history",
            "diverged_step", "divergence_reason", "global_step", "num_parameters", "eval_pairs", "num_beams",
            "examples", "wall_time")
    finite = {k: (None if isinstance(results.get(k), float) and not math.isfinite(results[k]) else results.get(k))
              for k in keep}
    return {"status": DIVERGED if results["diverged"] else FINISHED, **finite}


# -- the report ------------------------------------------------------------------------------------------

# two-sided 95% Student t quantiles by degrees of freedom (no scipy needed)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       15: 2.131, 20: 2.086, 30: 2.042}


def t_quantile(df: int) -> float:
    return T95.get(df) or T95[max(k for k in T95 if k <= df)]  # a larger df's quantile is smaller: conservative


def paired_interval(differences: list[float]) -> tuple[float, float, float] | None:
    """(mean, low, high): the 95% t-interval of the mean of paired differences; None below two pairs."""
    if len(differences) < 2:
        return None
    mean = statistics.fmean(differences)
    half = t_quantile(len(differences) - 1) * statistics.stdev(differences) / math.sqrt(len(differences))
    return mean, mean - half, mean + half


def verdict(kind: str, interval) -> tuple[str, str]:
    """("agrees"|"disagrees"|"inconclusive at this budget", reason) for a claim about the paired difference."""
    if interval is None:
        return "inconclusive at this budget", "fewer than two seeds: no interval"
    mean, low, high = interval
    span = f"mean difference {mean:+.2f} BLEU, 95% interval [{low:+.2f}, {high:+.2f}]"
    if kind == "greater":
        if low > 0:
            return "agrees", f"{span} excludes zero"
        if high < 0:
            return "disagrees", f"{span} excludes zero, in the other direction"
        return "inconclusive at this budget", f"{span} contains zero"
    if -EQUIVALENCE_BAND <= low and high <= EQUIVALENCE_BAND:
        return "agrees", f"{span} lies within +-{EQUIVALENCE_BAND} BLEU"
    if low > 0 or high < 0:
        return "disagrees", f"{span} excludes zero"
    return "inconclusive at this budget", f"{span} contains zero but is wider than +-{EQUIVALENCE_BAND} BLEU"


def _by_variant(runs: list[dict]) -> dict[str, dict[int, dict]]:
    """variant -> seed -> result, each run's labels and measured values merged (the base run under both names)."""
    table: dict[str, dict[int, dict]] = {}
    for run in runs:
        labels = run.get("labels") or {}
        if run.get("experiment", EXPERIMENT) != EXPERIMENT or "variant" not in labels:
            continue
        merged = {**run.get("result", {}), **{k: v for k, v in run.items() if k not in ("result", "labels")}}
        table.setdefault(labels["variant"], {})[labels["seed"]] = merged
        if labels["variant"] == "sinusoidal":
            table.setdefault("post, warmup", {})[labels["seed"]] = merged
    return table


def _bleu(run: dict) -> float | None:
    """A run's BLEU; a diverged run or one with no score counts as 0 (it does not translate)."""
    if run.get("status") == DIVERGED:
        return 0.0
    value = run.get("bleu")
    return float(value) if isinstance(value, (int, float)) else None


def _stats(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f} (n=1)"
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f} (n={len(values)})"


def report_translation(runs: list[dict], output_dir: Path) -> str:
    """The markdown section. ``runs``: one dict per run, holding ``labels`` (question, variant, seed) and the
    measured values (at top level or under ``result``). Writes a loss-curve plot to ``output_dir``."""
    table = _by_variant(runs)
    if not table:
        return "## Translation\n\nNo translation runs in this preset.\n"
    lines = ["## Translation (English -> Spanish, the embedded Bible)", ""]
    signature = next((r.get("bleu_signature") for seeds in table.values() for r in seeds.values() if r.get("bleu_signature")), None)
    lines += [f"BLEU and chrF by sacreBLEU (`{signature}`), beam search, on the validation verses (choices are "
              "compared on validation; the test verses are kept for a model's final score). "
              "A diverged run counts as BLEU 0. Verdicts come from paired per-seed differences (same seed = "
              "same initial weights and data order) and their 95% t-interval.", ""]
    for question, spec in QUESTIONS.items():
        first, second = spec["pair"]
        seeds = sorted(set(table.get(first, {})) & set(table.get(second, {})))
        pairs = [(_bleu(table[first][s]), _bleu(table[second][s])) for s in seeds]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        interval = paired_interval([a - b for a, b in pairs])
        outcome, reason = verdict(spec["kind"], interval)
        lines += [f"### {spec['title']}", "", f"Claim: {spec['claim']} ({spec['source']}).", "",
                  "| seed | " + " | ".join(f"{v}: BLEU / chrF / status" for v in (first, second)) + " | BLEU difference |",
                  "|---|---|---|---|"]
        for seed in seeds:
            cells = []
            for variant in (first, second):
                run = table[variant][seed]
                chrf = run.get("chrf")
                cells.append(f"{_bleu(run) if _bleu(run) is not None else '-'} / "
                             f"{f'{chrf:.2f}' if isinstance(chrf, (int, float)) else '-'} / {run.get('status', '-')}")
            a, b = _bleu(table[first][seed]), _bleu(table[second][seed])
            cells.append(f"{a - b:+.2f}" if a is not None and b is not None else "-")
            lines.append(f"| {seed} | " + " | ".join(cells) + " |")
        lines += ["", f"Mean ± standard deviation over seeds: {first} {_stats([a for a, _ in pairs])}, "
                      f"{second} {_stats([b for _, b in pairs])}.", "",
                  f"**Verdict: {outcome}** ({reason}).", ""]
    plot = _plot_losses(table, output_dir)
    if plot is not None:
        lines += [f"![translation loss curves]({plot.name})", ""]
    return "\n".join(lines)


def _plot_losses(table: dict, output_dir: Path) -> Path | None:
    """Training loss curves, one line per (variant, seed); None without matplotlib or curves."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    curves = [(variant, seed, run.get("loss_history") or []) for variant, seeds in table.items()
              if variant != "post, warmup" for seed, run in seeds.items()]
    if not any(curve for _, _, curve in curves):
        return None
    output_dir.mkdir(parents=True, exist_ok=True)
    figure, axis = plt.subplots(figsize=(6, 3.5))
    colours = {"sinusoidal": "C0", "learned": "C1", "post, no warmup": "C3"}
    for variant, seed, curve in curves:
        if curve:
            steps, losses = zip(*curve)
            axis.plot(steps, losses, color=colours.get(variant, "C7"), alpha=0.8,
                      label=f"{variant} (post, warmup)" if variant == "sinusoidal" and seed == min(table[variant]) else
                      variant if seed == min(table[variant]) else None)
    axis.set(xlabel="step", ylabel="label-smoothed training loss", title="Translation: training loss")
    axis.legend(fontsize=8)
    figure.tight_layout()
    path = output_dir / "translation_losses.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


__all__ = ["TRANSLATION_SETTINGS", "TranslationSettings", "measure_translation", "plan_translation",
           "report_translation", "paired_interval", "verdict"]
