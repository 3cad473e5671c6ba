"""The answer cascade on realistic model output for the spine's two tasks."""

import pytest

from rs_dagster.tasks import get_task

ARITHMETIC = [
    ("First, 3 * 4 = 12. Then 12 + 5 = 17, minus 2 gives 15.\n\nANSWER: 15", "15", "answer_line"),
    ("We get 7 then 9.\n\n**Answer:** -42.", "-42", "answer_line"),
    ("Inner: 8. Outer: 16.\nThe final answer is $\\boxed{1,024}$.", "1024", "boxed"),
    ("Let me compute: (2+3)=5, 5*6=30.\nSo the answer is 30, which I double-checked.", "30", "answer_phrase"),
    ("Step 1: 4\nStep 2: 9\n\n81", "81", "last_line"),
    ("I believe it is 12 or maybe 13 overall", "13", "last_value"),
    ("ANSWER: 12\n\nWait, recheck: 3*5 = 15, so\n\nANSWER: 15", "15", "answer_line"),
]


@pytest.mark.parametrize("text, value, rule", ARITHMETIC)
def test_arithmetic_parser(text, value, rule):
    parsed = get_task("arithmetic").parse(text, {})
    assert (parsed.value, parsed.rule) == (value, rule)


def test_boolean_parser_only_accepts_the_items_notation():
    task = get_task("boolean")
    yes_no = {"notation": "yes_no"}
    text = "True AND False is False here; converting to the notation used... so\n\nANSWER: **yes**"
    parsed = task.parse(text, yes_no)
    assert (parsed.value, parsed.rule) == ("YES", "answer_line")
    assert task.score(parsed.value, "YES", yes_no)
    assert task.parse("The expression evaluates to false.", {"notation": "on_off"}).value is None
    assert task.parse("1 AND 0 → 0, then 0 OR 1 → 1.\n\\boxed{1}", {"notation": "one_zero"}).value == "1"
    assert not task.score("TRUE", "T", {"notation": "t_f"})


def test_nothing_to_parse():
    assert get_task("arithmetic").parse("I cannot solve this.", {}).value is None
    assert get_task("arithmetic").parse("", {}).rule is None


def test_marked_answers_follow_the_cascade_order():
    from rs_dagster.scoring.parsing import marked_answers

    text = "The answer is 3.\nANSWER: 4\nSo \\boxed{5} and \\boxed{6}.\nANSWER: 7"
    found = [(rule, fragment) for rule, fragment, _ in marked_answers(text)]
    assert found == [
        ("boxed", "6"), ("boxed", "5"), ("answer_line", "7"), ("answer_line", "4"),
        ("answer_phrase", "7"), ("answer_phrase", "4"), ("answer_phrase", "3."),
    ]
    assert all(text[start:].startswith(fragment) for _, fragment, start in marked_answers(text))


def test_answer_braces_keep_braces_that_are_part_of_the_answer():
    from rs_dagster.scoring.parsing import AnswerParser

    closers = r"[)\]>}](?:[^\S\n]*[)\]>}])*"
    plain = AnswerParser(value_pattern=closers, normalize=lambda v: "".join(v.split()))
    braces = AnswerParser(value_pattern=closers, normalize=lambda v: "".join(v.split()), answer_braces=True)
    assert plain.parse("ANSWER: )]}").value == ")]"  # the default cleaning strips braces at the ends
    for text in ["ANSWER: )]}", "$\\boxed{)]}}$", "$\\boxed{)]\\}}$", "$\\boxed{\\text{)]}}}$", "ANSWER: `) ] }`"]:
        assert braces.parse(text).value == ")]}", text
    assert braces.parse("ANSWER: \\mathbf{)} ]").value == ")"  # a command's closing brace ends the value


def test_shared_integer_and_name_syntax():
    from rs_dagster.scoring.parsing import COUNT_PARSER, INTEGER_PARSER, names_parser

    assert INTEGER_PARSER.parse("ANSWER: \u22121,024").value == "-1024"
    assert COUNT_PARSER.parse("ANSWER: -12").value == "12"  # counts are never negative: the sign is prose
    parser = names_parser(("Ada", "Ada Abbott", "Sales"))
    assert parser.parse("ANSWER: ada   ABBOTT").value == "ada abbott"
    assert parser.parse("It is Sales, not Ada.\nANSWER: Ada").value == "ada"
