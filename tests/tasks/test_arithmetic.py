"""arithmetic: answers re-derived from the prompt text alone by an evaluator written from scratch that
follows the usual order of operations, the difficulty knobs measured on the text, the parser on
realistic outputs."""

from __future__ import annotations

import re

import pytest
from task_harness import TaskHarness

from rs_dagster.tasks.manifold import TIERS

H = TaskHarness("arithmetic")


def expression(question: str) -> str:
    return question.split("\n\n")[1]


def _evaluate(text: str) -> int:
    """The usual order of operations, which is all the prompt asks for: parentheses first, then *, then
    + and - from left to right. Every character must be a digit, an operator, a parenthesis or a space."""
    tokens = re.findall(r"\d+|[-+*()]", text)
    assert "".join(tokens) == text.replace(" ", ""), text
    position = 0

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def upcoming() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def operand() -> int:
        token = take()
        if token != "(":
            return int(token)
        value = total()
        assert take() == ")", text
        return value

    def product() -> int:
        value = operand()
        while upcoming() == "*":
            take()
            value *= operand()
        return value

    def total() -> int:
        value = product()
        while upcoming() in ("+", "-"):
            value = value + product() if take() == "+" else value - product()
        return value

    value = total()
    assert position == len(tokens), text
    return value


def _solve(prompt: str) -> str:
    instruction, text, _ = prompt.split("\n\n")
    assert instruction == "Evaluate the following arithmetic expression."
    return str(_evaluate(text))


def nesting(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    assert depth == 0, text
    return deepest


def test_the_scratch_evaluator_follows_the_usual_order_of_operations():
    assert _evaluate("2+3*4") == 14
    assert _evaluate("9 - 3 - 2") == 4
    assert _evaluate("2*(3-(1+4))*2") == -8
    assert _evaluate("8-2*3+1") == 3


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_answers_match_a_scratch_evaluation_of_the_prompt(tier):
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = [(item.question, item.answer) for _, item in checked if _solve(H.prompt_text(item)) != item.answer]
    assert mismatches == []


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
