"""cars: answers re-derived by replaying the story text on a car -> passenger list, difficulty knobs
counted in the text, parser on realistic outputs, bad parameters rejected."""

from __future__ import annotations

import re
from statistics import mean

import pytest

from rs_dagster.tasks.manifold import TIERS
from task_harness import TaskHarness

H = TaskHarness("cars")
TASK = H.task

SWAP_PEOPLE = re.compile(r"(\w+) and (\w+) swap seats\.")
MOVE = re.compile(r"(\w+) moves to car (\d+)\.")
SWAP_CARS = re.compile(r"The passengers of car (\d+) and car (\d+) trade places\.")
SHIFT = re.compile(r"Everyone moves one car toward the (back|front), and whoever is in car \d+ moves to car \d+\.")


def _replay(question: str) -> tuple[str, dict[str, int]]:
    """The answer found by replaying the story on a list indexed by car, and how many lines of each kind."""
    setup, story, ask = question.split("\n\n")[0], question.split("\n\n")[2], question.split("\n\n")[3]
    cars = int(re.match(r"A train has (\d+) cars", setup).group(1))
    occupant: list[str | None] = [None] * cars
    for person, car in re.findall(r"(\w+) sits in car (\d+)\.", setup):
        assert occupant[int(car) - 1] is None
        occupant[int(car) - 1] = person
    kinds = {"swap_people": 0, "move": 0, "swap_cars": 0, "shift": 0, "confounder": 0}
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
            occupant[a], occupant[b] = occupant[b], occupant[a]
            kinds["swap_cars"] += 1
        elif m := SHIFT.fullmatch(line):
            occupant = occupant[-1:] + occupant[:-1] if m[1] == "back" else occupant[1:] + occupant[:1]
            kinds["shift"] += 1
        else:
            kinds["confounder"] += 1
    if m := re.fullmatch(r"Which car is (\w+) in now\?", ask):
        return str(occupant.index(m[1]) + 1), kinds
    car = int(re.fullmatch(r"Who is in car (\d+) now\?", ask).group(1))
    assert occupant[car - 1] is not None
    return occupant[car - 1], kinds


@pytest.mark.parametrize("tier", TIERS)
def test_answers_match_a_replay_of_the_text(tier):
    checked = H.tier_items(tier)
    mismatches = [item for _, item in checked if _replay(item.question)[0] != item.answer]
    assert mismatches == []


def test_moves_kinds_confounders_and_entities_show_in_the_text():
    for params in H.points():
        for item in H.items(params, 32):
            _, kinds = _replay(item.question)
            assert kinds.pop("confounder") == params["confounders"]
            assert sum(kinds.values()) == params["moves"]
            allowed = ("swap_people", "move", "swap_cars", "shift")[: params["operation_kinds"]]
            assert {k for k, n in kinds.items() if n} <= set(allowed)
            assert len(re.findall(r"sits in car", item.question)) == params["entities"]
            assert item.guess_chance in (1 / params["entities"], 1 / (params["entities"] + params["empty_cars"]))
    used = {kind for item in H.items({"entities": 8, "moves": 32, "operation_kinds": 4, "confounders": 0, "empty_cars": 2})
            for kind, n in _replay(item.question)[1].items() if n and kind != "confounder"}
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
