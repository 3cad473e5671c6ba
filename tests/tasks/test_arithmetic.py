"""arithmetic: answers re-derived by Python's own expression parser from the question text, the
difficulty knobs measured on the text, the parser on realistic outputs."""

from __future__ import annotations

import re

import pytest

from rs_dagster.tasks.manifold import TIERS
from task_harness import TaskHarness

H = TaskHarness("arithmetic")


def expression(question: str) -> str:
    return question.split("\n\n")[1]


def nesting(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    assert depth == 0, text
    return deepest


@pytest.mark.parametrize("tier", TIERS)
def test_answers_match_pythons_evaluation_of_the_text(tier):
    checked = H.tier_items(tier)
    assert [item for _, item in checked if str(eval(expression(item.question), {"__builtins__": {}})) != item.answer] == []


def test_terms_depth_and_whitespace_show_in_the_text():
    for params in H.points():
        for item in H.items(params, 8):
            text = expression(item.question)
            assert len(re.findall(r"\d+", text)) == params["terms"]
            assert nesting(text) == params["depth"] == item.metadata["depth"]
            gaps = len(re.findall(r"\d+|[-+*()]", text)) - 1
            assert text.count(" ") == gaps - round(params["whitespace_removed"] * gaps)


def test_the_parser_reads_realistic_outputs():
    item = H.items({"terms": 6, "depth": 2, "whitespace_removed": 0.0, "max_operand": 9}, 1)[0]
    x = item.answer
    H.assert_parses(
        item,
        [
            f"First 3 * 4 = 12, then 12 + 7 = 19, minus 2 gives 17... wait, recompute.\n\nANSWER: {x}",
            f"Step 1: 5\nStep 2: 40\n\nThe final answer is $\\boxed{{{x}}}$.",
            f"**Answer:** {x}.",
            f"Working: 2, 4, 8.\n\n{x}",
        ],
        wrong=str(int(x) + 1),
        unparsable=("I cannot evaluate this.",),
    )


def test_depth_beyond_the_terms_is_rejected():
    H.assert_rejected({"terms": 3, "depth": 4, "whitespace_removed": 0.0}, "terms")
