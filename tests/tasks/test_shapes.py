"""shapes: every path is classified from the prompt text alone, by the naming rules the prompt states,
on every tier and the whole grid; transforms and noise measured, parser on realistic outputs."""

import itertools
import math
import re
import statistics

import pytest
from task_harness import TaskHarness

from rs_dagster.tasks.manifold import TIERS

H = TaskHarness("shapes")
TASK = H.task
TURN_DEGREES = 5  # a corner turns the outline; rounding to hundredths bends a straight edge far less
SAME = 0.01  # relative tolerance for equal lengths, far above the rounding
# An arc's centre moves by about sqrt(radius * rounding) when its ends are nearly opposite, so centres
# coincide within a looser tolerance.
SAME_CENTRE = 0.05


def angle_between(u, v):
    cos = (u[0] * v[0] + u[1] * v[1]) / (math.hypot(*u) * math.hypot(*v))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def turns(points, closed):
    """Signed turns (degrees, left positive) at the vertices where the outline changes direction."""
    indices = range(len(points)) if closed else range(1, len(points) - 1)
    found = []
    for i in indices:
        a, p, b = points[i - 1], points[i], points[(i + 1) % len(points)]
        u, v = (p[0] - a[0], p[1] - a[1]), (b[0] - p[0], b[1] - p[1])
        if angle_between(u, v) > TURN_DEGREES:
            found.append((p, math.copysign(angle_between(u, v), u[0] * v[1] - u[1] * v[0])))
    return found


def arc_centre(start, rx, ry, tilt, large, sweep, end):
    """The centre of an SVG elliptical arc from its endpoint parameters (SVG 1.1, appendix F.6.5), radii
    scaled up as the spec says when they cannot reach."""
    c, s = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))
    dx, dy = (start[0] - end[0]) / 2, (start[1] - end[1]) / 2
    x1, y1 = c * dx + s * dy, -s * dx + c * dy
    grow = max(1.0, math.sqrt(x1**2 / rx**2 + y1**2 / ry**2))
    rx, ry = rx * grow, ry * grow
    spare = max(0.0, rx**2 * ry**2 - rx**2 * y1**2 - ry**2 * x1**2) / (rx**2 * y1**2 + ry**2 * x1**2)
    k = math.sqrt(spare) * (1 if large != sweep else -1)
    cx, cy = k * rx * y1 / ry, -k * ry * x1 / rx
    return (c * cx - s * cy + (start[0] + end[0]) / 2, s * cx + c * cy + (start[1] + end[1]) / 2)


def read_path(question):
    """(segments, closed) of the SVG path in the text: each segment is (start, end, arc), arc being
    (rx, ry, tilt, centre) for an A command and None for a straight one (Z's closing edge included)."""
    data = re.search(r'd="([^"]+)"', question).group(1)
    segments, first, here, closed = [], None, None, False
    for command, arguments in re.findall(r"([MLAZ])([^MLAZ]*)", data):
        numbers = [float(number) for number in arguments.split()]
        if command == "M":
            first = here = tuple(numbers)
        elif command == "L":
            segments.append((here, tuple(numbers), None))
            here = tuple(numbers)
        elif command == "A":
            rx, ry, tilt, large, sweep, x, y = numbers
            segments.append((here, (x, y), (rx, ry, tilt, arc_centre(here, rx, ry, tilt, large, sweep, (x, y)))))
            here = (x, y)
        else:
            if here != first:
                segments.append((here, first, None))
            closed = True
    return segments, closed


def size_of(segments):
    points = [p for start, end, _ in segments for p in (start, end)]
    return max(math.dist(p, q) for p in points for q in points)


def one_ellipse(arcs, size):
    """Whether the arcs all lie on one ellipse (same radii, tilt and centre)."""
    rx, ry, tilt, centre = arcs[0]
    return all(
        abs(a[0] - rx) < SAME * size and abs(a[1] - ry) < SAME * size and math.dist(a[3], centre) < SAME_CENTRE * size
        and (abs(a[0] - a[1]) < SAME * size or abs((a[2] - tilt + 90) % 180 - 90) < 1)
        for a in arcs
    )


def quadrilateral_facts(corners):
    """Right angles, equal sides and parallel opposite sides of a four-cornered outline."""
    sides = [(corners[(i + 1) % 4][0] - corners[i][0], corners[(i + 1) % 4][1] - corners[i][1]) for i in range(4)]
    lengths = [math.hypot(*side) for side in sides]

    def equal(i, j):
        return abs(lengths[i] - lengths[j]) < SAME * max(lengths)

    def parallel(i, j):
        return min(angle_between(sides[i], sides[j]), 180 - angle_between(sides[i], sides[j])) < 1

    right = [abs(angle_between(sides[i], sides[(i + 1) % 4]) - 90) < 1 for i in range(4)]
    return {
        "four right angles": all(right),
        "no right angle": not any(right),
        "four equal sides": all(equal(0, i) for i in range(4)),
        "unequal adjacent sides": not any(equal(i, (i + 1) % 4) for i in range(4)),
        "parallel pairs": parallel(0, 2) + parallel(1, 3),
        "two pairs of equal adjacent sides": (equal(0, 1) and equal(2, 3)) or (equal(1, 2) and equal(3, 0)),
    }


POLYGON_CORNERS = {"triangle": 3, "pentagon": 5, "hexagon": 6, "heptagon": 7, "octagon": 8}
# "Use the most specific name": where one path fits two names, the more general gives way. By the
# prompt's rules a square is neither a rectangle nor a rhombus, so it also fits the parallelogram's
# rule and, with its two pairs of equal adjacent sides, the kite's; a circle is an ellipse.
MORE_GENERAL = {"square": {"parallelogram", "kite"}, "circle": {"ellipse"}}


def names_fitting(segments, closed):
    """Every shape name the path fits as the prompt defines it (or, for a name it leaves undefined, as the
    word means: square, circle, ellipse)."""
    if not closed:
        return {"line"}  # "a line is an open path"
    size = size_of(segments)
    arcs = [arc for _, _, arc in segments if arc]
    if arcs:
        if not one_ellipse(arcs, size):
            return set()
        circular = abs(arcs[0][0] - arcs[0][1]) < SAME * size
        if len(arcs) == len(segments):
            return {"circle", "ellipse"} if circular else {"ellipse"}
        # "a pie slice bounded by two radii and an arc": one run of arcs of one circle, then straight
        # edges that turn once, at the circle's centre, and end where the arc starts.
        last_arc = max(i for i, (_, _, arc) in enumerate(segments) if arc)
        loop = segments[last_arc + 1 :] + segments[: last_arc + 1]
        straight = list(itertools.takewhile(lambda segment: segment[2] is None, loop))
        polyline = [start for start, _, _ in straight] + [straight[-1][1]] if straight else []
        bends = turns(polyline, closed=False)
        radii = len(bends) == 1 and math.dist(bends[0][0], arcs[0][3]) < SAME_CENTRE * size
        return {"sector"} if circular and radii and len(straight) + len(arcs) == len(segments) else set()
    corners = turns([start for start, _, _ in segments], closed=True)
    names = {name for name, count in POLYGON_CORNERS.items() if len(corners) == count}  # "polygon names count corners"
    signs = [turn > 0 for _, turn in corners]  # a star "alternates between outer points and inner corners"
    if len(corners) >= 6 and all(signs[i] != signs[i - 1] for i in range(len(signs))):
        names.add("star")
    if len(corners) == 4:
        facts = quadrilateral_facts([corner for corner, _ in corners])
        rectangle = facts["four right angles"] and facts["unequal adjacent sides"]
        rhombus = facts["four equal sides"] and facts["no right angle"]
        quadrilaterals = {
            "square": facts["four right angles"] and facts["four equal sides"],
            "rectangle": rectangle,
            "rhombus": rhombus,
            "parallelogram": facts["parallel pairs"] == 2 and not rectangle and not rhombus,
            "trapezoid": facts["parallel pairs"] == 1,
            "kite": facts["two pairs of equal adjacent sides"] and not rhombus,
        }
        names |= {name for name, fit in quadrilaterals.items() if fit}
    return names


def solve(prompt):
    """The letter of the one option whose name fits the path by the prompt's rules, the most specific name
    kept where several fit; None unless exactly one is left."""
    options = dict(re.findall(r"^([A-P])\. (\w+)$", prompt, re.M))
    fitting = names_fitting(*read_path(prompt)) & set(options.values())
    fitting -= {general for name in fitting for general in MORE_GENERAL.get(name, ())}
    letters = [letter for letter, name in options.items() if name in fitting]
    return letters[0] if len(letters) == 1 else None


def classify(question):
    """The shape's name, whichever option it is listed as."""
    options = dict(re.findall(r"^([A-P])\. (\w+)$", question, re.M))
    return options.get(solve(question))


@pytest.mark.parametrize("tier", [*TIERS, "whole grid"])
def test_the_one_option_fitting_the_prompts_rules_is_the_answer(tier):
    checked = H.space_items() if tier == "whole grid" else H.tier_items(tier)
    mismatches = [(item.question, item.answer) for _, item in checked if solve(H.prompt_text(item)) != item.answer]
    assert mismatches == []


def test_classifier_sees_every_shape():
    seen = {classify(item.question) for item in H.items({"shapes": 16, "transforms": 3, "noise": 4}, 600)}
    assert len(seen) == 16


def test_shape_set_grows_the_options_and_the_shapes_drawn():
    for size in (4, 8, 16):
        items = H.items({"shapes": size, "transforms": 3, "noise": 0}, 300)
        assert all(len(item.metadata["options"]) == size for item in items)
        assert len({item.metadata["shape"] for item in items}) == size


def test_transforms_rotate_scale_and_translate():
    def edge_directions(item):
        segments, _ = read_path(item.question)
        return {round(math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))) % 90 for a, b, _ in segments}

    squares = {}
    for level in (1, 2, 3):
        items = [i for i in H.items({"shapes": 4, "transforms": level, "noise": 0}, 400) if i.metadata["shape"] == "square"]
        squares[level] = items
    assert all(edge_directions(i) == {0} for i in squares[1] + squares[2])  # axis-aligned until level 3
    assert statistics.mean(len(edge_directions(i) - {0}) for i in squares[3]) > 0.9
    assert len({i.metadata["scale"] for i in squares[1]}) == 1 < len({i.metadata["scale"] for i in squares[2]})


def test_noise_adds_redundant_points_but_not_corners():
    for noise in (0, 4, 16):
        for item in H.items({"shapes": 16, "transforms": 3, "noise": noise}, 200):
            segments, closed = read_path(item.question)
            if not any(arc for _, _, arc in segments):
                ends = 0 if closed else 2  # an open path's ends are not redundant
                points = [start for start, _, _ in segments] + ([] if closed else [segments[-1][1]])
                assert len(points) - ends - len(turns(points, closed)) == noise


def test_every_manifold_point_yields_128_distinct_items():
    for point in H.spec.points():
        assert len({item.question for item in H.items(point.params, 128)}) == 128


@pytest.fixture(scope="module")
def item():
    return H.items({"shapes": 16, "transforms": 3, "noise": 2}, 1)[0]


def test_parser_on_realistic_outputs(item):
    letter = item.answer
    name = item.metadata["options"][ord(letter) - ord("A")]
    wrong = "A" if letter != "A" else "B"
    outputs = [
        f"Counting vertices: 8 points but two are collinear, so it is not option {wrong}.\nANSWER: {letter}",
        f"**ANSWER: {letter}**",
        f"The shape is \\boxed{{{letter}}}.",
        f"Final answer: ({letter.lower()}) {name}",
        f"answer: {name.upper()}\nThat's my choice; option {wrong} was tempting.",
        f"It has to be the {name}.\n{letter}",
    ]
    H.assert_parses(item, outputs, wrong, unparsable=("I think it is a blob.",))


@pytest.mark.parametrize(
    "params, field",
    [
        ({"shapes": 3, "transforms": 1}, "shapes"),
        ({"shapes": 17, "transforms": 1}, "shapes"),
        ({"shapes": 8, "transforms": 0}, "transforms"),
        ({"shapes": 8, "transforms": 2, "noise": -1}, "noise"),
        ({"shapes": 8, "transforms": "rotate"}, "transforms"),
    ],
)
def test_bad_params_are_rejected_naming_the_field(params, field):
    H.assert_rejected(params, field)
