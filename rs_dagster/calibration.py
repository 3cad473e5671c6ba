"""A known-truth endpoint: answers the lab's own prompts right with a documented probability per grid
point, so a deployment can check that it measures what is true (`rs serve-calibration`).

The truth at a point (true_accuracy): each numeric grid axis is read as a difficulty scale, its values
listed from easy to hard (as the lab's manifolds list them); the point's difficulty d is the mean, over
the task's numeric axes with more than one value, of its value's position on the axis (0 first, 1 last);

    accuracy(d) = g + (1 - g) * 0.95 / (1 + exp(10 * (d - 0.45)))

where g is the item's guess chance: about 0.94 at the easiest point, 0.5 of the way to chance at
d = 0.45, chance at the hardest. Whether an item is answered right is decided by a hash of its question
(uniform in [0, 1) < accuracy), so the same item always gets the same answer and the items of a point are
right at the true rate up to binomial noise: a Wilson 95% interval covers the truth about 95% of the time.

It knows the items of every named grid point (tiers, surfaces, projections) of the lab's tasks, the first
`items` of each, generated from the task's seed as `rs eval` generates them; it reads the question from
the start of the last user message (every template begins with it). A wrong answer is another item's
answer at the same point (or of the task), in the requested `ANSWER:` form; a question it does not know gets HTTP 400."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import TaskSpec, load_manifolds
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

CEILING, SLOPE, MIDPOINT = 0.95, 10.0, 0.45


def point_difficulty(spec: TaskSpec, params: dict[str, Any]) -> float:
    """The mean position, 0 (first value) to 1 (last), of the point's values on the task's numeric axes."""
    positions = [
        values.index(params[axis]) / (len(values) - 1)
        for axis, values in spec.doc.grid.items()
        if len(values) > 1 and axis in params and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    ]
    return sum(positions) / len(positions) if positions else 0.0


def true_accuracy(difficulty: float, guess_chance: float) -> float:
    return guess_chance + (1 - guess_chance) * CEILING / (1 + math.exp(SLOPE * (difficulty - MIDPOINT)))


def point_truth(spec: TaskSpec, params: dict[str, Any], guess_chance: float) -> float:
    """The calibration endpoint's true accuracy at a grid point of `spec`."""
    return true_accuracy(point_difficulty(spec, params), guess_chance)


def stored_point_truth(spec: TaskSpec, params_json: str, guess_chance: float) -> float | None:
    """point_truth at a stored point (its params_json and mean guess chance, as the points table holds them;
    the truth is linear in the chance, so the mean chance gives the mean of its items' truths); None for a
    point off the spec's grid (a value the manifold no longer lists)."""
    try:
        return point_truth(spec, json.loads(params_json), guess_chance)
    except ValueError:  # not valid JSON, or a value not on its axis
        return None


def right_draw(question: str) -> float:
    """The item's fixed draw in [0, 1): it is answered right when this is below its point's true accuracy."""
    return int(hashlib.sha256(question.encode()).hexdigest()[:13], 16) / 16**13


@dataclass(frozen=True)
class KnownItem:
    answer: str
    accuracy: float  # its point's true accuracy
    right: bool  # right_draw(question) < accuracy
    wrong: str  # another item's answer at the same point (of the task, when every item there has the same answer)


def _kind(params: dict[str, Any]) -> str:
    return repr(sorted((k, v) for k, v in params.items() if not isinstance(v, int | float) or isinstance(v, bool)))


def _wrong(answers: list[str], i: int, task_answers: list[str]) -> str:
    """A wrong answer for item i: the next item's at its point that differs, else another answer of the task's
    points of the same kind (boolean's long expressions are nearly all True: every item of a point may share one)."""
    shifted = (answers[(i + j) % len(answers)] for j in range(1, len(answers)))
    return next((a for a in shifted if a != answers[i]), next((a for a in task_answers if a != answers[i]), f"not {answers[i]}"))


class CalibrationResponder:
    """The scripted server's responder (rs_dagster.testing.scripted_server): the lab's items, answered at their truth."""

    def __init__(self, tasks_dir: Path, items: int):
        self.known: dict[str, KnownItem] = {}
        for name, spec in load_manifolds(tasks_dir).items():
            points = [(point, list(generate_point(spec.task, name, point.params, spec.doc.global_seed, min(items, spec.max_items_per_point))))
                      for point in spec.points()]
            kind_answers: dict[str, list[str]] = {}  # by the point's non-numeric values (boolean's notation)
            for point, generated in points:
                kind_answers.setdefault(_kind(point.params), []).extend(g.item.answer for g in generated)
            for point, generated in points:
                task_answers = list(dict.fromkeys(kind_answers[_kind(point.params)]))
                difficulty = point_difficulty(spec, point.params)
                answers = [g.item.answer for g in generated]
                for i, item in enumerate(generated):
                    accuracy = true_accuracy(difficulty, item.item.guess_chance)
                    self.known[item.item.question] = KnownItem(item.item.answer, accuracy, right_draw(item.item.question) < accuracy,
                                                               _wrong(answers, i, task_answers))

    def lookup(self, content: str) -> KnownItem | None:
        """The item whose question begins `content` (the question is followed by a blank line and the instruction)."""
        parts = content.split("\n\n")
        for end in range(len(parts) - 1, 0, -1):
            if (found := self.known.get("\n\n".join(parts[:end]))) is not None:
                return found
        return self.known.get(content)

    def __call__(self, body: dict[str, Any]) -> Reply:
        users = [m.get("content") or "" for m in body.get("messages", []) if m.get("role") == "user"]
        item = self.lookup(users[-1]) if users else None
        if item is None:
            return Reply(status=400)
        return Reply(content=f"ANSWER: {item.answer if item.right else item.wrong}", model="calibration")


@contextmanager
def calibration_server(base_url: str, tasks_dir: Path, items: int) -> Iterator[bool]:
    """Serve the calibration endpoint at `base_url` (a loopback URL) for the block, in this process; reuse one
    already serving there. Yields whether this block started it."""
    from rs_dagster.bundled import is_serving

    if is_serving(base_url, "calibration"):
        yield False
        return
    with ScriptedServer(CalibrationResponder(tasks_dir, items), model_ids=("calibration",), port=urlsplit(base_url).port or 80):
        yield True
