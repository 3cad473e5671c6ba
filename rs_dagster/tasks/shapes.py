"""shapes: name the shape an SVG path draws, choosing among a listed shape set.

Shapes are built in a canonical frame with margins far from every naming boundary (a rectangle is never
nearly square, a trapezoid's legs are never nearly parallel), so coordinate rounding cannot change the
name, then moved by a similarity transform (shape names survive rotation, uniform scale, translation).

Difficulty: `shapes` (size of the shape set: the first N of SHAPE_ORDER, which adds confusable shapes
as it grows; every set member is an option), `transforms` (1 translate, 2 + uniform scale,
3 + rotation), `noise` (redundant points: collinear points inserted into straight edges, extra splits
of arcs, so the path's point count no longer equals the corner count).
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from rs_dagster.scoring.parsing import AnswerParser, options_parser
from rs_dagster.tasks.base import Item, Task, TaskParams

# Ordered so that each block of four adds shapes that are harder to tell from the earlier ones.
SHAPE_ORDER = (
    "line", "triangle", "square", "circle",
    "rectangle", "pentagon", "hexagon", "ellipse",
    "rhombus", "heptagon", "octagon", "sector",
    "parallelogram", "trapezoid", "kite", "star",
)
LETTERS = "ABCDEFGHIJKLMNOP"
NAMING_RULES = (
    "Use the most specific name: a square is not called a rectangle or a rhombus; a rectangle has four right "
    "angles and unequal adjacent sides; a rhombus has four equal sides and no right angle; a parallelogram has "
    "two pairs of parallel sides and is neither a rectangle nor a rhombus; a trapezoid has exactly one pair of "
    "parallel sides; a kite has two pairs of equal adjacent sides and is not a rhombus; polygon names count "
    "corners; a star's outline alternates between outer points and inner corners; a sector is a pie slice "
    "bounded by two radii and an arc; a line is an open path."
)

Point = tuple[float, float]


@dataclass
class Arc:
    """An arc of the ellipse centre + R(phi)(rx cos t, ry sin t) from parameter t0 to t1 (t1 > t0)."""

    rx: float
    ry: float
    phi: float  # radians
    t0: float
    t1: float

    def at(self, t: float) -> Point:
        x, y = self.rx * math.cos(t), self.ry * math.sin(t)
        c, s = math.cos(self.phi), math.sin(self.phi)
        return (x * c - y * s, x * s + y * c)


@dataclass
class Outline:
    """A path in the canonical frame: points joined by straight edges, except where `arcs[i]` is set
    (the edge from points[i] to points[i+1] is then that arc)."""

    points: list[Point]
    arcs: dict[int, Arc]
    closed: bool


def _polygon(vertices: list[Point], rng: random.Random) -> Outline:
    """A closed polygon starting at a random vertex, walked in a random direction."""
    start = rng.randrange(len(vertices))
    ring = vertices[start:] + vertices[:start]
    if rng.random() < 0.5:
        ring = [ring[0], *ring[:0:-1]]
    return Outline([*ring, ring[0]], {}, closed=True)


def _regular(corners: int, radius: float, phase: float) -> list[Point]:
    return [
        (radius * math.cos(phase + 2 * math.pi * k / corners), radius * math.sin(phase + 2 * math.pi * k / corners))
        for k in range(corners)
    ]


def _ellipse_outline(rx: float, ry: float, phi: float, start: float) -> Outline:
    halves = [Arc(rx, ry, phi, start, start + math.pi), Arc(rx, ry, phi, start + math.pi, start + 2 * math.pi)]
    points = [halves[0].at(start), halves[1].at(start + math.pi), halves[0].at(start)]
    return Outline(points, {0: halves[0], 1: halves[1]}, closed=True)


def _canonical(shape: str, rng: random.Random) -> Outline:
    u = rng.uniform
    if shape == "line":
        return Outline([(-1.0, 0.0), (1.0, 0.0)], {}, closed=False)
    if shape == "triangle":
        return _polygon([(-1.0, 0.5), (1.0, 0.5), (u(-0.8, 0.8), 0.5 - u(0.8, 1.8))], rng)
    if shape == "square":
        return _polygon([(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)], rng)
    if shape == "rectangle":
        h = u(0.35, 0.75)
        return _polygon([(-1.0, -h), (1.0, -h), (1.0, h), (-1.0, h)], rng)
    if shape == "rhombus":
        a = math.radians(u(45, 70))
        return _polygon([(0.0, 0.0), (1.2, 0.0), (1.2 + 1.2 * math.cos(a), 1.2 * math.sin(a)), (1.2 * math.cos(a), 1.2 * math.sin(a))], rng)
    if shape == "parallelogram":
        a, side = math.radians(u(50, 75)), u(0.6, 1.1)
        dx, dy = side * math.cos(a), side * math.sin(a)
        return _polygon([(-0.8, 0.0), (0.8, 0.0), (0.8 + dx, -dy), (-0.8 + dx, -dy)], rng)
    if shape == "trapezoid":
        top, height, offset = u(0.5, 1.4), u(0.7, 1.3), u(-0.4, 0.4)
        return _polygon([(-1.0, 0.5), (1.0, 0.5), (offset + top / 2, 0.5 - height), (offset - top / 2, 0.5 - height)], rng)
    if shape == "kite":
        top, bottom, half_width = u(0.4, 0.8), u(1.3, 2.0), u(0.6, 1.0)
        return _polygon([(0.0, -top), (half_width, 0.0), (0.0, bottom), (-half_width, 0.0)], rng)
    if shape in ("pentagon", "hexagon", "heptagon", "octagon"):
        corners = ("pentagon", "hexagon", "heptagon", "octagon").index(shape) + 5
        return _polygon(_regular(corners, 1.0, -math.pi / 2), rng)
    if shape == "star":
        points, inner = rng.choice([5, 5, 6, 7, 8]), u(0.38, 0.55)
        outer_ring = _regular(points, 1.0, -math.pi / 2)
        inner_ring = _regular(points, inner, -math.pi / 2 + math.pi / points)
        return _polygon([p for pair in zip(outer_ring, inner_ring) for p in pair], rng)
    if shape == "circle":
        return _ellipse_outline(1.0, 1.0, 0.0, u(0, 2 * math.pi))
    if shape == "ellipse":
        return _ellipse_outline(u(1.4, 2.0), 1.0, rng.choice([0.0, math.pi / 2]), u(0, 2 * math.pi))
    if shape == "sector":
        span = math.radians(rng.choice([u(40, 150), u(210, 320)]))
        start = u(0, 2 * math.pi)
        arc = Arc(1.2, 1.2, 0.0, start, start + span)
        return Outline([(0.0, 0.0), arc.at(start), arc.at(start + span), (0.0, 0.0)], {1: arc}, closed=True)
    raise ValueError(f"unknown shape {shape!r}")


def _add_redundant_point(outline: Outline, rng: random.Random) -> None:
    """Split one of the longer edges (so no piece gets too short to read): a collinear point inside a
    straight edge, or a split of an arc."""
    lengths = [
        (arc.t1 - arc.t0) * max(arc.rx, arc.ry) if (arc := outline.arcs.get(i)) else math.dist(p, q)
        for i, (p, q) in enumerate(zip(outline.points, outline.points[1:]))
    ]
    longest = max(lengths)
    edge = rng.choice([i for i, length in enumerate(lengths) if length >= longest / 2])
    f = rng.uniform(0.3, 0.7)
    arcs = {(i + 1 if i > edge else i): arc for i, arc in outline.arcs.items()}
    if edge in outline.arcs:
        arc = outline.arcs[edge]
        middle = arc.t0 + f * (arc.t1 - arc.t0)
        point = arc.at(middle)
        arcs[edge] = Arc(arc.rx, arc.ry, arc.phi, arc.t0, middle)
        arcs[edge + 1] = Arc(arc.rx, arc.ry, arc.phi, middle, arc.t1)
    else:
        (x0, y0), (x1, y1) = outline.points[edge], outline.points[edge + 1]
        point = (x0 + f * (x1 - x0), y0 + f * (y1 - y0))
    outline.points.insert(edge + 1, point)
    outline.arcs = arcs


def _number(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _render(outline: Outline, scale: float, angle: float, shift: Point) -> str:
    """The SVG path data of the outline after scaling, rotating by `angle` and translating."""
    c, s = math.cos(angle), math.sin(angle)

    def place(p: Point) -> str:
        x, y = p[0] * scale, p[1] * scale
        return f"{_number(x * c - y * s + shift[0])} {_number(x * s + y * c + shift[1])}"

    parts = [f"M {place(outline.points[0])}"]
    last = len(outline.points) - 1
    for i in range(last):
        if outline.closed and i == last - 1 and i not in outline.arcs:
            break  # the closing straight edge is drawn by Z
        arc = outline.arcs.get(i)
        if arc is None:
            parts.append(f"L {place(outline.points[i + 1])}")
        else:
            large = 1 if arc.t1 - arc.t0 > math.pi else 0
            tilt = math.degrees(arc.phi + angle) % 180
            parts.append(
                f"A {_number(arc.rx * scale)} {_number(arc.ry * scale)} {_number(tilt)} {large} 1 {place(outline.points[i + 1])}"
            )
    if outline.closed:
        parts.append("Z")
    return " ".join(parts)


class ShapesParams(TaskParams):
    shapes: int = Field(ge=4, le=len(SHAPE_ORDER), description="size of the shape set, the first N of SHAPE_ORDER")
    transforms: int = Field(ge=1, le=3, description="1 translate, 2 + uniform scale, 3 + rotation")
    noise: int = Field(0, ge=0, le=16, description="redundant points added to the path")


class Shapes(Task):
    name = "shapes"
    version = "1"
    description = "Name the shape drawn by an SVG path after rotation, scaling, translation and path noise."
    Params = ShapesParams
    answer_instruction = "End your response with a final line of the form `ANSWER: <letter>`, the letter of your choice."
    parser = options_parser(LETTERS[: len(SHAPE_ORDER)], SHAPE_ORDER)

    def parser_for(self, metadata: dict[str, Any]) -> AnswerParser:
        """An option's letter or its shape name; a letter beside another option's name is ambiguous."""
        options = tuple(metadata.get("options", SHAPE_ORDER))
        return options_parser(LETTERS[: len(options)], options)

    def _generate(self, params: ShapesParams, rng: random.Random) -> Item:
        pool = list(SHAPE_ORDER[: params.shapes])
        shape = rng.choice(pool)
        outline = _canonical(shape, rng)
        for _ in range(params.noise):
            _add_redundant_point(outline, rng)
        scale = rng.uniform(30, 150) if params.transforms >= 2 else 60.0
        angle = rng.uniform(0, 2 * math.pi) if params.transforms >= 3 else 0.0
        shift = (rng.randint(100, 300), rng.randint(100, 300))
        path = _render(outline, scale, angle, shift)
        rng.shuffle(pool)
        options = "\n".join(f"{LETTERS[i]}. {name}" for i, name in enumerate(pool))
        question = (
            "Which shape does this SVG path draw?\n\n"
            f'<path d="{path}" />\n\n{NAMING_RULES}\n\nOptions:\n{options}'
        )
        return Item(
            question=question,
            answer=LETTERS[pool.index(shape)],
            guess_chance=1 / len(pool),
            metadata={
                "shape": shape,
                "options": pool,
                "path": path,
                "path_commands": len(re.findall(r"[MLAZ]", path)),
                "redundant_points": params.noise,
                "transforms": params.transforms,
                "scale": round(scale, 2),
                "rotation_deg": round(math.degrees(angle), 1),
            },
        )
