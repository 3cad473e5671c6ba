"""tables: answer a filter-and-aggregate question about a table rendered as markdown, CSV or JSON.

Filters are built around an anchor row that satisfies them all, so every question has at least one
matching row. Means are rounded half up (stated in the question); `argmax` ties go to the row listed
first (stated too). Answers are integers, or a cell's text for `lookup` of a text column and `argmax`.

Difficulty: `rows`, `columns` (key column included), `format`, `operation` (count, sum, mean, max,
min, lookup, argmax, or any), `conditions` (filters combined with "and"; lookup ignores them).
"""

from __future__ import annotations

import json
import operator
import random
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from rs_dagster.scoring.parsing import NUMBER_PARSER, AnswerParser, names_parser
from rs_dagster.tasks.base import Item, Task, TaskParams, uint32_draws

FIRST_NAMES = (
    "Ada", "Ben", "Cora", "Dev", "Elin", "Finn", "Gia", "Hugo", "Ines", "Jon", "Kai", "Lena", "Max", "Nia",
    "Omar", "Pia", "Raj", "Sara", "Tom", "Una", "Vik", "Wes", "Yuki", "Zoe", "Aric", "Bea", "Cyd", "Dana",
)
LAST_NAMES = (
    "Abbott", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hayes", "Ito", "Jensen", "Kowalski",
    "Lopez", "Moreau", "Nakamura", "Olsen", "Patel", "Quinn", "Rossi", "Silva", "Tanaka", "Usman", "Varga",
)
PRODUCTS = tuple(
    f"{a} {b}"
    for a in ("Alpine", "Bold", "Cedar", "Dusk", "Ember", "Frost", "Glade", "Harbor", "Iris", "Juniper", "Kestrel",
              "Lumen", "Maple", "Nova", "Onyx", "Pebble")
    for b in ("Lamp", "Kettle", "Chair", "Backpack", "Blender", "Clock", "Desk", "Mug", "Speaker", "Tent")
)


@dataclass(frozen=True)
class Theme:
    noun: str  # what a row is, plural
    key: str  # the column naming each row uniquely
    keys: tuple[str, ...]
    text_columns: dict[str, tuple[str, ...]]
    number_columns: dict[str, tuple[int, int, int]]  # low, high, step


THEMES = {
    "employees": Theme(
        "employees", "name", tuple(f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES),
        {
            "department": ("Sales", "Legal", "Finance", "Research", "Support", "Marketing"),
            "city": ("Lisbon", "Oslo", "Denver", "Osaka", "Lagos", "Lima", "Perth"),
            "level": ("junior", "senior", "lead", "principal"),
            "shift": ("early", "day", "late", "night"),
        },
        {"age": (21, 65, 1), "salary": (30, 180, 1), "years": (0, 35, 1), "rating": (1, 10, 1),
         "projects": (0, 40, 1), "sick_days": (0, 20, 1)},
    ),
    "products": Theme(
        "products", "product", PRODUCTS,
        {
            "category": ("kitchen", "office", "outdoor", "audio", "decor"),
            "color": ("red", "black", "white", "green", "blue", "silver"),
            "supplier": ("Acme", "Borealis", "Cobalt", "Dynamo", "Everest"),
            "warehouse": ("north", "south", "east", "west"),
        },
        {"price": (5, 400, 5), "stock": (0, 900, 1), "weight": (100, 9000, 50), "sold": (0, 2500, 1),
         "returns": (0, 80, 1), "reviews": (0, 600, 1)},
    ),
    "students": Theme(
        "students", "student", tuple(f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES),
        {
            "major": ("biology", "history", "physics", "music", "economics", "chemistry"),
            "year": ("first", "second", "third", "fourth"),
            "dorm": ("Ash", "Birch", "Elm", "Oak", "Pine"),
            "club": ("chess", "drama", "rowing", "robotics", "choir"),
        },
        {"math": (0, 100, 1), "physics_score": (0, 100, 1), "essay": (0, 100, 1), "credits": (0, 160, 1),
         "absences": (0, 30, 1), "height": (150, 200, 1)},
    ),
}
OPERATIONS = ("count", "sum", "mean", "max", "min", "lookup", "argmax")
Operation = Literal["count", "sum", "mean", "max", "min", "lookup", "argmax", "any"]
Format = Literal["markdown", "csv", "json", "any"]
COMPARISONS = {"greater than": operator.gt, "less than": operator.lt, "at least": operator.ge, "at most": operator.le}
MAX_COLUMNS = 1 + min(len(t.text_columns) + len(t.number_columns) for t in THEMES.values())
MAX_ROWS = min(len(t.keys) for t in THEMES.values())  # every row needs its own key


@dataclass(frozen=True)
class Domain:
    """Every value a column can take, with its text as a markdown or CSV cell and as a JSON field, held
    in arrays so that a table is built by vectorised index lookups (tables are the largest items)."""

    values: np.ndarray  # int64 for number columns, object (str) for text columns
    cells: np.ndarray  # object: str
    fields: np.ndarray  # object: '"column": value'


def _objects(texts) -> np.ndarray:
    return np.array(list(texts), dtype=object)


def _domain(column: str, values: tuple[Any, ...]) -> Domain:
    label = json.dumps(column) + ": "
    return Domain(
        np.array(values, dtype=np.int64) if isinstance(values[0], int) else _objects(values),
        _objects(map(str, values)),
        _objects(label + json.dumps(v) for v in values),
    )


DOMAINS = {
    name: {
        theme.key: _domain(theme.key, theme.keys),
        **{column: _domain(column, values) for column, values in theme.text_columns.items()},
        **{column: _domain(column, tuple(range(low, high + 1, step))) for column, (low, high, step) in theme.number_columns.items()},
    }
    for name, theme in THEMES.items()
}


class TablesParams(TaskParams):
    rows: int = Field(ge=2, le=MAX_ROWS, description="table rows")
    columns: int = Field(ge=3, le=MAX_COLUMNS, description="columns, the key column included")
    format: Format = "markdown"
    operation: Operation = "any"
    conditions: int = Field(1, ge=0, le=4, description="filters combined with 'and'")

    @model_validator(mode="after")
    def _filters_fit(self):
        if self.conditions > self.columns - 1:
            raise ValueError(f"conditions={self.conditions} needs at least {self.conditions + 1} columns, got {self.columns}")
        return self


def _distinct_draws(rng: random.Random, span: int, count: int) -> np.ndarray:
    """`count` distinct indices into range(span): the first of a permutation sorted by random keys
    (a stable sort, so even a tie of two keys is deterministic)."""
    return np.argsort(uint32_draws(rng, span), kind="stable")[:count]


def _render(header: list[str], cells: list[list[str]], fmt: str) -> str:
    """The table from its columns of cell text (JSON: of `"name": value` fields). Row delimiters go into
    the separator between rows, so rows are assembled by C-level joins, never per row in Python."""
    rows = map((" | " if fmt == "markdown" else "," if fmt == "csv" else ", ").join, zip(*cells))
    if fmt == "markdown":
        return "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n| " + " |\n| ".join(rows) + " |"
    if fmt == "csv":
        return ",".join(header) + "\n" + "\n".join(rows)
    return "[\n{" + "},\n{".join(rows) + "}\n]"


def _condition_text(column: str, comparison: str, value: Any) -> str:
    return f'{column} equal to "{value}"' if comparison == "is" else f"{column} {comparison} {value}"


class Tables(Task):
    name = "tables"
    version = "1"
    description = "Answer count/sum/mean/max/min/lookup/argmax questions with filters over a rendered table."
    Params = TablesParams
    answer_instruction = "End your response with a final line of the form `ANSWER: <value>`, a number or the cell's text."
    parser = NUMBER_PARSER

    def parser_for(self, metadata: dict[str, Any]) -> AnswerParser:
        if metadata.get("answer_type") == "text":
            return names_parser(tuple(metadata["candidates"]))
        return NUMBER_PARSER

    def _generate(self, params: TablesParams, rng: random.Random) -> Item:
        theme_name = rng.choice(list(THEMES))
        theme = THEMES[theme_name]
        operation = rng.choice(OPERATIONS) if params.operation == "any" else params.operation
        fmt = rng.choice(("markdown", "csv", "json")) if params.format == "any" else params.format

        numbers = rng.randint(max(1, params.columns - 1 - len(theme.text_columns)), min(len(theme.number_columns), params.columns - 2))
        number_columns = rng.sample(list(theme.number_columns), numbers)
        text_columns = rng.sample(list(theme.text_columns), params.columns - 1 - numbers)
        data_columns = number_columns + text_columns
        rng.shuffle(data_columns)
        header = [theme.key, *data_columns]
        domains = DOMAINS[theme_name]
        drawn = {theme.key: _distinct_draws(rng, len(theme.keys), params.rows)}  # value indices per column
        drawn |= {name: uint32_draws(rng, params.rows) % len(domains[name].values) for name in data_columns}
        keys = domains[theme.key].cells[drawn[theme.key]].tolist()

        anchor = rng.randrange(params.rows)
        conditions, masks = [], []
        for name in rng.sample(data_columns, params.conditions) if operation != "lookup" else []:
            if name in theme.number_columns:
                column = domains[name].values[drawn[name]]
                comparison = rng.choice(list(COMPARISONS))
                step = theme.number_columns[name][2]  # strict bounds sit one step beyond the anchor's value
                value = int(column[anchor]) + (-step if comparison == "greater than" else step if comparison == "less than" else 0)
                masks.append(COMPARISONS[comparison](column, value))
            else:  # a text column's values are distinct, so equal values have equal indices
                comparison, value = "is", domains[name].values[drawn[name][anchor]]
                masks.append(drawn[name] == drawn[name][anchor])
            conditions.append((name, comparison, value))
        matching = np.flatnonzero(np.logical_and.reduce(masks)) if masks else np.arange(params.rows)
        where = " and ".join(_condition_text(*c) for c in conditions)
        scope = f"the {theme.noun} with {where}" if conditions else f"all {theme.noun}"
        target = rng.choice(number_columns)
        values = domains[target].values[drawn[target][matching]]
        answer_type, candidates = "integer", None
        if operation == "count":
            question, answer = f"How many {theme.noun} have {where}?" if conditions else f"How many {theme.noun} are in the table?", len(matching)
        elif operation == "sum":
            question, answer = f"What is the total {target} of {scope}?", int(values.sum())
        elif operation == "mean":
            question = f"What is the average {target} of {scope}, rounded to the nearest integer (halves round up)?"
            answer = (2 * int(values.sum()) + len(values)) // (2 * len(values))
        elif operation in ("max", "min"):
            question = f"What is the {'largest' if operation == 'max' else 'smallest'} {target} among {scope}?"
            answer = int(values.max() if operation == "max" else values.min())
        elif operation == "argmax":
            answer = keys[matching[values.argmax()]]  # argmax returns the first of tied maxima
            question = f"Which {theme.key} has the largest {target} among {scope}? If several tie, give the one listed first."
            answer_type, candidates = "text", keys
        else:
            target = rng.choice(data_columns)
            answer = domains[target].values[drawn[target][anchor]]
            question = f"What is the {target} of the row whose {theme.key} is {keys[anchor]}?"
            if target in theme.text_columns:
                answer_type, candidates = "text", list(theme.text_columns[target])

        cells = [(domains[name].fields if fmt == "json" else domains[name].cells)[drawn[name]].tolist() for name in header]
        table = _render(header, cells, fmt)
        label = {"markdown": "a markdown table", "csv": "CSV", "json": "a JSON list of records"}[fmt]
        metadata = {
            "theme": theme_name,
            "format": fmt,
            "operation": operation,
            "rows": params.rows,
            "columns": params.columns,
            "conditions": [list(c) for c in conditions],
            "target": target,
            "matching_rows": len(matching),
            "answer_type": answer_type,
        }
        if candidates is not None:
            metadata["candidates"] = candidates
        return Item(
            question=f"The table below lists {theme.noun}, as {label}.\n\n{table}\n\n{question}",
            answer=str(answer),
            guess_chance=0.0,
            metadata=metadata,
        )
