"""The answer cascade on realistic model output: every example of issue 21 under the new rules, and the
cascade's order and shared value syntaxes."""

import pytest

from rs_dagster.scoring.outcomes import Outcome, score_sample
from rs_dagster.tasks import get_task

ARITHMETIC = [
    ("First, 3 * 4 = 12. Then 12 + 5 = 17, minus 2 gives 15.\n\nANSWER: 15", "15", "answer_line"),
    ("We get 7 then 9.\n\n**Answer:** -42.", "-42", "answer_line"),
    ("Inner: 8. Outer: 16.\nThe final answer is $\\boxed{1,024}$.", "1024", "boxed"),
    ("Let me compute: (2+3)=5, 5*6=30.\nSo the answer is 30, which I double-checked.", "30", "answer_phrase"),
    ("Step 1: 4\nStep 2: 9\n\n81", "81", "last_line"),
    ("ANSWER: 12\n\nWait, recheck: 3*5 = 15, so\n\nANSWER: 15", "15", "answer_line"),
    # issue 21: a group separator before a full stop, an expression, decimals and signs
    ("ANSWER: 1,234.", "1234", "answer_line"),
    ("The answer is 135,210.", "135210", "answer_phrase"),
    ("ANSWER: 12 - 5 = 7", "7", "answer_line"),
    ("ANSWER: 42, since 6 * 7 = 42 and 40 + 2 = 42", "42", "answer_line"),
    ("ANSWER: 5.5", "5.5", "answer_line"),
    ("ANSWER: 12.0", "12", "answer_line"),
    ("ANSWER: \u22125", "-5", "answer_line"),
    # a retraction counts as what it retracts to
    ("The answer is 5. Wait, no, it's 7.", "7", "answer_phrase"),
    ("ANSWER: 8 (actually 9, I dropped a carry)", "9", "answer_line"),
]


@pytest.mark.parametrize("text, value, rule", ARITHMETIC)
def test_arithmetic_parser(text, value, rule):
    parsed = get_task("arithmetic").parse(text, {})
    assert (parsed.value, parsed.rule, parsed.ambiguous) == (value, rule, ())


HEDGES = [
    ("arithmetic", {}, "ANSWER: 5 or 7", ("5", "7")),
    ("arithmetic", {}, "I believe it is 12 or maybe 13.", ("12", "13")),
    ("movies", {"choices": ["Heat", "Alien", "Up", "Jaws"]}, "ANSWER: (A) or (B)", ("A", "B")),
    ("movies", {"choices": ["Heat", "Alien", "Up", "Jaws"]}, "ANSWER: A, B, C, D", ("A", "B", "C", "D")),
    ("boolean", {"notation": "true_false"}, "ANSWER: True/False", ("TRUE", "FALSE")),
    ("boolean", {"notation": "true_false"}, "So the answer is True or False.", ("TRUE", "FALSE")),
    # an option's letter beside another option's content
    ("shapes", {"options": ["circle", "square", "triangle"]}, "ANSWER: (B) circle", ("B", "A")),
    ("movies", {"choices": ["Heat", "Alien", "Up", "Jaws"]}, "So the answer is (C) Alien.", ("C", "B")),
]


@pytest.mark.parametrize("task, metadata, text, candidates", HEDGES)
def test_hedged_answers_are_ambiguous_and_never_credited(task, metadata, text, candidates):
    parsed = get_task(task).parse(text, metadata)
    assert (parsed.value, parsed.ambiguous) == (None, candidates)
    for answer in candidates:  # whichever candidate is the gold one
        scored = score_sample(get_task(task), answer, metadata, text, "stop", None)
        assert scored.outcome in (Outcome.AMBIGUOUS.value, Outcome.UNPARSED.value)
        assert scored.flexible_outcome == Outcome.AMBIGUOUS.value
        assert scored.parsed_answer == " | ".join(candidates)


def test_letter_and_content_of_the_same_option_are_one_answer():
    shapes = get_task("shapes")
    for text in ("ANSWER: (B) square", "ANSWER: square (B)", "ANSWER: B. square", "So the answer is square."):
        assert shapes.parse(text, {"options": ["circle", "square", "triangle"]}).value == "B", text
    movies = get_task("movies")
    assert movies.parse("ANSWER: A Beautiful Mind", {"choices": ["Up", "A Beautiful Mind"]}).value == "B"
    assert movies.parse("A good pick is Up.\nANSWER: B", {"choices": ["Up", "A Beautiful Mind"]}).value == "B"


NOT_ANSWERS = [
    ("arithmetic", {}, "ANSWER: 12 - 5"),  # an expression without its value
    ("arithmetic", {}, "ANSWER: 3/4"),  # a fraction for an integer task
    ("boolean", {"notation": "true_false"}, "ANSWER: not True"),
    ("boolean", {"notation": "true_false"}, "ANSWER: True AND False"),
    ("brackets", {"prefix": "(["}, "Closing ] then ).\nSo the answer is empty."),
    ("arithmetic", {}, "The total is 41.\nANSWER: none"),
]


@pytest.mark.parametrize("task, metadata, text", NOT_ANSWERS)
def test_what_is_not_an_answer_stops_the_cascade_unparsed(task, metadata, text):
    parsed = get_task(task).parse(text, metadata)
    assert parsed.value is None and not parsed.is_ambiguous
    assert score_sample(get_task(task), "7", metadata, text, "stop", None).outcome == Outcome.UNPARSED.value


def test_a_negative_count_and_a_decimal_are_wrong_answers_not_correct_ones():
    for task in ("objects", "letters"):
        for text in ("ANSWER: -5", "ANSWER: \u22125", "ANSWER: 5.5"):
            scored = score_sample(get_task(task), "5", {}, text, "stop", None)
            assert scored.outcome == Outcome.INCORRECT.value, (task, text)


def test_a_repetition_loop_gives_no_lenient_answer():
    loop = "Let me count again. The count is 4.\n" * 30
    assert get_task("objects").parse(loop, {}).value is None
    assert get_task("objects").parse("Let me count again. The count is 4.\nSo 4", {}).value == "4"


def test_huge_numbers_are_read_not_raised():
    digits = "9" * 10_000
    assert get_task("arithmetic").parse(f"ANSWER: {digits}", {}).value == digits
    scored = score_sample(get_task("arithmetic"), "9", {}, f"ANSWER: {digits}", "stop", None)
    assert scored.outcome == Outcome.INCORRECT.value


def test_long_form_dates_are_read_by_the_flexible_rules_only():
    dates = get_task("dates")
    iso = {"output_format": "iso"}
    for text in ("So the answer is: today's date is May 6, 2002.", "ANSWER: May 6th, 2002", "The answer is 6 May 2002",
                 "The date 10 days later is May 6, 2002."):
        assert dates.parse(text, iso).value == "2002-05-06", text
    assert dates.parse("Today is 2062-10-26.", iso).value is None  # restates the question's given, answers nothing
    strict_long = score_sample(dates, "2002-05-06", iso, "ANSWER: May 6, 2002", "stop", None)
    assert (strict_long.outcome, strict_long.flexible_outcome) == ("unparsed", "correct")  # not in the asked format
    assert score_sample(dates, "2002-05-06", iso, "ANSWER: 2002-05-06", "stop", None).outcome == "correct"
    long = {"output_format": "long"}
    assert score_sample(dates, "January 2, 2020", long, "ANSWER: January 2, 2020", "stop", None).outcome == "correct"
    assert dates.parse("ANSWER: 2020-01-02 or 2020-01-03", iso).ambiguous == ("2020-01-02", "2020-01-03")


def test_sort_reads_space_separated_lists_and_never_prose():
    sort = get_task("sort")
    metadata = {"words": ["cherry", "apple", "banana", "o'connell", "r&d"]}
    assert sort.parse("So the answer is apple banana cherry.", metadata).value == "apple,banana,cherry"
    assert sort.parse("Hence, we sort them.", metadata).value is None
    assert sort.parse("ANSWER: apple, banana, cherry, o'connell, r&d", metadata).value == "apple,banana,cherry,o'connell,r&d"
    assert sort.parse("ANSWER:\n1. apple\n2. banana\n3. cherry", metadata).value == "apple,banana,cherry"
    assert sort.parse("So the answer is empty.", metadata).value is None
    hedges = {
        "ANSWER: apple banana cherry or cherry banana apple": "cherry,banana,apple",
        "ANSWER: apple, banana, cherry / banana, apple, cherry": "banana,apple,cherry",
        "So the answer is apple banana cherry (or apple cherry banana).": "apple,cherry,banana",
    }
    for hedge, other in hedges.items():
        assert sort.parse(hedge, metadata).ambiguous == ("apple,banana,cherry", other), hedge
    assert sort.parse("ANSWER: apple, banana, cherry, which are now sorted", metadata).value == "apple,banana,cherry"


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


def test_brackets_answer_that_repeats_the_prefix_is_read_after_it():
    brackets = get_task("brackets")
    assert brackets.parse("So the answer is ( [ ( ) { } ] )", {"prefix": "([(){"}).value == "}])"


def test_shared_number_and_name_syntax():
    from rs_dagster.scoring.parsing import NUMBER_PARSER, names_parser

    assert NUMBER_PARSER.parse("ANSWER: \u22121,024").value == "-1024"
    assert NUMBER_PARSER.parse("ANSWER: -12").value == "-12"  # a sign is part of the answer, even for a count
    parser = names_parser(("Ada", "Ada Abbott", "Sales"))
    assert parser.parse("ANSWER: ada   ABBOTT").value == "ada abbott"
    assert parser.parse("It is Sales, not Ada.\nANSWER: Ada").value == "ada"
    assert parser.parse("ANSWER: Ada or Sales").ambiguous == ("ada", "sales")
