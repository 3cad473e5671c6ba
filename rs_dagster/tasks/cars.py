"""cars: passengers sit in the numbered cars of a train; track them through a story of seat changes.

Difficulty: `moves` (real operations), `operation_kinds` (how many of: two people swap seats, a person
moves to an empty car, the passengers of two cars trade places, everyone shifts one car along),
`confounders` (sentences that name people, cars and actions but change nothing: a declined swap, a
round trip, a plan that is called off), `entities` (passengers). `empty_cars` leaves room for moves.
The question asks either who is in a car or which car a person is in.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from rs_dagster.scoring.parsing import NUMBER_PARSER, AnswerParser
from rs_dagster.tasks.base import Item, Task, TaskParams, join_and

NAMES = (
    "Alice", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Isabel", "Jonas", "Kira", "Liam",
    "Maya", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Samir", "Tessa", "Umar", "Vera", "Wen", "Ximena",
    "Yusuf", "Zoe",
)
OPERATION_KINDS = ("swap_people", "move", "swap_cars", "shift")

_CONFOUNDERS = (
    "{a} thinks about moving to car {car}, but decides to stay put.",
    "{a} asks {b} to swap seats, but {b} says no.",
    "{a} walks to car {car} to buy a coffee and then returns to the same seat.",
    "The conductor suggests that the passengers of car {first} and car {second} trade places, but nobody moves.",
    "{a} and {b} almost swap seats, but change their minds.",
    "{a} waves at someone through the window of car {car}.",
    "A rumour says everyone will shift one car along, but it turns out to be false.",
)


PERSON_PARSER = AnswerParser(value_pattern=rf"(?<![\w'])(?:{'|'.join(NAMES)})(?![\w'])", normalize=str.capitalize, free_text=True)
CAR_PARSER = NUMBER_PARSER


class CarsParams(TaskParams):
    entities: int = Field(ge=2, le=len(NAMES), description="passengers")
    moves: int = Field(ge=1, le=256, description="operations that change seats")
    operation_kinds: int = Field(ge=1, le=len(OPERATION_KINDS), description=f"kinds used, from {OPERATION_KINDS}")
    confounders: int = Field(0, ge=0, le=256, description="sentences that look like operations but change nothing")
    empty_cars: int = Field(2, ge=1, le=16, description="cars without a passenger at the start")


def _one(rng: random.Random, items: Sequence[Any]) -> Any:
    """rng.choice, several times faster; it runs for every sentence of long stories."""
    return items[int(rng.random() * len(items))]


def _two(rng: random.Random, items: Sequence[Any]) -> tuple[Any, Any]:
    """Two distinct items, like rng.sample(items, 2) but several times faster."""
    first = int(rng.random() * len(items))
    second = int(rng.random() * (len(items) - 1))
    return items[first], items[second + (second >= first)]


def _operation(kind: str, seats: dict[str, int], people: list[str], cars: int, rng: random.Random) -> str:
    """Apply one operation of `kind` to `seats` (person -> car) and return the sentence that narrates it."""
    if kind == "swap_people":
        a, b = _two(rng, people)
        seats[a], seats[b] = seats[b], seats[a]
        return f"{a} and {b} swap seats."
    if kind == "move":
        person = _one(rng, people)
        taken = set(seats.values())
        seats[person] = _one(rng, [car for car in range(1, cars + 1) if car not in taken])
        return f"{person} moves to car {seats[person]}."
    if kind == "swap_cars":
        a, b = _two(rng, people)
        seats[a], seats[b] = seats[b], seats[a]
        first, second = sorted((seats[b], seats[a]))
        return f"The passengers of car {first} and car {second} trade places."
    step = 1 if rng.random() < 0.5 else -1
    for person, car in seats.items():
        seats[person] = (car - 1 + step) % cars + 1
    if step == 1:
        return f"Everyone moves one car toward the back, and whoever is in car {cars} moves to car 1."
    return f"Everyone moves one car toward the front, and whoever is in car 1 moves to car {cars}."


class Cars(Task):
    name = "cars"
    version = "2"
    description = "Track passengers through seat swaps, moves and shifts between train cars, ignoring non-events."
    Params = CarsParams
    answer_instruction = (
        "End your response with a final line of the form `ANSWER: <answer>`, giving only the person's name "
        "or only the car number that was asked for."
    )
    parser = PERSON_PARSER

    def parser_for(self, metadata: dict[str, Any]) -> AnswerParser:
        return CAR_PARSER if metadata.get("asks") == "car" else PERSON_PARSER

    def _generate(self, params: CarsParams, rng: random.Random) -> Item:
        cars = params.entities + params.empty_cars
        people = rng.sample(NAMES, params.entities)
        seats = dict(zip(people, rng.sample(range(1, cars + 1), params.entities)))
        empty = sorted(set(range(1, cars + 1)) - set(seats.values()))
        setup = (
            f"A train has {cars} cars, numbered 1 (front) to {cars} (back). "
            + " ".join(f"{person} sits in car {seats[person]}." for person in people)
            + f" Car{'s' if len(empty) > 1 else ''} {join_and(list(map(str, empty)))} {'are' if len(empty) > 1 else 'is'} empty."
        )
        kinds = OPERATION_KINDS[: params.operation_kinds]
        story, used, moves_left, confounders_left = [], set(), params.moves, params.confounders
        while moves_left + confounders_left:
            # a uniformly random interleaving, one draw per sentence (cheaper than shuffling a plan)
            real = rng.random() * (moves_left + confounders_left) < moves_left
            moves_left -= real
            confounders_left -= not real
            if real:
                kind = _one(rng, kinds)
                used.add(kind)
                story.append(_operation(kind, seats, people, cars, rng))
            else:
                a, b = _two(rng, people)
                car, other = _two(rng, range(1, cars + 1))
                if car == seats[a]:  # nobody walks to, or thinks of moving to, the car they already sit in
                    car = other
                first, second = sorted((seats[a], seats[b]))  # the conductor names two cars with passengers
                story.append(_one(rng, _CONFOUNDERS).format(a=a, b=b, car=car, first=first, second=second))
        if rng.random() < 0.5:
            person = rng.choice(people)
            asks, ask, answer, options = "car", f"Which car is {person} in now?", str(seats[person]), cars
        else:
            car = rng.choice(sorted(seats.values()))
            asks, ask, options = "person", f"Who is in car {car} now?", params.entities
            answer = next(p for p, c in seats.items() if c == car)
        question = (
            f"{setup}\n\nThen the following happens, in this order. Some sentences may describe seat changes that do not actually happen; only actual changes count.\n\n"
            + "\n".join(story)
            + f"\n\n{ask}"
        )
        return Item(
            question=question,
            answer=answer,
            guess_chance=1 / options,
            metadata={
                "asks": asks,
                "cars": cars,
                "people": people,
                "moves": params.moves,
                "confounders": params.confounders,
                "kinds_used": sorted(used),
            },
        )
