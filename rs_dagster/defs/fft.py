"""Token-FFT stage: the spectrum of the token-id sequences of the exact prompts a model receives, per
grid point of the whole manifold. It needs no completions, so it can run before a model is queried."""

import json
from typing import cast

import dagster as dg
import polars as pl

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.generation import current_cases
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import MODEL_OF_MODEL_TASK, ONLY_WHAT_WAS_EVALUATED, TASK_OF_MODEL_TASK, keys_of
from rs_dagster.defs.prompting import prompt_frame
from rs_dagster.defs.resources import EvalScope, LabResource
from rs_dagster.errors import InputError
from rs_dagster.fft.charts import projection_charts
from rs_dagster.fft.spectrum import summarize_point
from rs_dagster.fft.tokenizers import TokenizerSpec, load_tokenizer
from rs_dagster.inputs import validate
from rs_dagster.models.registry import Model
from rs_dagster.report.charts import png_markdown
from rs_dagster.storage import schemas


def model_tokenizer_spec(model: Model) -> TokenizerSpec:
    """The model's validated `tokenizer` entry; a clear error when it has none or it is malformed."""
    if model.entry.tokenizer is None:
        raise InputError(f"model {model.name!r} has no `tokenizer` entry in models.yaml; token-FFT needs one (source: endpoint|local|gguf|tiktoken)")
    return validate(TokenizerSpec, model.entry.tokenizer, f"models.{model.name}.tokenizer")


def model_tokenizer(model: Model):
    where = f"models.{model.name}.tokenizer"
    return load_tokenizer(model_tokenizer_spec(model), base_url=model.entry.base_url, served_model=model.entry.served_model, api_key=model.api_key(), where=where)


def spectra_frame(model: Model, prompts: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
    tokenizer = model_tokenizer(model)
    ids = tokenizer.encode_chats([json.loads(m) for m in prompts["messages_json"]])
    with_ids = prompts.select("point_id").with_columns(pl.Series("ids", ids, dtype=pl.List(pl.Int64)))
    memberships = cases.select("point_id", "params_json", "tiers", "surfaces", "projections").unique("point_id")
    rows = []
    for (point_id,), group in with_ids.group_by("point_id", maintain_order=True):
        spectrum = summarize_point(group["ids"].to_list())
        rows.append({"point_id": point_id, "tokenizer": tokenizer.name, **vars(spectrum)})
    return (
        pl.DataFrame(rows)
        .join(memberships, on="point_id", how="left")
        .with_columns(pl.lit(model.name).alias("model"), pl.lit(prompts["task"][0]).alias("task"))
        .sort("point_id")
    )


def build_fft_assets(model_task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=model_task_parts,
        deps=[
            dg.AssetDep("test_cases", partition_mapping=TASK_OF_MODEL_TASK),
            dg.AssetDep("model_specs", partition_mapping=MODEL_OF_MODEL_TASK),
        ],
        group_name="analysis",
        kinds={"numpy", "duckdb"},
        description="Token-FFT of the prompts (partition: model × task, only for models with a `tokenizer:` entry), one "
        "row per named grid point (key: point_id): mean/std magnitude spectrum |rfft(ids)|/len on 0..0.5 cycles/token of "
        "the rendered, tokenized prompts, with DC/low/mid/high band energies. Needs no completions. Run by the "
        "`token_fft` job (`rs fft`, and `rs eval` for models with a tokenizer).",
        # An edited task manifold (or model entry) re-runs the spectra computed before; partitions never
        # computed (models without a `tokenizer:`) are never requested.
        automation_condition=ONLY_WHAT_WAS_EVALUATED,
        code_version="1",
        owners=OWNERS,
        tags=asset_tags("analysis", "model_task"),
        metadata=definition_metadata(schemas.FftSpectra),
        check_specs=[schema_check_spec("fft_spectra", {"fft_spectra": schemas.FftSpectra}, model_task_parts)],
    )
    def fft_spectra(context: dg.AssetExecutionContext, lab: LabResource, scope: EvalScope) -> dg.MaterializeResult:
        keys = keys_of(context)
        model, spec = lab.models()[keys["model"]], lab.task_specs()[keys["task"]]
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
            metadata[key] = dg.MetadataValue.md(png_markdown(chart, f"{projection or 'spectra'} by {axis}"))
        return dg.MaterializeResult(metadata=metadata, check_results=[schema_check_result(lab.warehouse, {"fft_spectra": schemas.FftSpectra}, keys)])

    return [fft_spectra]
