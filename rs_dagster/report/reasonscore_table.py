"""The ranked ReasonScore table as text cells, shared by the explorer, the report and `rs leaderboard`:
apart from the charts (rs_dagster.report.reasonscore), so the CLI prints it without importing Altair."""

from __future__ import annotations

import polars as pl

from rs_dagster.stats.reasonscore import cell


def ranked(scores: pl.DataFrame, tier: str) -> pl.DataFrame:
    """The tier's rows, best first: by v2, then v1, then name."""
    return scores.filter(pl.col("tier") == tier).sort(["v2", "v1", "model"], descending=[True, True, False])


def tiers_of(scores: pl.DataFrame) -> list[str]:
    from rs_dagster.tasks.manifold import TIERS

    present = scores["tier"].unique().to_list()
    return [t for t in TIERS if t in present] + sorted(t for t in present if t not in TIERS)


def _number(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def ranked_rows(scores: pl.DataFrame, tasks: pl.DataFrame, tier: str) -> tuple[list[str], list[list[str]]]:
    """The ranked table of a tier as text cells: header and rows (shared by the report and `rs leaderboard`).
    A score marked * covers fewer tasks than the tier's best-covered model."""
    board = ranked(scores, tier)
    tier_tasks = tasks.filter(pl.col("tier") == tier)
    names = sorted(tier_tasks["task"].unique().to_list())
    most = board["tasks"].max() if board.height else 0
    header = ["#", "model", "ReasonScore", "95% CI", "v1", "tasks", "tokens", "score/token", "v1/token", *names]
    rows = []
    for rank, row in enumerate(board.iter_rows(named=True), start=1):
        mine = {r["task"]: r for r in tier_tasks.filter(pl.col("model") == row["model"]).iter_rows(named=True)}
        cells = [cell(mine[n]["ci_low"], mine[n]["ci_high"], mine[n]["truncation_ratio"]) if n in mine else "—" for n in names]
        rows.append([
            str(rank), row["model"], f"{row['v2']:.0f}{'*' if row['tasks'] < most else ''}",
            f"[{row['v2_low']:.0f}, {row['v2_high']:.0f}]", f"{row['v1']:.0f}", str(row["tasks"]),
            _number(row["tokens"], ".0f"), _number(row["v2_per_token"], ".3g"), _number(row["v1_per_token"], ".3g"), *cells,
        ])
    return header, rows
