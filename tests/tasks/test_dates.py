"""dates: answers re-derived from the question text by a day-count calendar written from scratch (no
datetime), difficulty knobs measured, parser on realistic outputs, bad parameters rejected."""

from __future__ import annotations

import re
from statistics import mean

import pytest
from task_harness import TaskHarness

from rs_dagster.tasks.dates import MONTH_RULE as TASK_MONTH_RULE
from rs_dagster.tasks.manifold import TIERS

H = TaskHarness("dates")
TASK = H.task
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
READ = {
    "iso": (r"(\d{4})-(\d\d)-(\d\d)", lambda m: (int(m[1]), int(m[2]), int(m[3]))),
    "us": (r"(\d\d)/(\d\d)/(\d{4})", lambda m: (int(m[3]), int(m[1]), int(m[2]))),
    "eu": (r"(\d\d)\.(\d\d)\.(\d{4})", lambda m: (int(m[3]), int(m[2]), int(m[1]))),
    "long": (r"([A-Z][a-z]+) (\d{1,2}), (\d{4})", lambda m: (int(m[3]), MONTHS.index(m[1]) + 1, int(m[2]))),
}
WRITE = {
    "YYYY-MM-DD": lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
    "MM/DD/YYYY": lambda y, m, d: f"{m:02d}/{d:02d}/{y}",
    "DD.MM.YYYY": lambda y, m, d: f"{d:02d}.{m:02d}.{y}",
    "Month D, YYYY": lambda y, m, d: f"{MONTHS[m - 1]} {d}, {y}",
}


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _month_days(year: int, month: int) -> int:
    return 29 if month == 2 and _leap(year) else [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]


def _day_number(year: int, month: int, day: int) -> int:
    """Days since 0001-01-01 (day 0), counted year by year and month by month."""
    before = 365 * (year - 1) + (year - 1) // 4 - (year - 1) // 100 + (year - 1) // 400
    return before + sum(_month_days(year, m) for m in range(1, month)) + day - 1


def _from_day_number(number: int) -> tuple[int, int, int]:
    year = number // 366 + 1
    while _day_number(year + 1, 1, 1) <= number:
        year += 1
    month = 1
    while _day_number(year, month, _month_days(year, month)) < number:
        month += 1
    return year, month, number - _day_number(year, month, 1) + 1


def _weekday(number: int) -> int:
    return number % 7  # 0001-01-01 was a Monday in the proleptic Gregorian calendar


def _solve(question: str) -> str:
    """Today from the narrative, then years (clamped), months (clamped), weeks and days, as the prompt
    says, from the text the model receives alone."""
    fmt = next(f for f, (pattern, _) in READ.items() if re.search(pattern, question.split(" What is the date")[0]))
    pattern, read = READ[fmt]
    anchor = _day_number(*read(re.search(pattern, question)))
    opening = question.split(" What is the date")[0]
    if opening.startswith("Today is a "):
        named_today, named_before = re.match(r"Today is a (\w+)\. The most recent (\w+) before", opening).groups()
        assert WEEKDAYS[_weekday(anchor)] == named_before
        today = anchor + ((WEEKDAYS.index(named_today) - WEEKDAYS.index(named_before)) % 7 or 7)
        assert WEEKDAYS[_weekday(today)] == named_today
    elif opening.startswith("Today is"):
        today = anchor
    elif m := re.search(r"(\d+) days (ago|from today|from now)", opening):
        today = anchor + int(m[1]) if m[2] == "ago" else anchor - int(m[1])
    else:
        shifts = {"The day before yesterday": 2, "Yesterday": 1, "The day after tomorrow": -2, "Tomorrow": -1}
        today = anchor + next(s for start, s in shifts.items() if opening.startswith(start))
    offset_text, direction = re.search(r"What is the date (.+) (after|before) today\?", question).groups()
    sign = 1 if direction == "after" else -1
    amounts = {unit.rstrip("s"): int(n) for n, unit in re.findall(r"(\d+) (years?|months?|weeks?|days?)", offset_text)}
    if amounts.get("year") or amounts.get("month"):
        assert "keeps the day of the month; if that day does not exist in the resulting month, use the last day" in question
        assert "applies the years first, then the months, then the days" in question
    # The prompt's words, step by step: years (clamped), then months (clamped again), then weeks and days.
    year, month, day = _from_day_number(today)
    for months in (12 * amounts.get("year", 0), amounts.get("month", 0)):
        index = year * 12 + month - 1 + sign * months
        year, month = index // 12, index % 12 + 1
        day = min(day, _month_days(year, month))
    target = _day_number(year, month, day) + sign * (7 * amounts.get("week", 0) + amounts.get("day", 0))
    wanted = re.search(r"Write the date in the format (YYYY-MM-DD|MM/DD/YYYY|DD\.MM\.YYYY|Month D, YYYY)", question)[1]
    return WRITE[wanted](*_from_day_number(target))


def test_the_scratch_calendar_agrees_with_known_dates():
    assert _weekday(_day_number(2000, 1, 1)) == WEEKDAYS.index("Saturday")
    assert _weekday(_day_number(2019, 2, 28)) == WEEKDAYS.index("Thursday")
    assert _day_number(2001, 1, 1) - _day_number(2000, 1, 1) == 366
    assert _day_number(1901, 1, 1) - _day_number(1900, 1, 1) == 365
    assert _from_day_number(_day_number(2100, 2, 28) + 1) == (2100, 3, 1)


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_answers_match_a_calendar_written_from_scratch(tier):
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = [(item.question, item.answer) for _, item in checked if _solve(H.prompt_text(item)) != item.answer]
    assert mismatches == []


def test_years_then_months_clamp_twice_as_the_prompt_says():
    """The issue's case: 2060-02-29 minus 3 years is 2057-02-28 (clamped); minus 8 months, 2056-06-28; minus
    6 days, 2056-06-22. One combined 44-month step would give 2056-06-29, then 2056-06-23."""
    question = ("Fatima flies home on March 28, 2060, which is 28 days from now. What is the date 3 years, 8 months "
                "and 6 days before today? " + TASK_MONTH_RULE + " Write the date in the format YYYY-MM-DD.")
    assert _solve(question) == "2056-06-22"
    mixed = [i for _, i in H.space_items() if i.metadata["today"].endswith("-02-29") and i.metadata["offset"].get("years")]
    assert mixed and all(_solve(H.prompt_text(i)) == i.answer for i in mixed)


def _point(**changes):
    return {"scenario": "anchor", "unit": "months", "offset_size": 365, "input_format": "iso", "output_format": "iso",
            **changes}


def test_offset_size_scenario_and_formats_show_in_the_items():
    spans = [mean(i.metadata["span_days"] for i in H.items(_point(unit="days", offset_size=size), 64))
             for size in (7, 30, 365, 3650, 36500)]
    assert spans == sorted(spans) and spans[-1] > 1000 * spans[0]
    for unit in ("days", "weeks", "months", "years"):
        assert all(f" {unit[:-1]}" in i.question for i in H.items(_point(unit=unit), 32))
    mixed = H.items(_point(unit="mixed", offset_size=36500), 64)
    assert mean(len(re.findall(r"\d+ (?:years?|months?|days?)", i.question.split("What is")[1])) for i in mixed) > 2.5
    for fmt, (pattern, _) in READ.items():
        for item in H.items(_point(input_format=fmt), 32):
            assert re.search(pattern, item.question.split(" What is the date")[0])
    openings = {"direct": r"^Today is \S+[.,]", "relative": r"^(The day (before|after) )?(Yesterday|yesterday|Tomorrow|tomorrow)",
                "anchor": r"\d+ days (ago|from)", "weekday": r"^Today is a \w+day\. The most recent"}
    for scenario, pattern in openings.items():
        assert all(re.search(pattern, i.question) for i in H.items(_point(scenario=scenario, unit="days"), 32))


def test_month_ends_and_leap_days_are_exercised():
    items = [item for _, item in H.tier_items("medium")]
    assert mean(item.metadata["clamped"] for item in items if "months" in item.metadata["offset"]) > 0.05
    assert any(item.metadata["today"].endswith("-02-29") for item in items)


@pytest.mark.parametrize("fmt", ["iso", "us", "eu", "long"])
def test_parser_on_realistic_outputs(fmt):
    item = H.items(_point(output_format=fmt, input_format=fmt), 8)[0]
    answer, anchor = item.answer, re.search(READ[fmt][0], item.question)[0]
    outputs = [
        f"Today: the narrative says {anchor}, so today is a few days off that. Adding the months gives the answer.\n\nANSWER: {answer}",
        f"**ANSWER: {answer}**",
        f"$\\boxed{{\\text{{{answer}}}}}$",
        f"ANSWER: {answer}\n\nNote that the day was clamped to the end of the month where needed.",
        f"The final answer is {answer}.",
        f"answer: {answer.upper()}",
    ]
    H.assert_parses(item, outputs, anchor if anchor != answer else None, unparsable=("I cannot determine the date.",))


def test_parser_reads_unpadded_dates_as_the_same_date():
    item = next(i for i in H.items(_point(output_format="us"), 64) if i.answer[0] == "0" and i.answer[3] == "0")
    unpadded = f"{int(item.answer[:2])}/{int(item.answer[3:5])}/{item.answer[6:]}"
    assert H.correct(f"ANSWER: {unpadded}", item)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (_point(scenario="tomorrow"), "scenario"),
        (_point(unit="decades"), "unit"),
        (_point(offset_size=0), "offset_size"),
        (_point(offset_size=40000), "offset_size"),
        (_point(input_format="rfc"), "input_format"),
        (_point(output_format="roman"), "output_format"),
        ({"unit": "days", "offset_size": 30}, "scenario"),
    ],
)
def test_bad_params_are_rejected(params, field):
    H.assert_rejected(params, field)
