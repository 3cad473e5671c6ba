"""sequence: answers and shown terms re-derived from the prompt text alone by evaluating the rules it
states, over every tier and the whole grid."""

import re
import statistics

import pytest
from task_harness import TaskHarness

from rs_dagster.tasks.manifold import TIERS

H = TaskHarness("sequence")
TASK = H.task

CONDITIONS = [
    (r"n is a multiple of (\d+)", lambda k: lambda n, v: n % k == 0),
    (r"n is odd", lambda: lambda n, v: n % 2 == 1),
    (r"the value is even", lambda: lambda n, v: v % 2 == 0),
    (r"the value is odd", lambda: lambda n, v: v % 2 != 0),
    (r"the value is a multiple of (\d+)", lambda k: lambda n, v: v % k == 0),
    (r"the value is greater than (-?\d+)", lambda t: lambda n, v: v > t),
]


INDEPENDENT = "Every condition about the value tests the base value b(n), and the adjustments that fire all add up."
SEQUENTIAL = "Each condition about the value tests the value as changed by the adjustments above it."


def read_rules(prompt):
    """Start terms, base recurrence, adjustments and which value the conditions test, read from the prompt."""
    starts = [int(v) for v in re.findall(r"a\(\d+\) = (-?\d+)", re.search(r"^Start: (.+)$", prompt, re.M).group(1))]
    formula, first_base = re.search(r"b\(n\) = (.+) for n > (\d+)\.", prompt).groups()
    assert int(first_base) == len(starts)
    assert re.fullmatch(r"(b\(n-[12]\)|n|\d+|[-+*]| )+", formula), formula
    expression = formula.replace("b(n-1)", "p1").replace("b(n-2)", "p2")
    adjustments = []
    for condition, verb, amount in re.findall(r"^\d+\. If (.+), (add|subtract) (\d+)\.$", prompt, re.M):
        for pattern, make in CONDITIONS:
            if m := re.fullmatch(pattern, condition):
                test = make(*map(int, m.groups()))
                adjustments.append((test, int(amount) if verb == "add" else -int(amount)))
                break
        else:
            raise AssertionError(f"unreadable condition {condition!r}")
    if adjustments:
        assert "The base rule continues from the base values b, not from the adjusted terms." in prompt
        assert (INDEPENDENT in prompt) != (SEQUENTIAL in prompt)
    else:
        assert f"For n > {len(starts)}, a(n) = b(n)." in prompt
    return starts, expression, adjustments, SEQUENTIAL in prompt


def solve(prompt, running=None):
    """Every term up to the asked one, computed term by term from the rules the prompt states."""
    starts, expression, adjustments, stated_running = read_rules(prompt)
    running = stated_running if running is None else running
    asked = int(re.search(r"What is a\((\d+)\)\?", prompt).group(1))
    base, terms = list(starts), list(starts)
    while len(terms) < asked:
        n = len(terms) + 1
        b = eval(expression, {"__builtins__": {}, "p1": base[-1], "p2": base[-2] if len(base) > 1 else None, "n": n})
        value = b
        for test, delta in adjustments:
            if test(n, value if running else b):
                value += delta
        base.append(b)
        terms.append(value)
    return terms


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_answers_match_an_independent_reading_of_the_prompt(tier):
    """The shown terms must follow from the stated rules too: they are the model's worked examples."""
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = []
    for _, item in checked:
        prompt = H.prompt_text(item)
        terms = solve(prompt)
        shown = [int(v) for v in re.search(r"terms are: (.+)", prompt).group(1).split(", ")]
        if terms[:-1] != shown or str(terms[-1]) != item.answer:
            mismatches.append((item.question, item.answer))
    assert mismatches == []


def test_more_rules_fire_more_adjustments():
    fired = {}
    for rules in (0, 2, 4, 8):
        items = H.items({"base": "any", "rules": rules, "terms_shown": 12, "interference": "sequential"}, 200)
        fired[rules] = statistics.mean(item.metadata["adjustments_fired"] for item in items)
        assert all(len(item.metadata["rules"]) == rules for item in items)
    assert fired[0] == 0 < fired[2] < fired[4] < fired[8]


def test_more_terms_ask_a_later_larger_term():
    digits = {}
    for shown in (4, 12, 32):
        items = H.items({"base": "any", "rules": 3, "terms_shown": shown, "interference": "sequential"}, 200)
        assert all(f"What is a({shown + 1})?" in item.question for item in items)
        digits[shown] = statistics.mean(len(item.answer.lstrip("-")) for item in items)
    assert digits[4] < digits[12] < digits[32]


def test_sequential_interference_changes_answers():
    """Reading a sequential item as if every condition tested the base value gives another answer often."""
    items = H.items({"base": "any", "rules": 6, "terms_shown": 12, "interference": "sequential"}, 300)
    changed = sum(solve(H.prompt_text(item), running=False)[-1] != int(item.answer) for item in items)
    assert changed / len(items) > 0.15
    assert changed == sum(item.metadata["interference_changed_answer"] for item in items)
    independent = H.items({"base": "any", "rules": 6, "terms_shown": 12, "interference": "independent"}, 100)
    assert not any(item.metadata["interference_changed_answer"] for item in independent)


def test_every_manifold_point_yields_128_distinct_items():
    for point in H.spec.points():
        assert len({item.question for item in H.items(point.params, 128)}) == 128


@pytest.fixture(scope="module")
def item():
    return H.items(H.points("medium")[0], 1)[0]


def test_parser_on_realistic_outputs(item):
    answer = int(item.answer)
    decoy = answer + 17
    outputs = [
        f"b(9) = 40 and a(8) = {decoy}, so the next base value is {decoy - 3}.\nAfter the adjustments:\nANSWER: {answer}",
        f"Working through it, the term is {decoy} before rule 2... then {answer}.\n\n**ANSWER: {answer}**",
        f"Thus $a = \\boxed{{{answer}}}$ and earlier I wrote {decoy}.",
        f"answer: {answer}\nI double-checked the rules, it's consistent with 3 of the shown terms.",
        f"The final answer is {answer}.",
        f"Many steps with {decoy} and 12\n{answer}",
    ]
    H.assert_parses(item, outputs, decoy, unparsable=("I cannot determine the next term.", ""))


def test_large_answers_with_separators_parse(item):
    assert TASK.parse("ANSWER: 1,234,567", item.metadata).value == "1234567"
    assert TASK.parse("ANSWER: \u221242", item.metadata).value == "-42"


@pytest.mark.parametrize(
    "params, field",
    [
        ({"rules": -1, "terms_shown": 8}, "rules"),
        ({"rules": 99, "terms_shown": 8}, "rules"),
        ({"rules": 2, "terms_shown": 2}, "terms_shown"),
        ({"rules": 2, "terms_shown": 8, "interference": "chaotic"}, "interference"),
        ({"rules": 2, "terms_shown": 8, "base": "cubic"}, "base"),
        ({"rules": 2, "terms_shown": 8, "colour": 1}, "colour"),
    ],
)
def test_bad_params_are_rejected_naming_the_field(params, field):
    H.assert_rejected(params, field)
