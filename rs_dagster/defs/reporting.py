"""Reporting stage: the report folder, the explorer's views exported (interactive, opening offline from
index.html); SVG previews of the leaderboard and the token-FFT comparisons (model vs model, band energy
vs accuracy, per task) in the asset's metadata, where Dagster's UI shows them."""

from typing import Any

import dagster as dg

from rs_dagster.defs.partitions import AFTER_ANY_PARTITION_UPDATES
from rs_dagster.defs.resources import LabResource
from rs_dagster.explore.export import export
from rs_dagster.fft.charts import task_figures
from rs_dagster.report.charts import chart_markdown, leaderboard_bars


def build_reporting_assets() -> list:
    @dg.asset(
        deps=["leaderboard", "surfaces", "projections", "points", "fft_spectra", "comparisons", "reasonscore", "compression", "hazard",
              "drift", "memorisation"],
        group_name="reporting",
        kinds={"html", "altair"},
        description="The report folder (.rs/report): index.html is the explorer exported (leaderboard and ReasonScore → task, with its "
        "difficulty curves and surfaces, token-FFT spectra and reasoning traces → point → sample, two models side by side, the nights of "
        "each watched model and the memorisation gaps; interactive "
        "Vega-Lite charts; opens offline from file://).",
        # fft_spectra is read (lineage) but left out of the automation condition: most model × task
        # partitions of it stay missing (models without a `tokenizer:`), which would block eager() forever.
        automation_condition=AFTER_ANY_PARTITION_UPDATES,
        code_version="5",
    )
    def report(lab: LabResource) -> dg.MaterializeResult:
        settings, warehouse = lab.settings, lab.warehouse
        exported = export(warehouse, settings.report_dir, cache_dir=settings.cache_dir)
        leaderboard = warehouse.table("leaderboard")
        metadata: dict[str, Any] = {
            "path": dg.MetadataValue.path(str(settings.report_dir / "index.html")),
            "views": len(exported.routes), "models": leaderboard["model"].n_unique(), "rows": leaderboard.height,
            # the export rebuilds the views whose rows changed since the previous one and keeps the others' files
            "views_rebuilt": exported.rebuilt, "views_kept": exported.kept,
        }
        if exported.notes:
            metadata["views_without_data"] = dg.MetadataValue.md("\n".join(f"- {note}" for note in exported.notes))
        if not leaderboard.is_empty():
            metadata["leaderboard"] = dg.MetadataValue.md(chart_markdown(leaderboard_bars(leaderboard), "leaderboard"))
        spectra = warehouse.table("fft_spectra", order_by="model, task, point_id")
        if not spectra.is_empty():
            figures = task_figures(spectra, warehouse.table("points", order_by="model, task, point_id"))
            for figure in figures:
                if figure.comparison is not None:
                    metadata[f"fft_models/{figure.task}"] = dg.MetadataValue.md(chart_markdown(figure.comparison, f"{figure.task}: token spectrum by model"))
                if figure.bands is not None:
                    metadata[f"fft_bands/{figure.task}"] = dg.MetadataValue.md(chart_markdown(figure.bands, f"{figure.task}: band energy vs accuracy"))
            if missing := [note for figure in figures for note in figure.missing]:
                metadata["fft_not_drawn"] = dg.MetadataValue.md("\n".join(f"- {note}" for note in missing))
        return dg.MaterializeResult(metadata=metadata)

    return [report]
