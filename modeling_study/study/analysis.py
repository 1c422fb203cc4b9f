"""From cached per-seed runs to spread-aware verdicts, one function per question.

Every verdict goes through ``stats.compare_targets`` (paired by seed and target; the interval covers
the sampling of targets as well as seeds) where a run kept its per-target losses, else
``stats.compare`` (paired by seed), and ``stats.within`` for "about equal" (two-sided, inside a
margin fixed in the preset): a direction is stated only when the interval separates it, otherwise the
verdict is "inconclusive at this budget" with the interval as the reason. Nothing here is hard-coded
to agree; a comparison that cannot come out otherwise (learned positions past their table) is not
counted, and neither is one that repeats another: ``tally`` counts each independent question once
(a claim with ``counted: False`` says which one it repeats).
"""

from __future__ import annotations

import math

from .spec import FINISHED
from .stats import INCONCLUSIVE, Comparison, compare, compare_targets, noise_floor, summarise, within

# ------------------------------------------------------------------------------------------ helpers


def _by(runs: list[dict], *keys: str) -> dict:
    """Group runs by their labels ``keys`` (without the seed): {(k1, ...): {seed: run}}."""
    out: dict = {}
    for run in runs:
        group = tuple(run["labels"][k] for k in keys)
        out.setdefault(group if len(keys) > 1 else group[0], {})[run["labels"]["seed"]] = run
    return out


def _values(seed_runs: dict, get) -> dict:
    """{seed: get(run)} for finished runs where ``get`` gives a finite number."""
    out = {}
    for seed, run in seed_runs.items():
        if run.get("status") != FINISHED:
            continue
        value = get(run)
        if isinstance(value, (int, float)) and math.isfinite(value):
            out[seed] = float(value)
    return out


def _claim(text: str, source: str, comparison, expected: set[str], *, unexpected: set[str] | None = None,
           blocked: str | None = None, numbers: str = "") -> dict:
    """A published claim checked against a comparison: agrees if its direction is one of ``expected``."""
    if blocked:
        return {"claim": text, "source": source, "verdict": INCONCLUSIVE, "reason": blocked, "numbers": numbers}
    if comparison.direction is None:
        return {"claim": text, "source": source, "verdict": INCONCLUSIVE, "reason": comparison.reason,
                "numbers": numbers, "comparison": comparison.as_dict()}
    if comparison.direction in expected:
        verdict = "agrees"
    elif unexpected is None or comparison.direction in unexpected:
        verdict = "disagrees"
    else:
        verdict = INCONCLUSIVE
    return {"claim": text, "source": source, "verdict": verdict, "reason": comparison.reason, "numbers": numbers,
            "comparison": comparison.as_dict()}


def equal_claim(text: str, source: str, a: dict, b: dict, margin: float, numbers: str = "", *,
                comparison: Comparison | None = None) -> dict:
    """An "about equal" claim: agrees when the 95% CI of A - B lies inside +-margin, disagrees when it
    lies entirely outside it, inconclusive otherwise (a CI straddling the margin says neither)."""
    c = within(a, b, margin, comparison=comparison)
    claim = _claim(f"{text} (within ±{margin:g} nats)", source, c, {"A ~ B"}, unexpected=set(), numbers=numbers)
    if c.interval is not None and (c.interval[0] > margin or c.interval[1] < -margin):
        claim["verdict"] = "disagrees"
        claim["reason"] = f"95% CI of A - B [{c.interval[0]:.3g}, {c.interval[1]:.3g}] lies outside ±{margin:g}"
    return claim


def constant(seeds, value: float) -> dict:
    return {seed: value for seed in seeds}


def _targets(seed_runs: dict, k: str) -> dict:
    """{seed: per-target NLL at context k} for finished runs that scored k (None where a run cannot)."""
    out = {}
    for seed, run in seed_runs.items():
        nll = (run.get("context") or {}).get("nll", {}).get(k) if run.get("status") == FINISHED else None
        if nll:
            out[seed] = nll
    return out


def _mean(values) -> float:
    return sum(values) / len(values)


def uncounted(claim: dict, repeats: str) -> dict:
    """Mark ``claim`` as reported but not tallied: it repeats the question ``repeats``."""
    return dict(claim, counted=False, repeats=repeats)


# ------------------------------------------------------------------------ 1. language models (Press)
PRESS = "Press et al. 2022, arXiv:2108.12409, Fig. 1 and Tables 2-3"
# What happens to the loss when the context grows past the training length L (Press et al. Figure 1):
PUBLISHED_EXTRAPOLATION = {"sinusoidal": "degrades", "rope": "degrades", "alibi": "holds", "t5": "holds"}


def analyse_lm(runs: list[dict], baselines: dict, preset) -> dict:
    """Per encoding: loss against context length (same targets), n-gram comparison, verdicts."""
    lm = preset.lm
    L = lm.train_length
    ks = None
    groups = _by(runs, "encoding")
    in_dist, far, short = str(L - 1), str(lm.factor * L - 1), "4"
    eighth, half = str(max(L // 8, 1)), str(L // 2)
    rows, per_seed_in = [], {}
    per_target = baselines.get("per_target", {})

    def at(k):
        return lambda run: (run["context"]["nll"].get(k) and _mean(run["context"]["nll"][k]))

    def versus(name, loss_in, targets_in):
        """The models at k = L - 1 against an n-gram on the same targets (paired by target when it can be)."""
        if name in per_target and targets_in:
            return compare_targets(targets_in, per_target[name])
        return compare(loss_in, constant(list(loss_in), baselines[name][in_dist]))

    for encoding in preset.encodings:
        seed_runs = groups.get(encoding, {})
        finished = {s: r for s, r in seed_runs.items() if r.get("status") == FINISHED}
        if finished and ks is None:
            ks = next(iter(finished.values()))["context"]["ks"]
        row = {"encoding": encoding, "n": len(finished), "statuses": sorted({r["status"] for r in seed_runs.values()}),
               "loss": {}, "verdict": None}
        for k in (ks or []):
            row["loss"][str(k)] = summarise(_values(seed_runs, at(str(k))).values()).as_dict()
        loss_in, loss_far = (_values(seed_runs, at(k)) for k in (in_dist, far))
        t_in, t_far, t_short = (_targets(seed_runs, k) for k in (in_dist, far, short))
        per_seed_in[encoding] = loss_in
        row["beats_unigram"] = versus("unigram", loss_in, t_in).as_dict()
        row["beats_trigram"] = versus("trigram", loss_in, t_in).as_dict()
        if "5-gram" in baselines:
            row["beats_5gram"] = versus("5-gram", loss_in, t_in).as_dict()
        learned = row["beats_unigram"]["direction"] == "A < B"
        gain = compare_targets(t_short, t_in)  # loss(k=4) - loss(k=L-1): what the context past 4 tokens is worth
        row["uses_context"] = gain.as_dict()
        row["learned"] = learned
        row["uses_context_ok"] = gain.interval is not None and gain.interval[0] > preset.uses_context_margin
        if int(eighth) < int(half) and ks and int(half) in ks and int(eighth) in ks:
            # does it read up to half its window? loss(k=L/8) - loss(k=L/2) > 0 with the interval excluding 0
            row["uses_half_window"] = compare_targets(_targets(seed_runs, eighth), _targets(seed_runs, half)).as_dict()
        gain_text = (f"loss(k=4) - loss(k={in_dist}) = {gain.difference.text(3)} nats, 95% CI "
                     + (f"[{gain.interval[0]:.3f}, {gain.interval[1]:.3f}]" if gain.interval else "-")
                     + f", needs to lie above {preset.uses_context_margin}")
        ratios = {s: math.exp(loss_far[s] - loss_in[s]) for s in loss_far if s in loss_in}
        row["ratio"] = summarise(ratios.values()).as_dict()
        published = PUBLISHED_EXTRAPOLATION.get(encoding)
        row["published"] = published or ("cannot run past L (not counted: it cannot come out otherwise)"
                                         if encoding == "learned" else "-")
        if not loss_far:
            row["measured"] = "cannot run past L" if encoding == "learned" else None
            row["reason"] = "no loss past L"
        elif not learned:
            row["measured"], row["reason"] = None, "did not learn (not below the unigram baseline): no extrapolation verdict"
        elif not row["uses_context_ok"]:
            row["measured"], row["reason"] = None, f"uses no context past 4 tokens ({gain_text}): no extrapolation verdict"
        else:
            c = within(None, None, preset.holds_margin, comparison=compare_targets(t_far, t_in))
            row["measured"] = {"A ~ B": "holds", "A < B": "holds", "A > B": "degrades"}.get(c.direction)
            row["reason"] = f"uses context ({gain_text}); loss(k={far}) - loss(k={in_dist}): {c.reason}"
            row["extrapolation"] = c.as_dict()
        if published:
            row["verdict"] = INCONCLUSIVE if row["measured"] is None else (
                "agrees" if row["measured"] == published else "disagrees")
        rows.append(row)

    by_name = {row["encoding"]: row for row in rows}
    longer = [str(m * L - 1) for m in (2, 4, 8) if m <= lm.factor and ks and m * L - 1 in ks]

    def ordering(a: str, b: str, k: str) -> dict | None:
        if a not in by_name or b not in by_name:
            return None
        text = f"{a} has a lower loss than {b} with {k} tokens of context ({(int(k) + 1) // L}L - 1)"
        blocked = None
        for name in (a, b):
            if not (by_name[name]["learned"] and by_name[name]["uses_context_ok"]):
                blocked = f"{name} did not learn or uses no context past 4 tokens at this budget"
        va, vb = (_values(groups.get(n, {}), at(k)) for n in (a, b))
        numbers = f"{a} {summarise(va.values()).text()}, {b} {summarise(vb.values()).text()} nats"
        ta, tb = (_targets(groups.get(n, {}), k) for n in (a, b))
        claim = _claim(text, PRESS, compare_targets(ta, tb), {"A < B"}, blocked=blocked, numbers=numbers)
        if k != far:
            return uncounted(claim, f"the same pair at {far} tokens (one question per pair; shorter contexts show the trend)")
        if by_name[a].get("measured") == "holds" and by_name[b].get("measured") == "degrades":
            return uncounted(claim, f"{a} holds and {b} degrades (the rows above): the order follows from them")
        return claim

    claims = [c for k in longer for c in (ordering("alibi", "sinusoidal", k), ordering("t5", "sinusoidal", k),
                                          ordering("alibi", "rope", k), ordering("rope", "sinusoidal", k)) if c]
    return {"rows": rows, "claims": claims, "ks": ks, "baselines": {k: v for k, v in baselines.items()
                                                                    if k not in ("per_target", "norm_unigram")},
            "train_length": L, "noise_floor": noise_floor(per_seed_in), "in_distribution_k": in_dist, "far_k": far,
            "positions": position_bands(groups, preset)}


def position_bands(groups: dict, preset) -> dict:
    """Per encoding: mean and sd over seeds of the loss at each position of an 8L window."""
    out = {}
    for encoding, seed_runs in groups.items():
        curves = [r["position_nll"] for r in seed_runs.values() if r.get("status") == FINISHED and r.get("position_nll")]
        if not curves:
            continue
        columns = list(zip(*curves))
        summaries = [summarise(c) for c in columns]
        out[encoding] = {"mean": [s.mean for s in summaries], "sd": [s.sd for s in summaries], "n": len(curves)}
    return out


# ------------------------------------------------------------------------------------- 2. ablations
ABLATION_CLAIMS = {
    # variant: (claim, source, expected direction of variant vs baseline, None = "about equal")
    "layernorm": ("LayerNorm and RMSNorm reach about the same loss", "Zhang & Sennrich 2019, arXiv:1910.07467, Tables 1-4",
                  None),
    "relu": ("SwiGLU beats a ReLU feed-forward of equal size", "Shazeer 2020, arXiv:2002.05202, Table 1", "A > B"),
    "gelu": ("SwiGLU beats a GELU feed-forward of equal size", "Shazeer 2020, arXiv:2002.05202, Table 1", "A > B"),
    "geglu": ("GEGLU and SwiGLU are about equal", "Shazeer 2020, arXiv:2002.05202, Table 1 (1.942 vs 1.944)", None),
    "label_smoothing": ("label smoothing 0.1 hurts perplexity", "Vaswani et al. 2017, arXiv:1706.03762, section 5.4 and "
                        "Table 3 row D", "A > B"),
    "inverse_sqrt": ("at a fixed budget, cosine decay ends lower than warmup + inverse square root",
                     "expectation, not a published head-to-head: inverse sqrt (Vaswani et al. 2017, 5.3) never "
                     "anneals; cosine (Loshchilov & Hutter 2017, arXiv:1608.03983) does", "A > B"),
}


def analyse_ablations(runs: list[dict], lm_runs: list[dict], preset) -> dict:
    """Each variant against the rope LM run of the same seed, on the same targets where both kept them."""
    base_runs = _by(lm_runs, "encoding").get("rope", {})
    k = str(preset.lm.train_length - 1)
    base = _values(base_runs, lambda r: r["training"]["eval_loss"])
    base_targets = _targets(base_runs, k)
    groups = _by(runs, "variant")
    rows = []
    for variant in preset.ablations:
        seed_runs = groups.get(variant, {})
        values = _values(seed_runs, lambda r: r["training"]["eval_loss"])
        targets = _targets(seed_runs, k)
        text, source, expected = ABLATION_CLAIMS[variant]
        numbers = f"variant {summarise(values.values()).text()}, baseline {summarise(base.values()).text()} nats"
        if targets and base_targets:  # paired by seed and target: the interval covers both samplings
            difference = compare_targets(targets, base_targets)
            how = f"{len(next(iter(targets.values())))} validation targets at k = {k}, paired with the baseline's"
        else:  # runs cached without per-target losses: the seeds' spread only
            difference, how = compare(values, base), "eval loss, seeds only (these runs kept no per-target losses)"
        if expected is None:
            claim = equal_claim(text, source, values, base, preset.equal_margin, numbers, comparison=difference)
        else:
            claim = _claim(text, source, difference, {expected}, numbers=numbers)
        claim.update(variant=variant, difference=difference.as_dict(), measured_on=how)
        rows.append(claim)
    return {"rows": rows, "baseline": summarise(base.values()).as_dict()}


# --------------------------------------------------------------------------------- 3. norm placement
XIONG = "Xiong et al. 2020, arXiv:2002.04745"
TRAINED_MARGIN = 0.1  # nats below the unigram on the same tokens: less than this on every seed is "did not train"


def analyse_norm(runs: list[dict], grad_runs: list[dict], preset, unigram_loss: float,
                 unigram_targets: list | None = None) -> dict:
    """Xiong et al.'s questions on the pre-registered grid.

    A cell's loss is the mean NLL of its runs on the grid's own validation targets, and "did not train"
    compares it with the unigram on those same targets (``unigram_targets``). Runs cached without
    per-target losses fall back to their eval loss against ``unigram_loss`` (the LM targets' unigram).
    A cell in which no seed gets ``TRAINED_MARGIN`` below the unigram "did not train": it is reported
    as such, never ranked, and no claim compares it.
    """
    grid = preset.norm
    k = str(grid.train_length - 1)
    cells = _by(runs, "placement", "lr", "warmup")
    per_target = all(_targets(seed_runs, k) for seed_runs in cells.values()) and unigram_targets is not None
    threshold = _mean(unigram_targets) if per_target else unigram_loss

    def loss(placement, lr, warmup):
        seed_runs = cells.get((placement, lr, warmup), {})
        if per_target:
            return {seed: _mean(v) for seed, v in _targets(seed_runs, k).items()}
        return _values(seed_runs, lambda r: r["training"]["eval_loss"])

    def trained(placement, lr, warmup) -> bool:
        return any(v < threshold - TRAINED_MARGIN for v in loss(placement, lr, warmup).values())

    table = []
    for (placement, lr, warmup), seed_runs in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], not kv[0][2])):
        losses = loss(placement, lr, warmup)
        table.append({"placement": placement, "lr": lr, "warmup": warmup, "loss": summarise(losses.values()).as_dict(),
                      "diverged": sum(r.get("status") == "diverged" for r in seed_runs.values()),
                      "learned": sum(v < threshold - TRAINED_MARGIN for v in losses.values()), "n": len(seed_runs),
                      "trained": trained(placement, lr, warmup)})

    def untrained(lr):  # two unigram-level losses differ by noise: their difference says nothing about warmup
        if trained("post", lr, False) or trained("post", lr, True):
            return None
        return (f"post-norm did not train at lr {lr:g}, neither with nor without warmup (no seed {TRAINED_MARGIN} nats "
                f"below the unigram's {threshold:.3f} on the same tokens): nothing to compare")

    claims = []
    for lr in grid.learning_rates:
        if "post" in grid.placements:
            cold, warm = loss("post", lr, False), loss("post", lr, True)
            claims.append(_claim(f"lr {lr:g}: post-norm trains worse without warmup than with it", XIONG + ", section 3.1",
                                 compare(cold, warm), {"A > B"}, blocked=untrained(lr),
                                 numbers=f"loss without {summarise(cold.values()).text()}, with "
                                         f"{summarise(warm.values()).text()}"))
        if {"post", "pre"} <= set(grid.placements):
            gain = {p: {s: loss(p, lr, False)[s] - loss(p, lr, True)[s]
                        for s in set(loss(p, lr, False)) & set(loss(p, lr, True))} for p in ("post", "pre")}
            claim = _claim(f"lr {lr:g}: warmup helps post-norm more than pre-norm", XIONG + ", sections 3-4",
                           compare(gain["post"], gain["pre"]), {"A > B"}, blocked=untrained(lr),
                           numbers=f"loss gained by warmup: post {summarise(gain['post'].values()).text()}, pre "
                                   f"{summarise(gain['pre'].values()).text()}")
            claims.append(claim)
    edges = []
    if {"post", "pre"} <= set(grid.placements):
        def best(placement, warmup):  # pre-registered rule: the trained cell with the lowest mean loss
            options = [(summarise(loss(placement, lr, warmup).values()).mean, lr) for lr in grid.learning_rates
                       if trained(placement, lr, warmup)]
            options = [o for o in options if o[0] is not None]
            return min(options)[1] if options else None
        lr_pre, lr_post = best("pre", False), best("post", True)
        for placement, lr in (("pre", lr_pre), ("post", lr_post)):
            if lr is not None and len(grid.learning_rates) > 1 and lr in (min(grid.learning_rates), max(grid.learning_rates)):
                edges.append(f"{placement}-norm's best learning rate ({lr:g}) is at the edge of the grid "
                             f"{list(grid.learning_rates)}: the grid does not bracket its optimum")
        if lr_pre is None or lr_post is None:
            missing = "pre-norm without warmup" if lr_pre is None else "post-norm with warmup"
            claims.append({"claim": "pre-norm without warmup reaches post-norm-with-warmup's loss or better (each at "
                           "its best grid lr)", "source": XIONG + ", section 4 and Fig. 4", "verdict": INCONCLUSIVE,
                           "reason": f"{missing} did not train at any grid learning rate: nothing to rank", "numbers": ""})
        else:
            a, b = loss("pre", lr_pre, False), loss("post", lr_post, True)
            claims.append(_claim("pre-norm without warmup reaches post-norm-with-warmup's loss or better (each at its "
                                 "best grid lr)", XIONG + ", section 4 and Fig. 4", within(a, b, preset.equal_margin),
                                 {"A ~ B", "A < B"}, numbers=
                                 f"pre (lr {lr_pre:g}, no warmup) {summarise(a.values()).text()}, post (lr {lr_post:g}, "
                                 f"warmup) {summarise(b.values()).text()}"))
    grads = _by(grad_runs, "placement")
    growth = {p: {s: math.log(r["init_grad_norms"][-1] / r["init_grad_norms"][0]) for s, r in seed_runs.items()
                  if r.get("status") == FINISHED and r["init_grad_norms"][0] > 0}
              for p, seed_runs in grads.items()}
    profiles = {}
    for p, seed_runs in grads.items():
        layers = [summarise(c) for c in zip(*[r["init_grad_norms"] for r in seed_runs.values() if r.get("status") == FINISHED])]
        profiles[p] = {"mean": [s.mean for s in layers], "sd": [s.sd for s in layers]}
    margin = math.log(preset.flat_ratio)
    for placement, grows in (("post", True), ("pre", False)):
        if placement not in growth:
            continue
        g = growth[placement]
        c = within(g, constant(g, 0.0), margin)
        text = (f"at initialisation, {placement}-norm's FFN gradient norm "
                + (f"grows toward the last layer (last/first above {preset.flat_ratio:g})" if grows else
                   f"stays flat across layers (last/first within {1 / preset.flat_ratio:.2f}-{preset.flat_ratio:g})"))
        numbers = f"log(last/first) {placement} {summarise(g.values()).text()}, flat = within ±{margin:.3f}"
        if c.interval is None:
            claims.append(_claim(text, XIONG + ", Fig. 3", c, set(), numbers=numbers))
            continue
        lo, hi = c.interval
        outcome = ("A ~ B" if c.direction == "A ~ B" else "grows" if lo > margin else "shrinks" if hi < -margin else None)
        expected = {"grows"} if grows else {"A ~ B"}
        shown = Comparison(c.difference, c.interval, outcome, c.reason if outcome else
                           f"95% CI of log(last/first) [{lo:.3g}, {hi:.3g}] straddles the ±{margin:.3f} margin")
        claims.append(_claim(text, XIONG + ", Fig. 3", shown, expected, numbers=numbers))
    return {"table": table, "claims": claims, "growth": {p: summarise(g.values()).as_dict() for p, g in growth.items()},
            "profiles": profiles, "threshold": threshold, "measured_on": (
                f"{len(unigram_targets)} validation targets at k = {k}" if per_target else "eval loss"), "edges": edges}


# -------------------------------------------------------------------------------------- 4. tasks
KAZEMNEJAD = "Kazemnejad et al. 2023, arXiv:2305.19466, Fig. 2-3 (decoder-only)"
LEARNED_TASK = 0.95  # exact match in distribution below this: the model did not learn the task


def analyse_tasks(runs: list[dict], preset) -> dict:
    """Exact match per task x encoding x length, with spread; Kazemnejad et al.'s ordering checked pairwise."""
    groups = _by(runs, "task", "encoding")
    tasks = sorted({t for t, _ in groups})
    rows, claims = [], []
    lengths = None
    for task in tasks:
        for encoding in preset.encodings:
            seed_runs = groups.get((task, encoding), {})
            if not seed_runs:
                continue
            finished = [r for r in seed_runs.values() if r.get("status") == FINISHED]
            if finished and lengths is None:
                lengths = sorted(finished[0]["accuracy"], key=int)
            ind = _values(seed_runs, lambda r: r.get("in_distribution_exact_match"))
            row = {"task": task, "encoding": encoding, "n": len(finished), "in_distribution": summarise(ind.values()).as_dict(),
                   "learned": bool(ind) and min(ind.values()) >= LEARNED_TASK, "exact_match": {}}
            row["token_accuracy"] = {}
            for n in lengths or []:
                for metric in ("exact_match", "token_accuracy"):
                    vals = _values(seed_runs, lambda r, n=n, m=metric: r["accuracy"].get(n, {}).get(m)
                                   if r["accuracy"].get(n, {}).get("status") == FINISHED else None)
                    row[metric][n] = summarise(vals.values()).as_dict() if vals else None
            rows.append(row)
    by = {(r["task"], r["encoding"]): r for r in rows}

    def beyond(task, encoding, metric="exact_match"):
        """Per seed: mean ``metric`` over the lengths past L."""
        out = {}
        for seed, run in groups.get((task, encoding), {}).items():
            if run.get("status") != FINISHED:
                continue
            cells = [run["accuracy"][n] for n in (lengths or [])[1:]]
            if cells and all(c.get("status") == FINISHED for c in cells):
                out[seed] = sum(c[metric] for c in cells) / len(cells)
        return out

    asked: dict = {}  # (task, a, metric, b's per-seed values) -> the first rival b asked about
    for task in tasks:
        for a, b in (("none", "sinusoidal"), ("t5", "rope"), ("alibi", "rope"), ("none", "rope")):
            if (task, a) not in by or (task, b) not in by:
                continue
            blocked = next((f"{n} did not learn {task} in distribution (exact match < {LEARNED_TASK} on some seed)"
                            for n in (a, b) if not by[(task, n)]["learned"]), None)
            for metric, label in (("exact_match", "exact match"), ("token_accuracy", "per-token accuracy")):
                va, vb = beyond(task, a, metric), beyond(task, b, metric)
                floor = None if blocked or any([*va.values(), *vb.values()]) else \
                    f"neither gets a single instance right past L ({label} 0 on every seed): nothing to order"
                claim = _claim(f"{task}: {a} generalises past L better than {b} ({label})", KAZEMNEJAD,
                               compare(va, vb), {"A > B"}, blocked=blocked or floor,
                               numbers=f"mean {label} past L: {a} {summarise(va.values()).text()}, "
                                       f"{b} {summarise(vb.values()).text()}")
                same = (task, a, metric, tuple(sorted(vb.items())))  # a rival with the very same numbers
                if metric != "exact_match":
                    claim = uncounted(claim, f"{task}: {a} vs {b} by exact match (the question; this is its detail)")
                elif same in asked:
                    claim = uncounted(claim, f"{task}: {a} vs {asked[same]}, whose numbers are identical to {b}'s")
                else:
                    asked[same] = b
                claims.append(claim)
    return {"rows": rows, "claims": claims, "lengths": lengths or [], "tasks": tasks}


def tally(*claim_lists) -> dict:
    """Verdicts counted once per independent question: claims marked ``counted: False`` are left out."""
    out = {"agrees": 0, "disagrees": 0, INCONCLUSIVE: 0}
    for claims in claim_lists:
        for c in claims:
            if c.get("counted", True):
                out[c["verdict"]] = out.get(c["verdict"], 0) + 1
    return out
