"""Registered models (assets/models.yaml plus models added on the fly by `rs eval --base-url`).

A model's version hashes its entry together with the sampler and template it resolves to, so editing
one model (or a sampler only it uses) re-runs only that model's partitions. API keys are never part of
an entry: an entry names the environment variable that holds the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rs_dagster.errors import InputError, UnknownNameError
from rs_dagster.execution.sampler import Sampler
from rs_dagster.inputs import load_named, read_yaml, validate
from rs_dagster.prompting.templates import Template
from rs_dagster.settings import Settings
from rs_dagster.tasks.base import canonical_json, sha256_hex
from rs_dagster.tasks.selection import ALL_POINTS, PointSelection

MAX_REPEATS = 1000  # samples per item (`repeats`, `rs eval --repeats`)
MAX_TIMEOUT_S = 86400.0  # one request's deadline (`timeout_s`, `rs eval --timeout`): a day


class PointsScope(BaseModel):
    """Which grid points of which tasks: the named tiers, surfaces and projections (or the whole grid with `points: all`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tasks: list[str] | None = None  # None: every task
    tiers: list[str] = Field(default_factory=lambda: ["easy"])
    surfaces: list[str] = Field(default_factory=list)
    projections: list[str] = Field(default_factory=list)
    points: Literal["all"] | None = None  # "all": every point of the full grid

    @property
    def selection(self) -> PointSelection:
        return PointSelection(tuple(self.tiers), tuple(self.surfaces), tuple(self.projections), self.points == ALL_POINTS)


MAX_FRESH_SEEDS = 16


class Suite(PointsScope):
    """What the nightly schedule (and `rs eval` without flags) evaluates for this model. `fresh_seeds`: K
    extra item sets drawn at the same points after each evaluation, for the memorisation gap (`rs eval --fresh-seeds`)."""

    precision: str | int = "low"
    repeats: int = Field(default=1, ge=1, le=MAX_REPEATS)
    fresh_seeds: int = Field(default=0, ge=0, le=MAX_FRESH_SEEDS)

    @field_validator("precision")
    @classmethod
    def _positive_count(cls, precision: str | int) -> str | int:
        if isinstance(precision, int) and precision < 1:
            raise ValueError(f"expected a precision level name or a positive number of items per point, got {precision}")
        return precision


class Watch(PointsScope):
    """A canary asked afresh every night at `hour` (UTC) by the `watched_nights` schedule (rs_dagster.watch): the
    first `n` items of each point, once each, with the night in the request key; `fresh_seeds` extra item sets
    per night for the memorisation gap. A night that would send more than `max_requests` is refused before
    anything is sent. Drift is judged against the previous night and the last `baseline_nights`."""

    n: int = Field(default=32, ge=1, le=100_000)
    fresh_seeds: int = Field(default=0, ge=0, le=MAX_FRESH_SEEDS)
    max_requests: int = Field(default=2000, ge=1)
    hour: int = Field(default=3, ge=0, le=23)
    baseline_nights: int = Field(default=7, ge=1, le=365)
    alpha: float = Field(default=0.01, gt=0.0, lt=0.5)  # Benjamini–Hochberg level of a night's drift tests


OPERATIONAL_FIELDS = {"concurrency", "timeout_s", "max_retries", "suite", "watch", "bundled", "calibration", "tokenizer", "api_key_env"}


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    served_model: str
    api_key_env: str | None = None  # name of the environment variable holding the key
    sampler: str = "greedy"
    template: str = "zero_shot"
    concurrency: int = Field(4, ge=1, le=1024)
    timeout_s: float = Field(300.0, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    max_retries: int = Field(4, ge=0, le=20)
    bundled: bool = False  # the CLI starts the bundled SmolLM2 server for this entry
    calibration: bool = False  # the known-truth endpoint (`rs serve-calibration`): the explorer draws its true curve
    tokenizer: dict[str, Any] | None = None
    suite: Suite = Field(default_factory=Suite)
    watch: Watch | None = None  # asked a canary every night (drift, memorisation); None: not watched

    @field_validator("base_url")
    @classmethod
    def _http(cls, url: str) -> str:
        """An http(s) URL with a host. The value kept (trailing slashes removed) passes this check again:
        it is what models.local.yaml stores and what the next load reads back."""
        expected = "expected an http(s) URL with a host, such as http://127.0.0.1:8000/v1"
        if any(not c.isprintable() or c.isspace() for c in url):
            raise ValueError(f"{expected}; a URL has no spaces or control characters")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
        except ValueError as exc:
            raise ValueError(f"{expected} ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(expected)
        return url.rstrip("/")

    @field_validator("served_model")
    @classmethod
    def _served(cls, served: str) -> str:
        if not served or not served.isprintable() or served != served.strip():
            raise ValueError("expected the model id the endpoint serves: a non-empty name without control characters or surrounding spaces")
        return served

    @field_validator("api_key_env")
    @classmethod
    def _variable(cls, variable: str | None) -> str | None:
        if variable is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable):
            raise ValueError("expected the name of an environment variable (letters, digits and '_'), such as OPENROUTER_API_KEY")
        return variable


@dataclass(frozen=True)
class Model:
    name: str
    entry: ModelEntry
    sampler: Sampler
    sampler_text: str
    template: Template
    template_text: str

    @property
    def version(self) -> str:
        """Changes when what the model is asked, or how it is sampled, changes; operational settings
        (concurrency, timeouts, retries, the suite) do not invalidate results."""
        answers = self.entry.model_dump(mode="json", exclude=OPERATIONAL_FIELDS)
        return sha256_hex(canonical_json([answers, self.sampler_text, self.template_text]))[:16]

    @property
    def template_version(self) -> str:
        return sha256_hex(self.template_text)[:12]

    def api_key(self) -> str:
        """The key from the environment, at request time only; local servers accept any placeholder."""
        if self.entry.api_key_env is None:
            return "not-needed"
        key = os.environ.get(self.entry.api_key_env)
        if not key:
            raise InputError(
                f"model {self.name!r}: environment variable {self.entry.api_key_env} (api_key_env) is not set"
            )
        return key


def _entries(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("models", {}), dict):
        raise InputError(f"{path}: expected a top-level mapping `models: {{NAME: {{base_url: ..., served_model: ...}}}}`")
    return raw.get("models") or {}


# What Dagster refuses in a partition key (dagster/_core/definitions/partitions/utils/base.py,
# INVALID_PARTITION_SUBSTRINGS: "..." and the control characters), checked here without importing dagster;
# tests/test_poisoned_inputs.py keeps the two lists in step.
PARTITION_KEY_FORBIDDEN = ("...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0")
NAME_RULE = ("a model name is a non-empty word without '|' or ',', '...', control characters (newline, tab) or "
             "surrounding spaces")


def name_problem(name: Any) -> str | None:
    """Why `name` cannot name a model, or None. Model names become Dagster partition keys (`model|task`)
    and CLI lists: '|' and ',' would break both, and Dagster refuses a key holding '...' or a control character."""
    if not isinstance(name, str) or not name:
        return "it is empty" if name == "" else f"it is a {type(name).__name__}, not text"
    if found := sorted({c for c in "|," if c in name} | {s for s in PARTITION_KEY_FORBIDDEN if s in name}):
        return f"it contains {', '.join(map(repr, found))}"
    if not name.isprintable():
        return f"it contains the control or invisible character {next(c for c in name if not c.isprintable())!r}"
    if name != name.strip():
        return "it begins or ends with a space"
    return None


def check_model_name(name: Any, where: str) -> None:
    if (problem := name_problem(name)) is not None:
        raise InputError(f"{where}: invalid model name {name!r} ({problem}); {NAME_RULE}")


def _model(settings: Settings, name: str, raw: Any, where: str) -> Model:
    check_model_name(name, where)
    entry = validate(ModelEntry, raw, where)
    sampler, sampler_text = load_named(settings.samplers_dir, entry.sampler, Sampler, "sampler")
    template, template_text = load_named(settings.templates_dir, entry.template, Template, "template")
    return Model(name, entry, sampler, sampler_text, template, template_text)


def load_models(settings: Settings) -> dict[str, Model]:
    models, errors = load_each_model(settings)
    if errors:
        raise next(iter(errors.values()))
    return models


def load_each_model(settings: Settings) -> tuple[dict[str, Model], dict[str, InputError]]:
    """Every model entry that reads, and the error of each that does not (by model name; a file that
    does not read at all, by its path): one bad entry stops only its own model."""
    models: dict[str, Model] = {}
    errors: dict[str, InputError] = {}
    for path in (settings.models_file, settings.local_models_file):  # a local entry overrides a shared one
        hint = ("; this file is written by `rs eval --base-url`: correct the value there or remove the entry"
                if path == settings.local_models_file else "")
        try:
            entries = _entries(path)
        except InputError as exc:
            errors[str(path)] = exc
            continue
        for name, raw in entries.items():
            try:
                check_model_name(name, f"{path}: a key of `models`")
                models[name] = _model(settings, name, raw, f"{path}: models.{name}")
                errors.pop(name, None)
            except UnknownNameError as exc:
                errors[name] = exc
            except InputError as exc:
                errors[name] = InputError(f"{exc}{hint}")
    return models, errors


def get_model(models: dict[str, Model], name: str) -> Model:
    if name not in models:
        raise UnknownNameError("model", name, list(models))
    return models[name]


def register_local_model(settings: Settings, name: str, changes: dict[str, Any], flags: Mapping[str, str] | None = None) -> Model:
    """Record or update an ad-hoc model in .rs/models.local.yaml (never the user's models.yaml).

    `changes` are merged into the model's existing entry (its local one, else its models.yaml one), so
    fields set by hand (a `timeout_s`, a `suite`) survive a re-registration. The whole entry is validated, sampler and template included,
    before the file is written, and so is the entry as it will be written (what the next load reads back);
    the file is replaced atomically: a bad name or value is an error that leaves the lab as it was.
    `flags` names the option each field came from (`{"base_url": "--base-url"}`), for the error message."""
    return prepare_local_model(settings, name, changes, flags).save()


@dataclass(frozen=True)
class LocalRegistration:
    """A validated entry for .rs/models.local.yaml, not written yet: `save()` writes it."""

    model: Model
    path: Path
    document: dict[str, Any]  # the whole file as it will be written

    def save(self) -> Model:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_suffix(".yaml.tmp")
        staged.write_text(yaml.safe_dump(self.document, sort_keys=True))
        staged.replace(self.path)
        return self.model


def prepare_local_model(settings: Settings, name: str, changes: dict[str, Any], flags: Mapping[str, str] | None = None) -> LocalRegistration:
    """register_local_model without the write: every check, and the entry as it would be saved."""
    path = settings.local_models_file
    raw = (read_yaml(path) or {}) if path.is_file() else {}
    entries = raw.setdefault("models", {}) if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise InputError(f"{path}: expected a top-level mapping `models: {{NAME: {{base_url: ..., served_model: ...}}}}`")
    flags = flags or {}
    check_model_name(name, flags.get("name", "model"))
    where = f"model {name!r} (rs eval --model/--base-url)"
    existing = entries.get(name) or _entries(settings.models_file).get(name) or {}
    if not isinstance(existing, dict):
        raise InputError(f"{where}: its saved entry is not a mapping of fields ({existing!r}); correct or remove it in {path}")
    merged = {**existing, **changes}
    _check_given(merged, changes, flags)
    model = _model(settings, name, merged, where)
    stored = model.entry.model_dump(mode="json", exclude_defaults=True)
    if _model(settings, name, stored, f"{where}, as it would be saved").entry != model.entry:  # what is written reads back the same
        raise InputError(f"{where}: the entry would not read back as given ({stored}); nothing was saved")
    entries[name] = stored
    return LocalRegistration(model, path, raw)


def _check_given(merged: dict[str, Any], changes: dict[str, Any], flags: Mapping[str, str]) -> None:
    """A value given on the command line that the entry's rules refuse: one message naming its option."""
    try:
        ModelEntry(**merged)
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            if field in changes and field in flags:
                message = err["msg"].removeprefix("Value error, ")
                message = message[:1].lower() + message[1:]
                raise InputError(f"{flags[field]} {changes[field]!r}: {message}; nothing was saved") from None
