"""Task manifolds: the user-edited YAML (assets/tasks/NAME.yaml) that defines a task's difficulty space.

A manifold names its generator, the parameter grid (axes and their values), the tiers (easy, medium,
hard: sub-grids that are evaluated), surfaces (2-D slices) and projections (1-D sweeps) for analysis,
and precision levels (items per grid point: a fixed count, or adaptive bounds and a half-width target,
see rs_dagster.stats.adaptive). Its version is a hash of its canonical content plus the generator
version, so editing one file changes exactly one task's version.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rs_dagster.errors import InputError, UnknownNameError
from rs_dagster.inputs import read_input
from rs_dagster.stats.adaptive import PrecisionLevel
from rs_dagster.tasks import get_task
from rs_dagster.tasks.base import Task, canonical_json, point_id, sha256_hex

TIERS = ("easy", "medium", "hard")
Scalar = int | float | str | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Surface(_Strict):
    name: str
    x: str
    y: str
    x_values: list[Scalar] | None = None  # a subset of grid[x]; default all of it
    y_values: list[Scalar] | None = None
    fixed: dict[str, Scalar] = Field(default_factory=dict)


class Projection(_Strict):
    name: str
    axis: str
    values: list[Scalar] | None = None  # a subset of grid[axis]; default all of it
    fixed: dict[str, Scalar] = Field(default_factory=dict)


class AdaptiveLevel(_Strict):
    """A precision level in YAML: `{half_width: 0.1, min: 16, max: 96}` (rs_dagster.stats.adaptive)."""

    half_width: float
    min: int
    max: int

    def level(self) -> PrecisionLevel:
        return PrecisionLevel(self.min, self.max, self.half_width)


ADAPTIVE_KEYS = ("half_width", "min", "max")
LEVEL_EXPECTED = "a positive item count, or a mapping {half_width: 0 < h <= 0.5, min: n >= 1, max: n >= min}"


def _precision_level(name: str, value: Any) -> int | AdaptiveLevel:
    """One level of `precision`, checked here so that the message names the level and what is expected
    (pydantic's own message for a failed `int | mapping` union lists both branches' internals)."""
    where = f"level {name!r}: expected {LEVEL_EXPECTED}"
    if isinstance(value, AdaptiveLevel):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{where}; got {value}")
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{where}; got {type(value).__name__} {value!r}")
    missing = [k for k in ADAPTIVE_KEYS if k not in value]
    extra = [k for k in value if k not in ADAPTIVE_KEYS]
    if missing or extra:
        problems = ([f"missing {missing}"] if missing else []) + ([f"unknown key(s) {extra}"] if extra else [])
        raise ValueError(f"{where}; {', '.join(problems)} in {value!r}")
    h, lo, hi = (value[k] for k in ADAPTIVE_KEYS)
    if isinstance(h, bool) or not isinstance(h, int | float) or any(isinstance(n, bool) or not isinstance(n, int) for n in (lo, hi)):
        raise ValueError(f"{where}; half_width must be a number and min, max integers, got {value!r}")
    try:
        PrecisionLevel(lo, hi, float(h))
    except ValueError as exc:
        raise ValueError(f"{where}; {exc}") from None
    return AdaptiveLevel(half_width=float(h), min=lo, max=hi)


class ManifoldDoc(_Strict):
    generator: str
    description: str = ""
    global_seed: int = 0
    fixed: dict[str, Scalar] = Field(default_factory=dict)
    grid: dict[str, list[Scalar]]
    tiers: dict[str, dict[str, list[Scalar]]]
    surfaces: list[Surface] = Field(default_factory=list)
    projections: list[Projection] = Field(default_factory=list)
    precision: dict[str, int | AdaptiveLevel] = Field(default_factory=lambda: dict[str, int | AdaptiveLevel](low=16, medium=64, high=128))

    @field_validator("tiers")
    @classmethod
    def _all_tiers(cls, tiers):
        missing = [t for t in TIERS if t not in tiers]
        if missing:
            raise ValueError(f"missing tier(s) {missing}; every manifold defines {list(TIERS)}")
        return tiers

    @field_validator("precision", mode="before")
    @classmethod
    def _levels(cls, precision):
        if not isinstance(precision, dict) or not precision:
            raise ValueError(f"expected a mapping of level names to levels ({LEVEL_EXPECTED}), got {precision!r}")
        bad_names = [name for name in precision if not isinstance(name, str) or re.fullmatch(r"[+-]?\d+", name)]
        if bad_names:
            raise ValueError(f"level names must be words (a number means a fixed item count), got {bad_names}")
        return {name: _precision_level(name, value) for name, value in precision.items()}


@dataclass(frozen=True)
class Point:
    point_id: str
    params: dict[str, Any]
    tiers: tuple[str, ...]
    surfaces: tuple[str, ...]
    projections: tuple[str, ...]


@dataclass(frozen=True)
class TaskSpec:
    name: str  # the manifold's name (file stem) = the task partition key
    path: Path
    doc: ManifoldDoc
    task: Task

    @cached_property
    def version(self) -> str:
        """Computed once per loaded manifold (a frozen TaskSpec never changes); every asset asks for it."""
        return sha256_hex(canonical_json([self.doc.model_dump(mode="json"), self.task.name, self.task.version]))[:16]

    def precision_levels(self) -> dict[str, PrecisionLevel]:
        return {
            name: value.level() if isinstance(value, AdaptiveLevel) else PrecisionLevel.fixed(value)
            for name, value in self.doc.precision.items()
        }

    @property
    def max_items_per_point(self) -> int:
        """The most items any level may draw at a point: what test_cases generates per point."""
        return max(level.max_n for level in self.precision_levels().values())

    def precision_level(self, precision: str | int) -> PrecisionLevel:
        """A level by name, or a fixed item count given as an int or as digits (CLI `--samples`)."""
        levels = self.precision_levels()
        if isinstance(precision, str) and re.fullmatch(r"\s*[+-]?\d+\s*", precision):
            precision = int(precision)
        if isinstance(precision, bool) or not isinstance(precision, int | str):
            raise InputError(f"{self.path}: precision {precision!r}: expected a level name ({', '.join(levels)}) or a positive item count")
        if isinstance(precision, int):
            if precision < 1:
                raise InputError(
                    f"{self.path}: precision {precision}: expected a positive count of items per point "
                    f"(an integer >= 1) or a level name ({', '.join(levels)})"
                )
            return PrecisionLevel.fixed(precision)
        if precision not in levels:
            raise InputError(f"{self.path}: precision level {precision!r} not defined; levels: {sorted(levels)}, or a positive item count")
        return levels[precision]

    def items_per_point(self, precision: str | int) -> int:
        """The most items a point gets at `precision` (an adaptive level's cap; a fixed level's n)."""
        return self.precision_level(precision).max_n

    def points(self) -> list[Point]:
        """Every grid point named by a tier, surface or projection, with its memberships."""
        return list(self._named_points)

    def tier_sizes(self) -> dict[str, int]:
        """How many grid points each tier has (what a tier evaluated in part is measured against)."""
        return {tier: sum(tier in point.tiers for point in self._named_points) for tier in TIERS}

    @cached_property
    def _named_points(self) -> tuple[Point, ...]:
        """points(), built once per loaded manifold: building validates every point's parameters."""
        members: dict[str, dict[str, Any]] = {}

        def add(params: dict[str, Any], kind: str, name: str) -> None:
            key = canonical_json(params)
            entry = members.setdefault(key, {"params": params, "tiers": [], "surfaces": [], "projections": []})
            entry[kind].append(name)

        for tier in TIERS:
            for params in self._product(self.doc.tiers[tier], f"tiers.{tier}"):
                add(params, "tiers", tier)
        for surface in self.doc.surfaces:
            axes = {
                surface.x: surface.x_values or self._axis(surface.x, f"surfaces.{surface.name}.x"),
                surface.y: surface.y_values or self._axis(surface.y, f"surfaces.{surface.name}.y"),
            }
            for params in self._product({**axes, **_single(surface.fixed)}, f"surfaces.{surface.name}"):
                add(params, "surfaces", surface.name)
        for projection in self.doc.projections:
            axes = {projection.axis: projection.values or self._axis(projection.axis, f"projections.{projection.name}.axis")}
            for params in self._product({**axes, **_single(projection.fixed)}, f"projections.{projection.name}"):
                add(params, "projections", projection.name)
        return tuple(
            Point(point_id(self.name, e["params"]), e["params"], tuple(e["tiers"]), tuple(e["surfaces"]), tuple(e["projections"]))
            for e in members.values()
        )

    def _axis(self, axis: str, where: str) -> list[Any]:
        if axis not in self.doc.grid:
            raise InputError(f"{self.path}: {where}: axis {axis!r} is not in grid (grid axes: {sorted(self.doc.grid)})")
        return self.doc.grid[axis]

    def _product(self, axes: dict[str, list[Any]], where: str) -> list[dict[str, Any]]:
        for axis, values in axes.items():
            if axis not in self.doc.grid:
                raise InputError(f"{self.path}: {where}: axis {axis!r} is not in grid (grid axes: {sorted(self.doc.grid)})")
            outside = [v for v in values if v not in self.doc.grid[axis]]
            if outside:
                raise InputError(f"{self.path}: {where}.{axis}: values {outside} are not in grid.{axis} {self.doc.grid[axis]}")
        full = {axis: axes.get(axis, values) for axis, values in self.doc.grid.items()}
        points = []
        for combo in itertools.product(*full.values()):
            params = {**self.doc.fixed, **dict(zip(full, combo))}
            self.task.validate_params(params, where=f"{self.path}: {where} point {canonical_json(params)}")
            points.append(params)
        return points


def _single(fixed: dict[str, Any]) -> dict[str, list[Any]]:
    return {axis: [value] for axis, value in fixed.items()}


def _describe_validation(path: Path, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(document)"
        got = err.get("input")
        got_text = f" (got {type(got).__name__} {got!r})" if err["type"] != "missing" and not isinstance(got, dict) else ""
        lines.append(f"key {key!r}: {err['msg']}{got_text}")
    return f"{path}: invalid task manifold: " + "; ".join(lines)


def load_manifold(path: Path) -> TaskSpec:
    """The task spec of the manifold file `path`, parsed and checked once per content: every run of an
    evaluation reads every manifold, and parsing and checking 13 of them cost about 0.15 s a run."""
    return _parsed_manifold(path, read_input(path))


def stored_manifold(task: str, text: str) -> TaskSpec:
    """The task spec of a manifold as a warehouse stored it (task_specs.manifold_yaml): the grid that was
    measured, whatever the lab's file says now. Its path (in error messages) names the table."""
    return _parsed_manifold(Path("task_specs") / f"{task}.yaml", text)


@lru_cache(maxsize=256)
def _parsed_manifold(path: Path, text: str) -> TaskSpec:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        doc = ManifoldDoc(**raw)
    except ValidationError as exc:
        raise InputError(_describe_validation(path, exc)) from None
    try:
        task = get_task(doc.generator)
    except UnknownNameError as exc:
        raise InputError(f"{path}: key 'generator': {exc}") from None
    spec = TaskSpec(name=path.stem, path=path, doc=doc, task=task)
    spec.points()  # validates every point's parameters now, not mid-run
    return spec


def load_manifolds(tasks_dir: Path) -> dict[str, TaskSpec]:
    specs, errors = load_each_manifold(tasks_dir)
    if errors:
        raise next(iter(errors.values()))
    return specs


def load_each_manifold(tasks_dir: Path) -> tuple[dict[str, TaskSpec], dict[str, InputError]]:
    """Every task file that reads, and the error of each that does not (by task name): one bad file
    stops only its own task (the edited_inputs sensor goes on with the others)."""
    if not tasks_dir.is_dir():
        raise InputError(f"{tasks_dir}: task directory not found")
    specs: dict[str, TaskSpec] = {}
    errors: dict[str, InputError] = {}
    for path in sorted(tasks_dir.glob("*.yaml")):
        try:
            if "|" in path.stem or "," in path.stem:
                raise InputError(f"{path}: task names may not contain '|' or ','")
            specs[path.stem] = load_manifold(path)
        except InputError as exc:
            errors[path.stem] = exc
    return specs, errors
