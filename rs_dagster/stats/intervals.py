"""Binomial statistics for grid points.

accuracy         correct / answered, where answered = correct + incorrect + unparsed + ambiguous (samples
                 that ended with a complete answer; truncated and error samples are excluded). The headline
                 counts strict outcomes (an answer in the requested form); flexible accuracy counts
                 flexible outcomes over the same answered samples (the rule: rs_dagster.scoring.outcomes)
format compliance (strict correct + strict incorrect) / answered: the share of complete answers given
                 in the requested form
Wilson 95% CI    for that proportion (well-behaved at 0 and 1 and for small n, unlike the normal one)
excess accuracy  (acc - g) / (1 - g), g = mean guess chance of the point's items; 0 = chance level,
                 1 = perfect; its interval maps the Wilson bounds the same way
truncation rate  truncated / all samples of the point (errors included)
truncation ratio truncated / (answered + truncated): the share of the samples the model finished or ran
                 out of room on that it ran out of room on. Errors are the endpoint's fault and stay out
                 of it; None when there is neither. ReasonScore's penalty (rs_dagster.stats.reasonscore)
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    if trials <= 0:
        raise ValueError("Wilson interval needs at least one trial")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in [0, {trials}], got {successes}")
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    # At 0 and at all successes the bound is exactly 0 or 1 (floating point would give 1e-17 off).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def excess_over_chance(accuracy: float, guess_chance: float) -> float:
    return (accuracy - guess_chance) / (1 - guess_chance)


def truncation_ratio(truncated: int, answered: int) -> float | None:
    """truncated / (answered + truncated); None when a point has neither (every sample an error)."""
    if truncated < 0 or answered < 0:
        raise ValueError(f"counts must be non-negative, got truncated={truncated}, answered={answered}")
    total = truncated + answered
    return truncated / total if total else None
