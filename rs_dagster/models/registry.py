"""Registered models (assets/models.yaml plus models added on the fly by `rs eval --base-url`).

A model's version hashes its entry together with the sampler and template it resolves to, so editing
one model (or a sampler only it uses) re-runs only that model's partitions. API keys are never part of
an entry: an entry names the environment variable that holds the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rs_dagster.errors import InputError, UnknownNameError
from rs_dagster.execution.sampler import Sampler
from rs_dagster.inputs import load_named, read_yaml, validate
from rs_dagster.prompting.templates import Template
from rs_dagster.settings import Settings
from rs_dagster.tasks.base import canonical_json, sha256_hex
from rs_dagster.tasks.selection import ALL_POINTS, PointSelection


class Suite(BaseModel):
    """What the nightly schedule (and `rs eval` without flags) evaluates for this model: the points of
    the named tiers, surfaces and projections (or of the whole grid with `points: all`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tasks: list[str] | None = None  # None: every task
    tiers: list[str] = Field(default_factory=lambda: ["easy"])
    surfaces: list[str] = Field(default_factory=list)
    projections: list[str] = Field(default_factory=list)
    points: Literal["all"] | None = None  # "all": every point of the full grid
    precision: str | int = "low"
    repeats: int = Field(default=1, ge=1)

    @field_validator("precision")
    @classmethod
    def _positive_count(cls, precision: str | int) -> str | int:
        if isinstance(precision, int) and precision < 1:
            raise ValueError(f"expected a precision level name or a positive number of items per point, got {precision}")
        return precision

    @property
    def selection(self) -> PointSelection:
        return PointSelection(tuple(self.tiers), tuple(self.surfaces), tuple(self.projections), self.points == ALL_POINTS)


OPERATIONAL_FIELDS = {"concurrency", "timeout_s", "max_retries", "suite", "bundled", "tokenizer", "api_key_env"}


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str
    served_model: str
    api_key_env: str | None = None  # name of the environment variable holding the key
    sampler: str = "greedy"
    template: str = "zero_shot"
    concurrency: int = Field(4, ge=1, le=1024)
    timeout_s: float = Field(300.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    bundled: bool = False  # the CLI starts the bundled SmolLM2 server for this entry
    tokenizer: dict[str, Any] | None = None
    suite: Suite = Field(default_factory=Suite)

    @field_validator("base_url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}")
        return url.rstrip("/")


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


def check_model_name(name: Any, where: str) -> None:
    """Model names become partition keys (`model|task`) and CLI lists: '|' and ',' would break both."""
    if not isinstance(name, str) or not name or any(c in name for c in "|,") or name != name.strip():
        raise InputError(f"{where}: invalid model name {name!r}; a model name is a non-empty word without '|' or ','")


def _model(settings: Settings, name: str, raw: Any, where: str) -> Model:
    check_model_name(name, where)
    entry = validate(ModelEntry, raw, where)
    sampler, sampler_text = load_named(settings.samplers_dir, entry.sampler, Sampler, "sampler")
    template, template_text = load_named(settings.templates_dir, entry.template, Template, "template")
    return Model(name, entry, sampler, sampler_text, template, template_text)


def load_models(settings: Settings) -> dict[str, Model]:
    models = {}
    for path in (settings.models_file, settings.local_models_file):  # a local entry overrides a shared one
        for name, raw in _entries(path).items():
            models[name] = _model(settings, name, raw, f"{path}: models.{name}")
    return models


def get_model(models: dict[str, Model], name: str) -> Model:
    if name not in models:
        raise UnknownNameError("model", name, list(models))
    return models[name]


def register_local_model(settings: Settings, name: str, changes: dict[str, Any]) -> Model:
    """Record or update an ad-hoc model in .rs/models.local.yaml (never the user's models.yaml).

    `changes` are merged into the model's existing entry (its local one, else its models.yaml one), so
    fields set by hand (a `timeout_s`, a `suite`) survive a re-registration. The whole entry is validated, sampler and template included,
    before the file is written, and the file is replaced atomically: a bad name or value is an error
    that leaves the lab as it was."""
    path = settings.local_models_file
    raw = (read_yaml(path) or {}) if path.is_file() else {}
    entries = raw.setdefault("models", {}) if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise InputError(f"{path}: expected a top-level mapping `models: {{NAME: {{base_url: ..., served_model: ...}}}}`")
    existing = entries.get(name) or _entries(settings.models_file).get(name) or {}
    merged = {**existing, **changes}
    model = _model(settings, name, merged, f"model {name!r} (rs eval --model/--base-url)")
    entries[name] = model.entry.model_dump(mode="json", exclude_defaults=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".yaml.tmp")
    staged.write_text(yaml.safe_dump(raw, sort_keys=True))
    staged.replace(path)
    return model
