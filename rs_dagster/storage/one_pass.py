"""A pandera schema's rules evaluated in one polars pass: the common case, a frame that is valid.

pandera (the single definition of every table's rules) validates a column at a time, each rule a query of
its own: 10–75 ms per frame whatever its size, and every write plus every asset check validates one, so a
partition of an evaluation paid about half a second for it. Here the schema's coercion, columns,
nullability, uniqueness, element checks and dataframe checks become one `select`. Only when every rule
certainly holds is the coerced frame returned; anything else (a rule that fails, a null or NaN that a rule
might treat specially, a check this module does not know) returns None and pandera validates as before, so
it alone decides what is invalid and writes the error report. tests/test_one_pass.py holds the two to the
same verdicts on every schema."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import pandera.polars as pa
import polars as pl

_ELEMENT_CHECKS = {
    "greater_than": lambda column, s: column > s["min_value"],
    "greater_than_or_equal_to": lambda column, s: column >= s["min_value"],
    "less_than": lambda column, s: column < s["max_value"],
    "less_than_or_equal_to": lambda column, s: column <= s["max_value"],
    "isin": lambda column, s: column.is_in(list(s["allowed_values"])),
    "str_length": lambda column, s: _str_length(column.str.len_chars(), s),
}


def _str_length(length: pl.Expr, s: dict[str, Any]) -> pl.Expr:
    if s.get("exact_value") is not None:
        return length == s["exact_value"]
    holds = pl.lit(True)
    if s.get("min_value") is not None:
        holds = holds & (length >= s["min_value"])
    if s.get("max_value") is not None:
        holds = holds & (length <= s["max_value"])
    return holds


@dataclass(frozen=True)
class _Rules:
    dtypes: dict[str, pl.DataType]
    required: frozenset[str]
    rules: dict[str, list[pl.Expr]]  # by column, each a one-row boolean: True when the rule holds for every row
    unique: list[str]  # each a one-row boolean: True when the rule holds for every row
    frame_checks: list[Any]  # pandera dataframe-level Check objects
    floats: list[str]


@cache
def _rules(schema: type[pa.DataFrameModel]) -> _Rules | None:
    """The schema's rules as polars expressions; None when it has a rule this module cannot express."""
    built = schema.to_schema()
    if not (built.strict is True and built.coerce) or built.ordered or built.unique_column_names or built.report_duplicates != "all":
        return None
    dtypes: dict[str, pl.DataType] = {}
    rules: dict[str, list[pl.Expr]] = {}
    floats: list[str] = []
    for name, column in built.columns.items():
        if column.regex or (column.unique and not isinstance(column.unique, bool)):
            return None
        dtype = column.dtype.type
        dtypes[name] = dtype
        col = pl.col(name)
        if dtype.is_float():
            floats.append(name)
        own = rules[name] = []
        if not column.nullable:
            own.append(col.is_not_null().all())
        if column.unique:
            own.append(col.is_unique().all())
        for check in column.checks:
            if check.name not in _ELEMENT_CHECKS or check.element_wise or not check.ignore_na:
                return None
            own.append((col.is_null() | _ELEMENT_CHECKS[check.name](col, check.statistics)).all())
    required = frozenset(name for name, column in built.columns.items() if column.required)
    return _Rules(dtypes, required, rules, list(built.unique or []), list(built.checks), floats)


def valid_in_one_pass(schema: type[pa.DataFrameModel], frame: pl.DataFrame) -> pl.DataFrame | None:
    """The frame coerced to the schema's types when every rule certainly holds, else None (let pandera judge)."""
    rules = _rules(schema)
    if rules is None or not rules.required <= set(frame.columns) <= set(rules.dtypes) or not set(rules.unique) <= set(frame.columns):
        return None  # (a column pandera may let be absent, `x: T | None`, may be absent here too)
    try:
        coerced = frame.cast({c: rules.dtypes[c] for c in frame.columns}, strict=True)
    except (pl.exceptions.PolarsError, TypeError, ValueError):
        return None
    if frame.height == 0:
        return coerced
    held = [rule for c in frame.columns for rule in rules.rules[c]]
    if rules.unique:
        held.append(pl.struct(rules.unique).is_unique().all())
    uncertain = [pl.col(c).is_nan().any() for c in rules.floats if c in frame.columns]  # NaN: pandera's rules decide
    if held or uncertain:
        verdicts = coerced.select(pl.concat_list([*held, *uncertain]).alias("v")).item().to_list()
        if not all(v is True for v in verdicts[: len(held)]) or any(v is not False for v in verdicts[len(held):]):
            return None
    for check in rules.frame_checks:
        try:
            output = check._check_fn(pa.PolarsData(coerced.lazy(), "*"), **check._check_kwargs)
            results = pl.DataFrame({"holds": [output]}) if isinstance(output, bool) else output.collect()
        except pl.exceptions.PolarsError:  # e.g. a column it reads is absent
            return None
        if results.null_count().sum_horizontal().item() or not results.select(pl.all_horizontal(pl.all()).all()).item():
            return None
    return coerced
