"""Scoring stage: parse each completion with its task's parser and decide its outcome.

Every stored completion that answers a prompt of the current model and task versions is scored under
the current scoring version (rs_dagster.scoring.outcomes.SCORING_VERSION); rows are kept per (request,
task version, scoring version), so results scored under an earlier task version or by earlier parsing
code stay queryable (filter on `spec_version`, `scoring_version`) and are never mixed into the current
points. A row is rewritten only when its score changes, so a repeated evaluation leaves the table as it
was; a new scoring version re-reads the stored completions without asking the endpoint again."""

import dagster as dg
import polars as pl

from rs_dagster.defs.checks import quality_check_results, quality_check_specs, schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import keys_of
from rs_dagster.defs.resources import LabResource
from rs_dagster.scoring import outcomes
from rs_dagster.scoring.results import SCORE_IDENTITY, changed_rows, rounded_accuracy, score_frame
from rs_dagster.storage import schemas
from rs_dagster.storage.reads import completions_to_score


def build_scoring_assets(model_task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=model_task_parts,
        deps=["completions"],
        group_name="scoring",
        kinds={"python", "duckdb"},
        description="Every completion of the current model version scored (partition: model × task), one row per "
        "(item, sample), task version and scoring version (key: request_hash, test_case_id, spec_version, scoring_version): "
        "the parsed answer, the parse rule that read it, and the outcome (correct / incorrect / unparsed / ambiguous / "
        "truncated / error), strict (only an ANSWER: line or \\boxed{} counts) and flexible (any rule of the parse "
        "cascade), with lineage ids back to completions, prompts and test_cases. `scoring_version` is the code's "
        "SCORING_VERSION (rs_dagster.scoring.outcomes; \"1\": rows scored before the column existed): after a parser or "
        "scorer change bumps it, materializing this asset re-scores every stored completion (no request is sent) into "
        "new rows and keeps the earlier version's rows; points and every other reader use the current version only. "
        "A row is rewritten only when its score changes. Runs in the `evaluation` job after completions; its checks flag "
        "partitions read mostly by lenient parse rules, with many hedged (ambiguous) answers, errors or truncations.",
        automation_condition=dg.AutomationCondition.eager(),
        code_version="4",
        owners=OWNERS,
        tags=asset_tags("scoring", "model_task"),
        metadata=definition_metadata(schemas.ScoredResults),
        check_specs=[
            schema_check_spec("scored_results", {"scored_results": schemas.ScoredResults}, model_task_parts),
            *quality_check_specs("scored_results", model_task_parts),
        ],
    )
    def scored_results(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        keys = keys_of(context)
        model, spec = lab.model_and_spec(keys)
        joined = completions_to_score(lab.warehouse, keys["model"], keys["task"], model.version, spec.version)
        frame = score_frame(joined, model, spec, keys, context.run.run_id)
        current = {**keys, "spec_version": spec.version, "scoring_version": outcomes.SCORING_VERSION}
        # rows stored by code from before scoring_version existed get it ("1") before they are read by it
        lab.warehouse.add_missing_columns("scored_results", schemas.ScoredResults)
        changed = changed_rows(frame, lab.warehouse.table("scored_results", current))
        lab.warehouse.upsert_rows("scored_results", schemas.ScoredResults, changed, keys, SCORE_IDENTITY)
        strict = dict(frame.group_by("outcome").len().iter_rows())
        flexible = dict(frame.group_by("flexible_outcome").len().iter_rows())
        rules = dict(frame.filter(pl.col("parse_rule").is_not_null()).group_by("parse_rule").len().iter_rows())
        return dg.MaterializeResult(
            metadata={
                **table_metadata(lab.warehouse, "scored_results", schemas.ScoredResults, keys),
                "rows": frame.height,
                "rows_written": changed.height,
                "scoring_version": outcomes.SCORING_VERSION,
                "outcomes": dg.MetadataValue.json(strict),
                "flexible_outcomes": dg.MetadataValue.json(flexible),
                "parse_rules": dg.MetadataValue.json(rules),
                "accuracy_over_answered": rounded_accuracy(strict),
                "flexible_accuracy_over_answered": rounded_accuracy(flexible),
            },
            check_results=[
                schema_check_result(lab.warehouse, {"scored_results": schemas.ScoredResults}, {**current, "model_version": model.version}),
                *quality_check_results(frame),
            ],
        )

    return [scored_results]

