"""boolean: answers re-derived by Python's bitwise operators (~ & ^ | have exactly the stated
NOT > AND > XOR > OR precedence, left to right) on the question text, knobs measured on the text."""

from __future__ import annotations

import pytest

from rs_dagster.tasks.boolean import NOTATIONS
from rs_dagster.tasks.manifold import TIERS
from task_harness import TaskHarness

H = TaskHarness("boolean")
PYTHON = {"NOT": "~", "AND": "&", "XOR": "^", "OR": "|", "(": "(", ")": ")"}


def recompute(item) -> str:
    """True as -1 (all bits set) and False as 0, so ~ is logical negation on both."""
    true, false = NOTATIONS[item.metadata["notation"]]
    words = item.question.split("\n\n")[1].split()
    python = " ".join(PYTHON.get(w) or {true: "-1", false: "0"}[w] for w in words)
    return true if eval(python, {"__builtins__": {}}) == -1 else false


@pytest.mark.parametrize("tier", TIERS)
def test_answers_match_pythons_bitwise_evaluation(tier):
    checked = H.tier_items(tier)
    assert [item for _, item in checked if recompute(item) != item.answer] == []


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
