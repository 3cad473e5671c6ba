"""arithmetic: evaluate an integer expression with +, -, * precedence and nested parentheses.

Difficulty: `terms` (operand count), `depth` (parenthesis nesting), `whitespace_removed` (share of the
spaces between tokens deleted, which changes how the expression tokenizes), `max_operand`.
"""

from __future__ import annotations

import random

from pydantic import Field, model_validator

from rs_dagster.scoring.parsing import NUMBER_PARSER
from rs_dagster.tasks import expressions
from rs_dagster.tasks.base import Item, Task, TaskParams

_PRECEDENCE = {"*": 2, "+": 1, "-": 1}


def _apply(op: str, a: int, b: int) -> int:
    return a * b if op == "*" else a + b if op == "+" else a - b


class ArithmeticParams(TaskParams):
    terms: int = Field(ge=2, le=64, description="number of operands")
    depth: int = Field(ge=0, le=16, description="parenthesis nesting depth")
    whitespace_removed: float = Field(0.0, ge=0.0, le=1.0, description="share of token gaps deleted")
    max_operand: int = Field(9, ge=1, le=10_000)

    @model_validator(mode="after")
    def _depth_fits(self):
        expressions.require_operands(self.depth, self.terms, "terms", "terms")
        return self


class Arithmetic(Task):
    name = "arithmetic"
    version = "1"
    description = "Evaluate integer expressions with operator precedence and nested parentheses."
    Params = ArithmeticParams
    answer_instruction = "End your response with a final line of the form `ANSWER: <integer>`."
    parser = NUMBER_PARSER

    def _generate(self, params: ArithmeticParams, rng: random.Random) -> Item:
        tree = expressions.build(
            rng, params.terms, params.depth, lambda r: r.randint(1, params.max_operand), ["+", "-", "*"]
        )
        value = expressions.evaluate(tree, _PRECEDENCE, _apply, negate=lambda v: -v)
        toks = expressions.tokens(tree, str)
        text = expressions.join_with_whitespace_removed(toks, params.whitespace_removed, rng)
        return Item(
            question=f"Evaluate the following arithmetic expression.\n\n{text}",
            answer=str(value),
            guess_chance=0.0,
            metadata={"expression": text, "depth": expressions.max_depth(tree)},
        )
