"""Turn the study's per-seed runs into ``report.md``, ``results.json`` and plots.

Each question in the report: the published claim and its source, the measurement with its spread and
n, and the verdict (agrees / disagrees / inconclusive at this budget) with why. The verdicts come from
``analysis`` (paired by seed, 95% t intervals); nothing here is hard-coded to agree.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from . import plots
from .analysis import LEARNED_TASK, TRAINED_MARGIN, analyse_ablations, analyse_lm, analyse_norm, analyse_tasks, tally
from .spec import FAILED, PENDING
from .store import write_json_atomic
from .stats import INCONCLUSIVE, t975

TOKENIZER_TEXT = {  # Preset.tokenizer -> how the report names it
    "bytes": "the repository's byte tokenizer (`tokenizer/bytes`: 256 bytes and 5 specials, one token per byte of "
             "text, so every loss is in nats per byte)",
    "bpe": "the repository's byte-level BPE tokenizer (`tokenizer`: 4,096 tokens)",
}
PLOTS = {"context": "loss_by_context.png", "positions": "loss_by_position.png", "ablations": "ablations.png",
         "norm_grid": "norm_grid.png", "init_grads": "init_grad_norms.png", "tasks": "tasks.png"}


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "inf"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _ms(summary: dict | None, digits: int = 3) -> str:
    """'mean ± sd' of a Summary dict."""
    if not summary or summary.get("mean") is None:
        return "-"
    if summary.get("sd") is None:
        return f"{summary['mean']:.{digits}f}"
    return f"{summary['mean']:.{digits}f} ± {summary['sd']:.{digits}f}"


def _verdict(v: str) -> str:
    return {"agrees": "agrees", "disagrees": "**disagrees**"}.get(v, v or INCONCLUSIVE)


def _claims_md(claims: list[dict]) -> list[str]:
    out = ["| claim | source | measured | verdict | why |", "|---|---|---|---|---|"]
    for c in claims:
        verdict = _verdict(c["verdict"]) + ("" if c.get("counted", True) else f" (not counted: repeats {c['repeats']})")
        out.append(f"| {c['claim']} | {c['source']} | {c['numbers']} | {verdict} | {c['reason']} |")
    return out + [""]


def _meta(preset, seeds, wall_time: float, runs: list[dict]) -> dict:
    import torch
    import transformers

    from modeling_study import __version__

    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([os.path.basename(sys.argv[0]), *sys.argv[1:]]) if sys.argv and sys.argv[0] else "run_study()",
        "preset": preset.name,
        "seeds": list(seeds),
        "wall_time_s": round(wall_time, 1),
        "runs_from_cache": sum(bool(r.get("cached")) for r in runs),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "modeling_study": __version__},
        "hardware": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                     "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                     "cuda": torch.cuda.is_available()},
    }


def write_report(output_dir: Path, preset, seeds, runs: list[dict], ambiguity: dict, baselines: dict,
                 wall_time: float) -> dict:
    output_dir.mkdir(parents=True, exist_ok=True)
    by_experiment: dict = {}
    for run in runs:
        by_experiment.setdefault(run["experiment"], []).append(run)
    unigram = baselines["unigram"][str(preset.lm.train_length - 1)]
    lm = analyse_lm(by_experiment.get("lm", []), baselines, preset)
    ablations = analyse_ablations(by_experiment.get("ablation", []), by_experiment.get("lm", []), preset)
    norm = analyse_norm(by_experiment.get("norm_grid", []), by_experiment.get("init_grad", []), preset, unigram,
                        baselines.get("norm_unigram"))
    tasks = analyse_tasks(by_experiment.get("tasks", []), preset) if by_experiment.get("tasks") else None
    translation_md = None
    if by_experiment.get("translation"):
        from .translation import report_translation

        translation_md = report_translation(by_experiment["translation"], output_dir)
    plots.plot_context(lm, output_dir / PLOTS["context"])
    plots.plot_positions(lm, output_dir / PLOTS["positions"])
    plots.plot_ablations(ablations, output_dir / PLOTS["ablations"])
    plots.plot_norm_grid(norm, output_dir / PLOTS["norm_grid"])
    plots.plot_init_grads(norm, output_dir / PLOTS["init_grads"])
    if tasks:
        plots.plot_tasks(tasks, output_dir / PLOTS["tasks"])
    meta = _meta(preset, seeds, wall_time, runs)
    meta["tally"] = tally(lm["claims"], [r for r in lm["rows"] if r.get("verdict")], ablations["rows"], norm["claims"],
                          tasks["claims"] if tasks else [])
    document = {
        "meta": meta,
        "preset": dataclasses.asdict(preset),
        # per-run measurements stay in runs/<key>.json; here: what identifies each run and its outcome
        "runs": [{k: r.get(k) for k in ("experiment", "name", "labels", "status", "key", "wall_time", "cached", "error")}
                 for r in runs],
        "lm": lm,
        "ablations": ablations,
        "norm_placement": norm,
        "tasks": tasks,
        "ambiguity": ambiguity,
        "plots": PLOTS,
    }
    write_json_atomic(output_dir / "results.json", document)
    text = render_markdown(meta, preset, runs, lm, ablations, norm, tasks, translation_md, ambiguity)
    tmp = output_dir / ".report.md.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, output_dir / "report.md")
    return document


def render_markdown(meta, preset, runs, lm, ablations, norm, tasks, translation_md, ambiguity) -> str:
    n = len(meta["seeds"])
    L = preset.lm.train_length
    t = meta["tally"]
    out = [f"# What positional encoding, norm placement and the other choices change: study report "
           f"({meta['preset']} preset)", ""]
    trained = sum(r.get("wall_time") or 0 for r in runs)
    out += [f"Run `{meta['command']}` on {meta['date']}; seeds {', '.join(map(str, meta['seeds']))} (n = {n} per "
            f"condition); wall time {meta['wall_time_s']} s ({meta['runs_from_cache']} of {len(runs)} runs from the "
            f"cache; the runs took {trained:.0f} s when trained). Python {meta['versions']['python']}, torch "
            f"{meta['versions']['torch']}, transformers {meta['versions']['transformers']}, modeling-study "
            f"{meta['versions']['modeling_study']}; {meta['hardware']['cpu_count']} CPU cores "
            f"({meta['hardware']['processor']}), {'a CUDA GPU' if meta['hardware']['cuda'] else 'no GPU'}. Data: the "
            f"embedded King James Bible corpus and {TOKENIZER_TEXT[preset.tokenizer]}.", "",
            "**How to read the verdicts.** Every condition is trained once per seed; two conditions are compared "
            "seed by seed (same seed, same data order), and a difference is stated only when the two-sided 95% "
            "interval of the mean paired difference excludes zero. Where a measure is a mean over sampled target "
            f"tokens ({preset.lm.context_targets} per run), the comparison is paired by target too and the interval "
            "covers both samplings: var(per-seed means) / seeds + var(per-target means) / targets, Student-t with "
            "Welch-Satterthwaite degrees of freedom, so a gap that another draw of targets could close is not a "
            f"difference. Measures without targets use the paired t interval over seeds (n = {n}: mean ± "
            f"{_fmt(t975(max(n - 1, 1)), 2)} x sd / sqrt({n})). Otherwise the verdict is *{INCONCLUSIVE}*, with the "
            "interval as the reason. Tables give mean ± sample standard deviation over seeds. \"About equal\" needs "
            f"the whole interval inside ±{preset.equal_margin} nats (half the smallest gap Shazeer 2020, Table 1 calls "
            f"a difference); \"holds\" needs the loss with 8L - 1 tokens of context within {preset.holds_margin} nats "
            "of the loss with L - 1. All margins are fixed in the preset before any run.", "",
            f"**Tally:** {t.get('agrees', 0)} agree, {t.get('disagrees', 0)} disagree, {t.get(INCONCLUSIVE, 0)} "
            "inconclusive at this budget, counting each independent question once (a claim that repeats another, "
            "or follows from two others, is shown with \"not counted\" and what it repeats).", ""]
    failed = [r for r in runs if r["status"] == FAILED]
    if failed:
        out += ["**Failed runs** (not cached; the next invocation retries them): "
                + "; ".join(f"{r['experiment']}/{r['name']}: {r['error']}" for r in failed), ""]
    pending = [r for r in runs if r["status"] == PENDING]
    if pending:
        from .presets import GROUPS

        left = {g: sum(r["experiment"] in experiments for r in pending) for g, experiments in GROUPS.items()}
        out += [f"**Pending: {len(pending)} of {len(runs)} planned runs are not trained yet**, so every verdict that "
                "needs them is inconclusive here. Train them with "
                + "; ".join(f"`run_study.py --preset {preset.name} --group {g}` ({k} runs)" for g, k in left.items() if k)
                + " (add `--time_budget SECONDS` to stop cleanly in time and continue on the next call).", ""]
    out += _lm_md(lm, preset, n)
    out += _ablation_md(ablations, preset, n)
    out += _norm_md(norm, preset, n)
    if tasks:
        out += _tasks_md(tasks, preset, n)
    if translation_md:
        out += ["## 6. Translation", "", translation_md, ""]
    sources = ambiguity["sources"]
    out += ["## 5. Positional ambiguity", "",
            f"\"{ambiguity['sentence']}\": are the two dog outputs (positions {ambiguity['dog_indices']}) identical? "
            f"Tokenizer: {sources['tokenizer']}. Embedding rows: {sources['embeddings']}.", "",
            "| model | encoding | mask | identical | cosine | expected |", "|---|---|---|---|---|---|"]
    for v in ambiguity["verdicts"]:
        out.append(f"| {v['model']} | {v['encoding']} | {v['mask']} | {'yes' if v['identical'] else 'no'} | "
                   f"{v['cosine']:.4f} | {'identical' if v['expected_identical'] else 'different'}"
                   f"{'' if v['as_expected'] else ' (**not as expected**)'} |")
    matched = sum(v["as_expected"] for v in ambiguity["verdicts"])
    out += ["", f"{matched} of {len(ambiguity['verdicts'])} verdicts as expected: only no encoding with bidirectional "
            "attention leaves the two dogs identical; the causal mask alone leaks order (Haviv et al. 2022).", ""]

    out += ["## Runs", "", "| experiment | runs | finished | diverged | failed | pending | from cache | training time (s) |",
            "|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for run in runs:
        groups.setdefault(run["experiment"], []).append(run)
    for name, group in groups.items():
        out.append(f"| {name} | {len(group)} | {sum(r['status'] == 'finished' for r in group)} | "
                   f"{sum(r['status'] == 'diverged' for r in group)} | {sum(r['status'] == FAILED for r in group)} | "
                   f"{sum(r['status'] == PENDING for r in group)} | "
                   f"{sum(bool(r.get('cached')) for r in group)} | {sum(r.get('wall_time') or 0 for r in group):.0f} |")
    out += ["", "Every run's measurements (loss curves, per-target and per-position losses) are kept in "
            "`runs/<key>.json`, so a new analysis of the same runs does not retrain.", ""]
    return "\n".join(out)


def _t5_note(L: int, model: dict) -> str:
    """Which of T5's causal buckets training never reaches at this L (their bias stays at its initial value)."""
    import torch

    from modeling_study import StudyConfig
    from modeling_study.position_encodings import t5_relative_position_bucket

    defaults = StudyConfig()
    num_buckets = model.get("t5_num_buckets", defaults.t5_num_buckets)
    max_distance = model.get("t5_max_distance", defaults.t5_max_distance)
    distance = torch.arange(8 * max(L, max_distance))
    bucket = t5_relative_position_bucket(-distance, bidirectional=False, num_buckets=num_buckets,
                                         max_distance=max_distance)
    seen = int(bucket[:L].max())
    if seen == num_buckets - 1:
        return (f"T5's buckets: training at L = {L} reaches all {num_buckets} causal buckets (max_distance "
                f"{max_distance}), so every distance past L falls in a bucket that was trained.")
    first_unseen = int((bucket > seen).nonzero()[0])
    return (f"T5's buckets: training at L = {L} reaches causal buckets 0-{seen} of {num_buckets} (max_distance "
            f"{max_distance}); from distance {first_unseen} on, keys fall in buckets {seen + 1}-{num_buckets - 1}, "
            "whose bias training never updated. Press et al. trained at L >= 512 > max_distance, where every "
            "distance past L shares the last bucket, which training did update. So T5's loss rising past L here is "
            "expected from this L and its bucket layout; it says little about T5's bias at Press et al.'s lengths.")


def _lm_md(lm, preset, n) -> list[str]:
    s = preset.lm
    L, far, ind = s.train_length, lm["far_k"], lm["in_distribution_k"]
    b = lm["baselines"]
    sizes = s.model
    out = ["## 1. Language models: context, position and length extrapolation", "",
           f"Causal LMs identical but for `position_encoding` ({sizes.get('num_hidden_layers')} layers, width "
           f"{sizes.get('hidden_size')}, pre-RMSNorm, SwiGLU), {s.steps} steps of {s.batch_size} x {L} tokens (lr "
           f"{s.lr:g}, cosine). "
           + ("Token embeddings are initialised with std d^-0.5 and multiplied by sqrt(d) in every model (fairseq, "
              "which Press et al. used; Vaswani et al. 3.4): tokens enter with RMS 1, the sinusoids with RMS 0.71. "
              if s.fair_embeddings else "")
           + f"Then the same {s.context_targets} validation target tokens are scored with their context cut to the last "
           f"k tokens, for every k: k <= {ind} is what training saw, larger k is extrapolation. Unlike windows of L..8L, "
           "every k scores the same tokens with the same context length, so a longer window earns nothing for free.", "",
           "**Baselines** (interpolated Kneser-Ney, fitted on the training split, scored on exactly these targets with "
           f"the same context): unigram {_fmt(b['unigram'][ind])} nats (perplexity {math.exp(b['unigram'][ind]):.0f}), "
           + ", ".join(f"{name} {_fmt(b[name][ind])} ({math.exp(b[name][ind]):.1f})"
                       for name in ("bigram", "trigram", "4-gram", "5-gram") if name in b)
           + ". A model not below the unigram did not learn; whether it beats the trigram and the 5-gram is tested on "
           "the same targets, paired target by target. A model whose loss does not drop by more than "
           f"{preset.uses_context_margin} nats between k = 4 and k = {ind} uses no context past 4 tokens and gets no "
           "extrapolation verdict.", "",
           f"Noise floor: the median over encodings of the seed-to-seed sd of the loss at k = {ind} is "
           f"{_fmt(lm['noise_floor'], 4)} nats.", ""]
    ks = [k for k in sorted({1, 4, L // 4, int(ind), 2 * L - 1, int(far)}) if lm["ks"] and k in lm["ks"]]
    beaten = {"A < B": "yes", "A > B": "no (worse)", None: "not separable"}
    half_window = {"A > B": "yes", "A < B": "no (worse)", None: "not separable"}
    out += ["| encoding | " + " | ".join(f"loss k={k}" for k in ks) + " | ppl k=" + ind
            + " | beats trigram | beats 5-gram | uses context | reads L/2 (loss k=L/8 > k=L/2) | ppl(8L-1)/ppl(L-1) | "
            "this run | published | verdict |",
            "|" + "---|" * (len(ks) + 10)]
    for row in lm["rows"]:
        cells = [_ms(row["loss"].get(str(k))) if row["loss"].get(str(k), {}).get("mean") is not None else "n/a" for k in ks]
        mean_in = row["loss"].get(ind, {}).get("mean")
        five = row.get("beats_5gram")
        half = row.get("uses_half_window")
        out.append(f"| {row['encoding']} | " + " | ".join(cells) + f" | {_fmt(math.exp(mean_in), 1) if mean_in else '-'} | "
                   f"{beaten[row['beats_trigram']['direction']]} | {beaten[five['direction']] if five else '-'} | "
                   f"{'yes' if row['uses_context_ok'] else 'no'} | {half_window[half['direction']] if half else '-'} | "
                   f"{_ms(row['ratio'], 2)} | "
                   f"{row['measured'] or ('did not learn' if not row['learned'] else 'no verdict')} | "
                   f"{row['published']} | {_verdict(row['verdict']) if row['verdict'] else '-'} |")
    if L // 4 > 4 and L // 4 in ks:
        out += ["", f"How much of its window a model uses: compare loss k={L // 4} with loss k={ind}. \"Uses context\" "
                f"asks only for a gain past 4 tokens; a model that gains nothing past {L // 4} tokens reads only the last "
                f"quarter of what it was trained on."]
    out += ["", "Why each row reads as it does:", ""]
    for row in lm["rows"]:
        out.append(f"- **{row['encoding']}**: {row.get('reason', '-')}.")
    if any(row["encoding"] == "t5" for row in lm["rows"]):
        out += ["", _t5_note(L, s.model)]
    out += ["", f"Integer positions add the raw index p to every dimension of the token vector: at p = {L - 1} that is "
            f"{L - 1} per dimension against tokens of RMS 1, so after the first norm the token is a small perturbation "
            "of a position vector that is the same direction for every position; the model cannot read the token, "
            "which is why the naive scheme fails.", "",
            "Orderings of Press et al. at 2L - 1, 4L - 1 and 8L - 1 tokens of context (one question per pair, at the "
            "longest; each paired by seed and target):", ""]
    out += _claims_md(lm["claims"])
    out += [f"![loss against context length]({PLOTS['context']})", "",
            f"![loss against position]({PLOTS['positions']})", ""]
    return out


def _ablation_md(ablations, preset, n) -> list[str]:
    out = ["## 2. The other choices of the notes, one at a time", "",
           f"The rope model of section 1 is the baseline (pre-RMSNorm, SwiGLU, cosine schedule, no label smoothing; eval "
           f"loss {_ms(ablations['baseline'])} nats, n = {n}); each variant changes one thing and is trained with the same "
           "seeds. ReLU and GELU feed-forwards are 1.5x wider than the gated ones, so all have the same parameter count "
           "(Shazeer 2020). Label smoothing is scored on the unsmoothed loss.", ""]
    measured = sorted({r.get("measured_on", "eval loss") for r in ablations["rows"]})
    out += [f"Measured on: {'; '.join(measured)}.", "",
            "| variant | difference in loss (variant - baseline) | 95% CI | claim | source | verdict | why |",
            "|---|---|---|---|---|---|---|"]
    for r in ablations["rows"]:
        d = r["difference"]
        ci = d["interval"]
        out.append(f"| {r['variant']} | {_ms(d['difference'], 4)} | "
                   f"{'-' if not ci else f'[{ci[0]:.4f}, {ci[1]:.4f}]'} | {r['claim']} | {r['source']} | "
                   f"{_verdict(r['verdict'])} | {r['reason']} |")
    out += ["", f"![ablations]({PLOTS['ablations']})", ""]
    return out


def _norm_md(norm, preset, n) -> list[str]:
    g = preset.norm
    sizes = g.model
    out = ["## 3. Norm placement: a pre-registered grid", "",
           f"Deep narrow causal LMs ({sizes.get('num_hidden_layers')} layers, width {sizes.get('hidden_size')}, "
           f"LayerNorm, RoPE), {g.steps} steps, linear decay. The grid was fixed in the preset before running: every "
           f"placement at learning rates {', '.join(f'{lr:g}' for lr in g.learning_rates)}, with {g.warmup_steps} "
           f"warmup steps and without, {n} seeds each. Every cell is reported. Divergence (NaN/Inf, or a loss above 3x "
           "its best) stops a run and counts as a result.", "",
           f"Loss: {norm.get('measured_on', 'eval loss')}. A cell in which no seed gets {TRAINED_MARGIN} nats below the "
           f"unigram on the same tokens ({_fmt(norm.get('threshold'))} nats) **did not train**: it is shown as such and "
           "never ranked.", "",
           "| placement | lr | warmup | loss | learned (of n) | diverged (of n) |", "|---|---|---|---|---|---|"]
    for c in norm["table"]:
        shown = _ms(c["loss"]) if c.get("trained", True) else f"did not train ({_ms(c['loss'])})"
        out.append(f"| {c['placement']} | {c['lr']:g} | {'yes' if c['warmup'] else 'no'} | {shown} | "
                   f"{c['learned']} of {c['n']} | {c['diverged']} of {c['n']} |")
    if norm.get("edges"):
        out += ["", "**The grid does not bracket every optimum:** " + "; ".join(norm["edges"])
                + ". A larger grid is needed before the best learning rates are compared."]
    out += ["", f"Gradient norm of each layer's feed-forward weights at initialisation, averaged over {g.grad_batches} "
            f"batches per seed: log(last / first) {', '.join(f'{p} {_ms(s)}' for p, s in norm['growth'].items())} "
            f"(mean ± sd over seeds). Both directions are tested: 'flat' needs the whole 95% interval of the ratio "
            f"within {1 / preset.flat_ratio:.2f}-{preset.flat_ratio:g}, 'grows' needs it above {preset.flat_ratio:g}.", ""]
    out += _claims_md(norm["claims"])
    out += [f"![norm placement grid]({PLOTS['norm_grid']})", "",
            f"![gradient norm per layer at initialisation]({PLOTS['init_grads']})", ""]
    return out


def _tasks_md(tasks, preset, n) -> list[str]:
    from .tasks import TASK_SETTINGS

    L = TASK_SETTINGS[preset.name].train_max_length
    out = ["## 4. Synthetic length generalisation", "",
           f"Decoder-only models trained on instances of length n <= {L} and scored by exact match (greedy, the whole "
           f"answer and its end token right) at n = {', '.join(tasks['lengths'])}; {n} seeds. A model below "
           f"{LEARNED_TASK:.0%} exact match in distribution (on any seed) did not learn the task and takes part in no "
           "comparison. Kazemnejad et al. (2023) found, for decoder-only models: no positions (NoPE) and T5's bias "
           "generalise best, then ALiBi, then rotary; absolute encodings worst.", ""]
    if "embedding_multiplier" not in TASK_SETTINGS[preset.name].model:
        out += ["Unlike the language models, the task models keep transformers' default token embeddings (std 0.02, "
                "no sqrt(d) multiplier), so positions added to them are large by comparison. A one-seed probe of "
                "both scales (`LONG_SIZING` in `modeling_study/study/tasks.py`) found that the sqrt(d) scale lets "
                "integer and sinusoidal positions learn every task but drowns the weaker order signal of none, rope, "
                "ALiBi and T5 (copy in distribution, seed 42, 1,200 steps: none 1.00 -> 0.80, rope 1.00 -> 0.82); the default "
                "scale favours the encodings Kazemnejad et al. compare. Read the absolute encodings' rows with that in mind.",
                ""]
    header = (f"| task | encoding | exact n<={L} (held out) | " + " | ".join(f"exact n={m}" for m in tasks["lengths"])
              + " | " + " | ".join(f"token acc. n={m}" for m in tasks["lengths"]) + " | learned |")
    out += [header, "|" + "---|" * (2 * len(tasks["lengths"]) + 4)]
    for r in tasks["rows"]:
        cells = [_ms(r["in_distribution"], 2)] + [_ms(r[metric].get(m), 2) if r[metric].get(m) else "n/a"
                                                  for metric in ("exact_match", "token_accuracy") for m in tasks["lengths"]]
        out.append(f"| {r['task']} | {r['encoding']} | " + " | ".join(cells) + f" | {'yes' if r['learned'] else 'no'} |")
    out += ["", f"exact n<={L}: held-out instances with n uniform in [1, {L}], the in-distribution test that decides "
            f"\"learned\" (>= {LEARNED_TASK:.0%} on every seed); n={L} alone is its hardest length. n/a: learned positions "
            "have no row past their table. Token accuracy is teacher-forced (each answer token given the right prefix), "
            "so it separates models whose exact match past L is 0 for all."]
    out += [""] + _claims_md(tasks["claims"])
    out += [f"![tasks]({PLOTS['tasks']})", ""]
    return out


