"""objects: answers re-counted from the prompt text alone, reading its number words and nouns against the
shipped category file, difficulty knobs measured, parser on realistic outputs, bad parameters rejected."""

from __future__ import annotations

import json
import re
from statistics import mean

import pytest
from task_harness import ROOT, TaskHarness

from rs_dagster.tasks.manifold import TIERS

H = TaskHarness("objects")
TASK = H.task
CATEGORIES = json.loads((ROOT / "rs_dagster" / "tasks" / "data" / "objects.json").read_text())["categories"]
SINGULAR = {singular: name for name, c in CATEGORIES.items() for singular, _ in c["items"]}
PLURAL = {plural: name for name, c in CATEGORIES.items() for _, plural in c["items"]}
CATEGORY_ASKED_AS = {c["asked_as"]: name for name, c in CATEGORIES.items()}
ONE = ("a", "an", "one")
MANY = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
        "eleven": 11, "twelve": 12}
SENTENCE = re.compile(r"(?:I have|I also have|In addition, I own|My household also includes|Besides that, I have) (.+?)\.")
QUESTION = re.compile(r"How many (.+) do I have( in total)?\?")


def test_no_noun_belongs_to_two_categories():
    nouns = [noun for c in CATEGORIES.values() for singular, plural in c["items"] for noun in {singular, plural}]
    assert len(nouns) == len(set(nouns))


def _split(listing: str) -> list[str]:
    """"a, b and c" -> [a, b, c]: the narrative lists without a serial comma."""
    *rest, last = listing.split(", ")
    return rest + last.split(" and ")


def _quantity(word: str, noun: str) -> tuple[int, str]:
    """(how many, category) of one mention: "no" with a plural is none, "a"/"an"/"one" with a singular one,
    a number word with a plural that many; a number whose noun has the wrong number fails."""
    if word == "no":
        return 0, PLURAL[noun]
    if word in ONE:
        assert word == ("an" if noun[0] in "aeiou" else "a") or word == "one", f"{word} {noun}"
        return 1, SINGULAR[noun]
    return MANY[word], PLURAL[noun]


def _read(prompt: str) -> tuple[list[tuple[int, str]], list[str]]:
    """((quantity, category) per mention, asked categories) from the prompt text."""
    text, _instruction = prompt.split("\n\n")
    narrative, ask = text.rsplit(" How many ", 1)
    assert SENTENCE.sub("", narrative).strip() == "", "every sentence is a list of possessions"
    mentions = [_quantity(*mention.split(" ", 1)) for listing in SENTENCE.findall(narrative) for mention in _split(listing)]
    asked_as, in_total = QUESTION.fullmatch("How many " + ask).groups()
    asked = [CATEGORY_ASKED_AS[name] for name in _split(asked_as)]
    assert bool(in_total) == (len(asked) > 1)
    return mentions, asked


def _recount(prompt: str) -> str:
    mentions, asked = _read(prompt)
    return str(sum(quantity for quantity, category in mentions if category in asked))


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_answers_match_a_recount_of_the_prompt_text(tier):
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = [(item.question, item.answer) for _, item in checked if _recount(H.prompt_text(item)) != item.answer]
    assert mismatches == []


def test_length_targets_distractors_and_zeros_show_in_the_text():
    zeros = []
    for params in H.points():
        for item in H.items(params, 16):
            mentions, asked = _read(H.prompt_text(item))
            categories = {category for _, category in mentions}
            assert len(mentions) == params["length"]
            assert len(asked) == params["targets"] and set(asked) <= categories
            assert len(categories) == params["targets"] + params["distractors"]
            assert not re.search(r"\d", item.question), "quantities are written as words"
            zeros += [quantity == 0 for quantity, _ in mentions]
    assert 0.1 < mean(zeros) < 0.2
    sizes = [mean(len(i.question) for i in H.items({"length": n, "targets": 2, "distractors": 2, "max_quantity": 6,
                                                   "zero_share": 0.15}, 32)) for n in (6, 24, 48)]
    assert sizes == sorted(sizes) and sizes[2] > 4 * sizes[0]


def test_parser_on_realistic_outputs():
    item = H.items({"length": 12, "targets": 2, "distractors": 2, "max_quantity": 6, "zero_share": 0.15}, 4)[0]
    answer, decoy = item.answer, str(int(item.answer) + 4)
    outputs = [
        f"Fruits: 2 + 3 = 5. Tools: 1 + 0 = 1. Distractors total {decoy}, which we ignore.\n\nANSWER: {answer}",
        f"**ANSWER: {answer}**",
        f"In total $\\boxed{{{answer}}}$ items.",
        f"ANSWER: {answer}\n\n(The {decoy} other things belong to other categories.)",
        f"final answer: {answer} items",
        f"So you have {answer}.",
    ]
    H.assert_parses(item, outputs, decoy, unparsable=("You have quite a lot of things.",))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"length": 0, "targets": 1}, "length"),
        ({"length": 6, "targets": 0}, "targets"),
        ({"length": 6, "targets": 1, "distractors": -1}, "distractors"),
        ({"length": 6, "targets": 5, "distractors": 5}, "targets + distractors"),
        ({"length": 2, "targets": 2, "distractors": 1}, "length 2"),
        ({"length": 30, "targets": 1, "distractors": 1}, "length 30"),
        ({"length": 6, "targets": 1, "max_quantity": 13}, "max_quantity"),
        ({"length": 6, "targets": 1, "zero_share": 2.0}, "zero_share"),
    ],
)
def test_bad_params_are_rejected(params, field):
    H.assert_rejected(params, field)
