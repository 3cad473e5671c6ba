"""movies: the catalogue is sound, exactly one option fits the prompt's criterion (read from the prompt
text alone, genres and themes from the catalogue file) on every tier and the whole grid, difficulty
knobs show, parser on realistic outputs, bad parameters rejected."""

from __future__ import annotations

import json
import re

import pytest
from task_harness import ROOT, TaskHarness

from rs_dagster.tasks.manifold import TIERS

H = TaskHarness("movies")
TASK = H.task
CATALOGUE = json.loads((ROOT / "rs_dagster" / "tasks" / "data" / "movies.json").read_text())["films"]
TAGS = {film["title"]: set(film["tags"]) for film in CATALOGUE}
CATALOGUE_TAGS = {film["title"]: film["tags"] for film in CATALOGUE}
YEARS = {film["title"]: film["year"] for film in CATALOGUE}
LISTED = re.compile(r"^(.*?)(?: \((\d{4})(?:; (.*))?\))?$")


def test_catalogue_has_enough_distinct_well_formed_films():
    assert len(CATALOGUE) >= 120
    assert len(TAGS) == len(CATALOGUE), "titles must be unique"
    for film in CATALOGUE:
        assert 1900 <= film["year"] <= 2025 and film["tags"]
        assert len(set(film["tags"])) == len(film["tags"])
        assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", tag) for tag in film["tags"])
        assert "(" not in film["title"], "titles are parsed up to the hint in parentheses"


def _listed(prompt: str) -> list[tuple[str | None, str, int | None, list[str] | None]]:
    """(option letter or None for a liked film, title, year shown, tags shown) of every film line."""
    films = []
    for line in prompt.splitlines():
        if m := re.match(r"^(?:- |([A-H])\) )(.*)$", line):
            title, year, tags = LISTED.match(m[2]).groups()
            films.append((m[1], title, year and int(year), tags and tags.split(", ")))
    return films


def _read(question: str) -> tuple[list[str], dict[str, str], list[str | None]]:
    """(liked titles, option letter -> title, hints seen) from the question text."""
    films = _listed(question)
    liked = [title for letter, title, _, _ in films if letter is None]
    options = {letter: title for letter, title, _, _ in films if letter}
    hints = ["tags" if tags else "years" if year else "none" for _, _, year, tags in films]
    return liked, options, hints


def _fitting_options(prompt: str) -> dict[str, list[str]]:
    """The options that fit the prompt's criterion, "shares a genre or theme with every one of them" (or
    "with it"), under both readings of the words: one genre or theme common to the option and all the
    liked films, or some genre or theme shared with each liked film in turn. Genres and themes come from
    the catalogue file (the world knowledge the prompt asks for)."""
    assert re.search(r"because it shares a genre or theme with (it|every one of them)\?", prompt)
    liked, options, _ = _read(prompt)
    one_for_all = set.intersection(*(TAGS[title] for title in liked))
    return {
        "one genre or theme shared with all": [letter for letter, title in options.items() if TAGS[title] & one_for_all],
        "some genre or theme shared with each": [
            letter for letter, title in options.items() if all(TAGS[title] & TAGS[other] for other in liked)
        ],
    }


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_exactly_one_option_fits_the_prompts_criterion(tier):
    """Read from the prompt text alone: both readings of the criterion single out the stored answer, and
    the years and tags the prompt shows are the catalogue's."""
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = []
    for _, item in checked:
        prompt = H.prompt_text(item)
        for _, title, year, tags in _listed(prompt):
            assert year in (None, YEARS[title]) and tags in (None, CATALOGUE_TAGS[title]), (title, year, tags)
        liked, options, _ = _read(prompt)
        assert len(set(liked) | set(options.values())) == len(liked) + len(options), "a film listed twice"
        if any(fitting != [item.answer] for fitting in _fitting_options(prompt).values()):
            mismatches.append((prompt, item.answer, _fitting_options(prompt)))
    assert mismatches == []


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
