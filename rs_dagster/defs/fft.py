"""Token-FFT stage: the spectrum of the token-id sequences of the exact prompts a model receives, per
grid point of the whole manifold. It needs no completions, so it can run before a model is queried."""

from typing import cast

import dagster as dg

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import ONLY_WHAT_WAS_COMPUTED, item_inputs, keys_of
from rs_dagster.defs.resources import EvalScope, LabResource
from rs_dagster.fft.charts import projection_charts
from rs_dagster.fft.prompts import spectra_frame
from rs_dagster.prompting.prompts import prompt_frame
from rs_dagster.report.charts import chart_markdown
from rs_dagster.storage import schemas
from rs_dagster.tasks.cases import current_cases


def build_fft_assets(model_task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=model_task_parts,
        deps=item_inputs(),
        group_name="analysis",
        kinds={"numpy", "duckdb"},
        description="Token-FFT of the prompts (partition: model × task, only for models with a `tokenizer:` entry), one "
        "row per named grid point (key: point_id): mean/std magnitude spectrum |rfft(ids)|/len on 0..0.5 cycles/token of "
        "the rendered, tokenized prompts, with DC/low/mid/high band energies. Needs no completions. Run by the "
        "`token_fft` job (`rs fft`, and `rs eval` for models with a tokenizer).",
        # An edited task manifold (or model entry) re-runs the spectra computed before; partitions never
        # computed (models without a `tokenizer:`) are never requested.
        automation_condition=ONLY_WHAT_WAS_COMPUTED,
        code_version="1",
        owners=OWNERS,
        tags=asset_tags("analysis", "model_task"),
        metadata=definition_metadata(schemas.FftSpectra),
        check_specs=[schema_check_spec("fft_spectra", {"fft_spectra": schemas.FftSpectra}, model_task_parts)],
    )
    def fft_spectra(context: dg.AssetExecutionContext, lab: LabResource, scope: EvalScope) -> dg.MaterializeResult:
        keys = keys_of(context)
        model, spec = lab.model_and_spec(keys)
        count = spec.items_per_point(scope.resolve(model.entry.suite).precision)
        cases = current_cases(lab.warehouse, spec, spec.points(), count)  # every named point of the manifold
        frame = spectra_frame(model, prompt_frame(model, spec, cases), cases)
        lab.warehouse.replace_partition("fft_spectra", schemas.FftSpectra, frame, keys)
        metadata = {
            **table_metadata(lab.warehouse, "fft_spectra", schemas.FftSpectra, keys),
            "points": frame.height,
            "items": int(frame["n_items"].sum()),
            "tokenizer": frame["tokenizer"][0],
            "mean_tokens": round(cast(float, frame["mean_tokens"].mean()), 1),
        }
        for projection, axis, chart in projection_charts(frame):  # one line per value of the projection's axis
            key = f"projection/{projection}" if projection else "chart"
            metadata[key] = dg.MetadataValue.md(chart_markdown(chart, f"{projection or 'spectra'} by {axis}"))
        return dg.MaterializeResult(metadata=metadata, check_results=[schema_check_result(lab.warehouse, {"fft_spectra": schemas.FftSpectra}, keys)])

    return [fft_spectra]
