"""brackets: append the closing brackets that balance a prefix of mixed (), [], {} and <>.

Difficulty: `length` (brackets in the prefix), `depth` (the deepest nesting the prefix reaches, exactly),
`types` (how many of the four bracket kinds are used). The prefix is a uniformly random walk among all
that have this length and depth and leave at least one bracket open, so matched pairs, re-openings and
the final stack are all realistic rather than templated.
"""

from __future__ import annotations

import random
from functools import cache, lru_cache
from typing import Any

from pydantic import Field, model_validator

from rs_dagster.scoring.parsing import AnswerParser
from rs_dagster.tasks.base import Item, Task, TaskParams

PAIRS = ("()", "[]", "<>", "{}")
CLOSERS = {pair[0]: pair[1] for pair in PAIRS}


def _normalize_closers(value: str) -> str:
    return "".join(value.split())


@lru_cache(maxsize=4096)
def _closers_parser(prefix: str) -> AnswerParser:
    """Closing brackets; a "}" is one unless it closes a LaTeX command (\\boxed{...}); an answer that repeats
    the item's prefix before its closers ("( [ ] )" for "( [") is read after the prefix, and one that begins
    with an opening bracket is a bracket sequence, not the closers asked for."""
    return AnswerParser(
        value_pattern=r"[)\]>}](?:[^\S\n]*[)\]>}])*", normalize=_normalize_closers, answer_braces=True, restated=prefix or None,
        lenient="none", openers="([<{",
    )


class BracketsParams(TaskParams):
    length: int = Field(ge=1, le=1024, description="brackets in the prefix")
    depth: int = Field(ge=1, le=256, description="deepest nesting reached by the prefix")
    types: int = Field(4, ge=1, le=4, description="bracket kinds used, from (), [], <>, {}")

    @model_validator(mode="after")
    def _reachable(self):
        if self.depth > self.length:
            raise ValueError(f"depth {self.depth} needs at least {self.depth} brackets, got length={self.length}")
        if self.depth == 1 and self.length % 2 == 0:
            raise ValueError(
                f"depth 1 with an even length={self.length} always closes every bracket; use an odd length or depth >= 2"
            )
        return self


def open_counts(length: int, depth: int) -> list[int]:
    """How many brackets may be left open after `length` brackets whose deepest nesting is `depth`."""
    return [u for u in range(max(1, 2 * depth - length), depth + 1) if (length - u) % 2 == 0]


@cache
def _up_chances(length: int, depth: int, unclosed: int) -> list[tuple[list[float], list[float]]]:
    """chances[i] = (P(step i opens | height, peak not yet reached), P(... | peak reached)), per height.

    Each step opens with the share of valid completions that begin by opening, counted exactly, which
    samples uniformly among all prefixes of this length, peak and number left open.
    """
    counts = [(0, 1 if h == unclosed else 0) for h in range(depth + 1)]  # (before, after) touching `depth`
    chances = []
    for _ in range(length):
        up = [counts[h + 1] if h < depth else (0, 0) for h in range(depth + 1)]
        down = [counts[h - 1] if h > 0 else (0, 0) for h in range(depth + 1)]
        up_fresh = [up[h][1] if h + 1 == depth else up[h][0] for h in range(depth + 1)]
        chances.append((
            [u / (u + d[0]) if u + d[0] else 0.0 for u, d in zip(up_fresh, down)],
            [u[1] / (u[1] + d[1]) if u[1] + d[1] else 0.0 for u, d in zip(up, down)],
        ))
        counts = [(up_fresh[h] + down[h][0], up[h][1] + down[h][1]) for h in range(depth + 1)]
    return chances[::-1]


def _walk(rng: random.Random, length: int, depth: int, unclosed: int) -> list[bool]:
    """Whether each bracket opens: a uniform random walk of `length` steps >= 0 peaking exactly at `depth`."""
    draws = [rng.random() for _ in range(length)]
    opens, height, peaked = [], 0, 0
    for chance, draw in zip(_up_chances(length, depth, unclosed), draws):
        up = draw < chance[peaked][height]
        height += 1 if up else -1
        peaked |= height == depth
        opens.append(up)
    return opens


class Brackets(Task):
    name = "brackets"
    version = "1"
    description = "Close a prefix of mixed (), [], <>, {} brackets: output the closing sequence that balances it."
    Params = BracketsParams
    answer_instruction = (
        "End your response with a final line of the form `ANSWER: <closing brackets>`, giving only the brackets "
        "that must be appended, in order."
    )
    parser = _closers_parser("")

    def parser_for(self, metadata: dict[str, Any]) -> AnswerParser:
        return _closers_parser(metadata.get("prefix", ""))

    def _generate(self, params: BracketsParams, rng: random.Random) -> Item:
        unclosed = rng.choice(open_counts(params.length, params.depth))
        kinds = PAIRS[: params.types]
        walk = _walk(rng, params.length, params.depth, unclosed)
        openers = iter(rng.choices([pair[0] for pair in kinds], k=sum(walk)))
        prefix, stack = [], []
        for opens in walk:
            if opens:
                stack.append(next(openers))
                prefix.append(stack[-1])
            else:
                prefix.append(CLOSERS[stack.pop()])
        answer = "".join(CLOSERS[opener] for opener in reversed(stack))
        names = ", ".join(f"{pair[0]} {pair[1]}" for pair in kinds)
        question = (
            f"Complete the sequence of brackets below so that every bracket is closed in the correct order. "
            f"The bracket pairs used are {names}. Give only the closing brackets that must be appended to the "
            f"end of the sequence, in order.\n\nSequence: {' '.join(prefix)}"
        )
        return Item(
            question=question,
            answer=answer,
            guess_chance=0.0,
            metadata={
                "prefix": "".join(prefix),
                "length": params.length,
                "depth": params.depth,
                "unclosed": len(stack),
                "types_used": len({c for c in prefix if c in CLOSERS}),
            },
        )
