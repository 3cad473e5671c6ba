"""Definition stage: task manifolds and model entries, each with a per-partition data version so an
edit re-runs only the partitions downstream of what changed."""

import json

import dagster as dg
import polars as pl

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.resources import LabResource
from rs_dagster.models.registry import Model
from rs_dagster.storage import schemas
from rs_dagster.tasks.base import sha256_hex
from rs_dagster.tasks.manifold import TaskSpec

DEFINITION_SHA = "definition_sha"
"""Materialization metadata of task_specs and model_specs: the hash of the row written, so `rs eval` can
see that a definition is unchanged since its last materialization and skip refreshing it."""


def task_spec_frame(spec: TaskSpec, run_id: str) -> pl.DataFrame:
    """The task_specs row of a task."""
    return pl.DataFrame(
        {
            "task": [spec.name],
            "spec_version": [spec.version],
            "generator": [spec.task.name],
            "generator_version": [spec.task.version],
            "manifold_yaml": [spec.path.read_text()],
            "surfaces_json": [json.dumps([{"name": s.name, "x": s.x, "y": s.y} for s in spec.doc.surfaces])],
            "projections_json": [json.dumps([{"name": p.name, "axis": p.axis} for p in spec.doc.projections])],
            "tiers_json": [json.dumps([{"name": tier, "points": count} for tier, count in spec.tier_sizes().items()])],
            "n_points": [len(spec.points())],
            "dagster_run_id": [run_id],
        }
    )


def model_spec_frame(model: Model) -> pl.DataFrame:
    """The model_specs row of a model: what it is asked and how, and whether it is the known-truth calibration
    endpoint (rs_dagster.calibration: the explorer draws its truth); never an API key, only its variable's name."""
    return pl.DataFrame(
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
            "calibration": [model.entry.calibration],
        },
        schema_overrides={"api_key_env": pl.String},
    )


def definition_sha(frame: pl.DataFrame) -> str:
    """The row's content apart from the run that wrote it."""
    return sha256_hex(frame.drop("dagster_run_id", strict=False).write_json())


def build_definition_assets(task_parts: dg.PartitionsDefinition, model_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=task_parts,
        group_name="definition",
        kinds={"yaml", "duckdb"},
        description="One row per task (partition: the task): its manifold file assets/tasks/NAME.yaml as read, the "
        "generator and its version, surfaces, projections, the number of grid points and each tier's. The data version is "
        "hash(manifold + generator version): editing the YAML re-runs only that task's downstream partitions. "
        "Re-run by the `refresh_tasks` job, the `edited_inputs` sensor and every `rs eval`.",
        code_version="1",
        owners=OWNERS,
        tags=asset_tags("definition", "task"),
        metadata=definition_metadata(schemas.TaskSpecs),
        check_specs=[schema_check_spec("task_specs", {"task_specs": schemas.TaskSpecs}, task_parts)],
    )
    def task_specs(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        spec = lab.task(context.partition_key)
        frame = task_spec_frame(spec, context.run.run_id)
        keys = {"task": spec.name}
        lab.warehouse.replace_partition("task_specs", schemas.TaskSpecs, frame, keys)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(spec.version),
            metadata={
                **table_metadata(lab.warehouse, "task_specs", schemas.TaskSpecs, keys),
                "spec_version": spec.version,
                DEFINITION_SHA: definition_sha(frame),
                "generator": f"{spec.task.name} v{spec.task.version}",
                "points": len(spec.points()),
                "source": dg.MetadataValue.path(str(spec.path)),
                "tiers": json.dumps({t: list(v) for t, v in spec.doc.tiers.items()}),
            },
            check_results=[schema_check_result(lab.warehouse, {"task_specs": schemas.TaskSpecs}, keys)],
        )

    @dg.asset(
        partitions_def=model_parts,
        group_name="definition",
        kinds={"yaml", "duckdb"},
        description="One row per registered model (partition: the model, from assets/models.yaml and "
        ".rs/models.local.yaml): endpoint, served model, sampler and template. The data version is the hash of what "
        "changes answers (operational settings such as concurrency do not count), so editing one model re-runs only "
        "its partitions. API keys are never stored, only the name of the variable that holds one. Re-run by the "
        "`refresh_models` job, the `edited_inputs` sensor and every `rs eval`.",
        code_version="1",
        owners=OWNERS,
        tags=asset_tags("definition", "model"),
        metadata=definition_metadata(schemas.ModelSpecs),
        check_specs=[schema_check_spec("model_specs", {"model_specs": schemas.ModelSpecs}, model_parts)],
    )
    def model_specs(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        model = lab.model(context.partition_key)
        frame = model_spec_frame(model)
        keys = {"model": model.name}
        lab.warehouse.replace_partition("model_specs", schemas.ModelSpecs, frame, keys)
        return dg.MaterializeResult(
            data_version=dg.DataVersion(model.version),
            metadata={
                **table_metadata(lab.warehouse, "model_specs", schemas.ModelSpecs, keys),
                "model_version": model.version,
                DEFINITION_SHA: definition_sha(frame),
                "endpoint": model.entry.base_url,
                "served_model": model.entry.served_model,
                "sampler": model.entry.sampler,
                "template": model.entry.template,
            },
            check_results=[schema_check_result(lab.warehouse, {"model_specs": schemas.ModelSpecs}, keys)],
        )

    return [task_specs, model_specs]
