"""boolean: answers re-derived from the prompt text alone by an evaluator written from scratch that
takes the notation and the precedence order from the prompt's own sentence, knobs measured on the text."""

from __future__ import annotations

import re

import pytest
from task_harness import TaskHarness

from rs_dagster.tasks.boolean import NOTATIONS
from rs_dagster.tasks.manifold import TIERS

H = TaskHarness("boolean")
STATED_RULES = re.compile(
    r"where (\S+) means true and (\S+) means false\. NOT binds tightest, then (\w+), then (\w+), then (\w+); "
    r"operators of equal precedence apply left to right\."
)


def _solve(prompt: str) -> str:
    """NOT before the binary operators in the order the prompt lists them, equal ones left to right."""
    rules, text, _ = prompt.split("\n\n")
    true, false, *tightest_first = STATED_RULES.search(rules).groups()
    loosest_first = tightest_first[::-1]
    combine = {"AND": lambda a, b: a and b, "OR": lambda a, b: a or b, "XOR": lambda a, b: a != b}
    tokens = re.findall(r"[()]|[^\s()]+", text)
    position = 0

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def upcoming() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def operand() -> bool:
        token = take()
        if token == "NOT":
            return not operand()
        if token == "(":
            value = level(0)
            assert take() == ")", text
            return value
        return {true: True, false: False}[token]

    def level(index: int) -> bool:
        if index == len(loosest_first):
            return operand()
        value = level(index + 1)
        while upcoming() == loosest_first[index]:
            take()
            value = combine[loosest_first[index]](value, level(index + 1))
        return value

    value = level(0)
    assert position == len(tokens), text
    return true if value else false


def test_the_scratch_evaluator_follows_the_stated_precedence():
    rules = ("Evaluate the following boolean expression, where T means true and F means false. NOT binds tightest, "
             "then AND, then XOR, then OR; operators of equal precedence apply left to right.")
    cases = {"T OR T XOR T": "T", "F AND F XOR T": "T", "NOT T OR T AND F": "F", "NOT ( T XOR T ) AND T": "T",
             "T XOR T AND F": "T"}
    for text, value in cases.items():
        assert _solve(f"{rules}\n\n{text}\n\nEnd.") == value, text


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_answers_match_a_scratch_evaluation_of_the_prompt(tier):
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = [(item.question, item.answer) for _, item in checked if _solve(H.prompt_text(item)) != item.answer]
    assert mismatches == []


def test_length_depth_and_notation_show_in_the_text():
    for params in H.points():
        true, false = NOTATIONS[params["notation"]]
        for item in H.items(params, 8):
            words = item.question.split("\n\n")[1].split()
            assert sum(w in (true, false) for w in words) == params["length"]
            depth = deepest = 0
            for w in words:
                depth += {"(": 1, ")": -1}.get(w, 0)
                deepest = max(deepest, depth)
            assert deepest == params["depth"] and item.answer in (true, false)


def test_the_parser_reads_only_the_items_notation():
    item = H.items({"length": 6, "depth": 1, "notation": "on_off", "negation_rate": 0.25}, 1)[0]
    other = "OFF" if item.answer == "ON" else "ON"
    H.assert_parses(
        item,
        [
            f"NOT ON is OFF, ON AND OFF is OFF, so far {other}.\n\nANSWER: {item.answer}",
            f"The final answer is \\boxed{{{item.answer}}}",
            f"**ANSWER:** {item.answer.lower()}.",
        ],
        wrong=other,
        unparsable=("ANSWER: True",),
    )


def test_depth_beyond_the_length_is_rejected():
    H.assert_rejected({"length": 2, "depth": 3, "notation": "t_f"}, "length")
