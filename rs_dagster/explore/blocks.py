"""The vocabulary of the explorer's views, shared by every module that builds one: the JSON blocks a view
is made of (tables, fields, texts, Vega-Lite specs, choices), its routes and links, and how numbers read."""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import quote

import altair as alt

from rs_dagster.errors import RsError
from rs_dagster.report.charts import vega_lite

Block = dict[str, Any]
View = dict[str, Any]


class NotFound(RsError):
    """A route names a model, task, point or sample the lab does not have."""


SAFE_INTEGER = 2**53 - 1
"""JavaScript's Number.MAX_SAFE_INTEGER: a JSON number beyond it reaches the page rounded (a seed
...132404 reads ...132400), so larger integers travel as strings."""


def for_browser(value: Any) -> Any:
    """`value` (a view, or anything in it) with every integer beyond ±SAFE_INTEGER as its decimal string:
    what the server and the export send is shown exactly. Seeds are strings already (sample_view_of);
    this keeps any other 64-bit id from being rounded."""
    if isinstance(value, dict):
        return {key: for_browser(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [for_browser(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > SAFE_INTEGER:
        return str(value)
    return value


def segment(value: object) -> str:
    """One route segment, escaped as JavaScript's encodeURIComponent does."""
    return quote(str(value), safe="-_.!~*'()")


def route(*parts: object) -> str:
    return "/" + "/".join(segment(p) for p in parts)


def href(*parts: object) -> str:
    return "#" + route(*parts)


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


def interval(value: float | None, low: float | None, high: float | None) -> str:
    """`0.625 [0.306, 0.863]`: a proportion and its 95% interval."""
    if value is None:
        return "—"
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def params_label(params_json: str) -> str:
    """`depth=1, terms=12`: a grid point's parameters, compact."""
    return ", ".join(f"{k}={v}" for k, v in json.loads(params_json).items())


def link(text: object, target: str) -> dict[str, str]:
    return {"text": str(text), "href": target}


def note(text: str) -> Block:
    return {"type": "note", "text": text}


def heading(text: str) -> Block:
    return {"type": "heading", "text": text}


def text(body: str) -> Block:
    return {"type": "text", "text": body}


OUTCOME_KEYS = ("outcome", "flexible_outcome")
"""The fields whose value is an outcome: the page colours them by their `outcome-VALUE` class (static/style.css)."""


def table(columns: list[str], rows: list[list[Any]], name: str = "", outcome_columns: tuple[int, ...] = ()) -> Block:
    """A table; the cells of `outcome_columns` (indexes) hold outcomes, coloured by their `outcome-VALUE` class."""
    block: Block = {"type": "table", "name": name, "columns": columns, "rows": rows}
    if outcome_columns:
        block["outcome_columns"] = list(outcome_columns)
    return block


def fields(items: list[tuple[str, str, Any]], name: str = "") -> Block:
    """Label/value pairs; the key names each value in the page (data-field) for tests and deep links. The values of
    OUTCOME_KEYS are coloured by outcome."""
    return {"type": "fields", "name": name, "items": [
        {"key": k, "label": label, "value": v, **({"outcome": True} if k in OUTCOME_KEYS else {})} for k, label, v in items]}


def chart(spec: alt.TopLevelMixin, name: str, models: list[str] | None = None) -> Block:
    """A Vega-Lite spec; with `models`, the page offers one checkbox per model to overlay or hide it."""
    return {"type": "chart", "name": name, "spec": vega_lite(spec), "models": models or []}


def choice(label: str, options: list[tuple[str, list[Block]]]) -> Block:
    return {"type": "choice", "label": label, "options": [{"label": o, "blocks": b} for o, b in options]}


def view(title: str, crumbs: list[dict[str, str]], blocks: list[Block]) -> View:
    return {"title": title, "crumbs": [link("Leaderboard", "#/"), *crumbs], "blocks": blocks}
