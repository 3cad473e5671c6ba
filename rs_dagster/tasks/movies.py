"""movies: multiple choice, pick the film that fits a viewer's liked films by genre or theme.

Difficulty: `references` (liked films, which all share one salient tag), `choices` (options; exactly
one shares that tag, the others share no tag at all with any liked film or with the answer), `hints`
(what is shown besides titles: nothing, release years, or every film's tags, which turns recall into
matching). The catalogue is hand-written data: rs_dagster/tasks/data/movies.json.
"""

from __future__ import annotations

import json
import random
import string
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from rs_dagster.scoring.parsing import AnswerParser, options_parser
from rs_dagster.tasks.base import Item, Task, TaskParams

FILMS: list[dict[str, Any]] = json.loads((Path(__file__).parent / "data" / "movies.json").read_text())["films"]
SALIENT_TAGS = 3  # a shared criterion uses one of a film's first three tags, so it is what the film is about
MAX_CHOICES = 8
_MAX_DRAWS = 200

_FILMS_WITH_SALIENT: dict[str, list[int]] = defaultdict(list)
for _index, _film in enumerate(FILMS):
    for _tag in _film["tags"][:SALIENT_TAGS]:
        _FILMS_WITH_SALIENT[_tag].append(_index)
_TAG_SETS = [frozenset(film["tags"]) for film in FILMS]

Hints = Literal["none", "years", "tags"]


class MoviesParams(TaskParams):
    references: int = Field(ge=1, le=6, description="liked films given")
    choices: int = Field(ge=2, le=MAX_CHOICES, description="options, one of them right")
    hints: Hints = Field("none", description="shown besides titles: nothing, release years, or tags")


def _describe(film: dict[str, Any], hints: str) -> str:
    if hints == "none":
        return film["title"]
    if hints == "years":
        return f"{film['title']} ({film['year']})"
    return f"{film['title']} ({film['year']}; {', '.join(film['tags'])})"


class Movies(Task):
    name = "movies"
    version = "1"
    description = "Pick the film that shares a genre or theme with a set of liked films (multiple choice)."
    Params = MoviesParams
    answer_instruction = "End your response with a final line of the form `ANSWER: <letter>`, giving the letter of your choice."
    parser = options_parser(string.ascii_uppercase[:MAX_CHOICES], ())

    def parser_for(self, metadata: dict[str, Any]) -> AnswerParser:
        """An option's letter or its title; a letter beside another option's title is ambiguous."""
        choices = tuple(metadata.get("choices", ()))
        return options_parser(string.ascii_uppercase[: len(choices) or MAX_CHOICES], choices)

    def _generate(self, params: MoviesParams, rng: random.Random) -> Item:
        criteria = sorted(tag for tag, films in _FILMS_WITH_SALIENT.items() if len(films) > params.references)
        for _ in range(_MAX_DRAWS):
            criterion = rng.choice(criteria)
            *liked, answer = rng.sample(_FILMS_WITH_SALIENT[criterion], params.references + 1)
            excluded = frozenset().union(*(_TAG_SETS[i] for i in [*liked, answer]))
            unrelated = [i for i, tags in enumerate(_TAG_SETS) if not tags & excluded]
            if len(unrelated) >= params.choices - 1:
                break
        else:
            raise RuntimeError(f"no {params.choices - 1} unrelated films found for {params}")  # the catalogue is too small
        options = [answer, *rng.sample(unrelated, params.choices - 1)]
        rng.shuffle(options)
        letters = string.ascii_uppercase[: params.choices]
        liked_lines = "\n".join(f"- {_describe(FILMS[i], params.hints)}" for i in liked)
        option_lines = "\n".join(f"{letter}) {_describe(FILMS[i], params.hints)}" for letter, i in zip(letters, options))
        intro = "A friend enjoyed this film:" if len(liked) == 1 else "A friend enjoyed all of these films:"
        which = "it" if len(liked) == 1 else "every one of them"
        question = (
            f"{intro}\n{liked_lines}\n\nWhich of the following films are they most likely to enjoy as well, "
            f"because it shares a genre or theme with {which}?\n\n{option_lines}"
        )
        return Item(
            question=question,
            answer=letters[options.index(answer)],
            guess_chance=1 / params.choices,
            metadata={
                "criterion": criterion,
                "liked": [FILMS[i]["title"] for i in liked],
                "choices": [FILMS[i]["title"] for i in options],
                "hints": params.hints,
            },
        )
