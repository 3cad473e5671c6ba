"""Parse time per KB of model output, for every task, at 1 KB, 100 KB and 1 MB: reading an answer must be
linear in the text (a flat µs/KB column), whatever the text's shape.

Two shapes per size: `cot`, a chain of thought of the task's own kind of lines ending in an ANSWER line
(the common case), and `lines`, short lines with no answer marker (the shape that made the old sort parser
quadratic: every rule runs to the end). The baseline, measured in the same run on the same text, is one
pass of a single regex over it (`re.findall(r"\\w+")`): the ratio says how many such passes parsing costs.

    python bench/parsing.py            # every task
    python bench/parsing.py sort dates # some
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import load_manifold

ROOT = Path(__file__).resolve().parent.parent
TASKS = ("arithmetic", "boolean", "brackets", "cars", "dates", "letters", "movies", "objects", "sequence", "shapes", "shuffle", "sort", "tables")
SIZES = {"1 KB": 1_000, "100 KB": 100_000, "1 MB": 1_000_000}


def _item(task: str):
    spec = load_manifold(ROOT / "assets" / "tasks" / f"{task}.yaml")
    params = next(p.params for p in spec.points() if "easy" in p.tiers)
    return spec.task, next(iter(generate_point(spec.task, task, params, spec.doc.global_seed, 1))).item


def _texts(answer: str, size: int) -> dict[str, str]:
    step = f"Step: we consider {answer.splitlines()[0][:40]} and 12 + 5 = 17, so the value so far is 17.\n"
    cot = (step * (size // len(step) + 1))[: size - 40] + f"\nANSWER: {answer}\n"
    return {"cot": cot, "lines": ("ab\n" * (size // 3 + 1))[:size]}


def _seconds(function, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def main(tasks: list[str]) -> None:
    print(f"{'task':<11}{'shape':<7}" + "".join(f"{name + ' µs/KB':>15}" for name in SIZES) + f"{'1 MB / 1 KB':>13}{'x regex pass':>14}")
    for name in tasks:
        task, item = _item(name)
        metadata = item.metadata
        for shape in ("cot", "lines"):
            per_kb, ratio_to_regex = [], 0.0
            for size in SIZES.values():
                text = _texts(item.answer, size)[shape]
                repeats = 20 if size <= 100_000 else 3
                parse = _seconds(lambda text=text, task=task, metadata=metadata: task.parse(text, metadata), repeats)
                baseline = _seconds(lambda text=text: re.findall(r"\w+", text), repeats)
                per_kb.append(parse * 1e6 / (len(text) / 1000))
                ratio_to_regex = parse / baseline
            print(f"{name:<11}{shape:<7}" + "".join(f"{v:>15.1f}" for v in per_kb) + f"{per_kb[-1] / per_kb[0]:>13.2f}{ratio_to_regex:>14.1f}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(TASKS))
