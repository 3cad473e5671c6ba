"""Prompting stage: the exact chat messages each model receives for each selected item. Prompts
accumulate like the results they produced: one row per item and (model version, task version)."""

import json

import dagster as dg

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import ONLY_WHAT_WAS_EVALUATED, item_inputs, keys_of
from rs_dagster.defs.resources import EvalScope, LabResource
from rs_dagster.prompting.prompts import PROMPT_IDENTITY, prompt_frame
from rs_dagster.prompting.scope import partition_scope
from rs_dagster.storage import schemas
from rs_dagster.tasks.cases import current_cases

_TABLES = {"prompts": schemas.Prompts}


def build_prompting_assets(model_task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=model_task_parts,
        deps=item_inputs(),
        group_name="prompting",
        kinds={"python", "duckdb"},
        description="The exact chat messages a model receives (partition: model × task), one row per item of the "
        "evaluated scope and (model version, task version) (key: test_case_id, model_version, spec_version): the "
        "rendered template and its prompt_hash. First asset of the `evaluation` job; "
        "re-run by `rs eval`, the nightly schedule, and automation when the task or model definition changes.",
        automation_condition=ONLY_WHAT_WAS_EVALUATED,
        code_version="1",
        owners=OWNERS,
        tags=asset_tags("prompting", "model_task"),
        metadata=definition_metadata(schemas.Prompts),
        check_specs=[schema_check_spec("prompts", _TABLES, model_task_parts)],
    )
    def prompts(context: dg.AssetExecutionContext, lab: LabResource, scope: EvalScope) -> dg.MaterializeResult:
        keys = keys_of(context)
        model, spec = lab.model_and_spec(keys)
        selected, _ = partition_scope(lab.warehouse, keys, spec, model, scope)
        cases = current_cases(lab.warehouse, spec, selected.points, selected.max_items)
        frame = prompt_frame(model, spec, cases)
        lab.warehouse.upsert_rows("prompts", schemas.Prompts, frame, keys, PROMPT_IDENTITY)
        return dg.MaterializeResult(
            metadata={
                **table_metadata(lab.warehouse, "prompts", schemas.Prompts, keys),
                "rows": frame.height,
                "points": frame["point_id"].n_unique(),
                "scope": selected.describe(),
                "template": model.entry.template,
                "example": dg.MetadataValue.json(json.loads(frame["messages_json"][0])),
            },
            check_results=[schema_check_result(lab.warehouse, _TABLES, {**keys, "model_version": model.version, "spec_version": spec.version})],
        )

    return [prompts]
