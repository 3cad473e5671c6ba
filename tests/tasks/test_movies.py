"""movies: the catalogue is sound, every item has exactly one option sharing a tag with all liked films
(checked from the question text against the catalogue file), difficulty knobs show, parser on realistic
outputs, bad parameters rejected."""

from __future__ import annotations

import json
import re

import pytest

from rs_dagster.tasks.manifold import TIERS
from task_harness import ROOT, TaskHarness

H = TaskHarness("movies")
TASK = H.task
CATALOGUE = json.loads((ROOT / "rs_dagster" / "tasks" / "data" / "movies.json").read_text())["films"]
TAGS = {film["title"]: set(film["tags"]) for film in CATALOGUE}
LISTED = re.compile(r"^(.*?)(?: \((\d{4})(?:; (.*))?\))?$")


def test_catalogue_has_enough_distinct_well_formed_films():
    assert len(CATALOGUE) >= 120
    assert len(TAGS) == len(CATALOGUE), "titles must be unique"
    for film in CATALOGUE:
        assert 1900 <= film["year"] <= 2025 and film["tags"]
        assert len(set(film["tags"])) == len(film["tags"])
        assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", tag) for tag in film["tags"])
        assert "(" not in film["title"], "titles are parsed up to the hint in parentheses"


def _read(question: str) -> tuple[list[str], dict[str, str], list[str | None]]:
    """(liked titles, option letter -> title, hints seen) from the question text."""
    liked, options, hints = [], {}, []
    for line in question.splitlines():
        if line.startswith("- "):
            title, year, tags = LISTED.match(line[2:]).groups()
            liked.append(title)
            hints.append("tags" if tags else "years" if year else "none")
        elif m := re.match(r"^([A-H])\) (.*)$", line):
            title, year, tags = LISTED.match(m[2]).groups()
            options[m[1]] = title
            hints.append("tags" if tags else "years" if year else "none")
    return liked, options, hints


def _fitting_options(question: str) -> list[str]:
    liked, options, _ = _read(question)
    shared = set.intersection(*(TAGS[title] for title in liked))
    return [letter for letter, title in options.items() if TAGS[title] & shared]


@pytest.mark.parametrize("tier", TIERS)
def test_exactly_one_option_shares_a_tag_with_every_liked_film(tier):
    checked = H.tier_items(tier)
    assert [item.question for _, item in checked if _fitting_options(item.question) != [item.answer]] == []
    for _, item in checked:
        liked, options, _ = _read(item.question)
        liked_tags = set().union(*(TAGS[title] for title in liked))
        wrong = [title for letter, title in options.items() if letter != item.answer]
        assert not any(TAGS[title] & liked_tags for title in wrong), "wrong options must share no tag with liked films"
        assert not set(liked) & set(options.values())


def test_references_choices_and_hints_show_in_the_text():
    for params in H.points():
        for item in H.items(params, 16):
            liked, options, hints = _read(item.question)
            assert (len(liked), len(options)) == (params["references"], params["choices"])
            assert set(hints) == {params["hints"]}
            assert item.guess_chance == 1 / params["choices"]
    positions = [item.answer for item in H.items({"references": 2, "choices": 4, "hints": "none"})]
    assert set(positions) == set("ABCD"), "the right option must not sit in a fixed place"


def test_parser_on_realistic_outputs():
    item = H.items({"references": 2, "choices": 6, "hints": "years"}, 4)[0]
    answer = item.answer
    decoy = next(letter for letter in "ABCDEF" if letter != answer)
    _, options, _ = _read(item.question)
    outputs = [
        f"Option {decoy} is a different genre. Option {answer} shares the theme with both films.\n\nANSWER: {answer}",
        f"**ANSWER: {answer}**",
        f"$\\boxed{{{answer}}}$",
        f"ANSWER: {answer}) {options[answer]}\n\nA good pick because of the shared genre.",
        f"answer: ({answer.lower()})",
        f"Final answer: {answer.lower()}",
        f"The answer is {answer}, {options[answer]}.",
    ]
    H.assert_parses(item, outputs, decoy, unparsable=("I honestly cannot decide between these.",))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"references": 0, "choices": 4}, "references"),
        ({"references": 7, "choices": 4}, "references"),
        ({"references": 2, "choices": 1}, "choices"),
        ({"references": 2, "choices": 9}, "choices"),
        ({"references": 2, "choices": 4, "hints": "plot"}, "hints"),
        ({"choices": 4}, "references"),
    ],
)
def test_bad_params_are_rejected(params, field):
    H.assert_rejected(params, field)
