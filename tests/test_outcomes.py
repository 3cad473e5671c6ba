"""One definition of outcomes and one accuracy rule (rs_dagster.scoring.outcomes): the Python side (polars
expressions, the points aggregation) and the SQL side (the DuckDB macros the SQL models use) agree on a
frame holding every outcome, strict and flexible."""

import duckdb
import polars as pl
import pytest

from rs_dagster.scoring.outcomes import ANSWERED, Outcome, accuracy, accuracy_of, is_answered, is_correct
from rs_dagster.stats.points import aggregate_points
from rs_dagster.storage import schemas
from rs_dagster.storage.sql_models import register_functions

# (strict, flexible, how many): every outcome on both sides, and answers that only a lenient rule reads.
SAMPLES = [
    (Outcome.CORRECT, Outcome.CORRECT, 5),
    (Outcome.INCORRECT, Outcome.INCORRECT, 2),
    (Outcome.UNPARSED, Outcome.CORRECT, 3),
    (Outcome.UNPARSED, Outcome.INCORRECT, 1),
    (Outcome.UNPARSED, Outcome.UNPARSED, 2),
    (Outcome.AMBIGUOUS, Outcome.AMBIGUOUS, 2),  # a hedge ("5 or 7"): answered, never correct
    (Outcome.TRUNCATED, Outcome.TRUNCATED, 4),
    (Outcome.ERROR, Outcome.ERROR, 6),
]


def scored_frame() -> pl.DataFrame:
    strict = [s.value for s, _, k in SAMPLES for _ in range(k)]
    flexible = [f.value for _, f, k in SAMPLES for _ in range(k)]
    return pl.DataFrame(
        {
            "model": "m", "task": "t", "point_id": "p", "test_case_id": [f"c{i}" for i in range(len(strict))],
            "outcome": strict, "flexible_outcome": flexible, "guess_chance": 0.25,
            "completion_tokens": [10] * len(strict), "reasoning_tokens": [None] * len(strict), "answer_phase": ["single"] * len(strict),
        },
        schema_overrides={"reasoning_tokens": pl.Int64},
    )


def sql_accuracy(frame: pl.DataFrame, column: str) -> float | None:
    con = duckdb.connect()
    register_functions(con)
    con.register("scored", frame.to_arrow())
    [(value,)] = con.execute(
        f"SELECT accuracy(count(*) FILTER (WHERE is_correct({column})), count(*) FILTER (WHERE is_answered({column}))) FROM scored"
    ).fetchall()
    return value


@pytest.mark.parametrize("column", ["outcome", "flexible_outcome"])
def test_python_and_sql_accuracy_agree_on_every_outcome(column):
    frame = scored_frame()
    assert set(frame[column]) == {o.value for o in Outcome}
    counts = frame.select(correct=is_correct(column).sum(), answered=is_answered(column).sum()).row(0, named=True)
    python = accuracy(counts["correct"], counts["answered"])
    assert python == accuracy_of(dict(frame.group_by(column).len().iter_rows()))
    assert sql_accuracy(frame, column) == pytest.approx(python)
    expected = {"outcome": 5 / 15, "flexible_outcome": 8 / 15}[column]  # truncated and error left out; ambiguous in
    assert python == pytest.approx(expected)
    point = aggregate_points(frame, pl.DataFrame(
        {"point_id": ["p"], "params_json": ["{}"], "tiers": [["easy"]], "surfaces": [[]], "projections": [[]]},
        schema_overrides={"surfaces": pl.List(pl.String), "projections": pl.List(pl.String)},
    )).row(0, named=True)
    assert point["answered"] == 15
    assert (point["correct"], point["incorrect"], point["unparsed"], point["ambiguous"]) == (5, 2, 6, 2)
    assert point["format_compliance"] == pytest.approx(7 / 15)  # ambiguous is not an answer in the requested form
    assert point["accuracy" if column == "outcome" else "flexible_accuracy"] == pytest.approx(expected)


def test_nothing_answered_has_no_accuracy_in_python_or_sql():
    frame = scored_frame().filter(~is_answered())
    assert accuracy_of(dict(frame.group_by("outcome").len().iter_rows())) is None
    assert sql_accuracy(frame, "outcome") is None


def test_the_schemas_take_their_values_from_the_enums():
    assert schemas.OUTCOMES == ["correct", "incorrect", "unparsed", "ambiguous", "truncated", "error"]
    assert schemas.ANSWER_PHASES == ["single", "budget_forced"]
    assert [o.value for o in ANSWERED] == ["correct", "incorrect", "unparsed", "ambiguous"]


def test_an_ambiguous_answer_is_in_accuracys_denominator_and_never_in_its_numerator():
    """Hedging costs as much as a wrong answer: 3 correct and 1 hedge is 3/4, in Python, SQL and points."""
    assert accuracy_of({"correct": 3, "ambiguous": 1}) == 0.75
    assert accuracy_of({"ambiguous": 2}) == 0.0  # answered, so known: nothing right (not None, as nothing answered is)
    frame = scored_frame().filter(pl.col("outcome").is_in(["correct", "ambiguous"]))
    assert sql_accuracy(frame, "outcome") == pytest.approx(5 / 7)
    assert sql_accuracy(frame, "flexible_outcome") == pytest.approx(5 / 7)
