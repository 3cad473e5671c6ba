"""The scored_results rows of one model × task: each stored completion that answers a request the current
model version sends, parsed and given its strict and flexible outcomes under the current SCORING_VERSION;
and which of them changed, so a repeated evaluation rewrites nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping

import polars as pl

from rs_dagster.execution.cache import request_hash
from rs_dagster.execution.runner import endpoint_of
from rs_dagster.models.registry import Model
from rs_dagster.scoring import outcomes
from rs_dagster.scoring.outcomes import accuracy_of, score_sample
from rs_dagster.tasks.manifold import TaskSpec

SCORE_IDENTITY = ("request_hash", "test_case_id", "spec_version", "scoring_version")
"""A scored row per completion, task version and scoring version: a scoring change adds rows beside the
earlier version's, which stay as they were."""

_DTYPES = {
    "parsed_answer": pl.String,
    "parse_rule": pl.String,
    "completion_tokens": pl.Int64,
    "reasoning_tokens": pl.Int64,
    "answer_phase": pl.String,
}


def score_frame(joined: pl.DataFrame, model: Model, spec: TaskSpec, keys: Mapping[str, str], run_id: str) -> pl.DataFrame:
    """One scored row per completion of `joined` (rs_dagster.storage.reads.completions_to_score) that the
    current model version sent, scored under the current SCORING_VERSION: the same prompt asked of an earlier
    served model, endpoint or sampler is another version's answer."""
    endpoint, params = endpoint_of(model), model.sampler.request_params()
    scoring_version = outcomes.SCORING_VERSION
    rows = []
    for row in joined.iter_rows(named=True):
        sent = request_hash(endpoint.base_url, endpoint.served_model, json.loads(row["messages_json"]), params, row["sample_index"])
        if sent != row["request_hash"]:
            continue
        scored = score_sample(spec.task, row["answer"], json.loads(row["metadata_json"]), row["answer_text"], row["finish_reason"], row["error"])
        rows.append(
            {
                **keys,
                **{c: row[c] for c in ("test_case_id", "point_id", "sample_index", "request_hash", "prompt_hash", "answer")},
                "parsed_answer": scored.parsed_answer,
                "parse_rule": scored.parse_rule,
                "outcome": scored.outcome,
                "flexible_outcome": scored.flexible_outcome,
                **{c: row[c] for c in ("guess_chance", "completion_tokens", "reasoning_tokens", "answer_phase", "generator_version", "spec_version")},
                "template": model.entry.template,
                "sampler": model.entry.sampler,
                "model_version": model.version,
                "scoring_version": scoring_version,
                "dagster_run_id": run_id,
            }
        )
    return pl.DataFrame(rows, schema_overrides=_DTYPES)


def changed_rows(scored: pl.DataFrame, stored: pl.DataFrame) -> pl.DataFrame:
    """The rows of `scored` that are new or differ from their stored row (the run id aside). A row is
    compared with the stored row of its own identity (SCORE_IDENTITY), so only within its scoring version:
    a row of a new version is new, whatever an earlier version stored."""
    if stored.is_empty():
        return scored
    columns = [c for c in scored.columns if c != "dagster_run_id"]

    def identity(row: dict) -> tuple:
        return tuple(row[c] for c in SCORE_IDENTITY)

    before = {identity(row): row for row in stored.select([c for c in columns if c in stored.columns]).iter_rows(named=True)}
    keep = [before.get(identity(row)) != row for row in scored.select(columns).iter_rows(named=True)]
    return scored.filter(pl.Series(keep, dtype=pl.Boolean))


def rounded_accuracy(outcomes: dict[str, int]) -> float:
    """accuracy_of for the asset's metadata: 4 decimals, NaN when nothing was answered."""
    accuracy = accuracy_of(outcomes)
    return float("nan") if accuracy is None else round(accuracy, 4)
