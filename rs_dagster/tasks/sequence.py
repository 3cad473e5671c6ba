"""sequence: give the next term of an integer sequence whose base rule is disturbed by stated adjustments.

The rules are stated, not hidden: a finite prefix fits infinitely many hidden rules, so a hidden-rule
answer key would be unfair. The shown terms are worked examples the model can check its reading
against. The base rule runs on the unadjusted base values, so the next term cannot be read off the
last shown term: the model has to carry the base sequence to the asked position (or undo the
adjustments) and then work out which adjustments fire there.

Difficulty: `rules` (adjustments), `terms_shown` (the asked position: longer base computations, larger
values, more counting for positional rules), `interference` (`independent`: every condition tests the
base value and the adjustments add up; `sequential`: each condition tests the value left by the
adjustments above it, so their order matters), `base` (the base rule family, or `any`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from rs_dagster.scoring.parsing import NUMBER_PARSER
from rs_dagster.tasks.base import Item, Task, TaskParams

BASES = ("arithmetic", "geometric", "quadratic", "fibonacci")
Interference = Literal["independent", "sequential"]


def _signed(value: int) -> str:
    return f"+ {value}" if value >= 0 else f"- {-value}"


@dataclass(frozen=True)
class BaseRule:
    """b(n) from the previous base values `prev`."""

    kind: str
    seeds: tuple[int, ...]
    step: int = 0  # arithmetic difference, geometric ratio, quadratic constant
    slope: int = 0  # quadratic: coefficient of n

    def next(self, prev: list[int], n: int) -> int:
        if self.kind == "arithmetic":
            return prev[-1] + self.step
        if self.kind == "geometric":
            return prev[-1] * self.step
        if self.kind == "quadratic":
            return prev[-1] + self.slope * n + self.step
        return prev[-1] + prev[-2]

    def formula(self) -> str:
        if self.kind == "arithmetic":
            return f"b(n-1) {_signed(self.step)}"
        if self.kind == "geometric":
            return f"{self.step} * b(n-1)"
        if self.kind == "quadratic":
            slope = "n" if self.slope == 1 else f"{self.slope}*n"
            return f"b(n-1) + {slope} {_signed(self.step)}" if self.step else f"b(n-1) + {slope}"
        return "b(n-1) + b(n-2)"


@dataclass(frozen=True)
class Adjustment:
    """'If <condition>, add/subtract delta'; conditions test the position n or the current value."""

    condition: str  # position_multiple, position_odd, value_even, value_odd, value_multiple, value_above
    operand: int
    delta: int

    def fires(self, n: int, value: int) -> bool:
        c = self.condition
        if c == "position_multiple":
            return n % self.operand == 0
        if c == "position_odd":
            return n % 2 == 1
        if c == "value_even":
            return value % 2 == 0
        if c == "value_odd":
            return value % 2 == 1
        if c == "value_multiple":
            return value % self.operand == 0
        return value > self.operand

    def text(self) -> str:
        condition = {
            "position_multiple": f"n is a multiple of {self.operand}",
            "position_odd": "n is odd",
            "value_even": "the value is even",
            "value_odd": "the value is odd",
            "value_multiple": f"the value is a multiple of {self.operand}",
            "value_above": f"the value is greater than {self.operand}",
        }[self.condition]
        action = f"add {self.delta}" if self.delta > 0 else f"subtract {-self.delta}"
        return f"If {condition}, {action}."


def base_values(base: BaseRule, count: int) -> list[int]:
    values = list(base.seeds)
    for n in range(len(values) + 1, count + 1):
        values.append(base.next(values, n))
    return values


def adjusted(values: list[int], seeds: int, adjustments: list[Adjustment], interference: str) -> tuple[list[int], int]:
    """The terms a(n) for the base values b(n), and how many adjustments fired."""
    terms, fired = values[:seeds], 0
    for n, b in enumerate(values[seeds:], seeds + 1):
        value = b
        for adjustment in adjustments:
            if adjustment.fires(n, b if interference == "independent" else value):
                value += adjustment.delta
                fired += 1
        terms.append(value)
    return terms, fired


class SequenceParams(TaskParams):
    rules: int = Field(ge=0, le=8, description="number of adjustment rules")
    terms_shown: int = Field(ge=3, le=32, description="terms shown; the asked term is the next one")
    interference: Interference = "independent"
    base: Literal["any", "arithmetic", "geometric", "quadratic", "fibonacci"] = "any"


def _base_rule(kind: str, rng: random.Random) -> BaseRule:
    if kind == "arithmetic":
        return BaseRule(kind, (rng.randint(-20, 50),), step=rng.choice([-9, -7, -5, -4, -3, -2, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12]))
    if kind == "geometric":
        return BaseRule(kind, (rng.randint(1, 7),), step=rng.choice([2, 2, 3]))
    if kind == "quadratic":
        return BaseRule(kind, (rng.randint(-10, 30),), step=rng.randint(-6, 6), slope=rng.randint(1, 4))
    return BaseRule(kind, (rng.randint(-5, 9), rng.randint(1, 12)))


def _adjustment(rng: random.Random, values: list[int]) -> Adjustment:
    condition = rng.choice(
        ["position_multiple", "position_multiple", "position_odd", "value_even", "value_odd", "value_multiple", "value_above"]
    )
    delta = rng.choice([-1, 1]) * rng.randint(1, 9)
    if condition == "position_multiple":
        return Adjustment(condition, rng.randint(2, 6), delta)
    if condition == "value_multiple":
        return Adjustment(condition, rng.randint(3, 5), delta)
    if condition == "value_above":  # a threshold inside the range the base values cover
        return Adjustment(condition, rng.choice(values[len(values) // 4 :]), delta)
    return Adjustment(condition, 0, delta)


class Sequence(Task):
    name = "sequence"
    version = "1"
    description = "Give the next term of an integer sequence built from a base rule plus stated adjustments."
    Params = SequenceParams
    answer_instruction = "End your response with a final line of the form `ANSWER: <integer>`."
    parser = NUMBER_PARSER

    def _generate(self, params: SequenceParams, rng: random.Random) -> Item:
        kind = rng.choice(BASES) if params.base == "any" else params.base
        base = _base_rule(kind, rng)
        values = base_values(base, params.terms_shown + 1)
        adjustments = [_adjustment(rng, values) for _ in range(params.rules)]
        terms, fired = adjusted(values, len(base.seeds), adjustments, params.interference)
        naive, _ = adjusted(values, len(base.seeds), adjustments, "independent")
        return Item(
            question=self._question(base, adjustments, params.interference, terms[:-1]),
            answer=str(terms[-1]),
            guess_chance=0.0,
            metadata={
                "base": kind,
                "interference": params.interference,
                "terms_shown": params.terms_shown,
                "rules": [a.text() for a in adjustments],
                "adjustments_fired": fired,
                "interference_changed_answer": naive[-1] != terms[-1],
                "answer_digits": len(str(abs(terms[-1]))),
            },
        )

    @staticmethod
    def _question(base: BaseRule, adjustments: list[Adjustment], interference: str, shown: list[int]) -> str:
        seeds = len(base.seeds)
        start = " and ".join(f"a({i + 1}) = {v}" for i, v in enumerate(base.seeds))
        lines = [
            "A sequence a(1), a(2), a(3), ... of integers is defined as follows.",
            f"Start: {start}.",
            f"Base values: b(i) = a(i) for the start terms, and b(n) = {base.formula()} for n > {seeds}.",
        ]
        if adjustments:
            lines.append(f"For n > {seeds}, a(n) is b(n) changed by these adjustments, applied in the listed order:")
            lines += [f"{i}. {a.text()}" for i, a in enumerate(adjustments, 1)]
            lines.append(
                "Every condition about the value tests the base value b(n), and the adjustments that fire all add up."
                if interference == "independent"
                else "Each condition about the value tests the value as changed by the adjustments above it."
            )
            lines.append("The base rule continues from the base values b, not from the adjusted terms.")
        else:
            lines.append(f"For n > {seeds}, a(n) = b(n).")
        lines.append(f"\nThe first {len(shown)} terms are: {', '.join(map(str, shown))}")
        lines.append(f"\nWhat is a({len(shown) + 1})?")
        return "\n".join(lines)
