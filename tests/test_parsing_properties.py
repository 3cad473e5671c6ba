"""Parsing and scoring are total: on any text (random unicode, answer markers mixed at random, huge
numbers, deep LaTeX nesting, megabyte inputs) every task's parser returns and `score_sample` gives an
outcome, never an exception. (Their time, linear in the text, is measured by bench/parsing.py.)"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rs_dagster.scoring.outcomes import Outcome, score_sample
from rs_dagster.tasks import get_task
from rs_dagster.tasks.generation import generate_point
from rs_dagster.tasks.manifold import load_manifold

TASKS = ("arithmetic", "boolean", "brackets", "cars", "dates", "letters", "movies", "objects", "sequence", "shapes", "shuffle", "sort", "tables")
OUTCOMES = {o.value for o in Outcome}
ROOT = Path(__file__).resolve().parents[1]

PIECES = [
    "ANSWER:", "ANSWER: ", "**Final answer:** ", "the answer is ", "result = ", "\\boxed{", "}", "{", "\\text{", "$",
    "\n", "\n\n", " ", ", ", " or ", "/", " and ", "not ", "Wait, no, it's ", "actually ", "=", " - ", " + ", "(", ")",
    "[", "]", "<", ">", "(A)", "B", "True", "False", "YES", "0", "7", "-3", "\u22125", "1,234", "5.5", "3/4", "9" * 400,
    "May 6, 2002", "2002-05-06", "06/05/2002", "apple", "o'connell", "1. ", "- ", "empty", "none", "\u00e9", "\ud7ff",
]


@cache
def _item(task: str):
    """One real item of the task's easy tier, for its metadata and gold answer."""
    spec = load_manifold(ROOT / "assets" / "tasks" / f"{task}.yaml")
    params = next(p.params for p in spec.points() if "easy" in p.tiers)
    return next(iter(generate_point(spec.task, task, params, spec.doc.global_seed, 1))).item


def _check(task: str, text: str) -> None:
    item = _item(task)
    parsed = get_task(task).parse(text, item.metadata)
    assert parsed.value is None or isinstance(parsed.value, str)
    scored = score_sample(get_task(task), item.answer, item.metadata, text, "stop", None)
    assert scored.outcome in OUTCOMES and scored.flexible_outcome in OUTCOMES


texts = st.one_of(
    st.text(max_size=400),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=12)), max_size=60).map("".join),
)


@pytest.mark.parametrize("task", TASKS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts)
def test_parsing_and_scoring_never_raise(task, text):
    _check(task, text)


ADVERSARIAL = {
    "deep boxes": "\\boxed{" * 20_000 + "7" + "}" * 100,
    "unclosed boxes": "\\boxed{7 " * 50_000,
    "short lines": "a\n" * 200_000,
    "answer lines": "ANSWER: or\n" * 60_000,
    "digits": "ANSWER: " + "9" * 1_000_000,
    "numbers and hedges": "1 or " * 150_000,
    "a sorted-looking wall": "apple banana " * 60_000,
    "brackets": "ANSWER: " + ") " * 300_000,
    "unicode": "\u00e9\u2212\u2983\u2984{}" * 100_000,
    "a count and one long word": "There are 5 " + "abcdefghij" * 100_000 + "1",
    "one line of records": "x | 7 " * 150_000 + "\n5",
    "option lines": "A) x\nB) y\n" * 60_000,
    "answer phrases on one line": "the answer is (A) or " * 40_000,
}


@pytest.mark.parametrize("task", TASKS)
def test_megabyte_inputs_are_parsed(task):
    for text in ADVERSARIAL.values():
        _check(task, text)
