"""dates: work out today from a narrative, then the date a given offset away.

Difficulty: `scenario` (how today is fixed: stated, yesterday/tomorrow, an event N days away, or the last
occurrence of a weekday), `unit` (days, weeks, months, years, or a mixed years+months+days offset),
`offset_size` (the largest span of the offset in days), `input_format` and `output_format` (ISO, US,
European, long). Months and years clamp to the last day of a shorter month, as the question states; a
third of the days of today are month ends, where clamping and leap days bite.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
import re
from functools import cache
from typing import Any, Literal

from pydantic import Field

from rs_dagster.scoring.parsing import AnswerParser
from rs_dagster.tasks.base import Item, Task, TaskParams, join_and

Scenario = Literal["direct", "relative", "anchor", "weekday"]
Unit = Literal["days", "weeks", "months", "years", "mixed"]
Format = Literal["iso", "us", "eu", "long"]

FIRST_YEAR, LAST_YEAR = 1900, 2100  # both are non-leap century years, a classic trap
MONTHS = tuple(calendar.month_name)[1:]
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FORMAT_NAMES = {
    "iso": "YYYY-MM-DD",
    "us": "MM/DD/YYYY",
    "eu": "DD.MM.YYYY",
    "long": "Month D, YYYY (e.g. March 7, 2021)",
}
_DATE_PATTERNS = {
    "iso": r"(?<!\d)(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?!\d)",
    "us": r"(?<!\d)(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})(?!\d)",
    "eu": r"(?<!\d)(?P<d>\d{1,2})\.(?P<m>\d{1,2})\.(?P<y>\d{4})(?!\d)",
    "long": rf"(?<![\w])(?P<m>{'|'.join(MONTHS)})\s+(?P<d>\d{{1,2}}),?\s+(?P<y>\d{{4}})(?!\d)",
}
MONTH_RULE = (
    "Adding or subtracting months or years keeps the day of the month; if that day does not exist in the "
    "resulting month, use the last day of that month (so January 31 plus one month is February 28, or "
    "February 29 in a leap year). A combined offset applies the years first, then the months, then the days."
)
_RELATIVE = {1: "Yesterday was {date}.", 2: "The day before yesterday was {date}.",
             -1: "Tomorrow will be {date}.", -2: "The day after tomorrow will be {date}."}
_PAST_EVENTS = ("{name} started a new job on {date}, exactly {n} days ago.",
                "{name}'s package arrived on {date}; that was {n} days ago.")
_FUTURE_EVENTS = ("{name}'s wedding is on {date}, {n} days from today.",
                  "{name} flies home on {date}, which is {n} days from now.")
_PEOPLE = ("Ana", "Ben", "Carla", "Deepak", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia")


def format_date(date: dt.date, fmt: str) -> str:
    if fmt == "iso":
        return date.isoformat()
    if fmt == "us":
        return f"{date.month:02d}/{date.day:02d}/{date.year}"
    if fmt == "eu":
        return f"{date.day:02d}.{date.month:02d}.{date.year}"
    return f"{MONTHS[date.month - 1]} {date.day}, {date.year}"


def add_months(date: dt.date, months: int) -> dt.date:
    """Calendar month arithmetic, clamping the day to the end of a shorter month."""
    index = date.year * 12 + date.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(date.day, calendar.monthrange(year, month + 1)[1]))


_MONTH_NAMES = {name.lower(): i for i, name in enumerate(MONTHS, 1)} | {name[:3].lower(): i for i, name in enumerate(MONTHS, 1)} | {"sept": 9}
_MONTH = rf"(?P<{{}}>{'|'.join(sorted(_MONTH_NAMES, key=len, reverse=True))})\.?"
_DAY = r"(?P<{}>\d{{1,2}})(?:st|nd|rd|th)?"
_WRITTEN_DATES = (
    # "May 6, 2002", "Tuesday, May 6th 2002", "Sept. 6, 2002"
    rf"(?<![\w])(?:(?:{'|'.join(WEEKDAYS)}),?\s+)?{_MONTH.format('m1')}\s+{_DAY.format('d1')},?\s+(?P<y1>\d{{4}})(?!\d)",
    # "6 May 2002", "the 6th of May, 2002"
    rf"(?<![\w]){_DAY.format('d2')}\s+(?:of\s+)?{_MONTH.format('m2')},?\s+(?P<y2>\d{{4}})(?!\d)",
    # numbers in an order only one reading allows: a day above 12 first or second ("19-09-2060", "09/19/2060")
    r"(?<![\w.])(?P<d3>1[3-9]|2\d|3[01])(?P<s3>[-/.])(?P<m3>0?[1-9]|1[0-2])(?P=s3)(?P<y3>\d{4})(?!\w|[-.]\d)",
    r"(?<![\w.])(?P<m4>0?[1-9]|1[0-2])(?P<s4>[-/.])(?P<d4>1[3-9]|2\d|3[01])(?P=s4)(?P<y4>\d{4})(?!\w|[-.]\d)",
)
"""Dates written out in words, or in numbers whose order only one reading allows: unambiguous, so the
flexible rules read them whatever format was asked (strict accuracy still counts only the asked format). A closed grammar over the month names
rather than python-dateutil's fuzzy parser, which fills a missing day or year from today's date."""


def _iso_of(match: re.Match[str]) -> str:
    """The ISO date a candidate names; the text itself when it names no calendar day (a wrong answer)."""
    groups = {k[0]: v for k, v in match.groupdict().items() if v is not None and k[0] in "ymd"}
    try:
        month = int(groups["m"]) if groups["m"].isdigit() else _MONTH_NAMES[groups["m"].lower().rstrip(".")]
        return dt.date(int(groups["y"]), month, int(groups["d"])).isoformat()
    except (KeyError, ValueError):
        return match.group(0).strip()


def _renamed(pattern: str, suffix: str) -> str:
    """`pattern` with its groups y, m, d renamed y<suffix>, ..., so several forms join in one regex."""
    return re.sub(r"\(\?P<([ymd])>", rf"(?P<\1{suffix}>", pattern)


@cache
def _parser(fmt: str) -> AnswerParser:
    """The asked format, ISO (unambiguous, read whatever was asked) and dates written in words."""
    forms = [_renamed(_DATE_PATTERNS[fmt], "a"), *([] if fmt == "iso" else [_renamed(_DATE_PATTERNS["iso"], "i")]), *_WRITTEN_DATES]
    candidate = re.compile("|".join(f"(?:{form})" for form in forms), re.IGNORECASE)
    in_form = re.compile(_DATE_PATTERNS[fmt], re.IGNORECASE)

    def normalize(value: str) -> str:
        match = candidate.fullmatch(value.strip()) or candidate.search(value)
        return _iso_of(match) if match else value.strip()

    return AnswerParser(
        value_pattern=candidate.pattern, normalize=normalize, given=_GIVEN,
        in_form=lambda value: in_form.fullmatch(value.strip()) is not None,
    )


_GIVEN = r"(?i)(?:^|[.!?:]\s)\s*(?:so,?\s+)?(?:today|yesterday|tomorrow)(?:'s date)?\s+(?:is|was|will be)\b[^.\n]*$"
"""A date the question gives ("Today is 2002-05-06."): ending the text with it restates the question."""


class DatesParams(TaskParams):
    scenario: Scenario = Field(description="how the narrative fixes today")
    unit: Unit = Field(description="unit of the offset; mixed = years, months and days together")
    offset_size: int = Field(ge=1, le=36_500, description="largest span of the offset, in days")
    input_format: Format = "iso"
    output_format: Format = "iso"


def _today_sentence(today: dt.date, scenario: str, fmt: str, rng: random.Random) -> tuple[str, str]:
    """A sentence from which today follows, and the date it names."""
    if scenario == "direct":
        anchor, text = today, "Today is {date}."
    elif scenario == "relative":
        shift = rng.choice(sorted(_RELATIVE))
        anchor, text = today - dt.timedelta(days=shift), _RELATIVE[shift]
    elif scenario == "anchor":
        n = rng.randint(3, 60)
        if rng.random() < 0.5:
            anchor, text = today - dt.timedelta(days=n), rng.choice(_PAST_EVENTS)
        else:
            anchor, text = today + dt.timedelta(days=n), rng.choice(_FUTURE_EVENTS)
        text = text.replace("{n}", str(n)).replace("{name}", rng.choice(_PEOPLE))
    else:
        weekday = rng.randrange(7)
        back = (today.weekday() - weekday) % 7 or 7
        anchor = today - dt.timedelta(days=back)
        text = f"Today is a {WEEKDAYS[today.weekday()]}. The most recent {WEEKDAYS[weekday]} before today was {{date}}."
    return text.replace("{date}", format_date(anchor, fmt)), anchor.isoformat()


def _offset(unit: str, size: int, rng: random.Random) -> dict[str, int]:
    span = rng.randint(1, size)
    if unit == "days":
        return {"days": span}
    if unit == "weeks":
        return {"weeks": max(1, span // 7)}
    if unit == "months":
        return {"months": max(1, span // 30)}
    if unit == "years":
        return {"years": max(1, span // 365)}
    years, rest = divmod(span, 365)
    months, days = divmod(rest, 30)
    return {"years": years, "months": months, "days": days}


def _describe(offset: dict[str, int]) -> str:
    return join_and([f"{n} {unit[:-1] if n == 1 else unit}" for unit, n in offset.items() if n])


class Dates(Task):
    name = "dates"
    version = "2"
    description = "Infer today from a narrative and compute a date offset by days, weeks, months or years."
    Params = DatesParams
    answer_instruction = "End your response with a final line of the form `ANSWER: <date>`, in the date format the question asks for."
    parser = _parser("iso")

    def parser_for(self, metadata: dict[str, Any]) -> AnswerParser:
        return _parser(metadata.get("output_format", "iso"))

    def _generate(self, params: DatesParams, rng: random.Random) -> Item:
        year, month = rng.randint(FIRST_YEAR, LAST_YEAR), rng.randint(1, 12)
        last_day = calendar.monthrange(year, month)[1]
        day = rng.randint(last_day - 2, last_day) if rng.random() < 1 / 3 else rng.randint(1, last_day)
        today = dt.date(year, month, day)
        offset = _offset(params.unit, params.offset_size, rng)
        sign = rng.choice((1, -1))
        # As MONTH_RULE tells the model: years first, clamped, then months, clamped again (2060-02-29
        # minus 3 years and 8 months is 2057-02-28, then 2056-06-28; not one 44-month step to 2056-06-29).
        month_shifted = add_months(add_months(today, sign * 12 * offset.get("years", 0)), sign * offset.get("months", 0))
        target = month_shifted + dt.timedelta(days=sign * (7 * offset.get("weeks", 0) + offset.get("days", 0)))
        sentence, anchor = _today_sentence(today, params.scenario, params.input_format, rng)
        when = f"{_describe(offset)} {'after' if sign > 0 else 'before'} today"
        rule = f" {MONTH_RULE}" if offset.get("years") or offset.get("months") else ""
        question = (
            f"{sentence} What is the date {when}?{rule} "
            f"Write the date in the format {FORMAT_NAMES[params.output_format]}."
        )
        return Item(
            question=question,
            answer=format_date(target, params.output_format),
            guess_chance=0.0,
            metadata={
                "today": today.isoformat(),
                "anchor": anchor,
                "offset": {unit: sign * n for unit, n in offset.items()},
                "span_days": abs((target - today).days),
                "clamped": month_shifted.day != today.day,
                "output_format": params.output_format,
            },
        )
