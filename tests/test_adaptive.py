"""Adaptive precision (rs_dagster.stats.adaptive) and precision levels in manifolds.

Hand-computed rounds first, then a seeded simulation of whole evaluations: each point's items are
Bernoulli draws by item index (prefix-stable), and rounds run until items_wanted says the point is done.
"""

import random
from pathlib import Path

import pytest
import yaml

from rs_dagster.errors import InputError
from rs_dagster.stats.adaptive import (
    PrecisionLevel,
    answers_needed,
    half_width,
    is_saturated,
    items_wanted,
    simulate_point,
    stop_reason,
)
from rs_dagster.stats.intervals import wilson_interval
from rs_dagster.tasks.manifold import load_manifold

ROOT = Path(__file__).resolve().parents[1]
LOW = PrecisionLevel(8, 48, 0.15)
MEDIUM = PrecisionLevel(16, 112, 0.10)
HIGH = PrecisionLevel(32, 160, 0.08)
LEVELS = (LOW, MEDIUM, HIGH)


def test_half_width_is_half_the_wilson_interval():
    low, high = wilson_interval(5, 10)
    assert half_width(5, 10) == pytest.approx((high - low) / 2)
    assert half_width(0, 0) == 1.0  # nothing answered: nothing known
    # the fewest answers at p = 0.5 that reach each target, checked against the interval itself
    for target, n in ((0.15, 39), (0.10, 93), (0.08, 147)):
        assert answers_needed(0.5, target) == n
        assert half_width(n // 2, n) <= target < half_width((n - 1) // 2, n - 1)


def test_a_saturated_point_stops_at_the_minimum():
    assert items_wanted(0, 0, 0, LOW) == 8
    for correct in (0, 8):
        assert is_saturated(correct, 8, LOW)
        assert items_wanted(correct, 8, 8, LOW) == 8
        assert stop_reason(correct, 8, 8, LOW) == "saturated"
    # all right but one sample truncated: only 7 answers, fewer than min_n, so not saturated yet.
    # At p = 1 the target 0.15 needs 9 answers (z²/(2(n+z²)) <= 0.15); 7 of 8 samples answer, so
    # 8 + ceil(2 / (7/8)) = 11 items, raised to the minimum step (8 + 4).
    assert not is_saturated(7, 7, LOW)
    assert answers_needed(1.0, 0.15) == 9
    assert items_wanted(7, 7, 8, LOW) == 12
    assert stop_reason(7, 7, 8, LOW) is None
    assert stop_reason(11, 11, 12, LOW) == "saturated"


def test_half_right_grows_until_the_target():
    # p = 0.5 needs 39 answers for 0.15; rounds may at most double: 8 -> 16 -> 32 -> 39.
    assert [items_wanted(n // 2, n, n, LOW) for n in (8, 16, 32)] == [16, 32, 39]
    assert half_width(16, 32) > 0.15 >= half_width(19, 39)
    assert items_wanted(19, 39, 39, LOW) == 39
    assert stop_reason(19, 39, 39, LOW) == "target"
    assert stop_reason(16, 32, 32, LOW) is None


def test_half_right_stops_at_the_cap_when_the_target_is_out_of_reach():
    level = PrecisionLevel(8, 24, 0.10)  # 0.10 needs 93 answers at p = 0.5
    assert [items_wanted(n // 2, n, n, level) for n in (8, 16, 24)] == [16, 24, 24]
    assert stop_reason(12, 24, 24, level) == "cap"


def test_fixed_levels_take_exactly_n_items():
    level = PrecisionLevel.fixed(16)
    assert not level.adaptive and level.min_n == level.max_n == 16
    assert items_wanted(0, 0, 0, level) == 16
    assert items_wanted(16, 16, 16, level) == 16  # all right: no early stop, n was asked for
    assert not is_saturated(16, 16, level)
    assert stop_reason(16, 16, 16, level) == "cap"
    assert stop_reason(3, 4, 4, level) is None


def test_an_all_error_point_stops_at_the_cap():
    drawn, sizes = 0, []
    while (wanted := items_wanted(0, 0, drawn, LOW)) != drawn:
        sizes.append(wanted)
        drawn = wanted
    assert sizes == [8, 16, 32, 48]
    assert stop_reason(0, 0, 48, LOW) == "cap"


def test_every_round_grows_within_the_cap_or_stops_with_a_reason():
    rng = random.Random(7)
    for _ in range(5000):
        level = rng.choice((*LEVELS, PrecisionLevel.fixed(20), PrecisionLevel(1, 3, 0.5)))
        drawn = rng.randint(0, level.max_n + 4)
        answered = rng.randint(0, drawn)
        correct = rng.randint(0, answered)
        wanted = items_wanted(correct, answered, drawn, level)
        if wanted == drawn:
            assert stop_reason(correct, answered, drawn, level) is not None
        else:
            assert drawn < wanted <= level.max_n
            assert stop_reason(correct, answered, drawn, level) is None


def test_invalid_levels_and_counts_are_rejected():
    for args in ((0, 4, 0.1), (8, 4, 0.1), (8, 16, None), (8, 16, 0.0), (8, 16, 0.6)):
        with pytest.raises(ValueError):
            PrecisionLevel(*args)
    with pytest.raises(ValueError):
        items_wanted(5, 4, 4, LOW)
    with pytest.raises(ValueError):
        items_wanted(1, 4, 3, LOW)


TRUTHS = [0.02 + 0.96 * i / 39 for i in range(40)]  # 40 points from nearly hopeless to nearly solved


@pytest.mark.parametrize("lost", [0.0, 0.2])
@pytest.mark.parametrize("level", LEVELS, ids=["low", "medium", "high"])
def test_simulated_points_end_at_target_saturation_or_cap_and_cover_the_truth(level, lost):
    """25 seeds x 40 points per level, without and with 20% lost (truncated/error) samples.

    Coverage of the final Wilson interval is asserted >= 0.92: nominal is 0.95, and stopping when the
    interval first gets narrow enough (or at an all-right run) lowers it a little; measured
    0.944-0.956 over 8,000 points per level and loss rate. With 1,000 points the binomial standard
    error is about 0.007, so 0.92 is over 4 SE below nominal: noise cannot fail this (the seeds are
    fixed anyway), a real bias such as stopping on lucky streaks would."""
    covered = total = 0
    reasons = {"target": 0, "saturated": 0, "cap": 0}
    extreme_spent = []
    for seed in range(25):
        rng = random.Random(seed)
        for p in TRUTHS:
            correct, answered, drawn, reason, _ = simulate_point(p, level, rng, lost)
            reasons[reason] += 1
            if not 0.05 <= p <= 0.95:
                extreme_spent.append(drawn)
            assert level.min_n <= drawn <= level.max_n
            if reason == "target":
                assert half_width(correct, answered) <= level.half_width
            elif reason == "saturated":
                assert correct in (0, answered) and answered >= level.min_n
            else:
                assert drawn == level.max_n
            if answered:
                low, high = wilson_interval(correct, answered)
                covered += low - 1e-9 <= p <= high + 1e-9  # n/n's upper bound can round to 1 - 1e-16
                total += 1
    assert covered / total >= 0.92, (covered / total, reasons)
    # the nearly hopeless and nearly solved points stop early (saturated, or a narrow interval at once);
    # measured 0.19-0.31 of the cap
    assert sum(extreme_spent) / len(extreme_spent) < 0.4 * level.max_n
    if lost == 0.0:
        # no lost samples: p = 0.5 needs no more than the cap, so every point meets its target or saturates
        assert reasons["cap"] == 0, reasons


def test_saturated_points_stop_early_and_mid_points_spend_more():
    rng = random.Random(1)
    spent = {p: [] for p in (0.0, 0.02, 0.5, 1.0)}
    for _ in range(200):
        for p in spent:
            spent[p].append(simulate_point(p, MEDIUM, rng)[2])
    assert set(spent[0.0]) == set(spent[1.0]) == {MEDIUM.min_n}  # all wrong / all right: done at the minimum
    assert sum(spent[0.02]) / 200 < 0.6 * MEDIUM.max_n
    assert sum(spent[0.5]) / 200 >= 0.9 * answers_needed(0.5, 0.10)  # p = 0.5 is the worst case: ~93 items
    assert max(spent[0.5]) <= MEDIUM.max_n


# --- precision levels in manifolds --------------------------------------------------------------


def _manifold(tmp_path: Path, precision) -> Path:
    doc = yaml.safe_load((ROOT / "assets" / "tasks" / "arithmetic.yaml").read_text())
    doc["precision"] = precision
    path = tmp_path / "arithmetic.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_shipped_manifolds_define_adaptive_levels():
    spec = load_manifold(ROOT / "assets" / "tasks" / "arithmetic.yaml")
    assert spec.precision_levels() == {"low": LOW, "medium": MEDIUM, "high": HIGH}
    assert spec.max_items_per_point == 160
    assert spec.items_per_point("low") == 48  # an adaptive level's cap
    assert spec.precision_level("12") == spec.precision_level(12) == PrecisionLevel.fixed(12)


@pytest.mark.parametrize("bad", [0, "0", -3, "-3"])
def test_a_non_positive_count_is_rejected_with_what_is_expected(bad):
    spec = load_manifold(ROOT / "assets" / "tasks" / "arithmetic.yaml")
    with pytest.raises(InputError, match="expected a positive count of items per point"):
        spec.precision_level(bad)
    with pytest.raises(InputError, match="positive"):
        spec.items_per_point(bad)


def test_an_unknown_level_lists_the_defined_ones():
    spec = load_manifold(ROOT / "assets" / "tasks" / "arithmetic.yaml")
    with pytest.raises(InputError, match=r"'ultra' not defined; levels: \['high', 'low', 'medium'\]"):
        spec.precision_level("ultra")


def test_fixed_int_levels_are_still_accepted(tmp_path):
    spec = load_manifold(_manifold(tmp_path, {"low": 16, "medium": 64, "high": 128}))
    assert spec.precision_levels()["medium"] == PrecisionLevel.fixed(64)
    assert spec.items_per_point("high") == spec.max_items_per_point == 128
    mixed = load_manifold(_manifold(tmp_path, {"quick": 4, "fine": {"half_width": 0.1, "min": 16, "max": 200}}))
    assert mixed.max_items_per_point == 200


@pytest.mark.parametrize(
    ("precision", "message"),
    [
        ({"low": 0}, "level 'low': expected a positive item count"),
        ({"low": {"half_width": 0.1, "min": 16}}, r"missing \['max'\]"),
        ({"low": {"half_width": 0.7, "min": 16, "max": 32}}, r"half_width must lie in \(0, 0.5\]"),
        ({"low": {"half_width": 0.1, "min": 64, "max": 32}}, "expected 1 <= min <= max"),
        ({"low": {"half_width": 0.1, "min": 8, "max": 16, "cap": 9}}, r"unknown key\(s\) \['cap'\]"),
        ({"high": "lots"}, "level 'high': expected a positive item count"),
        ({}, "expected a mapping of level names"),
    ],
)
def test_bad_levels_name_the_file_the_level_and_what_is_expected(tmp_path, precision, message):
    path = _manifold(tmp_path, precision)
    with pytest.raises(InputError, match=message) as info:
        load_manifold(path)
    assert str(path) in str(info.value) and "precision" in str(info.value)
