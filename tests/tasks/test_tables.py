"""tables: answers re-derived in SQLite from the rendered table and the question text, both read back."""

import csv
import io
import json
import re
import sqlite3
import statistics

import pytest

from task_harness import TaskHarness

H = TaskHarness("tables")
TASK = H.task
SQL_COMPARISON = {"greater than": ">", "less than": "<", "at least": ">=", "at most": "<="}


def read_table(item):
    """(header, rows of strings), read with the format's own reader."""
    table = item.question.split("\n\n")[1]
    if table.startswith("|"):
        lines = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()]
        return lines[0], [line for line in lines[2:]]
    if table.startswith("["):
        records = json.loads(table)
        return list(records[0]), [[str(value) for value in record.values()] for record in records]
    rows = list(csv.reader(io.StringIO(table)))
    return rows[0], rows[1:]


def load(header, rows):
    db = sqlite3.connect(":memory:")
    numeric = [all(re.fullmatch(r"-?\d+", row[i]) for row in rows) for i in range(len(header))]
    columns = ", ".join(f"[{name}] {'INTEGER' if is_number else 'TEXT'}" for name, is_number in zip(header, numeric))
    db.execute(f"CREATE TABLE t ({columns})")
    db.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(header))})",
                   [[int(v) if n else v for v, n in zip(row, numeric)] for row in rows])
    return db


def solve(item):
    """The answer by SQL, from the table and question text alone."""
    header, rows = read_table(item)
    db = load(header, rows)
    question = item.question.split("\n\n")[-1]
    clauses, args = [], []
    for column, value in re.findall(r'(\w+) equal to "([^"]+)"', question):
        clauses.append(f"[{column}] = ?")
        args.append(value)
    for column, comparison, value in re.findall(r"(\w+) (greater than|less than|at least|at most) (-?\d+)", question):
        clauses.append(f"[{column}] {SQL_COMPARISON[comparison]} ?")
        args.append(int(value))
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    key = header[0]
    if m := re.match(r"What is the (\w+) of the row whose \w+ is (.+)\?$", question):
        (value,) = db.execute(f"SELECT [{m.group(1)}] FROM t WHERE [{key}] = ?", [m.group(2)]).fetchone()
        return str(value)
    if question.startswith("How many"):
        return str(db.execute(f"SELECT COUNT(*) FROM t{where}", args).fetchone()[0])
    if m := re.match(r"Which \w+ has the largest (\w+)", question):
        sql = f"SELECT [{key}] FROM t{where} ORDER BY [{m.group(1)}] DESC, rowid ASC LIMIT 1"
        return db.execute(sql, args).fetchone()[0]
    kind, column = re.match(r"What is the (total|average|largest|smallest) (\w+)", question).groups()
    function = {"total": "SUM", "average": "AVG", "largest": "MAX", "smallest": "MIN"}[kind]
    (value,) = db.execute(f"SELECT {function}([{column}]) FROM t{where}", args).fetchone()
    return str(int(value + 0.5) if kind == "average" else value)  # averages of positive values: halves up


@pytest.mark.parametrize("tier", ["easy", "medium", "hard"])
def test_sql_over_the_rendered_table_gives_the_answer(tier):
    for _, item in H.tier_items(tier):
        assert solve(item) == item.answer, item.question


def test_rows_columns_and_format_are_what_the_table_shows():
    for rows, columns, fmt in ((5, 3, "markdown"), (40, 7, "csv"), (150, 11, "json")):
        for item in H.items({"rows": rows, "columns": columns, "format": fmt, "operation": "any", "conditions": 2}, 40):
            header, body = read_table(item)
            assert (len(body), len(header)) == (rows, columns) and item.metadata["format"] == fmt
            assert len({row[0] for row in body}) == rows  # the key column names rows uniquely


def test_more_conditions_match_fewer_rows_but_never_none():
    matching = {}
    for conditions in (0, 1, 2, 3):
        items = H.items({"rows": 40, "columns": 7, "format": "csv", "operation": "count", "conditions": conditions}, 150)
        counts = [int(item.answer) for item in items]
        assert min(counts) >= 1
        matching[conditions] = statistics.mean(counts)
    assert matching[0] == 40 > matching[1] > matching[2] > matching[3]


def test_operation_decides_the_question_and_answer_type():
    for operation, text in (("count", "How many"), ("sum", "total"), ("mean", "average"), ("max", "largest"),
                            ("min", "smallest"), ("argmax", "Which"), ("lookup", "of the row whose")):
        items = H.items({"rows": 20, "columns": 5, "format": "markdown", "operation": operation, "conditions": 2}, 50)
        assert all(text in item.question.split("\n\n")[-1] for item in items)
        assert all(item.metadata["operation"] == operation for item in items)
    mixed = H.items({"rows": 20, "columns": 5, "format": "any", "operation": "any", "conditions": 2}, 300)
    assert len({item.metadata["operation"] for item in mixed}) == 7
    assert len({item.metadata["format"] for item in mixed}) == 3


def test_every_small_manifold_point_yields_128_distinct_items():
    for point in H.spec.points():
        if point.params["rows"] <= 20:
            assert len({item.question for item in H.items(point.params, 128)}) == 128


def items_with(operation):
    return H.items({"rows": 20, "columns": 7, "format": "markdown", "operation": operation, "conditions": 2}, 1)[0]


def check_outputs(item, answer_text, decoy):
    outputs = [
        f"Rows matching: 3, 7 and 12; their values are {decoy} and so on.\nANSWER: {answer_text}",
        f"**ANSWER: {answer_text}**",
        f"Therefore \\boxed{{{answer_text}}}.",
        f"answer: {answer_text.lower()}\n(I checked all 20 rows.)",
        f"The final answer is {answer_text}.",
        f"Candidates: {decoy}.\n{answer_text}",
    ]
    H.assert_parses(item, outputs, decoy)


def test_parser_on_integer_answers():
    item = items_with("sum")
    check_outputs(item, item.answer, str(int(item.answer) + 13))
    assert TASK.parse(f"ANSWER: {int(item.answer):,}", item.metadata).value == item.answer
    assert TASK.parse("I cannot tell from the table.", item.metadata).value is None


def test_parser_on_text_answers():
    item = items_with("argmax")
    decoy = next(c for c in item.metadata["candidates"] if c != item.answer)
    check_outputs(item, item.answer, decoy)
    assert TASK.parse("Nobody in particular.", item.metadata).value is None


@pytest.mark.parametrize(
    "params, field",
    [
        ({"rows": 1, "columns": 5}, "rows"),
        ({"rows": 10, "columns": 2}, "columns"),
        ({"rows": 10, "columns": 12}, "columns"),
        ({"rows": 10, "columns": 5, "format": "xml"}, "format"),
        ({"rows": 10, "columns": 5, "operation": "median"}, "operation"),
        ({"rows": 10, "columns": 3, "conditions": 3}, "conditions"),
    ],
)
def test_bad_params_are_rejected_naming_the_field(params, field):
    H.assert_rejected(params, field)
