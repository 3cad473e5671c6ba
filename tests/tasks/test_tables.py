"""tables: answers re-derived from the prompt text alone (the table read as the format the prompt names,
the question done as its words say) on every tier and the whole grid; knobs measured, parser on
realistic outputs."""

import csv
import io
import json
import math
import operator
import re
import statistics
from fractions import Fraction

import pytest
from task_harness import TaskHarness

from rs_dagster.tasks.manifold import TIERS

H = TaskHarness("tables")
TASK = H.task
COMPARE = {"greater than": operator.gt, "less than": operator.lt, "at least": operator.ge, "at most": operator.le}


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


def read_stated_table(prompt):
    """Rows as {column: value} (ints where a column holds only integers), read as the format the prompt
    names, in the order listed."""
    label, table = re.match(r"The table below lists \w+, as (.+)\.\n\n(.+?)\n\n", prompt, re.S).groups()
    if label == "a JSON list of records":
        return json.loads(table)
    if label == "a markdown table":
        lines = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table.splitlines()]
        assert set(lines[1]) <= {"---"}
        header, body = lines[0], lines[2:]
    else:
        assert label == "CSV"
        header, *body = list(csv.reader(io.StringIO(table)))
    columns = list(zip(*body))
    numeric = [all(cell.lstrip("-").isdigit() for cell in column) for column in columns]
    values = [list(map(int, column)) if number else column for column, number in zip(columns, numeric)]
    return [dict(zip(header, row)) for row in zip(*values)]


def matches(condition, row):
    """One filter, in the prompt's words: `column equal to "text"` or `column <comparison> number`."""
    if m := re.fullmatch(r'(\w+) equal to "([^"]+)"', condition):
        return row[m[1]] == m[2]
    column, comparison, number = re.fullmatch(r"(\w+) (greater than|less than|at least|at most) (-?\d+)", condition).groups()
    return COMPARE[comparison](row[column], int(number))


def chosen(rows, scope):
    """The rows a scope names: "all <rows>" or "the <rows> with <filter> and <filter> ..."."""
    if scope.startswith("all "):
        return rows
    conditions = re.fullmatch(r"the \w+ with (.+)", scope)[1].split(" and ")
    return [row for row in rows if all(matches(condition, row) for condition in conditions)]


def solve(prompt):
    """The answer from the prompt text alone, doing what its question says."""
    rows = read_stated_table(prompt)
    question = prompt.split("\n\n")[-2]
    if m := re.fullmatch(r"How many (\w+) (?:are in the table|have (.+))\?", question):
        return str(len(rows if m[2] is None else chosen(rows, f"the {m[1]} with {m[2]}")))
    if m := re.fullmatch(r"What is the (\w+) of the row whose (\w+) is (.+)\?", question):
        (row,) = [row for row in rows if row[m[2]] == m[3]]
        return str(row[m[1]])
    if m := re.fullmatch(r"Which (\w+) has the largest (\w+) among (.+)\? If several tie, give the one listed first\.", question):
        among = chosen(rows, m[3])
        largest = max(row[m[2]] for row in among)
        return next(row[m[1]] for row in among if row[m[2]] == largest)
    if m := re.fullmatch(r"What is the average (\w+) of (.+), rounded to the nearest integer \(halves round up\)\?", question):
        values = [row[m[1]] for row in chosen(rows, m[2])]
        return str(math.floor(Fraction(sum(values), len(values)) + Fraction(1, 2)))
    kind, column, scope = re.fullmatch(r"What is the (total|largest|smallest) (\w+) (?:of|among) (.+)\?", question).groups()
    values = [row[column] for row in chosen(rows, scope)]
    return str({"total": sum, "largest": max, "smallest": min}[kind](values))


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_answers_follow_the_prompts_question(tier):
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = [(item.question, item.answer) for _, item in checked if solve(H.prompt_text(item)) != item.answer]
    assert mismatches == []


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
