"""Items of a grid point: prefix-stable, deterministic and unique within the point.

Item i's seed is hashed from the coordinates (DESIGN §6). If item i would repeat the question of an
earlier item of the same point (small parameter spaces), it is redrawn with the seed of attempt k of
index i; item i depends only on items before it, so the first n of N items are the n.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rs_dagster.errors import InputError
from rs_dagster.tasks.base import Item, Task, item_seed, test_case_id

MAX_REDRAWS = 64


@dataclass(frozen=True)
class GeneratedItem:
    test_case_id: str
    index: int
    seed: int
    item: Item


def generate_point(
    task: Task, manifold: str, params: dict[str, Any], global_seed: int, count: int
) -> Iterator[GeneratedItem]:
    typed = task.validate_params(params, where=f"task {manifold!r} point {params}")
    seen: set[str] = set()
    for index in range(count):
        for attempt in range(MAX_REDRAWS):
            seed = item_seed(manifold, params, global_seed, index if attempt == 0 else f"{index}/{attempt}")
            item = task.generate(typed, seed)
            if item.question not in seen:
                break
        else:
            raise InputError(
                f"task {manifold!r} point {params}: only {len(seen)} distinct items found for {count} requested; "
                "lower the precision or widen the point's parameters"
            )
        seen.add(item.question)
        yield GeneratedItem(test_case_id(manifold, params, seed, index), index, seed, item)
