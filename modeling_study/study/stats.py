"""Spread over seeds, and the one rule every verdict of the study uses.

A study with a handful of seeds can only state a difference when the seeds agree on it. The rule:
take the difference between two conditions **seed by seed** (both trained with the same seed, so the
same data order; a paired design), and state "A differs from B" only when the two-sided 95%
Student-t interval of the mean paired difference excludes zero (and, for a claimed effect size, the
margin). With n = 3 seeds the interval is mean +- 4.30 * sd / sqrt(3), so a difference has to be
large and consistent to count; otherwise the verdict is "inconclusive at this budget", with the
interval as the reason. Unpaired comparisons (no shared seed) use Welch's interval.

Everything here is plain Python on lists of floats, so the rule is tested on hand-made numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Two-sided 95% quantiles of Student's t (t_{0.975, df}), df = 1..30; beyond 30 the normal's 1.96 is
# within 4% and slightly optimistic, so 30's value is used as a conservative stand-in.
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)

INCONCLUSIVE = "inconclusive at this budget"


def t975(df: float) -> float:
    """t quantile for a two-sided 95% interval; fractional df (Welch) rounds down, which widens it."""
    if df < 1:
        raise ValueError(f"a t interval needs at least 1 degree of freedom (2 values), got df={df}.")
    return T975[min(int(math.floor(df)), 30) - 1]


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
    """95% t interval of the mean of ``values`` (None with fewer than 2 values)."""
    s = summarise(values)
    if s.n < 2:
        return None
    half = t975(s.n - 1) * s.sd / math.sqrt(s.n)
    return (s.mean - half, s.mean + half)


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
    lo, hi = mean_interval(diffs.values())
    if lo > 0:
        return Comparison(summary, (lo, hi), "A > B", f"95% CI of A - B [{lo:.3g}, {hi:.3g}] is above 0 (n={summary.n})")
    if hi < 0:
        return Comparison(summary, (lo, hi), "A < B", f"95% CI of A - B [{lo:.3g}, {hi:.3g}] is below 0 (n={summary.n})")
    return Comparison(summary, (lo, hi), None, f"95% CI of A - B [{lo:.3g}, {hi:.3g}] contains 0 (n={summary.n})")


def within(a: dict, b: dict, margin: float) -> Comparison:
    """Equivalence: is A - B inside (-margin, +margin) for the whole 95% interval? (TOST-style at 95%).

    ``direction`` is "A ~ B" when the interval lies inside the margin, "A > B"/"A < B" when it
    excludes 0, else None. Used for "holds": loss at 8L is no more than ``margin`` above loss at L.
    """
    base = compare(a, b)
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


__all__ = ["INCONCLUSIVE", "Comparison", "Summary", "compare", "mean_interval", "noise_floor", "paired_differences",
           "summarise", "t975", "verdict", "within"]
