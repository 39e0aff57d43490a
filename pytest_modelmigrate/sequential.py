"""Adaptive sampling (``--samples=auto``): when to stop sampling a test or a prompt group.

Pure module (stdlib only, no pytest), deterministic: the same outcomes give the same decisions,
live or replayed from cassettes. The rules are documented in ``docs/adaptive.md``.

The plugin samples in *rounds*: one incumbent sample and one candidate sample of the same
prompt per round (a *pair*). After each round it feeds the pair to a
:class:`SequentialComparison` and asks :meth:`SequentialComparison.decision` whether to go on.

The statistic: discordant pairs
-------------------------------
A pair where both models passed, or both failed, says nothing about which model is better.
A *discordant* pair (exactly one model passed) is a *loss* for the candidate when only the
incumbent passed and a *win* when only the candidate passed. When both models have the same
pass rate ``p`` on a test (the null hypothesis "no regression"), a pair is discordant with
probability ``2p(1 - p) <= 1/2`` and, given that it is discordant, it is a loss with
probability exactly 1/2, whatever ``p`` is and whatever the other tests' rates are. So under
the null the losses among the first ``d`` discordant pairs are ``Binomial(d, 1/2)``, also for
a group whose tests have very different base rates. The exact one-sided sign test (exact
McNemar) p-value after ``d`` discordant pairs with ``L`` losses is
``P(Binomial(d, 1/2) >= L) = sum_{j >= L} C(d, j) / 2**d``.

The stopping rule: a truncated, exactly calibrated repeated sign test
---------------------------------------------------------------------
*REGRESSED* as soon as ``L >= u(d)``, where ``u(d)`` is the smallest loss count whose exact sign
test p-value is ``<= a*`` (a Pocock-type boundary on the exact p-value), and ``a*`` is the
largest nominal level for which the probability of **ever** crossing the boundary within the
horizon of ``n`` pairs (``max_samples`` rounds times the number of tests) is ``<= alpha``
under the null:

    alpha(u) = sum_{m=0..n} C(n, m) / 2**n * cross(u, m)

where ``cross(u, m)`` is the probability that a fair ±1 walk of losses and wins crosses ``u``
within its first ``m`` discordant steps (computed exactly by dynamic programming). The weights
are ``Binomial(n, 1/2)``: each pair is discordant with probability at most 1/2 under the
null, and crossing can only become more likely with more discordant steps, so the number of
discordant pairs is at worst ``Binomial(n, 1/2)``. The bound is therefore exact at
``p = 1/2`` and conservative elsewhere, and it holds however the sampling is stopped before
the horizon (optional stopping only removes chances to cross). Re-running the fixed-N test
after every pair at level ``alpha`` (the naive rule) crosses with probability
``alpha(u_alpha) > alpha``; the calibration is what removes that excess.

*NOT_REGRESSED* early (futility) when, after at least ``min_samples`` rounds, the predictive
probability that the boundary will still be crossed before the horizon is below
``futility``. The prediction uses the data so far with Jeffreys priors: future pairs are
discordant with probability ``delta ~ Beta(d + 1/2, k - d + 1/2)`` (k pairs so far) and a future
discordant pair is a loss with probability ``theta ~ Beta(L + 1/2, W + 1/2)``, so the number of
future discordant pairs is Beta-binomial and their signs follow a Pólya urn (each loss makes
the next loss more likely). Stopping to accept the null can never add a false alarm, so
futility does not touch the type-I error; it only decides how many calls are saved and how
often the decision differs from the fixed-N test.

*At the horizon* (``max_samples`` rounds): REGRESSED if the boundary was crossed (it would
have stopped earlier), otherwise NOT_REGRESSED. The final decision is that of the exact sign
test at the calibrated level ``a*`` on all the pairs, the fixed-N counterpart of this rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "CONTINUE",
    "NOT_REGRESSED",
    "REGRESSED",
    "STATUSES",
    "AdaptivePolicy",
    "SequentialComparison",
    "SequentialDecision",
    "boundary",
    "crossing_probability",
    "nominal_level",
    "replay_decisions",
    "sign_test_p",
]

CONTINUE = "continue"
REGRESSED = "regressed"
NOT_REGRESSED = "not-regressed"
STATUSES = (CONTINUE, REGRESSED, NOT_REGRESSED)


@dataclass(frozen=True)
class AdaptivePolicy:
    """Settings of ``--samples=auto``.

    * ``min_samples``: rounds before any decision (no futility stop before);
    * ``max_samples``: the horizon in rounds; the decision is final there;
    * ``alpha``: the false-alarm rate of REGRESSED, over the whole sequential procedure
      (use the gate's corrected level, e.g. alpha / number of tests, for many comparisons);
    * ``futility``: stop for NOT_REGRESSED when the predictive probability of still reaching
      REGRESSED before the horizon is below this value.
    """

    min_samples: int = 5
    max_samples: int = 20
    alpha: float = 0.05
    futility: float = 0.05

    def __post_init__(self) -> None:
        for name in ("min_samples", "max_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {self.min_samples}")
        if self.min_samples > self.max_samples:
            raise ValueError(
                f"min_samples ({self.min_samples}) must not exceed max_samples ({self.max_samples})"
            )
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be strictly between 0 and 1, got {self.alpha!r}")
        if not 0.0 <= self.futility < 1.0:
            raise ValueError(f"futility must be in [0, 1), got {self.futility!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_samples": self.min_samples,
            "max_samples": self.max_samples,
            "alpha": self.alpha,
            "futility": self.futility,
        }


@dataclass(frozen=True)
class SequentialDecision:
    """What to do after a round, and why.

    ``status`` is CONTINUE, REGRESSED or NOT_REGRESSED; ``final`` is True for the last two.
    ``rounds`` counts pairs fed so far divided by the number of tests (for a group: complete
    rounds), ``pairs`` the pairs themselves. ``p_value`` is the exact sign-test p-value of the
    discordant pairs (for information; the rule compares ``losses`` with ``boundary``),
    ``boundary`` the losses needed for REGRESSED at the current number of discordant pairs,
    ``level`` the calibrated nominal level ``a*``, ``predictive`` the predictive probability
    of still crossing (None when not computed).
    """

    status: str
    final: bool
    reason: str
    rounds: int
    pairs: int
    discordant: int
    losses: int
    wins: int
    p_value: float
    boundary: int
    level: float
    predictive: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "final": self.final,
            "reason": self.reason,
            "rounds": self.rounds,
            "pairs": self.pairs,
            "discordant": self.discordant,
            "losses": self.losses,
            "wins": self.wins,
            "p_value": self.p_value,
            "boundary": self.boundary,
            "level": self.level,
            "predictive": self.predictive,
        }


# ---------------------------------------------------------------------------------------------
# Exact sign test and the calibrated boundary
# ---------------------------------------------------------------------------------------------


def _tail_fraction(d: int, losses: int) -> Fraction:
    if losses <= 0:
        return Fraction(1)
    if losses > d:
        return Fraction(0)
    return Fraction(sum(math.comb(d, j) for j in range(losses, d + 1)), 2**d)


def sign_test_p(discordant: int, losses: int) -> float:
    """Exact one-sided sign-test p-value ``P(Binomial(d, 1/2) >= L)``; 1.0 with no discordant pair."""
    if discordant < 0 or losses < 0 or losses > discordant:
        raise ValueError(f"need 0 <= losses <= discordant, got losses={losses}, discordant={discordant}")
    return float(_tail_fraction(discordant, losses))


def _critical(d: int, level: Fraction) -> int:
    """Smallest L with ``P(Binomial(d, 1/2) >= L) <= level``; ``d + 1`` (unreachable) if none."""
    total = 0
    denom = 2**d
    # Walk down from L = d, accumulating the upper tail in integers.
    best = d + 1
    for losses in range(d, -1, -1):
        total += math.comb(d, losses)
        if Fraction(total, denom) <= level and d > 0:
            best = losses
        else:
            break
    return best


def _bounds_at(level: Fraction, pairs: int) -> tuple[int, ...]:
    return tuple(_critical(d, level) for d in range(pairs + 1))


def _crossing_by_steps(bounds: Sequence[int]) -> list[float]:
    """``out[m]``: probability that a fair ±1 loss/win walk reaches ``L >= bounds[d]`` within m steps."""
    alive = [1.0]  # alive[L]: probability of L losses and no crossing yet
    out = [0.0]
    crossed = 0.0
    for d in range(1, len(bounds)):
        nxt = [0.0] * (d + 1)
        for losses, mass in enumerate(alive):
            if mass:
                half = mass / 2.0
                nxt[losses] += half
                nxt[losses + 1] += half
        limit = bounds[d]
        if limit <= d:
            crossed += math.fsum(nxt[limit:])
            for losses in range(limit, d + 1):
                nxt[losses] = 0.0
        alive = nxt
        out.append(crossed)
    return out


def _binomial_half(n: int) -> list[float]:
    """``P(Binomial(n, 1/2) = m)`` for m = 0..n, via logs (safe for large n)."""
    log_half = n * math.log(0.5)
    return [
        math.exp(math.lgamma(n + 1) - math.lgamma(m + 1) - math.lgamma(n - m + 1) + log_half)
        for m in range(n + 1)
    ]


def crossing_probability(bounds: Sequence[int], pairs: int) -> float:
    """False-alarm rate of the boundary over a horizon of ``pairs`` pairs, at the worst null.

    ``sum_m C(n, m)/2**n * cross(m)``: the number of discordant pairs is ``Binomial(n, 1/2)``
    (a pair is discordant with probability ``2p(1-p)``, at most 1/2, reached at p = 1/2) and
    each discordant pair is a fair coin. ``bounds[d]`` is the losses needed at d discordant
    pairs (``len(bounds) == pairs + 1``)."""
    if len(bounds) != pairs + 1:
        raise ValueError(f"bounds must have pairs + 1 = {pairs + 1} entries, got {len(bounds)}")
    cross = _crossing_by_steps(bounds)
    weights = _binomial_half(pairs)
    return min(1.0, math.fsum(w * c for w, c in zip(weights, cross, strict=True)))


@lru_cache(maxsize=64)
def _calibrate(alpha: float, pairs: int) -> tuple[Fraction, tuple[int, ...]]:
    """Largest nominal level ``a* <= alpha`` (an attained sign-test tail value) with
    ``crossing_probability(u_{a*}) <= alpha``, and its boundary. Bisection over the sorted
    attained tail values: the crossing probability is monotone in the level."""
    target = Fraction(alpha)
    levels: set[Fraction] = set()
    for d in range(1, pairs + 1):
        denom = 2**d
        total = 0
        for losses in range(d, -1, -1):
            total += math.comb(d, losses)
            value = Fraction(total, denom)
            if value > target:
                break
            levels.add(value)
    ordered = sorted(levels)
    lo, hi = -1, len(ordered) - 1  # invariant: ordered[lo] valid (lo = -1: none), ordered[hi + 1:] invalid
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if crossing_probability(_bounds_at(ordered[mid], pairs), pairs) <= alpha:
            lo = mid
        else:
            hi = mid - 1
    level = ordered[lo] if lo >= 0 else Fraction(0)
    return level, _bounds_at(level, pairs)


def nominal_level(alpha: float, pairs: int) -> float:
    """The calibrated nominal level ``a*`` for a horizon of ``pairs`` pairs (see the module doc)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    if pairs < 1:
        raise ValueError(f"pairs must be at least 1, got {pairs}")
    return float(_calibrate(alpha, pairs)[0])


def boundary(alpha: float, pairs: int) -> tuple[int, ...]:
    """``u(d)`` for d = 0..pairs: losses needed for REGRESSED after d discordant pairs
    (``d + 1`` where REGRESSED is impossible)."""
    nominal_level(alpha, pairs)
    return _calibrate(alpha, pairs)[1]


# ---------------------------------------------------------------------------------------------
# Futility: predictive probability of still crossing
# ---------------------------------------------------------------------------------------------


def _beta_binomial(n: int, a: float, b: float) -> list[float]:
    """``P(M = m)`` for ``M ~ BetaBinomial(n, a, b)``, m = 0..n."""
    base = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) - math.lgamma(n + a + b)
    return [
        math.exp(
            math.lgamma(n + 1)
            - math.lgamma(m + 1)
            - math.lgamma(n - m + 1)
            + math.lgamma(m + a)
            + math.lgamma(n - m + b)
            + base
        )
        for m in range(n + 1)
    ]


def predictive_crossing(
    bounds: Sequence[int], pairs_left: int, pairs_seen: int, discordant: int, losses: int
) -> float:
    """Predictive probability that ``L >= bounds[d]`` happens within the next ``pairs_left`` pairs.

    Jeffreys priors: the number of future discordant pairs M is
    ``BetaBinomial(pairs_left, d + 1/2, k - d + 1/2)``; their signs follow a Pólya urn, the next
    one a loss with probability ``(L' + 1/2) / (d' + 1)`` given L' losses among d' discordant
    pairs so far. ``P = sum_m P(M = m) * P(urn path crosses within m steps)``.
    """
    if pairs_left <= 0:
        return 0.0
    steps = min(pairs_left, len(bounds) - 1 - discordant)
    if steps <= 0:
        return 0.0
    # alive[j]: probability of j further losses without crossing, after s further discordant pairs
    alive = [1.0]
    cross_by = [0.0]
    crossed = 0.0
    for s in range(1, steps + 1):
        d_prev = discordant + s - 1
        nxt = [0.0] * (s + 1)
        for j, mass in enumerate(alive):
            if mass:
                p_loss = (losses + j + 0.5) / (d_prev + 1.0)
                nxt[j + 1] += mass * p_loss
                nxt[j] += mass * (1.0 - p_loss)
        limit = bounds[discordant + s] - losses
        if limit <= s:
            start = max(0, limit)
            crossed += math.fsum(nxt[start:])
            for j in range(start, s + 1):
                nxt[j] = 0.0
        alive = nxt
        cross_by.append(crossed)
    weights = _beta_binomial(pairs_left, discordant + 0.5, pairs_seen - discordant + 0.5)
    return min(1.0, math.fsum(w * cross_by[min(m, steps)] for m, w in enumerate(weights)))


# ---------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------


class SequentialComparison:
    """One test (``tests=1``) or one prompt group of ``tests`` tests, fed pair by pair.

    For a group, feed every pair of every test of the group; the horizon is
    ``max_samples * tests`` pairs, ``min_samples * tests`` pairs before a futility stop.
    """

    def __init__(self, policy: AdaptivePolicy | None = None, tests: int = 1) -> None:
        if type(tests) is not int or tests < 1:
            raise ValueError(f"tests must be a positive integer, got {tests!r}")
        self.policy = policy or AdaptivePolicy()
        self.tests = tests
        self.horizon = self.policy.max_samples * tests
        self.minimum = self.policy.min_samples * tests
        level, bounds = _calibrate(self.policy.alpha, self.horizon)
        self._level = float(level)
        self._bounds = bounds
        self.pairs = 0
        self.losses = 0
        self.wins = 0
        self._final: SequentialDecision | None = None

    @property
    def bounds(self) -> tuple[int, ...]:
        return self._bounds

    @property
    def discordant(self) -> int:
        return self.losses + self.wins

    def add(self, incumbent_passed: bool, candidate_passed: bool) -> None:
        """Record one pair. Raises ValueError past the horizon or after a final decision."""
        if self._final is not None:
            raise ValueError(f"the comparison is already decided ({self._final.status}); stop sampling")
        if self.pairs >= self.horizon:
            raise ValueError(f"horizon of {self.horizon} pairs reached")
        self.pairs += 1
        if incumbent_passed and not candidate_passed:
            self.losses += 1
        elif candidate_passed and not incumbent_passed:
            self.wins += 1

    def extend(self, pairs: Iterable[tuple[bool, bool]]) -> None:
        for inc, cand in pairs:
            self.add(inc, cand)

    def decision(self) -> SequentialDecision:
        """CONTINUE, or a final REGRESSED / NOT_REGRESSED (sticky once given)."""
        if self._final is not None:
            return self._final
        d, losses = self.discordant, self.losses
        need = self._bounds[d]
        rounds = self.pairs // self.tests
        p = sign_test_p(d, losses)
        stat = f"{losses} loss(es), {self.wins} win(s) in {self.pairs} pair(s); sign p={p:.3g}"

        def make(status: str, reason: str, predictive: float | None = None) -> SequentialDecision:
            return SequentialDecision(
                status,
                status != CONTINUE,
                reason,
                rounds,
                self.pairs,
                d,
                losses,
                self.wins,
                p,
                need,
                self._level,
                predictive,
            )

        if losses >= need:
            result = make(REGRESSED, f"boundary crossed: {losses} >= {need} losses at {d} discordant; {stat}")
        elif self.pairs >= self.horizon:
            result = make(NOT_REGRESSED, f"horizon of {self.horizon} pairs reached without crossing; {stat}")
        elif self.pairs < self.minimum:
            return make(CONTINUE, f"fewer than {self.minimum} pairs; {stat}")
        else:
            pred = self._predictive()
            if pred < self.policy.futility:
                result = make(
                    NOT_REGRESSED,
                    f"futility: predictive probability {pred:.3g} < {self.policy.futility:g}; " + stat,
                    pred,
                )
            else:
                return make(CONTINUE, f"undecided: predictive probability {pred:.3g}; {stat}", pred)
        self._final = result
        return result

    def _predictive(self) -> float:
        return predictive_crossing(
            self._bounds, self.horizon - self.pairs, self.pairs, self.discordant, self.losses
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy.to_dict(),
            "tests": self.tests,
            "horizon": self.horizon,
            "pairs": self.pairs,
            "losses": self.losses,
            "wins": self.wins,
            "level": self._level,
            "decision": self.decision().to_dict(),
        }


def replay_decisions(
    pairs: Sequence[tuple[bool, bool]], policy: AdaptivePolicy | None = None, tests: int = 1
) -> list[SequentialDecision]:
    """The decision after each round of ``pairs`` (recorded outcomes, in recording order).

    A round is ``tests`` consecutive pairs (one per test of a group; one pair for a single
    test), and the decision is asked after each complete round, as the plugin does live. Stops
    at the first final decision; pairs after it are ignored (a run that followed the rule did
    not record them). An incomplete last round is fed but not decided on.
    """
    comparison = SequentialComparison(policy, tests)
    out: list[SequentialDecision] = []
    for i, (inc, cand) in enumerate(pairs, start=1):
        comparison.add(bool(inc), bool(cand))
        if i % tests:
            continue
        decision = comparison.decision()
        out.append(decision)
        if decision.final:
            break
    return out
