"""Which grid points of a manifold an evaluation covers: named tiers, surfaces and projections, or
every point of the full grid. Names are checked against the manifold, so a typo is an error that
lists the valid names instead of an evaluation of nothing."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from rs_dagster.errors import InputError
from rs_dagster.tasks.base import canonical_json, point_id
from rs_dagster.tasks.manifold import Point, TaskSpec

ALL_POINTS = "all"


@dataclass(frozen=True)
class PointSelection:
    """A union of named parts of the difficulty space; `all_points` covers the full grid."""

    tiers: tuple[str, ...] = ()
    surfaces: tuple[str, ...] = ()
    projections: tuple[str, ...] = ()
    all_points: bool = False

    @property
    def empty(self) -> bool:
        return not (self.tiers or self.surfaces or self.projections or self.all_points)

    def describe(self) -> str:
        parts = [f"{kind} {', '.join(names)}" for kind, names in
                 (("tiers", self.tiers), ("surfaces", self.surfaces), ("projections", self.projections)) if names]
        return "every grid point" if self.all_points else "; ".join(parts) or "nothing"


def check_names(spec: TaskSpec, selection: PointSelection) -> None:
    """Raise InputError naming every unknown tier, surface or projection and the valid ones."""
    known = {
        "tier": sorted(spec.doc.tiers),
        "surface": [s.name for s in spec.doc.surfaces],
        "projection": [p.name for p in spec.doc.projections],
    }
    for kind, names in (("tier", selection.tiers), ("surface", selection.surfaces), ("projection", selection.projections)):
        unknown = [name for name in names if name not in known[kind]]
        if unknown:
            valid = ", ".join(known[kind]) or "none defined"
            raise InputError(f"task {spec.name!r} ({spec.path}): unknown {kind}(s) {unknown}; valid {kind}s: {valid}")


def full_grid(spec: TaskSpec) -> list[Point]:
    """Every valid combination of the grid's axes, with the memberships of the named points; a
    combination the generator rejects (e.g. boolean depth > length) is not a point of the space."""
    named = {p.point_id: p for p in spec.points()}
    axes = spec.doc.grid
    points = []
    for combo in itertools.product(*axes.values()):
        params = {**spec.doc.fixed, **dict(zip(axes, combo))}
        pid = point_id(spec.name, params)
        if pid in named:
            points.append(named[pid])
            continue
        try:
            spec.task.validate_params(params)
        except InputError:
            continue
        points.append(Point(pid, params, (), (), ()))
    return sorted(points, key=lambda p: canonical_json(p.params))


def select_points(spec: TaskSpec, selection: PointSelection) -> list[Point]:
    """The points of `selection`, each once; an error when a name is unknown or nothing is selected."""
    check_names(spec, selection)
    if selection.all_points:
        return full_grid(spec)
    chosen = [
        p for p in spec.points()
        if set(p.tiers) & set(selection.tiers)
        or set(p.surfaces) & set(selection.surfaces)
        or set(p.projections) & set(selection.projections)
    ]
    if not chosen:
        raise InputError(f"task {spec.name!r}: {selection.describe()} selects no grid point")
    return chosen
