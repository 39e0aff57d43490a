"""The paired drop Δ of one prompt group for one candidate, and its confidence interval.

Pure module (no pytest). Δ is the incumbent's pass rate minus the candidate's, averaged over the
group's tests (weighted when weights are given): positive means the candidate is worse. Its
interval is what the non-inferiority call rests on (``migrate`` needs the upper bound below the
declared margin δ); the rules are in ``docs/gate.md``.

* Tests are independent (the default): the variance of each test's difference is estimated with
  one pass and one failure added to each arm (Agresti and Caffo, 2000), so a test whose samples
  all passed still carries its uncertainty; the interval is centred on the observed Δ, so the
  pseudo-counts never shrink a real drop towards zero. The smoothed variances are divided by the
  samples taken, n, not n + 2: with one sample per test n + 2 under-covers.
* Tests declare clusters (the same source document, customer or conversation): the variance is
  the larger of that and the cluster-robust (CR1) variance over the clusters, with Student's t at
  C − 1 degrees of freedom; one cluster gives no interval, so no non-inferiority call.
* Deterministic groups (temperature 0, where the recorded answer is the behaviour): Δ is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "Case",
    "Drop",
    "ScoreCase",
    "paired_drop",
    "samples_to_decide",
    "score_drop",
    "t_quantile",
    "z_quantile",
]

_NORMAL = NormalDist()
MAX_SAMPLES_ADVICE = 100_000


def z_quantile(p: float) -> float:
    return _NORMAL.inv_cdf(min(max(p, 1e-15), 1 - 1e-15))


def t_quantile(p: float, df: int) -> float:
    """Student's t quantile: exact for 1 and 2 degrees of freedom, Cornish–Fisher beyond.

    The expansion is within 0.3% of the exact quantile from 3 degrees of freedom at the levels
    the gate uses (one-sided 0.0005 to 0.1).
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {df}")
    p = min(max(p, 1e-15), 1 - 1e-15)
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) / math.sqrt(2 * p * (1 - p))
    z = z_quantile(p)
    v = float(df)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4)
    )


@dataclass(frozen=True)
class Case:
    """One test's evidence for one (group, candidate): pass counts on both models.

    ``outcomes_*`` are the per-sample results in recording order when known (for the discordant
    pairs: round *i* of the incumbent against round *i* of the candidate).
    """

    test: str
    inc_passed: int
    inc_total: int
    cand_passed: int
    cand_total: int
    weight: float = 1.0
    cluster: str | None = None
    outcomes_inc: tuple[bool, ...] = ()
    outcomes_cand: tuple[bool, ...] = ()

    @property
    def difference(self) -> float:
        return self.inc_passed / self.inc_total - self.cand_passed / self.cand_total

    @property
    def variance(self) -> float:
        """The variance of the difference of the two pass rates: Agresti–Caffo's smoothed rates
        over the samples actually taken (n, not n + 2, which under-covers at one sample)."""
        p = (self.inc_passed + 1) / (self.inc_total + 2)
        q = (self.cand_passed + 1) / (self.cand_total + 2)
        return p * (1 - p) / self.inc_total + q * (1 - q) / self.cand_total

    def discordant(self) -> tuple[int, int] | None:
        """(losses, wins) over the paired rounds: incumbent passed and candidate failed, and back."""
        if not self.outcomes_inc or not self.outcomes_cand:
            return None
        pairs = list(zip(self.outcomes_inc, self.outcomes_cand, strict=False))
        return sum(a and not b for a, b in pairs), sum(b and not a for a, b in pairs)


@dataclass(frozen=True)
class Drop:
    """Δ with its two-sided ``1 - 2·alpha`` interval: ``high`` is the one-sided upper bound at alpha.

    ``low``/``high`` are None when no interval exists (one cluster). ``losses``/``wins`` count
    the discordant rounds when every test's sample order is known.
    """

    estimate: float
    low: float | None
    high: float | None
    alpha: float
    tests: int
    incumbent_samples: int
    candidate_samples: int
    method: str
    clusters: int | None = None
    losses: int | None = None
    wins: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate,
            "low": self.low,
            "high": self.high,
            "alpha": self.alpha,
            "confidence": 1 - 2 * self.alpha,
            "tests": self.tests,
            "incumbent_samples": self.incumbent_samples,
            "candidate_samples": self.candidate_samples,
            "method": self.method,
            "clusters": self.clusters,
            "discordant": None if self.losses is None else {"losses": self.losses, "wins": self.wins},
        }

    def describe(self) -> str:
        """``drop +12 pts [−3, +27]`` (points of pass rate; the interval at 1 − 2α)."""
        text = f"drop {_pts(self.estimate)}"
        if self.low is not None and self.high is not None and self.method != "exact":
            text += f" [{_pts(self.low)}, {_pts(self.high)}]"
        return text


def _pts(value: float) -> str:
    points = 100.0 * value
    if abs(points) < 0.05:
        return "0 pts"
    return f"{points:+.0f} pts" if abs(points) >= 9.5 else f"{points:+.1f} pts"


def paired_drop(cases: Sequence[Case], alpha: float, *, deterministic: bool = False) -> Drop | None:
    """Δ over ``cases`` with its interval at one-sided level ``alpha`` (None without a case)."""
    usable = [c for c in cases if c.inc_total and c.cand_total]
    if not usable:
        return None
    weights = [c.weight for c in usable]
    total_w = sum(weights)
    estimate = sum(w * c.difference for w, c in zip(weights, usable, strict=True)) / total_w
    pairs = [c.discordant() for c in usable]
    losses = wins = None
    if all(p is not None for p in pairs):
        losses = sum(p[0] for p in pairs if p is not None)
        wins = sum(p[1] for p in pairs if p is not None)
    inc_samples = sum(c.inc_total for c in usable)
    cand_samples = sum(c.cand_total for c in usable)

    def make(low: float | None, high: float | None, method: str, clusters: int | None = None) -> Drop:
        if low is not None and high is not None:
            low, high = max(-1.0, low), min(1.0, high)
        return Drop(
            estimate, low, high, alpha, len(usable), inc_samples, cand_samples, method, clusters, losses, wins
        )

    if deterministic:
        return make(estimate, estimate, "exact")
    variance = sum(w * w * c.variance for w, c in zip(weights, usable, strict=True)) / total_w**2
    if not any(c.cluster is not None for c in usable):
        half = z_quantile(1 - alpha) * math.sqrt(variance)
        return make(estimate - half, estimate + half, "agresti-caffo")
    by_cluster: dict[str, float] = {}
    for w, c in zip(weights, usable, strict=True):
        key = c.cluster if c.cluster is not None else f"test:{c.test}"
        by_cluster[key] = by_cluster.get(key, 0.0) + w * (c.difference - estimate)
    n_clusters = len(by_cluster)
    if n_clusters < 2:
        return make(None, None, "cluster-robust", n_clusters)
    robust = n_clusters / (n_clusters - 1) * sum(u * u for u in by_cluster.values()) / total_w**2
    half = t_quantile(1 - alpha, n_clusters - 1) * math.sqrt(max(variance, robust))
    return make(estimate - half, estimate + half, "cluster-robust", n_clusters)


def _projected_se(cases: Sequence[Case], n: int) -> float:
    """The standard error of Δ, computed as :func:`paired_drop` does, with ``n`` samples per test
    per model at the observed pass rates."""
    total_w = sum(c.weight for c in cases)
    variance = 0.0
    for c in cases:
        p = (c.inc_passed / c.inc_total * n + 1) / (n + 2)
        q = (c.cand_passed / c.cand_total * n + 1) / (n + 2)
        variance += c.weight**2 * (p * (1 - p) + q * (1 - q)) / n
    return math.sqrt(variance) / total_w


def samples_to_decide(
    cases: Sequence[Case], *, margin: float, ni_alpha: float, regression_alpha: float, power: float
) -> int | None:
    """Samples per test per model at which the undecided group is expected to be decided.

    Assuming the observed rates hold, the smallest sample count at which the interval, computed
    the way the verdict computes it, is expected to fall below the margin at ``power`` (when the
    observed drop is below the margin) or the drop is expected to be detected at ``power`` (when
    there is a drop). Never at or below the samples already taken: the figure is what more
    sampling needs. None when neither can happen, or not within ``MAX_SAMPLES_ADVICE``.
    """
    usable = [c for c in cases if c.inc_total and c.cand_total]
    if not usable:
        return None
    total_w = sum(c.weight for c in usable)
    estimate = sum(c.weight * c.difference for c in usable) / total_w
    z_power = z_quantile(power)
    goals: list[tuple[float, float]] = []  # (distance to cover, z)
    if estimate < margin:
        goals.append((margin - estimate, z_quantile(1 - ni_alpha) + z_power))
    if estimate > 0:
        goals.append((estimate, z_quantile(1 - regression_alpha) + z_power))
    if not goals:
        return None
    taken = max(max(c.inc_total, c.cand_total) for c in usable)

    def decided(n: int) -> bool:
        se = _projected_se(usable, n)
        return any(z * se <= distance for distance, z in goals)

    low, high = taken + 1, taken + 1
    while not decided(high):
        if high >= MAX_SAMPLES_ADVICE:
            return None
        low, high = high, min(MAX_SAMPLES_ADVICE, high * 2)
    while low < high:
        mid = (low + high) // 2
        if decided(mid):
            high = mid
        else:
            low = mid + 1
    return high


@dataclass(frozen=True)
class ScoreCase:
    """One test's scores of one check (a judge's, a similarity, a label's probability) per model."""

    test: str
    incumbent: tuple[float, ...]
    candidate: tuple[float, ...]
    weight: float = 1.0


def _mean_var(values: Sequence[float]) -> tuple[float, float | None]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def score_drop(cases: Sequence[ScoreCase], alpha: float, *, deterministic: bool = False) -> Drop | None:
    """The paired drop of a score: the incumbent's mean minus the candidate's, averaged over tests.

    Its variance is the larger of the within-test one (each test's sample variances over its
    samples, where a model has two or more) and the between-test one (the spread of the per-test
    differences, with Student's t at T − 1 degrees of freedom, where there are two or more
    tests): the second also covers tests whose scores do not vary. No interval when neither
    exists (one test, one sample each); exact when the group is deterministic.
    """
    usable = [c for c in cases if c.incumbent and c.candidate]
    if not usable:
        return None
    total_w = sum(c.weight for c in usable)
    diffs: list[float] = []
    within = 0.0
    has_within = False
    for c in usable:
        mean_i, var_i = _mean_var(c.incumbent)
        mean_c, var_c = _mean_var(c.candidate)
        diffs.append(mean_i - mean_c)
        if var_i is not None or var_c is not None:
            has_within = True
        within += c.weight**2 * ((var_i or 0.0) / len(c.incumbent) + (var_c or 0.0) / len(c.candidate))
    estimate = sum(c.weight * d for c, d in zip(usable, diffs, strict=True)) / total_w
    common = (
        alpha,
        len(usable),
        sum(len(c.incumbent) for c in usable),
        sum(len(c.candidate) for c in usable),
    )
    if deterministic:
        return Drop(estimate, estimate, estimate, *common, "exact")
    variance = within / total_w**2 if has_within else None
    quantile = z_quantile(1 - alpha)
    if len(usable) >= 2:
        between = (
            len(usable)
            / (len(usable) - 1)
            * sum((c.weight * (d - estimate)) ** 2 for c, d in zip(usable, diffs, strict=True))
            / total_w**2
        )
        if variance is None or between > variance:
            variance, quantile = between, t_quantile(1 - alpha, len(usable) - 1)
    if variance is None:
        return Drop(estimate, None, None, *common, "score")
    half = quantile * math.sqrt(variance)
    return Drop(estimate, max(-1.0, estimate - half), min(1.0, estimate + half), *common, "score")
