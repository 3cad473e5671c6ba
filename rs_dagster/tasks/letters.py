"""letters: count how often target letters occur, ignoring case, across a list of words.

Difficulty: `words` (words counted), `targets` (distinct letters counted together), `distractors`
(struck-out words, written in square brackets among the others, that each contain a target letter where
possible and must be skipped), `case_noise` (chance each letter is written in upper case, which breaks
the usual tokenization of a word).
"""

from __future__ import annotations

import random
import string
from pathlib import Path

import numpy as np
from pydantic import Field, model_validator

from rs_dagster.scoring.parsing import NUMBER_PARSER
from rs_dagster.tasks.base import Item, Task, TaskParams, join_and

WORDS: tuple[str, ...] = tuple(
    line.strip() for line in (Path(__file__).parent / "data" / "words.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


def _letter_mask(text: str) -> int:
    return sum(1 << (ord(c) - ord("a")) for c in set(text))


_DROP_UPPERCASE = dict.fromkeys(range(ord("A"), ord("Z") + 1))
_MASKS = np.array([_letter_mask(word) for word in WORDS], dtype=np.int64)


class LettersParams(TaskParams):
    words: int = Field(ge=1, le=256, description="words whose letters are counted")
    targets: int = Field(ge=1, le=8, description="distinct letters counted together")
    distractors: int = Field(0, ge=0, le=256, description="struck-out words that must not be counted")
    case_noise: float = Field(0.0, ge=0.0, le=1.0, description="chance each letter is written in upper case")

    @model_validator(mode="after")
    def _enough_words(self):
        if self.words + self.distractors > len(WORDS):
            raise ValueError(
                f"words + distractors = {self.words + self.distractors} exceeds the {len(WORDS)} distinct words available"
            )
        return self


def _with_case_noise(draws: np.random.Generator, words: list[str], chance: float) -> list[str]:
    """The words with each letter upper-cased with probability `chance`."""
    if not chance or not words:
        return list(words)
    text = np.frombuffer(" ".join(words).encode("ascii"), dtype=np.uint8).copy()
    flips = (draws.random(text.size) < chance) & (text != ord(" "))
    text[flips] -= ord("a") - ord("A")
    return text.tobytes().decode("ascii").split(" ")


class Letters(Task):
    name = "letters"
    version = "1"
    description = "Count occurrences of target letters across a list of words, case-insensitively, skipping struck-out words."
    Params = LettersParams
    answer_instruction = "End your response with a final line of the form `ANSWER: <integer>`."
    parser = NUMBER_PARSER

    def _generate(self, params: LettersParams, rng: random.Random) -> Item:
        # Long lists need hundreds of draws; numpy makes them (seeded from rng, so still a pure function).
        draws = np.random.default_rng(rng.getrandbits(64))
        order = draws.permutation(len(WORDS))
        counted = [WORDS[i] for i in order[: params.words].tolist()]
        present = sorted(set("".join(counted)))
        targets = rng.sample(present, min(params.targets, len(present)))
        targets += rng.sample(sorted(set(string.ascii_lowercase) - set(targets)), params.targets - len(targets))
        rest = order[params.words :]
        has_target = (_MASKS[rest] & _letter_mask("".join(targets))) != 0
        struck = [WORDS[i] for i in np.concatenate([rest[has_target], rest[~has_target]])[: params.distractors].tolist()]
        entries = _with_case_noise(draws, counted, params.case_noise)
        entries += [f"[{w}]" for w in _with_case_noise(draws, struck, params.case_noise)]
        listing = ", ".join([entries[i] for i in draws.permutation(len(entries)).tolist()])
        joined = "".join(counted)
        counts = {t: joined.count(t) for t in targets}
        subject = (
            f"the letters {join_and([repr(t) for t in targets])} occur in total" if len(targets) > 1
            else f"the letter {targets[0]!r} occurs"
        )
        question = (
            f"Count how many times {subject} in the words below, treating upper and lower case alike. Words in "
            f"square brackets are struck out: do not count their letters.\n\nWords: {listing}"
        )
        return Item(
            question=question,
            answer=str(sum(counts.values())),
            guess_chance=0.0,
            metadata={
                "targets": targets,
                "counts": counts,
                "words": params.words,
                "distractors": len(struck),
                "uppercase_share": round(
                    (len(listing) - len(listing.translate(_DROP_UPPERCASE))) / (len(joined) + sum(map(len, struck))), 4
                ),
            },
        )
