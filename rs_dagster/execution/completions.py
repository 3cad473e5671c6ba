"""The completions rows of a model × task: each round of AdaptiveRounds turned into requests (one per item
and sample not answered yet; a question asked at two points is sent once), and each result into a row
for every item it answers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from rs_dagster.execution.cache import request_hash
from rs_dagster.execution.responses import CompletionResult
from rs_dagster.execution.rounds import AdaptiveRounds
from rs_dagster.execution.runner import CompletionRequest, Endpoint
from rs_dagster.models.registry import Model
from rs_dagster.tasks.base import Task

COMPLETION_IDENTITY = ("test_case_id", "request_hash")

COMPLETION_DTYPES = {
    "answer_text": pl.String,
    "reasoning_text": pl.String,
    "finish_reason": pl.String,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "reasoning_tokens": pl.Int64,
    "answer_tokens": pl.Int64,
    "answer_phase": pl.String,
    "error": pl.String,
    "queue_wait_s": pl.Float64,  # None (cache hits) in every row of a round would otherwise be a Null column
    "response_model": pl.String,
    "system_fingerprint": pl.String,
    "served_metadata_json": pl.String,
}


def answered_requests(stored: pl.DataFrame) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored answers (error rows left out: they are retried) by (test_case_id, request_hash)."""
    if stored.is_empty():
        return {}
    return {(row["test_case_id"], row["request_hash"]): row for row in stored.filter(pl.col("error").is_null()).iter_rows(named=True)}


@dataclass
class Round:
    """One round's requests; `waiting` holds, per request_hash, the (case, row) of every item it answers;
    `needed`, the (test_case_id, request_hash) of every sample of the round, already answered or not."""

    requests: list[CompletionRequest] = field(default_factory=list)
    waiting: dict[str, list[tuple[dict, dict]]] = field(default_factory=dict)
    needed: list[tuple[str, str]] = field(default_factory=list)
    skipped: int = 0


def round_requests(
    items: pl.DataFrame, batch: list[dict[str, Any]], repeats: int, endpoint: Endpoint, params: dict[str, Any],
    answered: Mapping[tuple[str, str], dict[str, Any]], rounds: AdaptiveRounds, task: Task,
) -> Round:
    """The requests for `batch` (AdaptiveRounds.next_round) of `items` (cases joined with their prompts),
    `repeats` samples each; a sample already answered is counted into `rounds` instead of being sent."""
    asked = Round()
    wanted = pl.DataFrame(batch, schema={"point_id": pl.String, "item_index": pl.Int64})
    for case in items.join(wanted, on=["point_id", "item_index"]).iter_rows(named=True):
        messages = json.loads(case["messages_json"])
        for sample in range(repeats):
            key = request_hash(endpoint.base_url, endpoint.served_model, messages, params, sample)
            asked.needed.append((case["test_case_id"], key))
            if (case["test_case_id"], key) in answered:
                asked.skipped += 1
                rounds.record(case, answered[case["test_case_id"], key], task)
                continue
            if key not in asked.waiting:  # the same question at two points is asked once
                asked.requests.append(CompletionRequest(key, messages))
            row = {"test_case_id": case["test_case_id"], "sample_index": sample, "request_hash": key, "prompt_hash": case["prompt_hash"]}
            asked.waiting.setdefault(key, []).append((case, row))
    return asked


def completion_row(keys: Mapping[str, str], request_row: dict[str, Any], result: CompletionResult, model: Model, run_id: str) -> dict[str, Any]:
    """The completions row of one item's request (round_requests' row) answered by `result`."""
    return {
        **keys,
        **request_row,
        "served_model": model.entry.served_model,
        **{k: v for k, v in vars(result).items() if k != "request_hash"},
        "sampler_json": model.sampler.model_dump_json(),
        "dagster_run_id": run_id,
    }
