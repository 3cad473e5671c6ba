"""The contract every task generator follows (reasoning-gym style: one generator per file, a typed
parameter model, its own answer parser and scorer).

A generator is a pure function of (params, seed) -> Item. The seed of item i at a grid point is a hash
of the coordinates (task, params without count, global seed, i), so counts are prefix-stable and
neighbouring points never share seeds.
"""

from __future__ import annotations

import hashlib
import json
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from rs_dagster.errors import InputError
from rs_dagster.scoring.parsing import AnswerParser, Parsed


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def item_seed(task: str, params: dict[str, Any], global_seed: int, index: int | str) -> int:
    """Seed of item `index` at a grid point; `count` is excluded so counts are prefix-stable."""
    coords = {k: v for k, v in params.items() if k != "count"}
    digest = sha256_hex(canonical_json([task, coords, global_seed, index]))
    return int(digest[:15], 16)  # < 2**60: fits a signed 64-bit column


def test_case_id(task: str, params: dict[str, Any], seed: int, index: int) -> str:
    return sha256_hex(canonical_json([task, params, seed, index]))[:20]


def point_id(task: str, params: dict[str, Any]) -> str:
    return sha256_hex(canonical_json([task, params]))[:12]


def uint32_draws(rng: random.Random, count: int) -> np.ndarray:
    """`count` uniform uint32 values from one block of `rng` bytes: one C call however many a generator
    needs (`.tolist()` gives Python ints for per-element use), read little-endian so that they are the
    same on every machine. `draws % span` indexes range(span), biased below span / 2**32."""
    return np.frombuffer(rng.randbytes(4 * count), dtype="<u4")


def join_and(parts: list[str]) -> str:
    """English enumeration without a serial comma: "a", "a and b", "a, b and c"."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


class TaskParams(BaseModel):
    """Base for typed generator parameters: unknown keys and wrong types are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Item:
    question: str  # the problem statement, without the answer-format instruction
    answer: str  # canonical answer, compared after the task's normalisation
    guess_chance: float  # probability a uniform guess is right (1/choices, 1/2, or 0 for write-in)
    metadata: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    """One reasoning task: generator, answer instruction, parser and scorer."""

    name: ClassVar[str]
    version: ClassVar[str]  # bump whenever output for the same coordinates would change
    description: ClassVar[str]
    Params: ClassVar[type[TaskParams]]
    answer_instruction: ClassVar[str]
    parser: ClassVar[AnswerParser]

    def validate_params(self, params: dict[str, Any], where: str = "params") -> TaskParams:
        try:
            return self.Params(**params)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
            )
            raise InputError(f"{where}: invalid parameters for task {self.name!r}: {problems}") from None

    def generate(self, params: TaskParams, seed: int) -> Item:
        return self._generate(params, random.Random(seed))

    @abstractmethod
    def _generate(self, params: Any, rng: random.Random) -> Item: ...

    def parser_for(self, metadata: dict[str, Any]) -> AnswerParser:
        """The parser for one item; tasks whose answer syntax varies per item (e.g. notation) override."""
        return self.parser

    def parse(self, text: str | None, metadata: dict[str, Any]) -> Parsed:
        return self.parser_for(metadata).parse(text)

    def score(self, parsed_value: str, answer: str, metadata: dict[str, Any]) -> bool:
        """Exact match after the parser's normalisation."""
        normalize = self.parser_for(metadata).normalize
        return normalize(parsed_value) == normalize(answer)
