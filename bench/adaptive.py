"""Adaptive precision: requests spent versus a fixed item count with the same worst-case half-width.

The accuracy profile is a realistic difficulty sweep rather than a uniform spread: 40 points along a
logistic curve on which accuracy falls from 0.98 (easiest) to 0.05 (hardest), as a task's accuracy
does along a length or depth axis, plus 8 saturated points (4 always right, 4 always wrong), as the
easy corner and the hopeless corner of a tier tend to be. Each point is simulated through
rs_dagster.stats.adaptive.items_wanted: item i's outcome is a Bernoulli draw made once, the first time
a round's prefix covers i (prefix-stable), and a share --lost of samples is truncated or failed
(counted as drawn, not answered).

"fixed n" is the smallest item count at which every outcome, p = 0.5 being the worst, has a Wilson 95%
half-width <= the level's target (found by search over n and all correct counts). Requests are items
per point summed over the profile's points, averaged over --seeds runs. Levels come from --manifold.

    python bench/adaptive.py [--seeds 200] [--lost 0.0] [--manifold assets/tasks/arithmetic.yaml]
"""

from __future__ import annotations

import argparse
import math
import random
from pathlib import Path

from rs_dagster.stats.adaptive import half_width, simulate_point
from rs_dagster.stats.intervals import wilson_interval
from rs_dagster.tasks.manifold import load_manifold

EPS = 1e-9  # wilson_interval's bound at 0/n or n/n can miss 0.0 or 1.0 by a rounding error
DEFAULT_MANIFOLD = Path(__file__).resolve().parents[1] / "assets" / "tasks" / "arithmetic.yaml"


def profile(points: int = 40, saturated: int = 8) -> list[float]:
    """True accuracies: a logistic difficulty sweep from 0.98 down to 0.05, plus saturated points."""
    def falling(x: float) -> float:
        return 1 / (1 + math.exp(x))

    top, bottom = falling(-5), falling(5)
    difficulty = [(i / (points - 1) - 0.5) * 10 for i in range(points)]  # -5 (easiest) .. 5 (hardest)
    sweep = [0.05 + 0.93 * (falling(x) - bottom) / (top - bottom) for x in difficulty]
    return sweep + [1.0] * (saturated // 2) + [0.0] * (saturated - saturated // 2)


def fixed_n(target: float) -> int:
    """Fewest items at which every correct count has a Wilson half-width <= target."""
    n = 1
    while max(half_width(c, n) for c in range(n + 1)) > target:
        n += 1
    return n


def _share(x: float) -> str:
    return "<1%" if 0 < x < 0.005 else f"{x:.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200, help="simulated evaluations of the profile")
    parser.add_argument("--lost", type=float, default=0.0, help="share of samples truncated or failed")
    parser.add_argument("--manifold", type=Path, default=DEFAULT_MANIFOLD, help="where the precision levels come from")
    args = parser.parse_args()

    truths = profile()
    spec = load_manifold(args.manifold)
    print(f"profile: {len(truths)} points, accuracies {', '.join(f'{p:.2f}' for p in truths)}")
    print(f"levels from {args.manifold.name}; {args.seeds} seeds; lost samples {args.lost:.0%}\n")
    header = (f"{'level':<8} {'target':>6} {'min-max':>8} {'fixed n':>7} {'fixed req':>9} {'adaptive req':>12} "
              f"{'ratio':>6} {'rounds':>9} {'target/sat/cap':>16} {'worst hw':>8} {'coverage':>8}")
    print(header)
    print("-" * len(header))
    for name, level in spec.precision_levels().items():
        if not level.adaptive:
            print(f"{name:<8} fixed level of {level.max_n} items: nothing to compare")
            continue
        n_fixed = fixed_n(level.half_width)
        spent = rounds_total = rounds_max = covered = 0
        worst = 0.0
        reasons = {"target": 0, "saturated": 0, "cap": 0}
        for seed in range(args.seeds):
            rng = random.Random(seed)
            for p in truths:
                correct, answered, drawn, reason, rounds = simulate_point(p, level, rng, args.lost)
                spent += drawn
                rounds_total += rounds
                rounds_max = max(rounds_max, rounds)
                reasons[reason] += 1
                if reason != "saturated":
                    worst = max(worst, half_width(correct, answered))
                if answered:
                    low, high = wilson_interval(correct, answered)
                    covered += low - EPS <= p <= high + EPS
        runs = args.seeds * len(truths)
        adaptive = spent / args.seeds
        fixed = n_fixed * len(truths)
        shares = "/".join(_share(reasons[r] / runs) for r in ("target", "saturated", "cap"))
        print(
            f"{name:<8} {level.half_width:>6.3f} {f'{level.min_n}-{level.max_n}':>8} {n_fixed:>7} {fixed:>9,} "
            f"{adaptive:>12,.0f} {adaptive / fixed:>6.2f} {f'{rounds_total / runs:.1f}/{rounds_max}':>9} "
            f"{shares:>16} {worst:>8.3f} {covered / runs:>8.3f}"
        )
    print(
        "\nfixed req: fixed n x points; adaptive req: mean items drawn over the profile per seed; ratio:"
        " adaptive / fixed. rounds: mean/max per point. worst hw: largest final half-width of a point"
        " that did not stop saturated (above the target only at the cap). coverage: share of final"
        " Wilson intervals that contain the true accuracy (nominal 0.95)."
    )


if __name__ == "__main__":
    main()
