"""objects: answers re-counted by reading the narrative's number words and nouns against the category
file, difficulty knobs measured, parser on realistic outputs, bad parameters rejected."""

from __future__ import annotations

import json
import re
from statistics import mean

import pytest

from rs_dagster.tasks.manifold import TIERS
from task_harness import ROOT, TaskHarness

H = TaskHarness("objects")
TASK = H.task
CATEGORIES = json.loads((ROOT / "rs_dagster" / "tasks" / "data" / "objects.json").read_text())["categories"]
CATEGORY_OF_NOUN = {noun: name for name, c in CATEGORIES.items() for pair in c["items"] for noun in pair}
CATEGORY_ASKED_AS = {c["asked_as"]: name for name, c in CATEGORIES.items()}
QUANTITY = {"no": 0, "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
SENTENCE = re.compile(r"(?:I have|I also have|In addition, I own|My household also includes|Besides that, I have) (.+?)\.")


def test_no_noun_belongs_to_two_categories():
    nouns = [noun for c in CATEGORIES.values() for singular, plural in c["items"] for noun in {singular, plural}]
    assert len(nouns) == len(set(nouns))


def _split(listing: str) -> list[str]:
    return [part for chunk in listing.split(", ") for part in chunk.split(" and ")]


def _read(question: str) -> tuple[list[tuple[int, str]], list[str]]:
    """((quantity, category) per mention, asked categories) from the text."""
    narrative, ask = question.rsplit(" How many ", 1)
    mentions = []
    for listing in SENTENCE.findall(narrative):
        for mention in _split(listing):
            word, noun = mention.split(" ", 1)
            mentions.append((QUANTITY[word], CATEGORY_OF_NOUN[noun]))
    assert SENTENCE.sub("", narrative).strip() == "", "every sentence is a list of possessions"
    asked = [CATEGORY_ASKED_AS[name] for name in _split(ask.split(" do I have")[0])]
    return mentions, asked


def _recount(question: str) -> str:
    mentions, asked = _read(question)
    return str(sum(quantity for quantity, category in mentions if category in asked))


@pytest.mark.parametrize("tier", TIERS)
def test_answers_match_a_recount_of_the_text(tier):
    checked = H.tier_items(tier)
    assert [item.question for _, item in checked if _recount(item.question) != item.answer] == []


def test_length_targets_distractors_and_zeros_show_in_the_text():
    zeros = []
    for params in H.points():
        for item in H.items(params, 16):
            mentions, asked = _read(item.question)
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
