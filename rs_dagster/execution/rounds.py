"""Adaptive sampling of an evaluation: which items to ask for next, round after round, from the
outcomes so far (rs_dagster.stats.adaptive decides each point's prefix length).

Items of a point are taken in index order, so every round extends a prefix and an evaluation at a
higher precision reuses every answer of a lower one. With several samples per item, counts are over
samples and the prefix grows by whole items (all of an item's samples are asked together)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from rs_dagster.scoring.outcomes import ANSWERED, Outcome, score_sample
from rs_dagster.stats.adaptive import PrecisionLevel, items_wanted, stop_reason
from rs_dagster.tasks.base import Task


class AdaptiveRounds:
    def __init__(self, levels: dict[str, PrecisionLevel], repeats: int):
        # A level counts items; scaled by the repeats it counts the samples the interval is made of.
        self.levels = {
            pid: PrecisionLevel(level.min_n * repeats, level.max_n * repeats, level.half_width) for pid, level in levels.items()
        }
        self.repeats = repeats
        self.drawn: Counter[str] = Counter()  # items asked for so far, per point
        self.correct: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.rounds = 0

    def next_round(self) -> list[dict[str, Any]]:
        """The (point_id, item_index) pairs to ask next; empty when every point is done."""
        batch = []
        for pid, level in self.levels.items():
            wanted = items_wanted(self.correct[pid], self.answered[pid], self.drawn[pid] * self.repeats, level)
            items = -(-wanted // self.repeats)
            batch += [{"point_id": pid, "item_index": index} for index in range(self.drawn[pid], items)]
            self.drawn[pid] = items
        self.rounds += bool(batch)
        return batch

    def record(self, case: dict[str, Any], completion: dict[str, Any], task: Task) -> None:
        """Count one sample of `case` (a test_cases row) by its strict outcome, as points will."""
        outcome = score_sample(
            task, case["answer"], json.loads(case["metadata_json"]),
            completion["answer_text"], completion["finish_reason"], completion["error"],
        ).outcome
        self.answered[case["point_id"]] += outcome in ANSWERED
        self.correct[case["point_id"]] += outcome == Outcome.CORRECT

    def stop_reasons(self) -> dict[str, int]:
        """How many points stopped for each reason ("target", "saturated", "cap")."""
        reasons = Counter(
            stop_reason(self.correct[pid], self.answered[pid], self.drawn[pid] * self.repeats, level) or "unfinished"
            for pid, level in self.levels.items()
        )
        return dict(sorted(reasons.items()))
