"""The one-pass validation never accepts what pandera rejects, and returns pandera's coerced frame when it
accepts: checked on every table schema against a valid frame and against one broken variant per rule."""

import inspect
import math

import pandera.errors
import pandera.polars as pa
import polars as pl
import pytest

from rs_dagster.storage import schemas
from rs_dagster.storage.one_pass import valid_in_one_pass

SCHEMAS = [s for s in vars(schemas).values() if inspect.isclass(s) and issubclass(s, schemas._Table) and s is not schemas._Table]
ROWS = 3


def _holds(name: str, s: dict, value) -> bool:
    if name in ("greater_than", "greater_than_or_equal_to"):
        return value > s["min_value"] or (name == "greater_than_or_equal_to" and value == s["min_value"])
    return value < s["max_value"] or (name == "less_than_or_equal_to" and value == s["max_value"])


def _satisfies(value, checks) -> bool:
    return all(_holds(check.name, check.statistics, value) for check in checks)


def _breaking(name: str, s: dict):
    """A value that breaks the check `name` with statistics `s`."""
    if name == "isin":
        return "not-an-allowed-value"
    if name == "str_length":
        return "" if (s.get("min_value") or s.get("exact_value")) else "x" * ((s.get("max_value") or 0) + 1)
    return {"greater_than": s.get("min_value"), "greater_than_or_equal_to": (s.get("min_value") or 0) - 1,
            "less_than": s.get("max_value"), "less_than_or_equal_to": (s.get("max_value") or 0) + 1}[name]


def _value(column, row: int, varies: bool):
    """A value of `column` that its own checks accept (distinct per row when `varies`)."""
    dtype, checks = column.dtype.type, column.checks
    named = {c.name: c.statistics for c in checks}
    if dtype == pl.String:
        if "isin" in named:
            allowed = sorted(named["isin"]["allowed_values"])
            return allowed[row % len(allowed)] if varies else allowed[0]
        length = named.get("str_length", {})
        size = length.get("exact_value") or max(length.get("min_value") or 1, 2)
        return f"{row:0{size}d}"[-size:] if varies else "a" * size
    if dtype == pl.Boolean:
        return bool(row % 2) if varies else False
    if dtype == pl.List(pl.String):
        return [f"s{row}"]
    if dtype == pl.List(pl.Float64):
        return [0.5]
    candidates = [0, 1, 2, 5, 10, 100] if dtype == pl.Int64 else [0.0, 0.25, 0.5, 1.0, 2.0, 10.0]
    base = next(v for v in candidates if _satisfies(v, checks))
    if varies:
        step = 1 if dtype == pl.Int64 else 0.01
        base = base + row * step if _satisfies(base + row * step, checks) else base - row * step
    return base


def valid_frame(schema) -> pl.DataFrame:
    built = schema.to_schema()
    unique = set(built.unique or [])
    data = {name: [_value(c, row, c.unique or name in unique) for row in range(ROWS)] for name, c in built.columns.items()}
    return pl.DataFrame(data, schema={name: c.dtype.type for name, c in built.columns.items()})


def _with(frame: pl.DataFrame, name: str, value, row: int = 0) -> pl.DataFrame:
    column = frame[name].to_list()
    column[row] = value
    return frame.with_columns(pl.Series(name, column, dtype=frame.schema[name], strict=False))


def variants(schema) -> list[tuple[str, pl.DataFrame]]:
    """The valid frame and one broken (or borderline) variant per column rule, plus frame-level ones."""
    built, frame = schema.to_schema(), valid_frame(schema)
    out = [("valid", frame), ("duplicate first row", pl.concat([frame.head(1), frame.head(ROWS - 1)])),
           ("extra column", frame.with_columns(extra=pl.lit(1))), ("empty", frame.head(0))]
    for name, column in built.columns.items():
        out.append((f"{name} dropped", frame.drop(name)))
        out.append((f"{name} null", _with(frame, name, None)))
        dtype = column.dtype.type
        if dtype == pl.Float64:
            out.append((f"{name} NaN", _with(frame, name, math.nan)))
            out.append((f"{name} as text", frame.with_columns(pl.col(name).cast(pl.String))))
        if dtype == pl.Int64:
            out.append((f"{name} unparseable", frame.with_columns(pl.lit("abc").alias(name))))
        for check in column.checks:
            out.append((f"{name} breaks {check.name}", _with(frame, name, _breaking(check.name, check.statistics))))
    return out


def pandera_verdict(schema, frame: pl.DataFrame) -> pl.DataFrame | None:
    try:
        return schema.validate(frame, lazy=True)
    except (pandera.errors.SchemaErrors, pandera.errors.SchemaError, pl.exceptions.PolarsError):  # a missing column: polars' error
        return None


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s.__name__)
def test_one_pass_accepts_only_what_pandera_accepts_and_returns_its_frame(schema):
    """Whatever one pass accepts, pandera accepts, coerced the same (pandera is asked only then: its error
    reports are slow, and a frame one pass leaves to it is validated by pandera anyway)."""
    left_to_pandera = []
    for label, frame in variants(schema):
        fast = valid_in_one_pass(schema, frame)
        if fast is None:
            left_to_pandera.append(label)
            continue
        slow = pandera_verdict(schema, frame)
        assert slow is not None, f"{schema.__name__}: one pass accepted {label!r}, which pandera rejects"
        assert fast.equals(slow) and fast.schema == slow.schema, f"{schema.__name__}: {label!r} coerced differently"
    assert len(left_to_pandera) >= len(schema.to_schema().columns)  # the variants do break rules


def test_one_pass_confirms_valid_frames_of_every_schema_without_frame_level_checks():
    """The fast path is taken (not always falling back): every schema whose rules are all per column
    confirms its valid frame."""
    plain = [s for s in SCHEMAS if not s.to_schema().checks]
    assert len(plain) >= 8
    for schema in plain:
        assert pandera_verdict(schema, valid_frame(schema)) is not None, schema.__name__
        assert valid_in_one_pass(schema, valid_frame(schema)) is not None, schema.__name__


def test_a_frame_level_check_is_run_and_its_failure_left_to_pandera():
    frame = pl.DataFrame({"x": [1.0, 2.0], "y": [2.0, 1.0]})

    class Ordered(schemas._Table):
        x: float
        y: float

        @pa.dataframe_check(name="x <= y")
        @classmethod
        def _ordered(cls, data: pa.PolarsData):
            return data.lazyframe.select(pl.col("x") <= pl.col("y"))

    assert valid_in_one_pass(Ordered, frame.head(1)) is not None
    assert valid_in_one_pass(Ordered, frame) is None and pandera_verdict(Ordered, frame) is None
    with_null = pl.DataFrame({"x": [1.0, None], "y": [2.0, 3.0]}, schema={"x": pl.Float64, "y": pl.Float64})
    assert valid_in_one_pass(Ordered, with_null) is None  # a null check output: pandera decides
