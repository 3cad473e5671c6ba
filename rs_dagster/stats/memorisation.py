"""Memorisation: is a model better on the published canary items than on fresh items drawn at the same points?

The published items come from the task's published seed (they may have leaked into training data); the fresh
ones (`fresh:<salt>:<k>` item sets, rs_dagster.watch) are drawn at the very same grid points from seeds never
published. A model that only reasons answers both alike; one that memorised the published items does better on
them.

gap        stratified by point: Σ_p w_p (acc_published_p − acc_fresh_p) over the points answered on both sides,
           w_p = the point's share of all trials (published + fresh), so a tier's easy and hard points are
           compared with each other and not through the mix of points each side happens to hold.
           accuracy_published / accuracy_fresh are the same weighted means, so gap = their difference.
interval   Agresti–Caffo per point (one success and one failure added to each side, for the centre and the
           variance: p̃ = (x + 1) / (n + 2), var = p̃(1 − p̃) / (n + 2) per side), combined as
           Σ w_p (p̃_pub − p̃_fresh) ± z·√(Σ w_p² var_p), clipped to [−1, 1]. Its coverage on an honest model
           is measured by bench/drift_false_alarms.py and held by tests/test_drift_stats.py.
flagged    the interval excludes 0 (either direction: a model worse on its published items is odd too).

Accuracy follows rs_dagster.scoring.outcomes (answered = correct, incorrect, unparsed or ambiguous; error rows,
error not null, and truncated rows are left out). The fresh sets of a night are pooled. No dagster here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl
from polars._typing import PolarsDataType

from rs_dagster.scoring.outcomes import Outcome, is_answered, is_correct
from rs_dagster.stats.drift import FRESH_PREFIX, PUBLISHED
from rs_dagster.stats.intervals import Z95

MEMORISATION_COLUMNS: dict[str, PolarsDataType] = {
    "night": pl.String,
    "tier": pl.String,
    "points": pl.Int64,
    "n_published": pl.Int64,
    "n_fresh": pl.Int64,
    "accuracy_published": pl.Float64,
    "accuracy_fresh": pl.Float64,
    "gap": pl.Float64,
    "gap_low": pl.Float64,
    "gap_high": pl.Float64,
    "flagged": pl.Boolean,
}
"""rs_dagster.storage.schemas.Memorisation less model, task and dagster_run_id."""


@dataclass(frozen=True)
class Gap:
    gap: float  # published − fresh accuracy, stratified by point
    low: float
    high: float
    n_published: int  # answered published items over the points compared
    n_fresh: int
    accuracy_published: float  # the stratified (weighted) accuracies: gap = accuracy_published − accuracy_fresh
    accuracy_fresh: float
    points: int  # points answered on both sides

    @property
    def flagged(self) -> bool:
        """The interval excludes 0."""
        return self.low > 0.0 or self.high < 0.0


def _clip(value: float) -> float:
    return max(-1.0, min(1.0, value))


def stratified_gap(published: Mapping[str, tuple[int, int]], fresh: Mapping[str, tuple[int, int]], z: float = Z95) -> Gap:
    """The stratified gap of published over fresh accuracy. `published` and `fresh` map point_id to
    (successes, trials); points with trials on both sides are compared. Raises ValueError when none is."""
    for side in (published, fresh):
        for point, (x, n) in side.items():
            if not 0 <= x <= n:
                raise ValueError(f"point {point}: successes must lie in [0, trials], got ({x}, {n})")
    points = sorted(p for p in published.keys() & fresh.keys() if published[p][1] > 0 and fresh[p][1] > 0)
    if not points:
        raise ValueError("no point has answers on both the published and the fresh side")
    total = sum(published[p][1] + fresh[p][1] for p in points)
    acc_pub = acc_fresh = centre = variance = 0.0
    for p in points:
        (x1, n1), (x2, n2) = published[p], fresh[p]
        w = (n1 + n2) / total
        acc_pub += w * x1 / n1
        acc_fresh += w * x2 / n2
        t1, t2 = (x1 + 1) / (n1 + 2), (x2 + 1) / (n2 + 2)  # Agresti–Caffo: one success and one failure added
        centre += w * (t1 - t2)
        variance += w * w * (t1 * (1 - t1) / (n1 + 2) + t2 * (1 - t2) / (n2 + 2))
    half = z * math.sqrt(variance)
    return Gap(
        gap=_clip(acc_pub - acc_fresh),
        low=_clip(centre - half),
        high=_clip(centre + half),
        n_published=sum(published[p][1] for p in points),
        n_fresh=sum(fresh[p][1] for p in points),
        accuracy_published=min(1.0, max(0.0, acc_pub)),
        accuracy_fresh=min(1.0, max(0.0, acc_fresh)),
        points=len(points),
    )


def memorisation_rows(answers: pl.DataFrame) -> pl.DataFrame:
    """Per night and tier with both published and fresh answers at a common point: the Memorisation schema's
    columns less model, task and dagster_run_id. A point counts in each of its tiers; the fresh sets of a
    night are pooled; error rows are left out (and truncated ones, as in accuracy)."""
    if answers.is_empty():
        return pl.DataFrame(schema=MEMORISATION_COLUMNS)
    side = (
        pl.when(pl.col("item_set") == PUBLISHED).then(pl.lit("published"))
        .when(pl.col("item_set").str.starts_with(FRESH_PREFIX)).then(pl.lit("fresh"))
        .otherwise(None)
    )
    failed = pl.col("error").is_not_null() | (pl.col("outcome") == Outcome.ERROR.value)
    counts = (
        answers.filter(~failed & is_answered())
        .with_columns(side.alias("side"), is_correct().alias("right"))
        .filter(pl.col("side").is_not_null())
        .explode("tiers")
        .filter(pl.col("tiers").is_not_null())
        .group_by("night", "tiers", "point_id", "side")
        .agg(pl.col("right").sum().cast(pl.Int64).alias("x"), pl.len().cast(pl.Int64).alias("n"))
        .sort("night", "tiers", "point_id", "side")
    )
    rows = []
    for (night, tier), group in counts.group_by("night", "tiers", maintain_order=True):
        sides: dict[str, dict[str, tuple[int, int]]] = {"published": {}, "fresh": {}}
        for point, where, x, n in group.select("point_id", "side", "x", "n").iter_rows():
            sides[where][point] = (x, n)
        if not sides["published"].keys() & sides["fresh"].keys():
            continue
        gap = stratified_gap(sides["published"], sides["fresh"])
        rows.append({
            "night": night, "tier": tier, "points": gap.points, "n_published": gap.n_published, "n_fresh": gap.n_fresh,
            "accuracy_published": gap.accuracy_published, "accuracy_fresh": gap.accuracy_fresh,
            "gap": gap.gap, "gap_low": gap.low, "gap_high": gap.high, "flagged": gap.flagged,
        })
    return pl.DataFrame(rows, schema=MEMORISATION_COLUMNS)
