"""Item generation throughput: 10,000 items of every task at its hardest tier point.

Goal: 10,000 items of any task in under 2 s. The baseline, measured in the same run, is the seeding
floor every item pays whatever the task: one sha256 and one random.Random(seed) construction per item.
Items go through generation.generate_point, so seed hashing, test-case ids and the duplicate redraws
are counted. The hardest point is the last one the hard tier lists (manifolds list axis values from
easy to hard); if it cannot yield --items distinct items, the count is split over all hard-tier points,
then over every point of the manifold. Each figure is the best of --repeat runs.

    python bench/generation.py [--items 10000] [--repeat 1] [TASK ...]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from pathlib import Path

from rs_dagster.errors import InputError
from rs_dagster.tasks import TASKS
from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import TaskSpec, load_manifold

GOAL_S = 2.0
TASKS_DIR = Path(__file__).resolve().parents[1] / "assets" / "tasks"


def seeding_floor(count: int) -> float:
    start = time.perf_counter()
    for index in range(count):
        random.Random(int(hashlib.sha256(str(index).encode()).hexdigest()[:16], 16))
    return time.perf_counter() - start


def plans(spec: TaskSpec) -> list[list[dict]]:
    """Point lists to try in turn: the hardest point alone, the hard tier, the whole manifold."""
    hard = [p.params for p in spec.points() if "hard" in p.tiers]
    everything = [p.params for p in spec.points()]
    return [hard[-1:], hard, everything]


def timed_generation(spec: TaskSpec, points: list[dict], count: int) -> float:
    per_point = [count // len(points) + (i < count % len(points)) for i in range(len(points))]
    start = time.perf_counter()
    for params, n in zip(points, per_point):
        for _ in generate_point(spec.task, spec.name, params, spec.doc.global_seed, n):
            pass
    return time.perf_counter() - start


def bench(spec: TaskSpec, count: int, repeat: int) -> tuple[str, float]:
    """(where the items came from, best seconds)."""
    last_error = None
    for points in plans(spec):
        try:
            seconds = min(timed_generation(spec, points, count) for _ in range(repeat))
        except InputError as exc:
            last_error = exc
            continue
        where = ", ".join(f"{k}={v}" for k, v in points[0].items()) if len(points) == 1 else f"{len(points)} points"
        return where, seconds
    raise InputError(f"{spec.name}: no plan yields {count} distinct items: {last_error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="*", help="manifold names (default: every manifold in assets/tasks)")
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    paths = sorted(TASKS_DIR.glob("*.yaml"))
    if args.tasks:
        paths = [p for p in paths if p.stem in args.tasks]
    floor = min(seeding_floor(args.items) for _ in range(3))
    print(f"seeding floor (sha256 + random.Random per item): {floor:.3f} s for {args.items} items\n")
    header = f"{'task':<12} {'items/s':>9} {'s/' + str(args.items):>9} {'vs goal':>8} {'vs floor':>9}  point"
    print(header)
    print("-" * len(header))
    covered = set()
    for path in paths:
        try:
            spec = load_manifold(path)
            where, seconds = bench(spec, args.items, args.repeat)
        except InputError as exc:
            print(f"{path.stem:<12} {'failed':>9}  {exc}")
            continue
        covered.add(spec.task.name)
        print(
            f"{spec.name:<12} {args.items / seconds:>9,.0f} {seconds:>9.2f} {seconds / GOAL_S:>7.2f}x "
            f"{seconds / floor:>8.1f}x  {where}"
        )
    for name in sorted(set(TASKS) - covered):
        if not args.tasks or name in args.tasks:
            print(f"{name:<12} {'skipped':>9}  no loadable manifold in {TASKS_DIR}")
    print(f"\nvs goal: seconds / {GOAL_S:g} s (below 1 meets the goal); vs floor: seconds / seeding floor.")


if __name__ == "__main__":
    main()
