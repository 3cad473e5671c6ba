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


@cache
def _normalizer(fmt: str):
    """Maps a date written in `fmt` to ISO, so the scorer compares dates rather than spellings."""
    pattern = re.compile(_DATE_PATTERNS[fmt], re.IGNORECASE)

    def normalize(value: str) -> str:
        match = pattern.search(value)
        if not match:
            return value.strip()
        month = match["m"]
        month = MONTHS.index(month.capitalize()) + 1 if fmt == "long" else int(month)
        try:
            return dt.date(int(match["y"]), month, int(match["d"])).isoformat()
        except ValueError:
            return value.strip()

    return normalize


@cache
def _parser(fmt: str) -> AnswerParser:
    return AnswerParser(value_pattern=_DATE_PATTERNS[fmt], normalize=_normalizer(fmt))


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
