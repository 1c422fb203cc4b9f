"""Spread over seeds and targets, and the rules every verdict of the study uses.

A study with a handful of seeds can only state a difference when the seeds agree on it. The rule:
take the difference between two conditions **seed by seed** (both trained with the same seed, so the
same data order; a paired design), and state "A differs from B" only when the two-sided 95% interval
of the mean paired difference excludes zero (and, for a claimed effect size, the margin). With n = 3
seeds the t interval is mean +- 4.30 * sd / sqrt(3), so a difference has to be large and consistent
to count; otherwise the verdict is "inconclusive at this budget", with the interval as the reason.

Where a measure is a mean over sampled targets (the language models' per-target losses), the
targets are a sample too: ``compare_targets`` widens the interval by their sampling error (a crossed
seeds x targets design), so a margin smaller than what another draw of targets would move is not
stated as a difference.

The distributions are scipy.stats' (Student's t quantiles, the paired t test); what is this package's
own is only the pairing by seed and target and the verdict rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _scipy

INCONCLUSIVE = "inconclusive at this budget"


def t975(df: float) -> float:
    """Student's t quantile for a two-sided 95% interval (``scipy.stats.t.ppf(0.975, df)``; fractional df allowed)."""
    if not df >= 1:
        raise ValueError(f"a t interval needs at least 1 degree of freedom (2 values), got df={df}.")
    return float(_scipy.t.ppf(0.975, df))


def finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation (n - 1) of per-seed values; ``sd`` is None for n < 2."""

    mean: float | None
    sd: float | None
    n: int
    values: tuple[float, ...]

    def text(self, digits: int = 3) -> str:
        if self.mean is None:
            return "-"
        if self.sd is None:
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f}"

    def as_dict(self) -> dict:
        return {"mean": self.mean, "sd": self.sd, "n": self.n, "values": list(self.values)}


def summarise(values) -> Summary:
    xs = finite(values)
    if not xs:
        return Summary(None, None, 0, ())
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    return Summary(mean, sd, len(xs), tuple(xs))


def mean_interval(values) -> tuple[float, float] | None:
    """95% t interval of the mean of ``values`` (None with fewer than 2 values, or no spread to measure)."""
    s = summarise(values)
    if s.n < 2:
        return None
    if s.sd == 0:
        return (s.mean, s.mean)
    ci = _scipy.ttest_1samp(s.values, 0.0).confidence_interval(0.95)
    return (float(ci.low), float(ci.high))


def paired_differences(a: dict, b: dict) -> dict:
    """``a[seed] - b[seed]`` for the seeds both have a finite value for."""
    out = {}
    for seed in sorted(set(a) & set(b)):
        x, y = a[seed], b[seed]
        if finite([x]) and finite([y]):
            out[seed] = float(x) - float(y)
    return out


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing A with B on a lower-is-better measure, seed by seed.

    ``direction``: "A < B", "A > B", or None (the interval contains zero or too few seeds).
    """

    difference: Summary  # of A - B, per seed
    interval: tuple[float, float] | None
    direction: str | None
    reason: str

    def as_dict(self) -> dict:
        return {"difference": self.difference.as_dict(), "interval": self.interval, "direction": self.direction,
                "reason": self.reason}


def compare(a: dict, b: dict, *, min_seeds: int = 2) -> Comparison:
    """Compare per-seed values ``a`` and ``b`` (dicts seed -> value), paired by seed.

    The direction is stated only when the 95% t interval of the mean paired difference excludes 0.
    """
    diffs = paired_differences(a, b)
    summary = summarise(diffs.values())
    if summary.n < max(2, min_seeds):
        return Comparison(summary, None, None, f"only {summary.n} paired seed(s); at least {max(2, min_seeds)} needed")
    return _directed(summary, mean_interval(diffs.values()), f"n={summary.n}")


def _directed(summary: Summary, interval: tuple[float, float], how: str) -> Comparison:
    lo, hi = interval
    text = f"95% CI of A - B [{lo:.3g}, {hi:.3g}]"
    if lo > 0:
        return Comparison(summary, interval, "A > B", f"{text} is above 0 ({how})")
    if hi < 0:
        return Comparison(summary, interval, "A < B", f"{text} is below 0 ({how})")
    return Comparison(summary, interval, None, f"{text} contains 0 ({how})")


def compare_targets(a: dict, b, *, min_seeds: int = 2) -> Comparison:
    """Compare per-target values, paired by seed and by target, with seeds and targets both sampled.

    ``a``: {seed: [value per target]}; ``b``: the same, or one list of per-target values that does not
    depend on the seed (an n-gram baseline scored on the same targets). ``D[s, t] = a[s][t] - b[s][t]``.
    The mean of D over S seeds and T targets varies with both draws; in a crossed design (every seed
    scored on the same targets) ``var(per-seed means) / S + var(per-target means) / T`` estimates its
    variance (slightly over: the seed x target interaction is counted in both terms), with
    Welch-Satterthwaite degrees of freedom. With one constant ``b`` the seed term is the seeds'
    spread alone. Targets a run could not score (None) drop out of every seed.
    """
    seeds = sorted(s for s in a if a[s] is not None and (isinstance(b, (list, tuple, np.ndarray)) or b.get(s) is not None))
    rows = []
    for seed in seeds:
        other = b if isinstance(b, (list, tuple, np.ndarray)) else b[seed]
        rows.append([np.nan if x is None or y is None else float(x) - float(y) for x, y in zip(a[seed], other)])
    D = np.asarray(rows, dtype=float).reshape(len(rows), -1) if rows else np.zeros((0, 0))
    if D.size:
        D = D[:, np.isfinite(D).all(axis=0)]
    S, T = D.shape
    per_seed = summarise(D.mean(axis=1).tolist()) if T else summarise([])
    if S < max(2, min_seeds) or T < 2:
        return Comparison(per_seed, None, None, f"only {S} paired seed(s) and {T} target(s); at least "
                                                f"{max(2, min_seeds)} seeds and 2 targets needed")
    v_seed = D.mean(axis=1).var(ddof=1) / S
    v_target = D.mean(axis=0).var(ddof=1) / T
    se = math.sqrt(v_seed + v_target)
    if se == 0:
        return _directed(per_seed, (per_seed.mean, per_seed.mean), f"n={S} seeds x {T} targets, no spread")
    df = (v_seed + v_target) ** 2 / (v_seed ** 2 / (S - 1) + v_target ** 2 / (T - 1))
    half = t975(df) * se
    return _directed(per_seed, (per_seed.mean - half, per_seed.mean + half), f"{S} seeds x {T} targets")


def within(a, b, margin: float, *, comparison: Comparison | None = None) -> Comparison:
    """Equivalence: is A - B inside (-margin, +margin) for the whole 95% interval? (TOST-style at 95%).

    ``direction`` is "A ~ B" when the interval lies inside the margin, "A > B"/"A < B" when it
    excludes 0, else None. Used for "holds": loss at 8L is no more than ``margin`` above loss at L.
    ``comparison``: an interval already computed (``compare_targets``); default ``compare(a, b)``.
    """
    base = comparison if comparison is not None else compare(a, b)
    if base.interval is None:
        return base
    lo, hi = base.interval
    if -margin < lo and hi < margin:
        return Comparison(base.difference, base.interval, "A ~ B",
                          f"95% CI of A - B [{lo:.3g}, {hi:.3g}] lies within ±{margin:g} (n={base.difference.n})")
    return base


def verdict(measured: str | None, published: str | None) -> str:
    """'agrees' / 'disagrees' / INCONCLUSIVE from a measured and a published outcome (both strings)."""
    if measured is None or published is None:
        return INCONCLUSIVE
    return "agrees" if measured == published else "disagrees"


def noise_floor(per_seed: dict[str, dict]) -> float | None:
    """The study's noise floor: the median over conditions of the seed-to-seed sd of one measure.

    ``per_seed``: condition -> {seed: value}. A difference smaller than this is seed noise.
    """
    sds = sorted(s.sd for s in (summarise(v.values()) for v in per_seed.values()) if s.sd is not None)
    if not sds:
        return None
    mid = len(sds) // 2
    return sds[mid] if len(sds) % 2 else 0.5 * (sds[mid - 1] + sds[mid])


__all__ = ["INCONCLUSIVE", "Comparison", "Summary", "compare", "compare_targets", "mean_interval", "noise_floor", "paired_differences",
           "summarise", "t975", "verdict", "within"]
