"""Reporting stage: the static HTML report; the leaderboard chart and the token-FFT comparisons (model vs
model, band energy vs accuracy, per task) in asset metadata."""

from typing import Any

import dagster as dg
import polars as pl

from rs_dagster.defs.partitions import AFTER_ANY_PARTITION_UPDATES
from rs_dagster.defs.resources import LabResource
from rs_dagster.report.charts import leaderboard_bars, png_markdown, png_markdown_of
from rs_dagster.report.html import write_report
from rs_dagster.report.traces import trace_tables


def build_reporting_assets() -> list:
    @dg.asset(
        deps=["leaderboard", "surfaces", "projections", "points", "fft_spectra", "comparisons", "reasonscore", "compression", "hazard"],
        group_name="reporting",
        kinds={"html", "altair"},
        description="Static HTML report (.rs/report/index.html): leaderboard, difficulty surfaces and curves, per-point accuracy, "
        "token-FFT spectra by projection, model vs model and band energy vs accuracy per task.",
        # fft_spectra is read (lineage) but left out of the automation condition: most model × task
        # partitions of it stay missing (models without a `tokenizer:`), which would block eager() forever.
        automation_condition=AFTER_ANY_PARTITION_UPDATES,
        code_version="3",
    )
    def report(lab: LabResource) -> dg.MaterializeResult:
        warehouse = lab.warehouse
        leaderboard = warehouse.query("SELECT * FROM leaderboard")
        surfaces = warehouse.query("SELECT * FROM surfaces")
        projections = warehouse.query("SELECT * FROM projections") if warehouse.has_table("projections") else pl.DataFrame()
        points = warehouse.query("SELECT * FROM points ORDER BY model, task, point_id")
        spectra = warehouse.query("SELECT * FROM fft_spectra ORDER BY model, task, point_id") if warehouse.has_table("fft_spectra") else pl.DataFrame()
        comparisons = warehouse.query("SELECT * FROM comparisons") if warehouse.has_table("comparisons") else pl.DataFrame()
        reasonscore = warehouse.query("SELECT * FROM reasonscore") if warehouse.has_table("reasonscore") else pl.DataFrame()
        reasonscore_tasks = warehouse.query("SELECT * FROM reasonscore_tasks") if warehouse.has_table("reasonscore_tasks") else pl.DataFrame()
        written = write_report(lab.settings.report_dir / "index.html", leaderboard, surfaces, points, spectra, projections, comparisons=comparisons,
                               reasonscore=reasonscore, reasonscore_tasks=reasonscore_tasks, traces=trace_tables(warehouse))
        metadata: dict[str, Any] = {"path": dg.MetadataValue.path(str(written.path)), "models": leaderboard["model"].n_unique(), "rows": leaderboard.height}
        if not leaderboard.is_empty():
            metadata["leaderboard"] = dg.MetadataValue.md(png_markdown(leaderboard_bars(leaderboard), "leaderboard"))
        for key, (title, png) in written.charts.items():
            metadata[key] = dg.MetadataValue.md(png_markdown_of(png, title))
        if written.notes:
            metadata["fft_not_drawn"] = dg.MetadataValue.md("\n".join(f"- {note}" for note in written.notes))
        return dg.MaterializeResult(metadata=metadata)

    return [report]
