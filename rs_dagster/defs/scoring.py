"""Scoring stage: parse each completion with its task's parser and decide its outcome.

Every stored completion that answers a prompt of the current model and task versions is scored;
rows are kept per (request, task version), so results scored under an earlier task version stay
queryable (filter on `spec_version`) and are never mixed into the current version's points. A row is
rewritten only when its score changes, so a repeated evaluation leaves the table as it was."""

import json

import dagster as dg
import polars as pl

from rs_dagster.defs.checks import quality_check_results, quality_check_specs, schema_check_result, schema_check_spec
from rs_dagster.defs.execution import endpoint_of
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import keys_of
from rs_dagster.defs.resources import LabResource
from rs_dagster.execution.cache import request_hash
from rs_dagster.scoring.outcomes import accuracy_of, score_sample
from rs_dagster.storage import schemas


def build_scoring_assets(model_task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=model_task_parts,
        deps=["completions"],
        group_name="scoring",
        kinds={"python", "duckdb"},
        description="Every completion of the current model version scored (partition: model × task), one row per "
        "(item, sample) and task version (key: request_hash, test_case_id, spec_version): the parsed answer, the parse "
        "rule that read it, and the outcome (correct / incorrect / unparsed / truncated / error), strict (only an "
        "ANSWER: line or \\boxed{} counts) and flexible (any rule of the parse cascade), with lineage ids back to "
        "completions, prompts and test_cases. A row is rewritten only when its score changes. Runs in the `evaluation` "
        "job after completions; its checks flag partitions read mostly by lenient parse rules, with many errors or "
        "truncations.",
        automation_condition=dg.AutomationCondition.eager(),
        code_version="3",
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
        model, spec = lab.models()[keys["model"]], lab.task_specs()[keys["task"]]
        joined = lab.warehouse.query(
            """
            SELECT c.*, p.messages_json, t.point_id, t.answer, t.guess_chance, t.metadata_json, t.generator_version, t.spec_version
            FROM completions c
            JOIN prompts p ON p.model = c.model AND p.task = c.task AND p.test_case_id = c.test_case_id AND p.prompt_hash = c.prompt_hash
            JOIN test_cases t ON t.task = c.task AND t.test_case_id = c.test_case_id AND t.spec_version = p.spec_version
            WHERE c.model = ? AND c.task = ? AND p.model_version = ? AND p.spec_version = ?
            """,
            [keys["model"], keys["task"], model.version, spec.version],
        )
        # The current model version's completions are those that answer the requests it sends: the same
        # prompt asked of an earlier served model, endpoint or sampler is another version's answer.
        endpoint, params = endpoint_of(model), model.sampler.request_params()
        rows = []
        for row in joined.iter_rows(named=True):
            sent = request_hash(endpoint.base_url, endpoint.served_model, json.loads(row["messages_json"]), params, row["sample_index"])
            if sent != row["request_hash"]:
                continue
            scored = score_sample(
                spec.task, row["answer"], json.loads(row["metadata_json"]), row["answer_text"], row["finish_reason"], row["error"]
            )
            rows.append(
                {
                    **keys,
                    "test_case_id": row["test_case_id"],
                    "point_id": row["point_id"],
                    "sample_index": row["sample_index"],
                    "request_hash": row["request_hash"],
                    "prompt_hash": row["prompt_hash"],
                    "answer": row["answer"],
                    "parsed_answer": scored.parsed_answer,
                    "parse_rule": scored.parse_rule,
                    "outcome": scored.outcome,
                    "flexible_outcome": scored.flexible_outcome,
                    "guess_chance": row["guess_chance"],
                    "completion_tokens": row["completion_tokens"],
                    "reasoning_tokens": row["reasoning_tokens"],
                    "answer_phase": row["answer_phase"],
                    "generator_version": row["generator_version"],
                    "spec_version": row["spec_version"],
                    "template": model.entry.template,
                    "sampler": model.entry.sampler,
                    "model_version": model.version,
                    "dagster_run_id": context.run.run_id,
                }
            )
        frame = pl.DataFrame(
            rows,
            schema_overrides={
                "parsed_answer": pl.String,
                "parse_rule": pl.String,
                "completion_tokens": pl.Int64,
                "reasoning_tokens": pl.Int64,
                "answer_phase": pl.String,
            },
        )
        changed = _changed_rows(frame, lab.warehouse.read_partition("scored_results", {**keys, "spec_version": spec.version}))
        lab.warehouse.upsert_rows("scored_results", schemas.ScoredResults, changed, keys, SCORE_IDENTITY)
        outcomes = dict(frame.group_by("outcome").len().iter_rows())
        flexible = dict(frame.group_by("flexible_outcome").len().iter_rows())
        rules = dict(frame.filter(pl.col("parse_rule").is_not_null()).group_by("parse_rule").len().iter_rows())
        return dg.MaterializeResult(
            metadata={
                **table_metadata(lab.warehouse, "scored_results", schemas.ScoredResults, keys),
                "rows": frame.height,
                "rows_written": changed.height,
                "outcomes": dg.MetadataValue.json(outcomes),
                "flexible_outcomes": dg.MetadataValue.json(flexible),
                "parse_rules": dg.MetadataValue.json(rules),
                "accuracy_over_answered": _accuracy(outcomes),
                "flexible_accuracy_over_answered": _accuracy(flexible),
            },
            check_results=[
                schema_check_result(lab.warehouse, {"scored_results": schemas.ScoredResults}, {**keys, "model_version": model.version, "spec_version": spec.version}),
                *quality_check_results(frame),
            ],
        )

    return [scored_results]


SCORE_IDENTITY = ("request_hash", "test_case_id", "spec_version")


def _changed_rows(scored: pl.DataFrame, stored: pl.DataFrame) -> pl.DataFrame:
    """The rows of `scored` that are new or differ from their stored row (the run id aside)."""
    if stored.is_empty():
        return scored
    columns = [c for c in scored.columns if c != "dagster_run_id"]
    def identity(row: dict) -> tuple:
        return tuple(row[c] for c in SCORE_IDENTITY)

    before = {identity(row): row for row in stored.select([c for c in columns if c in stored.columns]).iter_rows(named=True)}
    keep = [before.get(identity(row)) != row for row in scored.select(columns).iter_rows(named=True)]
    return scored.filter(pl.Series(keep, dtype=pl.Boolean))


def _accuracy(outcomes: dict[str, int]) -> float:
    accuracy = accuracy_of(outcomes)
    return float("nan") if accuracy is None else round(accuracy, 4)
