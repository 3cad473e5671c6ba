"""shapes: every path is classified geometrically from its coordinates, never from the generator's label."""

import math
import re
import statistics

import pytest

from task_harness import TaskHarness

H = TaskHarness("shapes")
TASK = H.task
POLYGON_NAMES = {5: "pentagon", 6: "hexagon", 7: "heptagon", 8: "octagon"}


def read_path(question):
    """(points, arcs, closed): the path's vertices and its arcs as (rx, ry, start, end), read from the SVG text."""
    data = re.search(r'd="([^"]+)"', question).group(1)
    tokens = re.findall(r"[MLAZ]|-?\d+(?:\.\d+)?", data)
    points, arcs, closed, i = [], [], False, 0
    while i < len(tokens):
        command = tokens[i]
        if command in "ML":
            points.append((float(tokens[i + 1]), float(tokens[i + 2])))
            i += 3
        elif command == "A":
            end = (float(tokens[i + 6]), float(tokens[i + 7]))
            arcs.append((float(tokens[i + 1]), float(tokens[i + 2]), points[-1], end))
            points.append(end)
            i += 8
        else:
            closed, i = True, i + 1
    return points, arcs, closed


def corners(points, closed, tolerance=0.05):
    """The polygon's true corners: repeatedly drop the vertex lying closest to the chord of its neighbours."""
    ring = list(points)
    if closed and math.dist(ring[0], ring[-1]) < 1e-9:
        ring.pop()
    while len(ring) > 2:
        count = len(ring)
        indices = range(count) if closed else range(1, count - 1)

        def deviation(i):
            a, p, b = ring[i - 1], ring[i], ring[(i + 1) % count]
            chord = math.dist(a, b)
            cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
            return abs(cross) / chord if chord else 0.0

        flattest = min(indices, key=deviation)
        if deviation(flattest) > tolerance:
            break
        ring.pop(flattest)
    return ring


def classify_quadrilateral(q):
    sides = [(q[(i + 1) % 4][0] - q[i][0], q[(i + 1) % 4][1] - q[i][1]) for i in range(4)]
    lengths = [math.hypot(*s) for s in sides]

    def angle_between(u, v):
        cos = (u[0] * v[0] + u[1] * v[1]) / (math.hypot(*u) * math.hypot(*v))
        return math.degrees(math.acos(max(-1.0, min(1.0, cos))))

    def parallel(u, v):
        return min(angle_between(u, v), 180 - angle_between(u, v)) < 1.0

    def equal(a, b):
        return abs(a - b) < 0.01 * max(a, b)

    parallel_pairs = parallel(sides[0], sides[2]) + parallel(sides[1], sides[3])
    right = all(abs(angle_between(sides[i], sides[(i + 1) % 4]) - 90) < 1.0 for i in range(4))
    all_equal = all(equal(lengths[0], length) for length in lengths)
    if parallel_pairs == 2:
        return "square" if right and all_equal else "rectangle" if right else "rhombus" if all_equal else "parallelogram"
    if parallel_pairs == 1:
        return "trapezoid"
    if (equal(lengths[0], lengths[1]) and equal(lengths[2], lengths[3])) or (
        equal(lengths[1], lengths[2]) and equal(lengths[3], lengths[0])
    ):
        return "kite"
    return "quadrilateral"


def classify(question):
    points, arcs, closed = read_path(question)
    if arcs:
        if len(arcs) == len(points) - 1:  # nothing but arcs: one closed conic
            return "circle" if all(abs(rx - ry) < 0.01 * rx for rx, ry, _, _ in arcs) else "ellipse"
        radius = arcs[0][0]
        ends = [p for _, _, start, end in arcs for p in (start, end)]
        centres = [p for p in points if all(abs(math.dist(p, q) - radius) < 0.01 * radius for q in ends)]
        return "sector" if centres else "arcs and lines"  # a pie slice: straight radii from the arc's centre
    ring = corners(points, closed)
    if not closed:
        return "line" if len(ring) == 2 else "polyline"
    count = len(ring)
    if count == 3:
        return "triangle"
    if count == 4:
        return classify_quadrilateral(ring)
    turns = []
    for i in range(count):
        a, p, b = ring[i - 1], ring[i], ring[(i + 1) % count]
        turns.append((p[0] - a[0]) * (b[1] - p[1]) - (p[1] - a[1]) * (b[0] - p[0]) > 0)
    if all(turns) or not any(turns):
        return POLYGON_NAMES.get(count, f"{count}-gon")
    if count % 2 == 0 and all(turns[i] != turns[i + 1] for i in range(count - 1)):
        return "star"
    return "concave polygon"


@pytest.mark.parametrize("tier", ["easy", "medium", "hard"])
def test_geometric_classification_matches_the_answer(tier):
    for params, item in H.tier_items(tier):
        options = re.findall(r"^([A-P])\. (\w+)$", item.question, re.M)
        assert len(options) == params["shapes"] and item.guess_chance == 1 / params["shapes"]
        assert dict(options)[item.answer] == classify(item.question), item.question


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
        points, _, _ = read_path(item.question)
        return {round(math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))) % 90 for a, b in zip(points, points[1:])}

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
            points, arcs, closed = read_path(item.question)
            if not arcs:
                assert len(points) - len(corners(points, closed)) == noise


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
