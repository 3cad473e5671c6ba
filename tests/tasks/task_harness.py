"""What the per-task tests share: a task's manifold, its items drawn the way the pipeline draws them
(generate_point at the manifold's global seed), the text a model receives for an item, parsing plus
scoring, and the bad-parameter check.

The ground-truth tests solve items from `prompt_text` alone (the user message of the default
template: question plus answer instruction), following the prompt's own words, over `tier_items`
of every tier and `space_items` of the whole grid (its extreme corners included), so that a rule the
generator applies but the prompt does not state shows up as a disagreement."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from rs_dagster.errors import InputError
from rs_dagster.inputs import load_named
from rs_dagster.prompting.templates import Template
from rs_dagster.scoring.parsing import Parsed
from rs_dagster.tasks.base import Item
from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import load_manifold

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE, _ = load_named(ROOT / "assets" / "templates", "zero_shot", Template, "template")


class TaskHarness:
    def __init__(self, name: str):
        self.spec = load_manifold(ROOT / "assets" / "tasks" / f"{name}.yaml")
        self.task = self.spec.task

    def points(self, tier: str | None = None, **where: Any) -> list[dict[str, Any]]:
        """Parameters of the manifold's points, of one tier if given, with the given values."""
        return [
            p.params for p in self.spec.points()
            if (tier is None or tier in p.tiers) and all(p.params.get(k) == v for k, v in where.items())
        ]

    def items(self, params: dict[str, Any], count: int = 128, global_seed: int | None = None) -> list[Item]:
        """The first `count` items of a point (distinct), at the manifold's global seed unless one is given."""
        seed = self.spec.doc.global_seed if global_seed is None else global_seed
        items = [g.item for g in generate_point(self.task, self.spec.name, params, seed, count)]
        assert len({item.question for item in items}) == len(items)
        return items

    def tier_items(self, tier: str, at_least: int = 2000, batch: int = 128) -> list[tuple[dict[str, Any], Item]]:
        """(params, item) for `at_least` items or a few more, spread evenly over the tier's points: `batch`
        items of every point per global seed (the manifold's, then the next ones), since a small point
        has only a few hundred distinct items."""
        points = self.points(tier)
        rounds = -(-at_least // (batch * len(points)))
        seeds = range(self.spec.doc.global_seed, self.spec.doc.global_seed + rounds)
        checked = [(params, item) for params in points for seed in seeds for item in self.items(params, batch, seed)]
        assert len(checked) >= at_least
        return checked

    def grid_points(self) -> list[dict[str, Any]]:
        """Every valid point of the full grid (all combinations of the axes' values), including those no
        tier, surface or projection names; combinations the task rejects (e.g. depth > length) are left out."""
        axes = self.spec.doc.grid
        points = []
        for combo in itertools.product(*axes.values()):
            params = {**self.spec.doc.fixed, **dict(zip(axes, combo))}
            try:
                self.task.validate_params(params)
            except InputError:
                continue
            points.append(params)
        return points

    def space_items(self, at_least: int = 3000, most_per_point: int = 128) -> list[tuple[dict[str, Any], Item]]:
        """(params, item) for about `at_least` items spread evenly over every point of the full grid, so the
        extreme corners of the space are checked as well as the tiers. A point with fewer distinct items
        than its share (brackets of one kind with length = depth has a single one) gives all it has."""
        points = self.grid_points()
        per_point = min(most_per_point, -(-at_least // len(points)))
        checked = []
        for params in points:
            try:
                checked.extend((params, g.item) for g in generate_point(self.task, self.spec.name, params, self.spec.doc.global_seed, per_point))
            except InputError:
                continue  # the point ran out of distinct items; those it yielded are kept
        assert len(checked) >= 0.9 * min(at_least, most_per_point * len(points))
        return checked

    def prompt_text(self, item: Item) -> str:
        """The user message a model receives for `item` under the default template: the question and the
        answer instruction, exactly as sent. Solvers read only this (and the task's shipped data files)."""
        return DEFAULT_TEMPLATE.render(self.task, item, self.spec.name, {}, self.spec.doc.global_seed)[-1]["content"]

    def parse_and_score(self, text: str, item: Item) -> tuple[Parsed, bool]:
        """The parse of a model output for `item`, and whether it scores as correct."""
        parsed = self.task.parse(text, item.metadata)
        return parsed, parsed.value is not None and self.task.score(parsed.value, item.answer, item.metadata)

    def correct(self, text: str, item: Item) -> bool:
        return self.parse_and_score(text, item)[1]

    def assert_parses(self, item: Item, outputs: list[str], wrong: str | None = None, unparsable: tuple[str, ...] = ()) -> None:
        """Every output scores as correct for `item`, "ANSWER: <wrong>" does not, and each `unparsable`
        text parses to nothing."""
        for text in outputs:
            parsed, correct = self.parse_and_score(text, item)
            assert correct, (text, parsed, item.answer)
        if wrong is not None:
            assert not self.correct(f"ANSWER: {wrong}", item)
        for text in unparsable:
            assert self.task.parse(text, item.metadata).value is None, text

    def assert_rejected(self, params: dict[str, Any], field: str) -> None:
        """Invalid parameters raise InputError, naming `field` (literally) in the message."""
        with pytest.raises(InputError, match=re.escape(field)):
            self.task.validate_params(params)
