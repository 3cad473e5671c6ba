"""shuffle: track who holds what after a story of pairwise swaps salted with swaps that never happen.

Write-in: the answer is the item's name. It is always one of the `people` items named in the story, so a
uniform guess among them is right with chance 1/people, and that is the guess_chance.

Difficulty: `people` (holders, and so items), `swaps` (swaps that happen), `confounders` (sentences
that talk about a swap which does not happen; metadata counts how many would change the answer had they
happened).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from rs_dagster.scoring.parsing import AnswerParser, names_parser
from rs_dagster.tasks.base import Item, Task, TaskParams, uint32_draws

PEOPLE = (
    "Alice", "Bob", "Claire", "Dave", "Eve", "Fred", "Gertrude", "Hank", "Irene", "Jamal", "Karl", "Lola",
    "Mona", "Nate", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Victor", "Wendy", "Xavier",
)


@dataclass(frozen=True)
class Domain:
    setting: str  # "{people}" is replaced by the list of names
    holding: str  # how a holding is stated: "{person}" and "{item}"
    noun: str  # the plural the swap sentences use
    swaps: tuple[str, ...]  # sentences for a swap that happens: "{a}", "{b}", "{noun}"
    question: str
    items: tuple[str, ...]
    article: bool = False  # items are written with "a"/"an" ("a red ball")
    suffix: str = ""  # written after the item ("red" -> "red ball")


DOMAINS = {
    "books": Domain(
        "{people} are friends, and each has just bought one book.",
        "{person} has {item}", "books",
        ("{a} and {b} swap books.", "{a} trades books with {b}."),
        "Which book does {person} have at the end?",
        ("Moby Dick", "Dracula", "Beloved", "Frankenstein", "Ulysses", "Middlemarch", "Persuasion", "Jane Eyre",
         "Don Quixote", "Hamlet", "Walden", "Candide", "Ivanhoe", "Dune", "Neuromancer", "Siddhartha", "Heidi"),
    ),
    "dance": Domain(
        "{people} are dancers at a square dance, each with a partner.",
        "{person} is dancing with {item}", "partners",
        ("{a} and {b} switch partners.", "{a} trades partners with {b}."),
        "Who is {person} dancing with at the end?",
        ("Ahmed", "Beatrix", "Carlos", "Delia", "Esteban", "Fiona", "Gustavo", "Helga", "Ivan", "Jolene",
         "Kenji", "Lucia", "Milo", "Nadia", "Oscar", "Petra"),
    ),
    "positions": Domain(
        "{people} are playing in a soccer match, each in a different position.",
        "{person} is playing {item}", "positions",
        ("{a} and {b} trade positions.", "{a} swaps positions with {b}."),
        "Which position is {person} playing at the end?",
        ("goalkeeper", "striker", "sweeper", "left winger", "right winger", "left back", "right back",
         "center midfielder", "attacking midfielder", "stopper"),
    ),
    "balls": Domain(
        "{people} are playing a game, and each holds one ball.",
        "{person} has {item}", "balls",
        ("{a} and {b} swap balls.", "{a} trades balls with {b}."),
        "What color is the ball {person} has at the end?",
        ("red", "blue", "green", "yellow", "purple", "orange", "white", "black", "pink", "brown", "gray", "teal"),
        article=True, suffix=" ball",
    ),
    "gifts": Domain(
        "{people} are at a party, and each has brought a wrapped gift.",
        "{person} has {item}", "gifts",
        ("{a} and {b} exchange gifts.", "{a} swaps gifts with {b}."),
        "Which gift does {person} have at the end?",
        ("scarf", "teapot", "puzzle", "candle", "umbrella", "watch", "kite", "notebook", "lamp", "mug", "hourglass",
         "telescope"),
        article=True,
    ),
}
# Sentences about a swap that does not happen; each says so explicitly.
CONFOUNDERS = (
    "{a} considers trading {noun} with {b} but doesn't.",
    "{a} offers to swap {noun} with {b}, but {b} refuses.",
    "{a} and {b} almost switch {noun}, but change their minds.",
    "{a} asks {b} for a trade, but {b} says no.",
    "{a} thinks about swapping {noun} with {b}, then decides against it.",
)
CONNECTIVES = ("Then", "Next,", "After that,", "Later,")
MAX_PEOPLE = min(len(domain.items) for domain in DOMAINS.values())  # every domain needs an item per person


_VOWEL_SOUNDS = ("a", "e", "i", "o", "u", "hour")  # "an hourglass", as it is said


def _written(domain: Domain, item: str) -> str:
    text = item + domain.suffix
    if domain.article:
        return ("an " if text.startswith(_VOWEL_SOUNDS) else "a ") + text
    return text


GIVEN = r"(?i)\b(?:at|in) the (?:start|beginning)\b"
"""The story's opening state, which a model may repeat: "At the start: ... Rosa is playing sweeper." is no answer."""


class ShuffleParams(TaskParams):
    people: int = Field(ge=2, le=MAX_PEOPLE, description="number of people, each holding one item")
    swaps: int = Field(ge=1, le=64, description="swaps that happen")
    confounders: int = Field(0, ge=0, le=32, description="sentences about swaps that do not happen")


class Shuffle(Task):
    name = "shuffle"
    version = "2"
    description = "Track who holds which item after pairwise swaps, ignoring swaps that do not happen."
    Params = ShuffleParams
    answer_instruction = "End your response with a final line of the form `ANSWER: <item>`, naming the item exactly as the story does."
    parser = names_parser(DOMAINS["books"].items, GIVEN)

    def parser_for(self, metadata: dict[str, Any]) -> AnswerParser:
        return names_parser(tuple(metadata.get("items", DOMAINS["books"].items)), GIVEN)

    def _generate(self, params: ShuffleParams, rng: random.Random) -> Item:
        domain_name = rng.choice(list(DOMAINS))
        domain = DOMAINS[domain_name]
        people = rng.sample(PEOPLE, params.people)
        items = rng.sample(domain.items, params.people)
        holding = dict(zip(people, items))

        count, n = params.swaps + params.confounders, params.people
        # One block of uint32 draws, four per sentence (order, two people, wording): the story is the hot
        # loop at many swaps, and one C call beats a random() call per choice.
        draws = uint32_draws(rng, 4 * count).tolist()
        happens = [True] * params.swaps + [False] * params.confounders
        for i in range(count - 1, 0, -1):  # Fisher-Yates
            j = draws[4 * i] % (i + 1)
            happens[i], happens[j] = happens[j], happens[i]
        final, literal, sentences = dict(holding), dict(holding), []
        involved: set[str] = set()
        for i, real in enumerate(happens):
            first, second, wording = draws[4 * i + 1] % n, draws[4 * i + 2] % (n - 1), draws[4 * i + 3]
            a, b = people[first], people[second + (second >= first)]
            templates = domain.swaps if real else CONFOUNDERS
            sentence = templates[wording % len(templates)].format(a=a, b=b, noun=domain.noun)
            sentences.append(f"First, {sentence}" if i == 0 else f"{CONNECTIVES[(wording >> 8) % len(CONNECTIVES)]} {sentence}")
            literal[a], literal[b] = literal[b], literal[a]
            if real:
                final[a], final[b] = final[b], final[a]
                involved.update((a, b))
        asked = rng.choice([p for p in people if p in involved])

        start = "; ".join(domain.holding.format(person=p, item=_written(domain, holding[p])) for p in people)
        story = " ".join(sentences)
        question = (
            f"{domain.setting.format(people=_listing(people))} At the start: {start}.\n\n{story}\n\n"
            f"{domain.question.format(person=asked)}"
        )
        return Item(
            question=question,
            answer=final[asked],
            guess_chance=1 / params.people,
            metadata={
                "domain": domain_name,
                "people": params.people,
                "asked": asked,
                "items": items,
                "swaps": params.swaps,
                "confounders": params.confounders,
                "answer_is_start_item": final[asked] == holding[asked],
                "confounders_would_change_answer": literal[asked] != final[asked],
            },
        )


def _listing(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f", and {names[-1]}" if len(names) > 2 else " and ".join(names)
