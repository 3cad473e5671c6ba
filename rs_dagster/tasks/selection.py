"""Which grid points of a manifold an evaluation covers: named tiers, surfaces and projections, or
every point of the full grid. Names are checked against the manifold, so a typo is an error that
lists the valid names instead of an evaluation of nothing.

One selection serves every task of an evaluation, so a name may be qualified with its task
(`arithmetic:terms` applies to arithmetic only; `terms` to every task, which must all define it), and
`all` stands for every surface (or projection) each task defines."""

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


def names_for(spec: TaskSpec, kind: str, names: tuple[str, ...]) -> set[str]:
    """The `kind` names ("tier", "surface", "projection") of `names` that apply to `spec`'s task, checked:
    InputError names every unknown one and lists the valid ones."""
    known = {
        "tier": sorted(spec.doc.tiers),
        "surface": [s.name for s in spec.doc.surfaces],
        "projection": [p.name for p in spec.doc.projections],
    }[kind]
    mine = set()
    for name in names:
        task, _, local = name.rpartition(":")
        if task and task != spec.name:
            continue
        mine.update(known if local == ALL_POINTS and kind != "tier" else [local])
    unknown = sorted(mine - set(known))
    if unknown:
        valid = ", ".join(known) or "none defined"
        raise InputError(f"task {spec.name!r} ({spec.path}): unknown {kind}(s) {unknown}; valid {kind}s: {valid}")
    return mine


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
    tiers, surfaces, projections = (
        names_for(spec, kind, names)
        for kind, names in (("tier", selection.tiers), ("surface", selection.surfaces), ("projection", selection.projections))
    )
    if selection.all_points:
        return full_grid(spec)
    chosen = [p for p in spec.points() if set(p.tiers) & tiers or set(p.surfaces) & surfaces or set(p.projections) & projections]
    if not chosen:
        raise InputError(f"task {spec.name!r}: {selection.describe()} selects no grid point")
    return chosen
