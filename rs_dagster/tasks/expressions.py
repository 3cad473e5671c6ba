"""Random infix expressions with an exact number of operands and an exact parenthesis nesting depth,
shared by the arithmetic and boolean tasks (they differ only in operands, operators and precedence)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

Node = Union["Group", Any]


@dataclass
class Group:
    """A sequence operand, op, operand, ..., evaluated by precedence; `negated` applies a unary prefix."""

    parts: list[Any]
    parenthesized: bool = False
    negated: bool = False


def min_operands(depth: int) -> int:
    """Fewest operands that can carry `depth` levels of non-trivial parentheses."""
    return 2 if depth == 0 else depth + 2


def require_operands(depth: int, operands: int, noun: str, field: str) -> None:
    """For a parameter validator: ValueError unless `operands` (the parameter `field`) can reach `depth`."""
    need = min_operands(depth)
    if operands < need:
        raise ValueError(f"depth {depth} needs at least {need} {noun}, got {field}={operands}")


def build(
    rng: random.Random,
    operands: int,
    depth: int,
    operand: Callable[[random.Random], Any],
    operators: Sequence[str],
    negate_rate: float = 0.0,
) -> Group:
    """A flat chain of `operands` leaves in which one nested group reaches exactly `depth` levels."""
    if operands < min_operands(depth):
        raise ValueError(f"{operands} operands cannot reach nesting depth {depth}")

    choices = list(operators)

    def leaf():
        return Group([operand(rng)], negated=rng.random() < negate_rate) if negate_rate else operand(rng)

    def chain(n: int, d: int) -> list[Any]:
        if d == 0:
            items = [leaf() for _ in range(n)]
        else:
            inner = rng.randint(min_operands(d - 1), n - 1)
            group = Group(chain(inner, d - 1), parenthesized=True, negated=rng.random() < negate_rate)
            items = [leaf() for _ in range(n - inner)]
            items.insert(rng.randint(0, len(items)), group)
        parts: list[Any] = [items[0]]
        for item in items[1:]:
            parts += [rng.choice(choices), item]
        return parts

    return Group(chain(operands, depth))


def evaluate(node: Node, precedence: dict[str, int], apply: Callable[[str, Any, Any], Any], negate) -> Any:
    """Precedence-climbing evaluation, left-associative at equal precedence."""
    levels = sorted(set(precedence.values()), reverse=True)

    def value_of(node: Node) -> Any:
        if not isinstance(node, Group):
            return node
        parts = node.parts
        if len(parts) == 1:  # a (negated) single operand: most groups of a long expression
            value = value_of(parts[0])
        else:
            values = [value_of(p) for p in parts[0::2]]
            ops = parts[1::2]
            for level in levels:
                out_values, out_ops = [values[0]], []
                for op, operand in zip(ops, values[1:]):
                    if precedence[op] == level:
                        out_values[-1] = apply(op, out_values[-1], operand)
                    else:
                        out_values.append(operand)
                        out_ops.append(op)
                values, ops = out_values, out_ops
            value = values[0]
        return negate(value) if node.negated else value

    return value_of(node)


def tokens(node: Node, render_leaf: Callable[[Any], str], negation: str = "") -> list[str]:
    """Tokens of the expression as written (parentheses as their own tokens)."""
    out: list[str] = []

    def emit(node: Node) -> None:
        if not isinstance(node, Group):
            out.append(render_leaf(node))
            return
        if node.negated:
            out.append(negation)
        if node.parenthesized:
            out.append("(")
        for i, part in enumerate(node.parts):
            if i % 2:
                out.append(part)
            else:
                emit(part)
        if node.parenthesized:
            out.append(")")

    emit(node)
    return out


def max_depth(node: Node) -> int:
    if not isinstance(node, Group):
        return 0
    inner = max((max_depth(p) for p in node.parts[0::2] if isinstance(p, Group)), default=0)
    return inner + (1 if node.parenthesized else 0)


def join_with_whitespace_removed(toks: list[str], removed_share: float, rng: random.Random) -> str:
    """Join tokens with single spaces, then delete exactly round(share * gaps) of the gaps at random.
    Gaps between two word tokens are never removed (that would merge words such as 'not' 'true')."""
    removable = [
        i for i in range(len(toks) - 1) if not (toks[i][-1].isalpha() and toks[i + 1][0].isalpha())
    ]
    drop = set(rng.sample(removable, round(removed_share * len(removable))))
    return "".join(tok + ("" if i in drop or i == len(toks) - 1 else " ") for i, tok in enumerate(toks))
