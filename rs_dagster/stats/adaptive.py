"""Adaptive precision: how many items a grid point gets, sampled "until significance".

A point's items are drawn in prefix-stable rounds (item indices 0..n-1; a later round extends the
prefix), so a point evaluated at a higher precision reuses every response of a lower one. After each
round the point's counts decide the next prefix length (`items_wanted`):

- start with `min_n` items;
- stop when the point is *saturated*: at least `min_n` answered and all of them right, or all wrong
  (more items would only narrow an interval that already says "solved" or "hopeless");
- stop when the Wilson 95% half-width of its accuracy is at most the level's `half_width` target;
- stop at the cap `max_n` whatever the counts (so a point whose samples are all errors or
  truncations, which never enter the interval, still ends);
- otherwise grow to the prefix the current estimate says reaches the target, by at least a minimum
  step and at most doubling per round (an estimate from a few items is rough; doubling bounds the
  overshoot while keeping the number of rounds logarithmic).

A fixed level (`min_n == max_n`, no target) is the old behaviour: exactly n items, no early stop.

`answered` is accuracy's denominator (rs_dagster.scoring.outcomes.ANSWERED): truncated and error
samples count as drawn items but not in the interval. This module is pure: no Dagster, no I/O.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Literal

from rs_dagster.stats.intervals import Z95, wilson_interval

StopReason = Literal["target", "saturated", "cap"]


@dataclass(frozen=True)
class PrecisionLevel:
    """Items per grid point: between `min_n` and `max_n`, until the Wilson half-width <= `half_width`.

    A fixed level has min_n == max_n and half_width None (exactly n items)."""

    min_n: int
    max_n: int
    half_width: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.min_n, bool) or isinstance(self.max_n, bool) or not (isinstance(self.min_n, int) and isinstance(self.max_n, int)):
            raise ValueError(f"item counts must be integers, got min {self.min_n!r}, max {self.max_n!r}")
        if not 1 <= self.min_n <= self.max_n:
            raise ValueError(f"expected 1 <= min <= max item counts, got min {self.min_n}, max {self.max_n}")
        if self.half_width is None:
            if self.min_n != self.max_n:
                raise ValueError(f"a level without a half_width target is fixed: min must equal max, got {self.min_n} and {self.max_n}")
        elif not 0 < self.half_width <= 0.5:
            raise ValueError(f"half_width must lie in (0, 0.5], got {self.half_width}")

    @classmethod
    def fixed(cls, n: int) -> PrecisionLevel:
        return cls(n, n, None)

    @property
    def adaptive(self) -> bool:
        return self.half_width is not None

    @property
    def min_step(self) -> int:
        """The least a round grows a point by: half the minimum, so that a point just above its
        target does not crawl towards it one item per round."""
        return max(1, self.min_n // 2)

    def describe(self) -> str:
        if not self.adaptive:
            return f"{self.max_n} items"
        return f"{self.min_n}-{self.max_n} items until the 95% half-width <= {self.half_width:g}"


def half_width(correct: int, answered: int) -> float:
    """Half the width of the Wilson 95% interval of correct/answered (1.0 when nothing was answered:
    nothing is known yet)."""
    if answered == 0:
        return 1.0
    low, high = wilson_interval(correct, answered)
    return (high - low) / 2


def _half_width_at(p: float, n: float, z: float = Z95) -> float:
    """Wilson half-width for a proportion p over n trials, continuous in both (used to project how
    many answers a point needs). Finite and positive at p = 0 and 1, unlike the normal z*sqrt(p(1-p)/n)."""
    return z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)


def answers_needed(p: float, target: float) -> int:
    """The fewest answered samples at which a point with accuracy p reaches `target` half-width."""
    if _half_width_at(p, 1) <= target:
        return 1
    low, high = 1, 2
    while _half_width_at(p, high) > target:
        low, high = high, high * 2
    while high - low > 1:  # _half_width_at decreases in n: bisect for the first n under the target
        mid = (low + high) // 2
        low, high = (low, mid) if _half_width_at(p, mid) <= target else (mid, high)
    return high


def _check(correct: int, answered: int, drawn: int) -> None:
    if not 0 <= correct <= answered <= drawn:
        raise ValueError(f"expected 0 <= correct <= answered <= drawn, got {correct}, {answered}, {drawn}")


def is_saturated(correct: int, answered: int, level: PrecisionLevel) -> bool:
    """All right or all wrong over at least `min_n` answers. Fixed levels never stop early."""
    return level.adaptive and answered >= level.min_n and correct in (0, answered)


def items_wanted(correct: int, answered: int, drawn: int, level: PrecisionLevel) -> int:
    """The prefix length the point should have after the next round; `drawn` means it is done.

    correct/answered are the point's counts over its first `drawn` items (answered excludes
    truncated and error samples). Every call either returns `drawn` or more than `drawn` and at most
    `max_n`, so repeated rounds end by `max_n` at the latest."""
    _check(correct, answered, drawn)
    if drawn < level.min_n:
        return level.min_n
    if drawn >= level.max_n or stop_reason(correct, answered, drawn, level) is not None:
        return drawn
    if answered == 0:  # nothing to estimate from (all errors or truncations so far): double
        return min(2 * drawn, level.max_n)
    assert level.half_width is not None  # a fixed level has min_n == max_n and stopped above
    p = correct / answered
    needed_answers = answers_needed(p, level.half_width)
    answer_rate = answered / drawn  # project errors/truncations forward at the rate seen so far
    projected = drawn + math.ceil(max(0, needed_answers - answered) / answer_rate)
    return min(max(projected, drawn + level.min_step), 2 * drawn, level.max_n)


def stop_reason(correct: int, answered: int, drawn: int, level: PrecisionLevel) -> StopReason | None:
    """Why a point stopped, for the points table, or None while it still needs items.

    "saturated" (all right or all wrong after min_n), "target" (half-width reached), "cap" (max_n
    items drawn without either; a fixed level always ends here). Saturation is named first because it
    is the more informative fact when both hold."""
    _check(correct, answered, drawn)
    if drawn < level.min_n:
        return None
    if is_saturated(correct, answered, level):
        return "saturated"
    if level.half_width is not None and answered > 0 and half_width(correct, answered) <= level.half_width:
        return "target"
    if drawn >= level.max_n:
        return "cap"
    return None


def simulate_point(p: float, level: PrecisionLevel, rng: random.Random, lost: float = 0.0) -> tuple[int, int, int, StopReason, int]:
    """(correct, answered, drawn, stop reason, rounds) of one simulated point of true accuracy `p`, run
    through the rounds as an evaluation runs them; item i's sample is drawn once, the first time the
    prefix covers it (right with chance p; truncated or failed with chance `lost`). For the benchmark
    and the tests of the stopping rules."""
    samples: list[int | None] = []
    drawn = rounds = 0
    while True:
        correct = sum(s == 1 for s in samples)
        answered = sum(s is not None for s in samples)
        wanted = items_wanted(correct, answered, drawn, level)
        if wanted == drawn:
            reason = stop_reason(correct, answered, drawn, level)
            assert reason is not None  # items_wanted stops only where stop_reason names why
            return correct, answered, drawn, reason, rounds
        while len(samples) < wanted:
            samples.append(None if rng.random() < lost else int(rng.random() < p))
        drawn, rounds = wanted, rounds + 1
