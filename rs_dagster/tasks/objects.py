"""objects: count the possessions of the asked categories in a narrated list ("two apples, a cello, no pears").

Difficulty: `length` (items mentioned), `targets` (categories asked about together), `distractors`
(other categories mentioned, whose items must not be counted). Quantities are written as words, and
`zero_share` of the items are mentioned with quantity zero ("no pears"), which must count as nothing.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from pydantic import Field, model_validator

from rs_dagster.scoring.parsing import NUMBER_PARSER
from rs_dagster.tasks.base import Item, Task, TaskParams, join_and

CATEGORIES: dict[str, dict] = json.loads((Path(__file__).parent / "data" / "objects.json").read_text())["categories"]
CATEGORY_NAMES = tuple(sorted(CATEGORIES))
SMALLEST_CATEGORY = min(len(c["items"]) for c in CATEGORIES.values())
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")
_SENTENCES = ("I also have {}.", "In addition, I own {}.", "My household also includes {}.", "Besides that, I have {}.")


class ObjectsParams(TaskParams):
    length: int = Field(ge=1, le=len(CATEGORIES) * SMALLEST_CATEGORY, description="items mentioned")
    targets: int = Field(ge=1, le=len(CATEGORIES), description="categories asked about")
    distractors: int = Field(0, ge=0, le=len(CATEGORIES) - 1, description="other categories mentioned")
    max_quantity: int = Field(6, ge=1, le=len(NUMBER_WORDS) - 1, description="largest quantity of one item")
    zero_share: float = Field(0.15, ge=0.0, le=1.0, description="chance an item is mentioned with quantity zero")

    @model_validator(mode="after")
    def _fits(self):
        categories = self.targets + self.distractors
        if categories > len(CATEGORIES):
            raise ValueError(f"targets + distractors = {categories} exceeds the {len(CATEGORIES)} categories available")
        if self.length < categories:
            raise ValueError(f"length {self.length} cannot mention all {categories} categories (targets + distractors)")
        if self.length > categories * SMALLEST_CATEGORY:
            raise ValueError(
                f"length {self.length} exceeds the {categories * SMALLEST_CATEGORY} distinct items of "
                f"{categories} categories; raise targets or distractors"
            )
        return self


def _mention(quantity: int, singular: str, plural: str, rng: random.Random) -> str:
    if quantity == 1:
        article = "an" if singular[0] in "aeiou" else "a"
        return f"{rng.choice((article, 'one'))} {singular}"
    return f"{NUMBER_WORDS[quantity]} {plural}"


class Objects(Task):
    name = "objects"
    version = "1"
    description = "Count the possessions of the asked categories in a narrated list with number words and zero quantities."
    Params = ObjectsParams
    answer_instruction = "End your response with a final line of the form `ANSWER: <integer>`."
    parser = NUMBER_PARSER

    def _generate(self, params: ObjectsParams, rng: random.Random) -> Item:
        chosen = rng.sample(CATEGORY_NAMES, params.targets + params.distractors)
        asked = chosen[: params.targets]
        pools = {name: rng.sample(CATEGORIES[name]["items"], len(CATEGORIES[name]["items"])) for name in chosen}
        picks = [(name, pools[name].pop()) for name in chosen]  # every category is mentioned at least once
        rest = [(name, item) for name in chosen for item in pools[name]]
        picks += rng.sample(rest, params.length - len(picks))
        rng.shuffle(picks)
        quantities = [0 if rng.random() < params.zero_share else rng.randint(1, params.max_quantity) for _ in picks]
        mentions = [_mention(q, singular, plural, rng) for q, (_, (singular, plural)) in zip(quantities, picks)]
        sentences, start = [], 0
        while start < len(mentions):
            size = rng.randint(2, 5)
            frame = "I have {}." if start == 0 else rng.choice(_SENTENCES)
            sentences.append(frame.format(join_and(mentions[start : start + size])))
            start += size
        counts = {name: 0 for name in chosen}
        for quantity, (name, _) in zip(quantities, picks):
            counts[name] += quantity
        asked_as = join_and([CATEGORIES[name]["asked_as"] for name in asked])
        question = " ".join(sentences) + f" How many {asked_as} do I have{' in total' if len(asked) > 1 else ''}?"
        return Item(
            question=question,
            answer=str(sum(counts[name] for name in asked)),
            guess_chance=0.0,
            metadata={
                "asked": asked,
                "distractor_categories": chosen[params.targets :],
                "counts": counts,
                "mentions": len(mentions),
                "zero_mentions": quantities.count(0),
            },
        )
