"""boolean: evaluate an expression over AND/OR/XOR/NOT with parentheses, answering in the notation used.

Difficulty: `length` (operand count), `depth` (parenthesis nesting), `notation` (how truth values are
written: True/False, T/F, ON/OFF, 1/0, YES/NO).
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any, Literal

from pydantic import Field, model_validator

from rs_dagster.scoring.parsing import AnswerParser
from rs_dagster.tasks import expressions
from rs_dagster.tasks.base import Item, Task, TaskParams

NOTATIONS: dict[str, tuple[str, str]] = {
    "true_false": ("True", "False"),
    "t_f": ("T", "F"),
    "on_off": ("ON", "OFF"),
    "one_zero": ("1", "0"),
    "yes_no": ("YES", "NO"),
}
Notation = Literal["true_false", "t_f", "on_off", "one_zero", "yes_no"]
_PRECEDENCE = {"AND": 3, "XOR": 2, "OR": 1}


def _apply(op: str, a: bool, b: bool) -> bool:
    return (a and b) if op == "AND" else (a != b) if op == "XOR" else (a or b)


class BooleanParams(TaskParams):
    length: int = Field(ge=2, le=64, description="number of operands")
    depth: int = Field(ge=0, le=16, description="parenthesis nesting depth")
    notation: Notation = "true_false"
    negation_rate: float = Field(0.25, ge=0.0, le=1.0, description="chance an operand or group is negated")

    @model_validator(mode="after")
    def _depth_fits(self):
        expressions.require_operands(self.depth, self.length, "operands", "length")
        return self


_OPERATORS = r"(?-i:AND|OR|XOR)|&&?|\|\||[∧∨⊕^]"
"""The expression's operators, upper case as the question writes them: "True AND False" is an expression,
not an answer, while "True or False" is a hedge."""


def _values(true: str, false: str) -> str:
    return rf"(?<![\w])(?:{true}|{false})(?![\w])"


@cache
def _parser(notation: str) -> AnswerParser:
    """The notation's two words in any case on an answer line; in prose, True and False in any case but the
    other notations' words (ON, YES, T, 1), which are also English words or letters, only as the question
    writes them or capitalised ("Yes"), so "operations on them" or "no carry" holds no answer."""
    true, false = NOTATIONS[notation]
    prose = None if notation == "true_false" else _values(*("(?-i:" + "|".join(dict.fromkeys((w, w.capitalize()))) + ")" for w in (true, false)))
    return AnswerParser(value_pattern=_values(true, false), normalize=str.upper, operators=_OPERATORS, prose_pattern=prose)


class Boolean(Task):
    name = "boolean"
    version = "1"
    description = "Evaluate AND/OR/XOR/NOT expressions with parentheses, in one of five notations."
    Params = BooleanParams
    answer_instruction = "End your response with a final line of the form `ANSWER: <value>`, writing the value in the same notation as the expression."
    parser = _parser("true_false")

    def parser_for(self, metadata: dict[str, Any]) -> AnswerParser:
        return _parser(metadata.get("notation", "true_false"))

    def _generate(self, params: BooleanParams, rng: random.Random) -> Item:
        true, false = NOTATIONS[params.notation]
        tree = expressions.build(
            rng, params.length, params.depth, lambda r: r.random() < 0.5, ["AND", "OR", "XOR"],
            negate_rate=params.negation_rate,
        )
        value = expressions.evaluate(tree, _PRECEDENCE, _apply, negate=lambda v: not v)
        text = " ".join(expressions.tokens(tree, lambda v: true if v else false, negation="NOT"))
        question = (
            f"Evaluate the following boolean expression, where {true} means true and {false} means false. "
            "NOT binds tightest, then AND, then XOR, then OR; operators of equal precedence apply left to right.\n\n"
            f"{text}"
        )
        return Item(
            question=question,
            answer=true if value else false,
            guess_chance=0.5,
            metadata={"expression": text, "notation": params.notation, "depth": expressions.max_depth(tree)},
        )
