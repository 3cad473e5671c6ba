"""cars: answers re-derived from the prompt text alone by replaying every story sentence, as it reads, on
a car -> passenger list (a sentence that matches no known form fails the test rather than being skipped),
difficulty knobs counted in the text, parser on realistic outputs, bad parameters rejected."""

from __future__ import annotations

import re
from statistics import mean

import pytest
from task_harness import TaskHarness

from rs_dagster.tasks.manifold import TIERS

H = TaskHarness("cars")
TASK = H.task

SETUP = re.compile(r"A train has (\d+) cars, numbered 1 \(front\) to (\d+) \(back\)\. (.+)")
SEAT = re.compile(r"(\w+) sits in car (\d+)\.")
EMPTY = re.compile(r"Cars? ([\d, and]+) (?:is|are) empty\.")
# "may": a story with no non-events (confounders 0) is not told that it has some.
INTRO = ("Then the following happens, in this order. Some sentences may describe seat changes that do not actually "
         "happen; only actual changes count.")
SWAP_PEOPLE = re.compile(r"(\w+) and (\w+) swap seats\.")
MOVE = re.compile(r"(\w+) moves to car (\d+)\.")
SWAP_CARS = re.compile(r"The passengers of car (\d+) and car (\d+) trade places\.")
SHIFT = re.compile(r"Everyone moves one car toward the (back|front), and whoever is in car (\d+) moves to car (\d+)\.")
# Sentences whose own words say that nobody ends up in another seat.
NON_EVENTS = tuple(map(re.compile, (
    r"(\w+) thinks about moving to car (\d+), but decides to stay put\.",
    r"(\w+) asks (\w+) to swap seats, but \2 says no\.",
    r"(\w+) walks to car (\d+) to buy a coffee and then returns to the same seat\.",
    r"The conductor suggests that the passengers of car (\d+) and car (\d+) trade places, but nobody moves\.",
    r"(\w+) and (\w+) almost swap seats, but change their minds\.",
    r"(\w+) waves at someone through the window of car (\d+)\.",
    r"A rumour says everyone will shift one car along, but it turns out to be false\.",
)))


def _assert_sensible(non_event: str, occupant: list[str | None]) -> None:
    """Nobody walks to, or thinks of moving to, the car they sit in, and the conductor's suggested trade
    names two cars that have passengers: the sentence would not make sense otherwise."""
    if m := re.match(r"(\w+) (?:thinks about moving|walks) to car (\d+)", non_event):
        assert occupant[int(m[2]) - 1] != m[1], f"already sits there: {non_event}"
    if m := re.match(r"The conductor suggests that the passengers of car (\d+) and car (\d+)", non_event):
        assert occupant[int(m[1]) - 1] and occupant[int(m[2]) - 1], f"a car without passengers: {non_event}"


def _solve(prompt: str) -> tuple[str, dict[str, int]]:
    """The answer the prompt's words give, and how many story sentences of each kind it holds."""
    setup, intro, story, ask, _instruction = prompt.split("\n\n")
    assert intro == INTRO
    cars, last, seating = SETUP.fullmatch(setup).groups()
    assert cars == last
    occupant: list[str | None] = [None] * int(cars)
    for person, car in SEAT.findall(seating):
        assert occupant[int(car) - 1] is None and person not in occupant
        occupant[int(car) - 1] = person
    stated_empty = {int(car) for car in re.findall(r"\d+", EMPTY.fullmatch(SEAT.sub("", seating).strip())[1])}
    assert stated_empty == {car for car, person in enumerate(occupant, 1) if person is None}
    kinds = dict.fromkeys(("swap_people", "move", "swap_cars", "shift", "non_event"), 0)
    for line in story.split("\n"):
        if m := SWAP_PEOPLE.fullmatch(line):
            a, b = occupant.index(m[1]), occupant.index(m[2])
            occupant[a], occupant[b] = occupant[b], occupant[a]
            kinds["swap_people"] += 1
        elif m := MOVE.fullmatch(line):
            target = int(m[2]) - 1
            assert occupant[target] is None, f"moved into an occupied car: {line}"
            occupant[occupant.index(m[1])], occupant[target] = None, m[1]
            kinds["move"] += 1
        elif m := SWAP_CARS.fullmatch(line):
            a, b = int(m[1]) - 1, int(m[2]) - 1
            assert occupant[a] and occupant[b], f"a car without passengers: {line}"
            occupant[a], occupant[b] = occupant[b], occupant[a]
            kinds["swap_cars"] += 1
        elif m := SHIFT.fullmatch(line):
            assert (m[2], m[3]) == ((cars, "1") if m[1] == "back" else ("1", cars)), line
            occupant = occupant[-1:] + occupant[:-1] if m[1] == "back" else occupant[1:] + occupant[:1]
            kinds["shift"] += 1
        else:
            assert any(pattern.fullmatch(line) for pattern in NON_EVENTS), f"unknown sentence: {line}"
            _assert_sensible(line, occupant)
            kinds["non_event"] += 1
    if m := re.fullmatch(r"Which car is (\w+) in now\?", ask):
        return str(occupant.index(m[1]) + 1), kinds
    car = int(re.fullmatch(r"Who is in car (\d+) now\?", ask)[1])
    assert occupant[car - 1] is not None, f"nobody is in car {car}"
    return occupant[car - 1], kinds


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_answers_match_a_replay_of_the_prompt_text(tier):
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = [(item.question, item.answer) for _, item in checked if _solve(H.prompt_text(item))[0] != item.answer]
    assert mismatches == []


def test_moves_kinds_confounders_and_entities_show_in_the_text():
    for params in H.points():
        for item in H.items(params, 32):
            _, kinds = _solve(H.prompt_text(item))
            assert kinds.pop("non_event") == params["confounders"]
            assert sum(kinds.values()) == params["moves"]
            allowed = ("swap_people", "move", "swap_cars", "shift")[: params["operation_kinds"]]
            assert {k for k, n in kinds.items() if n} <= set(allowed)
            assert len(re.findall(r"sits in car", item.question)) == params["entities"]
            assert item.guess_chance in (1 / params["entities"], 1 / (params["entities"] + params["empty_cars"]))
    used = {kind for item in H.items({"entities": 8, "moves": 32, "operation_kinds": 4, "confounders": 0, "empty_cars": 2})
            for kind, n in _solve(H.prompt_text(item))[1].items() if n and kind != "non_event"}
    assert used == {"swap_people", "move", "swap_cars", "shift"}
    lengths = [mean(len(i.question) for i in H.items({"entities": 8, "moves": 16, "operation_kinds": 4, "confounders": c,
                                                     "empty_cars": 2}, 32)) for c in (0, 8, 32)]
    assert lengths == sorted(lengths) and lengths[2] > lengths[0] + 1000


def test_both_question_kinds_are_asked():
    asks = [item.metadata["asks"] for item in H.items({"entities": 5, "moves": 8, "operation_kinds": 3, "confounders": 2, "empty_cars": 2})]
    assert 0.3 < asks.count("car") / len(asks) < 0.7


def _item_asking(kind):
    return next(i for i in H.items({"entities": 8, "moves": 16, "operation_kinds": 4, "confounders": 4, "empty_cars": 2})
                if i.metadata["asks"] == kind)


def test_parser_on_person_answers():
    item = _item_asking("person")
    name = item.answer
    decoy = next(p for p in item.metadata["people"] if p != name)
    outputs = [
        f"At first {decoy} was in that car, but after the swap with {name} things changed. {decoy} then moved.\n\nANSWER: {name}",
        f"**ANSWER: {name}**",
        f"So the passenger is $\\boxed{{\\text{{{name}}}}}$.",
        f"ANSWER: {name.upper()}\n\nI tracked every swap carefully; the rumour sentence changed nothing.",
        f"final answer: {name.lower()}",
        f"Therefore the answer is {name} (not {decoy}).",
    ]
    H.assert_parses(item, outputs, decoy, unparsable=("Nobody can tell from the story.",))


def test_parser_on_car_answers():
    item = _item_asking("car")
    car = item.answer
    decoy = str(int(car) % item.metadata["cars"] + 1)
    outputs = [
        f"Step 3: moves to car {decoy}. Step 4: shift, car {decoy} -> car {car}.\n\nANSWER: {car}",
        f"**ANSWER: car {car}**",
        f"\\boxed{{{car}}}",
        f"Answer: Car {car}.\n\nThe confounders did not change anything.",
        f"They end up in car {car}",
    ]
    H.assert_parses(item, outputs, decoy, unparsable=("They are somewhere near the front.",))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"entities": 1, "moves": 4, "operation_kinds": 1}, "entities"),
        ({"entities": 27, "moves": 4, "operation_kinds": 1}, "entities"),
        ({"entities": 4, "moves": 0, "operation_kinds": 1}, "moves"),
        ({"entities": 4, "moves": 4, "operation_kinds": 5}, "operation_kinds"),
        ({"entities": 4, "moves": 4, "operation_kinds": 2, "confounders": -1}, "confounders"),
        ({"entities": 4, "moves": 4, "operation_kinds": 2, "empty_cars": 0}, "empty_cars"),
        ({"entities": 4, "moves": 4}, "operation_kinds"),
    ],
)
def test_bad_params_are_rejected(params, field):
    H.assert_rejected(params, field)
