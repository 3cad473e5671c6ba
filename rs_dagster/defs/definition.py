"""Definition stage: task manifolds and model entries, each with a per-partition data version so an
edit re-runs only the partitions downstream of what changed."""

import json

import dagster as dg
import polars as pl

from rs_dagster.defs.resources import LabResource
from rs_dagster.storage import schemas


def build_definition_assets(task_parts: dg.PartitionsDefinition, model_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=task_parts,
        group_name="definition",
        kinds={"yaml", "duckdb"},
        description="Canonical task manifold per task; data version = hash(manifold + generator version).",
        code_version="1",
    )
    def task_specs(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        spec = lab.task_specs()[context.partition_key]
        frame = pl.DataFrame(
            {
                "task": [spec.name],
                "spec_version": [spec.version],
                "generator": [spec.task.name],
                "generator_version": [spec.task.version],
                "manifold_yaml": [spec.path.read_text()],
                "surfaces_json": [json.dumps([{"name": s.name, "x": s.x, "y": s.y} for s in spec.doc.surfaces])],
                "projections_json": [json.dumps([{"name": p.name, "axis": p.axis} for p in spec.doc.projections])],
                "n_points": [len(spec.points())],
                "dagster_run_id": [context.run.run_id],
            }
        )
        lab.warehouse.replace_partition("task_specs", schemas.TaskSpecs, frame, {"task": spec.name})
        return dg.MaterializeResult(
            data_version=dg.DataVersion(spec.version),
            metadata={
                "spec_version": spec.version,
                "generator": f"{spec.task.name} v{spec.task.version}",
                "points": len(spec.points()),
                "source": dg.MetadataValue.path(str(spec.path)),
                "tiers": json.dumps({t: list(v) for t, v in spec.doc.tiers.items()}),
            },
        )

    @dg.asset(
        partitions_def=model_parts,
        group_name="definition",
        kinds={"yaml", "duckdb"},
        description="A registered model: endpoint, sampler and template; data version = hash of all three. "
        "API keys are never stored, only the name of the variable that holds one.",
        code_version="1",
    )
    def model_specs(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        model = lab.models()[context.partition_key]
        frame = pl.DataFrame(
            {
                "model": [model.name],
                "model_version": [model.version],
                "base_url": [model.entry.base_url],
                "served_model": [model.entry.served_model],
                "api_key_env": [model.entry.api_key_env],
                "sampler": [model.entry.sampler],
                "sampler_json": [model.sampler.model_dump_json()],
                "template": [model.entry.template],
                "template_version": [model.template_version],
            },
            schema_overrides={"api_key_env": pl.String},
        )
        lab.warehouse.replace_partition("model_specs", schemas.ModelSpecs, frame, {"model": model.name})
        return dg.MaterializeResult(
            data_version=dg.DataVersion(model.version),
            metadata={
                "model_version": model.version,
                "endpoint": model.entry.base_url,
                "served_model": model.entry.served_model,
                "sampler": model.entry.sampler,
                "template": model.entry.template,
            },
        )

    return [task_specs, model_specs]
