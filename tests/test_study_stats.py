"""The study's arithmetic on hand-made numbers: spread and verdict rules, n-gram baselines, the
LM context/position measurements, and the analysis of each question (no training here)."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from modeling_study.study import parse_seeds
from modeling_study.study.analysis import analyse_ablations, analyse_lm, analyse_norm, analyse_tasks, equal_claim, tally
from modeling_study.study.lm import context_grid, context_losses, position_losses, target_positions
from modeling_study.study.ngram import NGramModel, score_targets
from modeling_study.study.presets import PRESETS
from modeling_study.study.stats import INCONCLUSIVE, compare, compare_targets, mean_interval, noise_floor, summarise, t975, within

# ------------------------------------------------------------------------------------------- stats


def test_t_quantiles_are_students():
    # the printed table of t_{0.975, df} (3 decimals), and the closed form for df = 2: t = sqrt(2 / (1 - p^2) - 2)
    for df, printed in ((1, 12.706), (2, 4.303), (4, 2.776), (30, 2.042), (1000, 1.962)):
        assert t975(df) == pytest.approx(printed, abs=5e-4)
    assert t975(2) == pytest.approx(math.sqrt(2 / (1 - 0.95 ** 2) - 2), rel=1e-12)
    assert t975(2) > t975(2.7) > t975(3)  # Welch's fractional df: between its neighbours
    with pytest.raises(ValueError, match="at least 1 degree of freedom"):
        t975(0)


def test_summary_is_mean_and_sample_sd():
    s = summarise([1.0, 2.0, 4.0, None, float("nan")])
    assert s.n == 3 and s.mean == pytest.approx(7 / 3)
    assert s.sd == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert s.text(2) == f"2.33 ± {s.sd:.2f}"
    assert summarise([5.0]).sd is None and summarise([]).mean is None


def test_interval_by_hand():
    lo, hi = mean_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3: 2 +- 4.303 / sqrt(3)
    assert lo == pytest.approx(2 - 4.303 / math.sqrt(3), abs=1e-3) and hi == pytest.approx(2 + 4.303 / math.sqrt(3), abs=1e-3)
    assert mean_interval([2.0, 2.0]) == (2.0, 2.0) and mean_interval([1.0]) is None


def test_targets_widen_the_interval_by_their_sampling_error():
    """Crossed seeds x targets, by hand: D[s, t] = a - b; var(seed means)/S + var(target means)/T, Welch df."""
    a = {1: [1.0, 2.0, 3.0, 6.0], 2: [1.5, 2.5, 3.5, 6.5], 3: [1.2, 2.1, 3.3, 6.2]}
    b = [0.5, 0.5, 0.5, 0.5]  # a baseline that does not depend on the seed (an n-gram on the same targets)
    D = np.array([[x - 0.5 for x in a[s]] for s in (1, 2, 3)])
    seed_means, target_means = D.mean(axis=1), D.mean(axis=0)  # [2.5, 3.0, 2.7], [0.73, 1.7, 2.77, 5.8]
    v1, v2 = seed_means.var(ddof=1) / 3, target_means.var(ddof=1) / 4
    df = (v1 + v2) ** 2 / (v1 ** 2 / 2 + v2 ** 2 / 3)
    half = t975(df) * math.sqrt(v1 + v2)
    c = compare_targets(a, b)
    assert c.difference.mean == pytest.approx(D.mean())
    assert c.interval == pytest.approx((D.mean() - half, D.mean() + half))
    # the seeds alone agree (per-seed means 2.5, 3.0, 2.7): their own interval excludes 0 ...
    assert compare({s: m for s, m in zip((1, 2, 3), seed_means)}, {1: 0, 2: 0, 3: 0}).direction == "A > B"
    # ... but four targets this spread (0.7 to 5.8) could have drawn a mean near 0: inconclusive
    assert c.direction is None and "3 seeds x 4 targets" in c.reason
    # paired by target: a constant shift of every target is certain however spread the targets are
    shifted = {s: [x + 0.25 for x in a[s]] for s in a}
    assert compare_targets(shifted, a).interval == pytest.approx((0.25, 0.25))
    assert compare_targets(shifted, a).direction == "A > B"
    # a target one condition could not score drops out of every seed; too few seeds say so
    holes = {s: [None] + a[s][1:] for s in a}
    assert compare_targets(holes, b).difference.mean == pytest.approx(D[:, 1:].mean())
    assert "only 1 paired seed" in compare_targets({1: a[1]}, b).reason


def test_overlapping_spreads_are_inconclusive():
    # the review's numbers: rope vs alibi perplexity at L over seeds 42-44 flips with the seed
    rope, alibi = {42: 95.9, 43: 99.6, 44: 97.5}, {42: 97.7, 43: 101.4, 44: 97.4}
    c = compare(rope, alibi)
    assert c.direction is None and "contains 0" in c.reason and c.interval[0] < 0 < c.interval[1]


def test_consistent_differences_are_stated_with_their_direction():
    a, b = {1: 1.00, 2: 1.10, 3: 1.20}, {1: 0.50, 2: 0.61, 3: 0.69}
    assert compare(a, b).direction == "A > B" and compare(b, a).direction == "A < B"
    assert compare(a, b).difference.mean == pytest.approx(0.5)


def test_comparison_is_paired_by_seed():
    # a huge between-seed spread, but B is always exactly 0.1 below A: the paired test sees it
    a = {1: 1.0, 2: 5.0, 3: 9.0}
    b = {seed: value - 0.1 + 1e-3 * seed for seed, value in a.items()}
    assert compare(a, b).direction == "A > B"
    # unpaired seeds are dropped, and one pair is not enough for any statement
    c = compare({1: 1.0, 2: 2.0}, {2: 1.0, 3: 0.0})
    assert c.direction is None and "only 1 paired seed" in c.reason


def test_equivalence_needs_the_whole_interval_inside_the_margin():
    base = {1: 1.0, 2: 1.0, 3: 1.0}
    assert within({1: 1.01, 2: 1.012, 3: 1.009}, base, 0.05).direction == "A ~ B"
    assert within({1: 1.01, 2: 1.2, 3: 0.9}, base, 0.05).direction is None  # too noisy to say either
    far = within({1: 1.30, 2: 1.31, 3: 1.29}, base, 0.05)
    assert far.direction == "A > B"
    claim = equal_claim("about equal", "src", {1: 1.30, 2: 1.31, 3: 1.29}, base, 0.05)
    assert claim["verdict"] == "disagrees"
    straddles = equal_claim("about equal", "src", {1: 1.02, 2: 1.06, 3: 1.04}, base, 0.05)  # CI [~0.015, ~0.065]
    assert straddles["verdict"] == INCONCLUSIVE


def test_noise_floor_is_the_median_seed_sd():
    assert noise_floor({"a": {1: 0.0, 2: 2.0}, "b": {1: 0.0, 2: 0.2}, "c": {1: 1.0, 2: 1.4}}) == pytest.approx(
        summarise([1.0, 1.4]).sd)


def test_seed_flag_parsing():
    assert parse_seeds("42,43,44") == (42, 43, 44) and parse_seeds("42-45") == (42, 43, 44, 45)
    for bad in ("", "a,b", "42,42", "-3", "5-"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


# -------------------------------------------------------------------------------------- n-grams
CORPUS = [0, 1, 0, 1, 2]  # V = 4: token 3 never occurs


def test_unigram_by_hand():
    # p(w) = (max(c(w) - 0.75, 0) + 0.75 * types / V) / N with c = (2, 2, 1, 0), N = 5, types = 3
    p = NGramModel(CORPUS, 1, 4).probabilities(None, np.arange(4), np.zeros(4))
    assert p == pytest.approx([0.3625, 0.3625, 0.1625, 0.1125])


def test_kneser_ney_bigram_by_hand():
    m = NGramModel(CORPUS, 2, 4)
    # continuation unigram: tokens 0, 1, 2 each follow one distinct token, 3 none; 3 distinct bigrams:
    # p1(w) = (max(N1+(.w) - D, 0) + D * 3 / 4) / 3 = 0.2708333 for w < 3, 0.1875 for w = 3
    p1 = np.array([0.8125 / 3] * 3 + [0.1875])
    # after 1: c(1 .) = 2 over two types (0 and 2): p(w|1) = (max(c(1w) - D, 0) + D * 2 * p1(w)) / 2
    after1 = m.probabilities(np.ones((4, 1)), np.arange(4), np.ones(4))
    assert after1 == pytest.approx([(0.25 + 1.5 * p1[0]) / 2, 1.5 * p1[1] / 2, (0.25 + 1.5 * p1[2]) / 2, 1.5 * p1[3] / 2])
    assert after1.sum() == pytest.approx(1.0)
    # after 0: only "0 1" seen, twice: p(1|0) = (2 - 0.75 + 0.75 * p1(1)) / 2
    assert m.probabilities(np.zeros((1, 1)), np.array([1]), np.ones(1))[0] == pytest.approx((1.25 + 0.75 * p1[1]) / 2)
    # after 2 (never a history): the continuation unigram itself
    assert m.probabilities(np.full((4, 1), 2), np.arange(4), np.ones(4)) == pytest.approx(p1)
    # no context at all: the order it starts from uses raw counts, i.e. the discounted unigram
    assert m.probabilities(np.zeros((4, 1)), np.arange(4), np.zeros(4)) == pytest.approx([0.3625, 0.3625, 0.1625, 0.1125])


@pytest.mark.parametrize("order", [1, 2, 3])
def test_every_ngram_distribution_sums_to_one(order):
    rng = np.random.default_rng(0)
    m = NGramModel(rng.integers(0, 6, 300), order, 7)
    for context in ([0, 1], [5, 5], [6, 6], [2, 3]):
        for available in (0, 1, 2):
            rows = np.tile(np.array(context[-(order - 1):] if order > 1 else [], dtype=np.int64), (7, 1))
            assert m.probabilities(rows, np.arange(7), np.full(7, available)).sum() == pytest.approx(1.0)


def test_trigram_beats_bigram_on_a_deterministic_second_order_sequence():
    stream = np.array([0, 0, 1, 1] * 200)  # the next token is fixed by the last two, not by the last one
    tri, bi = NGramModel(stream, 3, 2), NGramModel(stream, 2, 2)
    targets = np.arange(10, 400)
    assert score_targets(tri, stream, targets, 5).mean() < 0.1 < score_targets(bi, stream, targets, 5).mean()
    # with one token of context the trigram can only use the bigram
    assert score_targets(tri, stream, targets, 1).mean() > 0.5


def test_ngram_input_errors():
    with pytest.raises(ValueError, match="order must be 1 to 5"):
        NGramModel(CORPUS, 6, 4)
    with pytest.raises(ValueError, match=r"ids in \[0, 2\)"):
        NGramModel(CORPUS, 2, 2)


# ----------------------------------------------------------------------------- LM measurements
def test_context_grid_and_targets():
    assert context_grid(16) == [1, 2, 4, 8, 15, 31, 63, 127]
    assert context_grid(64)[-4:] == [63, 127, 255, 511]
    t = target_positions(1000, 127, 10)
    assert t[0] == 127 and len(t) == 10 and np.all(np.diff(t) == (1000 - 127) // 10)
    with pytest.raises(ValueError, match="too few"):
        target_positions(100, 127, 10)


class CountingLM(torch.nn.Module):
    """A model whose prediction is known in closed form: log-probability of token j is -(j+1) * n_inputs,
    normalised, so the NLL depends on the target and on how many context tokens it was given."""

    def __init__(self, vocab=5, limit=None):
        super().__init__()
        self.vocab, self.limit = vocab, limit
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.config = type("C", (), {"max_position_embeddings": limit})()

    def forward(self, input_ids, use_cache=False, logits_to_keep=0):
        B, T = input_ids.shape
        n = torch.arange(1, T + 1, dtype=torch.float32).view(1, T, 1)
        logits = -(torch.arange(self.vocab, dtype=torch.float32).view(1, 1, -1) + 1) * n / T
        logits = logits + 0.0 * input_ids.unsqueeze(-1)  # (B, T, V)
        if logits_to_keep:
            logits = logits[:, -logits_to_keep:]
        return type("Out", (), {"logits": logits})()


def _nll(k, target, vocab=5):
    logits = -(torch.arange(vocab, dtype=torch.float64) + 1) * 1.0  # at the last of k inputs: n / T = 1
    return float(-torch.log_softmax(logits, 0)[target])


def test_context_losses_score_each_target_with_exactly_k_tokens():
    stream = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2])
    seen = []

    class Spy(CountingLM):
        def forward(self, input_ids, **kw):
            seen.append(input_ids.clone())
            return super().forward(input_ids, **kw)

    out = context_losses(Spy(), stream, np.array([8, 11]), [1, 3], max_position=None)
    assert seen[0].tolist() == [[2], [0]] and seen[1].tolist() == [[0, 1, 2], [3, 4, 0]]  # stream[t-k:t]
    assert out["1"] == pytest.approx([_nll(1, 3), _nll(1, 1)], abs=1e-5)
    assert out["3"] == pytest.approx([_nll(3, 3), _nll(3, 1)], abs=1e-5)
    assert context_losses(CountingLM(), stream, np.array([8]), [1, 6], max_position=4)["6"] is None


def test_position_losses_average_each_position_over_windows():
    stream = torch.tensor([0, 1, 2, 3] * 4)
    model = CountingLM(vocab=4)
    curve = position_losses(model, stream, 4, 16)
    logits = -(torch.arange(4, dtype=torch.float64) + 1).view(1, 4) * torch.arange(1, 5).view(4, 1) / 4
    expected = [float(-torch.log_softmax(logits[p], 0)[p + 1]) for p in range(3)]
    assert curve == pytest.approx(expected, abs=1e-5)


# ----------------------------------------------------------------------------------- analysis
PRESET = PRESETS["smoke"]


def _lm_run(encoding, seed, losses_by_k, eval_loss=5.0, position_nll=(1.0,)):
    return {"experiment": "lm", "status": "finished", "labels": {"encoding": encoding, "seed": seed},
            "training": {"eval_loss": eval_loss},
            "context": {"ks": [int(k) for k in losses_by_k],
                        "nll": {k: (None if v is None else [v, v]) for k, v in losses_by_k.items()}},
            "position_nll": list(position_nll)}


def _baselines(value=5.0, unigram=6.0):
    ks = [str(k) for k in context_grid(16)]
    return {"unigram": dict.fromkeys(ks, unigram), "bigram": dict.fromkeys(ks, value + 0.2), "trigram": dict.fromkeys(ks, value)}


def _curve(in_dist, far, short=None, jitter=0.0):
    short = in_dist + 0.5 if short is None else short
    return {"1": short + 0.3 + jitter, "4": short + jitter, "8": in_dist + 0.1 + jitter, "15": in_dist + jitter,
            "31": (in_dist + far) / 2 + jitter, "63": far + jitter, "127": far + jitter}


def test_extrapolation_verdicts_follow_the_spread():
    runs = []
    for seed, j in zip((1, 2, 3), (0.0, 0.011, -0.007)):
        runs += [_lm_run("alibi", seed, _curve(4.0, 4.0 + j / 3, jitter=j)),       # holds: 8L within the margin
                 _lm_run("rope", seed, _curve(4.0, 4.6, jitter=j)),                 # degrades clearly
                 _lm_run("sinusoidal", seed, _curve(4.0, 4.0 + 0.3 * (seed - 2), jitter=j)),  # spread too wide
                 _lm_run("t5", seed, _curve(4.0, 4.0, short=4.0, jitter=j)),        # no gain from context
                 _lm_run("none", seed, _curve(6.5, 6.5, jitter=j)),                  # above the unigram
                 _lm_run("learned", seed, {**_curve(4.0, 4.0, jitter=j), "31": None, "63": None, "127": None})]
    preset = type(PRESET)(**{**PRESET.__dict__, "encodings": ("none", "sinusoidal", "learned", "rope", "alibi", "t5")})
    lm = analyse_lm(runs, _baselines(value=4.5), preset)
    rows = {r["encoding"]: r for r in lm["rows"]}
    assert rows["alibi"]["measured"] == "holds" and rows["alibi"]["verdict"] == "agrees"
    assert rows["rope"]["measured"] == "degrades" and rows["rope"]["verdict"] == "agrees"
    assert rows["sinusoidal"]["measured"] is None and rows["sinusoidal"]["verdict"] == INCONCLUSIVE
    assert rows["t5"]["uses_context_ok"] is False and rows["t5"]["verdict"] == INCONCLUSIVE
    assert "uses no context" in rows["t5"]["reason"]
    assert rows["none"]["learned"] is False and "did not learn" in rows["none"]["reason"]
    # the tautology is not counted: learned positions cannot run past L, so no verdict at all
    assert rows["learned"]["measured"] == "cannot run past L" and rows["learned"]["verdict"] is None
    assert rows["alibi"]["beats_trigram"]["direction"] == "A < B"
    claims = {c["claim"].split(" with")[0]: c for c in lm["claims"]}
    assert claims["alibi has a lower loss than rope"]["verdict"] == "agrees"
    assert claims["t5 has a lower loss than sinusoidal"]["verdict"] == INCONCLUSIVE  # t5 uses no context
    assert lm["noise_floor"] > 0


def test_ablation_and_norm_verdicts():
    base = [_lm_run("rope", s, _curve(4.0, 4.0), eval_loss=4.0 + d) for s, d in ((1, 0.0), (2, 0.01), (3, -0.01))]
    ablation = [{"experiment": "ablation", "status": "finished", "labels": {"variant": v, "seed": s},
                 "training": {"eval_loss": 4.0 + d + shift + noise}}
                for v, shift in (("relu", 0.2), ("layernorm", 0.001), ("label_smoothing", -0.0))
                for (s, d), noise in zip(((1, 0.0), (2, 0.01), (3, -0.01)), (0.0, 0.002, -0.001))]
    preset = type(PRESET)(**{**PRESET.__dict__, "ablations": ("relu", "layernorm", "label_smoothing")})
    rows = {r["variant"]: r for r in analyse_ablations(ablation, base, preset)["rows"]}
    assert rows["relu"]["verdict"] == "agrees"                       # SwiGLU beats ReLU, clearly
    assert rows["layernorm"]["verdict"] == "agrees"                   # about equal, interval inside 0.05
    assert rows["label_smoothing"]["verdict"] == INCONCLUSIVE         # no separable effect

    def cell(p, lr, warm, seed, loss, status="finished"):
        return {"status": status, "labels": {"placement": p, "lr": lr, "warmup": warm, "seed": seed},
                "training": {"eval_loss": loss}}
    grid = []
    for s, j in ((1, 0.0), (2, 0.01), (3, -0.012)):
        grid += [cell("post", 1e-3, True, s, 5.0 + j), cell("post", 1e-3, False, s, 5.9 + j),
                 cell("pre", 1e-3, True, s, 4.9 + j), cell("pre", 1e-3, False, s, 4.95 + j)]
    grads = [{"status": "finished", "labels": {"placement": p, "seed": s}, "init_grad_norms": norms}
             for s in (1, 2, 3) for p, norms in (("post", [1.0, 2.0 + 0.01 * s]), ("pre", [1.0, 1.0 + 0.01 * s]))]
    preset = replace(PRESET, norm=replace(PRESET.norm, placements=("post", "pre"), learning_rates=(1e-3,)))
    norm = analyse_norm(grid, grads, preset, unigram_loss=6.0)
    verdicts = {c["claim"]: c["verdict"] for c in norm["claims"]}
    assert verdicts["lr 0.001: post-norm trains worse without warmup than with it"] == "agrees"
    assert verdicts["lr 0.001: warmup helps post-norm more than pre-norm"] == "agrees"
    growth = {k: v for k, v in verdicts.items() if "initialisation" in k}
    assert len(growth) == 2 and set(growth.values()) == {"agrees"}  # post doubles (> 1.5x), pre stays within 1.5x
    # two-sided: a pre-norm gradient that halves toward the last layer is not "flat" (Xiong et al. Fig. 3), and a
    # post-norm one that stays level does not "grow"; a ratio straddling the margin says neither
    for post, pre, expected in (([1.0, 1.01], [1.0, 0.5], "disagrees"), ([1.0, 1.45], [1.0, 1.48], INCONCLUSIVE)):
        grads = [{"status": "finished", "labels": {"placement": p, "seed": s},
                  "init_grad_norms": [norms[0], norms[1] + 0.02 * s]} for s in (1, 2, 3) for p, norms in
                 (("post", post), ("pre", pre))]
        claims = [c for c in analyse_norm(grid, grads, preset, unigram_loss=6.0)["claims"] if "initialisation" in c["claim"]]
        assert [c["verdict"] for c in claims] == [expected, expected], claims
    # "learned" = eval loss 0.1 nats below the unigram (6.0): post without warmup sits at 5.9 +- 0.01
    assert {c["placement"]: c["learned"] for c in norm["table"] if not c["warmup"]} == {"post": 1, "pre": 3}


def test_warmup_claims_need_post_norm_to_learn_in_one_of_the_two_cells():
    """Two unigram-level losses that differ consistently by 0.001 nats are not a finding about warmup."""
    def cell(p, warm, seed, loss):
        return {"status": "finished", "labels": {"placement": p, "lr": 2e-3, "warmup": warm, "seed": seed},
                "training": {"eval_loss": loss}}
    grid = []
    for s, j in ((1, 0.0), (2, 0.01), (3, -0.012)):
        grid += [cell("post", True, s, 6.014 + j), cell("post", False, s, 6.013 + j),   # both stuck at the unigram
                 cell("pre", True, s, 4.8 + j), cell("pre", False, s, 4.9 + j)]
    preset = replace(PRESET, norm=replace(PRESET.norm, placements=("post", "pre"), learning_rates=(2e-3,)))
    claims = {c["claim"]: c for c in analyse_norm(grid, [], preset, unigram_loss=6.02)["claims"]}
    for text in ("lr 0.002: post-norm trains worse without warmup than with it",
                 "lr 0.002: warmup helps post-norm more than pre-norm"):
        assert claims[text]["verdict"] == INCONCLUSIVE
        assert claims[text]["reason"].startswith("post-norm did not train at lr 0.002, neither with nor without warmup")
    # one seed of post with warmup learns: the comparison is made again (and reads "disagrees" on these numbers)
    grid[0] = cell("post", True, 1, 5.5)
    claims = {c["claim"]: c for c in analyse_norm(grid, [], preset, unigram_loss=6.02)["claims"]}
    assert "neither" not in claims["lr 0.002: post-norm trains worse without warmup than with it"]["reason"]


def test_task_claims_need_both_models_to_learn_in_distribution():
    def run(task, encoding, seed, ind, far):
        acc = {str(n): {"status": "finished", "exact_match": v, "token_accuracy": v, "n": 10}
               for n, v in zip((4, 6, 8, 12), (ind, far, far, far))}
        return {"status": "finished", "labels": {"task": task, "encoding": encoding, "seed": seed}, "accuracy": acc,
                "in_distribution_exact_match": ind}
    runs = [run("copy", e, s, ind, far + 0.01 * s) for s in (1, 2, 3)
            for e, ind, far in (("none", 1.0, 0.8), ("sinusoidal", 0.99, 0.1), ("t5", 1.0, 0.5), ("rope", 0.5, 0.0))]
    tasks = analyse_tasks(runs, PRESETS["default"])  # all eight encodings
    claims = {c["claim"]: c for c in tasks["claims"]}
    assert claims["copy: none generalises past L better than sinusoidal (exact match)"]["verdict"] == "agrees"
    assert claims["copy: none generalises past L better than sinusoidal (per-token accuracy)"]["verdict"] == "agrees"
    assert claims["copy: t5 generalises past L better than rope (exact match)"]["verdict"] == INCONCLUSIVE  # rope: no
    assert {r["encoding"]: r["learned"] for r in tasks["rows"]} == {"none": True, "sinusoidal": True, "t5": True,
                                                                      "rope": False}
    # both learned, neither gets an instance right past L: no ordering from 0 against 0, but token accuracy orders
    runs = [run("reverse", e, s, 1.0, 0.0) for s in (1, 2, 3) for e in ("alibi", "rope")]
    for r in runs:
        for n in ("6", "8", "12"):
            r["accuracy"][n]["token_accuracy"] = (0.5 if r["labels"]["encoding"] == "alibi" else 0.2) + 0.01 * r["labels"]["seed"]
    claims = {c["claim"]: c for c in analyse_tasks(runs, PRESETS["default"])["claims"]}
    floor = claims["reverse: alibi generalises past L better than rope (exact match)"]
    assert floor["verdict"] == INCONCLUSIVE and floor["reason"].startswith("neither gets a single instance right past L")
    assert claims["reverse: alibi generalises past L better than rope (per-token accuracy)"]["verdict"] == "agrees"


def test_t5_note_names_the_buckets_training_never_reaches():
    """The buckets come from transformers' own T5 bucketing, not from the function that writes the note."""
    import torch
    from transformers.models.t5.modeling_t5 import T5Attention

    from modeling_study.study.report import _t5_note

    distance = torch.arange(1024)
    bucket = T5Attention._relative_position_bucket(-distance, bidirectional=False, num_buckets=32, max_distance=128)
    seen = int(bucket[:64].max())
    first = int((bucket > seen).nonzero()[0])
    assert (seen, first) == (26, 67)
    note = _t5_note(64, {})
    assert f"buckets 0-{seen} of 32" in note and f"from distance {first} on" in note and "buckets 27-31" in note
    assert "reaches all 32 causal buckets" in _t5_note(512, {})


def test_each_independent_question_is_counted_once():
    """Orderings implied by two rows, the same pair at shorter contexts, token accuracy beside exact match, and
    a rival with the very same numbers are shown but not tallied (the study issue counted ~9 independent of 18)."""
    runs = []
    for seed, j in zip((1, 2, 3), (0.0, 0.011, -0.007)):
        runs += [_lm_run("alibi", seed, _curve(4.0, 4.0 + j / 3, jitter=j)), _lm_run("rope", seed, _curve(4.0, 4.6, jitter=j))]
    preset = replace(PRESET, encodings=("rope", "alibi"))
    lm = analyse_lm(runs, _baselines(value=4.5), preset)
    pair = [c for c in lm["claims"] if c["claim"].startswith("alibi has a lower loss than rope")]
    assert [c["claim"].split("with ")[1].split(" tokens")[0] for c in pair] == ["31", "63", "127"]
    assert [c.get("counted", True) for c in pair] == [False, False, False]
    assert "follows from them" in pair[-1]["repeats"] and "the same pair at 127" in pair[0]["repeats"]
    assert pair[-1]["verdict"] == "agrees"  # still shown, with its verdict
    rows = [r for r in lm["rows"] if r.get("verdict")]
    assert tally(lm["claims"], rows) == {"agrees": 2, "disagrees": 0, INCONCLUSIVE: 0}  # the two rows, once each

    def run(encoding, seed, far):
        acc = {str(n): {"status": "finished", "exact_match": v, "token_accuracy": v, "n": 10}
               for n, v in zip((4, 6, 8, 12), (1.0, far, far, far))}
        return {"status": "finished", "labels": {"task": "sort", "encoding": encoding, "seed": seed}, "accuracy": acc,
                "in_distribution_exact_match": 1.0}
    runs = [run(e, s, far + 0.01 * s) for s in (1, 2, 3) for e, far in (("none", 0.5), ("sinusoidal", 0.0), ("rope", 0.0))]
    for r in runs:
        if r["labels"]["encoding"] != "none":
            for n in ("6", "8", "12"):
                r["accuracy"][n]["exact_match"] = 0.0  # both rivals: exactly 0 on every seed
    claims = analyse_tasks(runs, PRESETS["default"])["claims"]
    counted = [c["claim"] for c in claims if c.get("counted", True)]
    assert counted == ["sort: none generalises past L better than sinusoidal (exact match)"]
    twin = next(c for c in claims if c["claim"] == "sort: none generalises past L better than rope (exact match)")
    assert twin["verdict"] == "agrees" and "identical to rope's" in twin["repeats"]
    assert tally(claims) == {"agrees": 1, "disagrees": 0, INCONCLUSIVE: 0}


def test_lm_baselines_and_cells_are_compared_on_the_same_targets():
    """Per-target baselines pair with the models target by target; a norm cell that never leaves the unigram of
    its own tokens 'did not train' and is never ranked; a best learning rate at the grid's edge is named."""
    def lm_run(encoding, seed, values):
        run = _lm_run(encoding, seed, _curve(4.0, 4.0))
        run["context"]["nll"]["15"] = values
        return run
    spread = [1.0, 7.0, 2.5, 5.5]  # targets this different: four of them cannot separate 0.3 nats
    runs = [lm_run("rope", s, [v + 0.01 * s for v in spread]) for s in (1, 2, 3)]
    baselines = _baselines(value=4.5)
    baselines["5-gram"] = dict(baselines["trigram"])
    baselines["per_target"] = {"unigram": [v + 2.0 for v in spread], "trigram": [v + 0.3 for v in spread[::-1]],
                               "5-gram": [v + 0.3 for v in spread]}
    row = analyse_lm(runs, baselines, replace(PRESET, encodings=("rope",)))["rows"][0]
    assert row["beats_unigram"]["direction"] == "A < B"
    assert row["beats_5gram"]["direction"] == "A < B"  # paired by target: a constant 0.3 below, on every target
    assert row["beats_trigram"]["direction"] is None  # the same mean gap, but targets unpaired by order: not separable
    assert "per_target" not in analyse_lm(runs, baselines, replace(PRESET, encodings=("rope",)))["baselines"]

    def cell(p, lr, seed, values):
        return {"status": "finished", "labels": {"placement": p, "lr": lr, "warmup": True, "seed": seed},
                "training": {"eval_loss": 1.0}, "context": {"ks": [15], "nll": {"15": values}}}
    unigram = [3.0, 3.2, 2.8, 3.0]
    grid = [cell(p, lr, s, [u + shift + 0.01 * s for u in unigram]) for s in (1, 2, 3)
            for p, lr, shift in (("post", 1e-3, -0.05), ("post", 2e-3, -0.05), ("pre", 1e-3, -0.6), ("pre", 2e-3, -0.4))]
    preset = replace(PRESET, norm=replace(PRESET.norm, placements=("post", "pre"), learning_rates=(1e-3, 2e-3)))
    norm = analyse_norm(grid, [], preset, unigram_loss=99.0, unigram_targets=unigram)  # 99: the LM's, not these tokens
    assert norm["threshold"] == pytest.approx(3.0) and norm["measured_on"].startswith("4 validation targets")
    trained = {(c["placement"], c["lr"]): c["trained"] for c in norm["table"]}
    assert trained == {("post", 1e-3): False, ("post", 2e-3): False, ("pre", 1e-3): True, ("pre", 2e-3): True}
    best = next(c for c in norm["claims"] if c["claim"].startswith("pre-norm without warmup reaches"))
    assert best["verdict"] == INCONCLUSIVE and "did not train at any grid learning rate" in best["reason"]
    assert norm["edges"] == []  # no pre-norm run without warmup here: nothing to place on the grid
    grid += [dict(c, labels=dict(c["labels"], warmup=False)) for c in grid if c["labels"]["placement"] == "pre"]
    edges = analyse_norm(grid, [], preset, unigram_loss=99.0, unigram_targets=unigram)["edges"]
    assert edges == ["pre-norm's best learning rate (0.001) is at the edge of the grid [0.001, 0.002]: the grid does "
                     "not bracket its optimum"]
