"""brackets: answers re-derived from the prompt text alone with a stack over the pairs the prompt lists,
difficulty knobs measured on the text, parser on realistic outputs (including braces inside \\boxed{}),
bad parameters rejected."""

from __future__ import annotations

import re
from statistics import mean

import pytest
from task_harness import TaskHarness

from rs_dagster.tasks.manifold import TIERS

H = TaskHarness("brackets")
TASK = H.task
MATCHING = {"(": ")", "[": "]", "{": "}", "<": ">"}


def _sequence(question: str) -> list[str]:
    return question.split("Sequence: ", 1)[1].split()


def _solve(prompt: str) -> str:
    """Each closer must close the most recently opened bracket still open (closed in the correct order);
    the answer closes the ones left open, innermost first, using only the pairs the prompt lists."""
    listed = re.search(r"The bracket pairs used are (.+?)\. Give only the closing brackets", prompt)[1]
    closer_of = dict(pair.split(" ") for pair in listed.split(", "))
    open_now = []
    for bracket in re.search(r"^Sequence: (.+)$", prompt, re.M)[1].split(" "):
        if bracket in closer_of:
            open_now.append(bracket)
        else:
            assert open_now and closer_of[open_now.pop()] == bracket, f"{bracket} closes nothing open: {prompt}"
    return "".join(closer_of[opener] for opener in reversed(open_now))


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_answers_match_a_stack_over_the_prompt(tier):
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = [(item.question, item.answer) for _, item in checked if _solve(H.prompt_text(item)) != item.answer]
    assert mismatches == []
    assert all(item.answer and TASK.score(item.answer, item.answer, item.metadata) for _, item in checked)


def _depths(sequence: list[str]) -> list[int]:
    depth, depths = 0, []
    for c in sequence:
        depth += 1 if c in MATCHING else -1
        depths.append(depth)
    return depths


def test_length_depth_and_types_are_what_the_params_say():
    for params in H.points(types=4) + H.points(length=64, depth=8):
        for item in H.items(params, 64):
            sequence = _sequence(item.question)
            assert len(sequence) == params["length"]
            depths = _depths(sequence)
            assert max(depths) == params["depth"] and min(depths) >= 0
            assert depths[-1] == len(item.answer) == item.metadata["unclosed"] >= 1
            assert set(sequence) <= set("()[]<>{}"[: 2 * params["types"]])


def test_more_types_use_more_kinds_and_longer_prefixes_make_longer_questions():
    kinds = {t: mean(len(set(_sequence(i.question)) & set(MATCHING)) for i in H.items({"length": 64, "depth": 8, "types": t}))
             for t in (1, 2, 4)}
    assert kinds[1] == 1 and 1.9 < kinds[2] <= 2 and 3.5 < kinds[4] <= 4
    sizes = [mean(len(i.question) for i in H.items({"length": n, "depth": 4, "types": 4}, 32)) for n in (8, 32, 128, 256)]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0] + 400


@pytest.fixture(scope="module")
def braced_item():
    return next(i for i in H.items({"length": 32, "depth": 8, "types": 4}) if "}" in i.answer and i.answer[-1] == "}")


def test_parser_on_realistic_outputs(braced_item):
    item, answer = braced_item, braced_item.answer
    spaced = " ".join(answer)
    latex = "".join("\\" + c if c in "{}" else c for c in answer)
    outputs = [
        f"Let me track the stack. After the first part the open brackets are ( [. Closing gives ] ).\n"
        f"Continuing to the end, the stack unwinds as {spaced}.\n\nANSWER: {spaced}",
        f"Reasoning...\n\n**ANSWER: {answer}**",
        f"The closing sequence is therefore $\\boxed{{{answer}}}$",
        f"The closing sequence is therefore $\\boxed{{{latex}}}$",
        f"The closing sequence is therefore $\\boxed{{\\text{{{answer}}}}}$",
        f"ANSWER: {spaced}\n\nThese brackets close every group (innermost first).",
        f"final answer: `{answer}`",
        f"Scratch: ) ] > are decoys.\n{answer}",
    ]
    wrong = answer[:-1] + (")" if answer[-1] != ")" else "]")
    H.assert_parses(item, outputs, wrong, unparsable=("I could not work out which brackets are still open.", ""))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"length": 0, "depth": 1}, "length"),
        ({"length": 8, "depth": 0}, "depth"),
        ({"length": 4, "depth": 8}, "depth"),
        ({"length": 8, "depth": 1}, "depth 1"),
        ({"length": 8, "depth": 2, "types": 5}, "types"),
        ({"length": "long", "depth": 2}, "length"),
        ({"length": 8, "depth": 2, "nesting": 3}, "nesting"),
    ],
)
def test_bad_params_are_rejected(params, field):
    H.assert_rejected(params, field)
