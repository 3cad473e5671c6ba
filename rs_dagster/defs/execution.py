"""Execution stage: one completion per (item, sample) of the evaluation's scope from the model's
endpoint, through the response cache. Completions accumulate: a request whose answer is already
stored is not sent again and its row is left as it is; new answers are added, and nothing is removed
(a narrower or repeated scope only adds). Errors after the retry policy are stored as error rows,
never as answers, and are retried by the next run; if every request failed the run fails with the
endpoint's reason and what was stored before is untouched."""

import json
from collections import Counter

import dagster as dg
import polars as pl

from rs_dagster.defs.generation import current_cases
from rs_dagster.defs.partitions import keys_of
from rs_dagster.defs.prompting import selected_scope
from rs_dagster.defs.resources import EvalScope, LabResource
from rs_dagster.errors import EndpointError, InputError
from rs_dagster.execution.cache import request_hash
from rs_dagster.execution.client import CompletionRequest, Endpoint, Runner
from rs_dagster.models.registry import Model
from rs_dagster.progress import Progress
from rs_dagster.storage import schemas
from rs_dagster.storage.batches import BatchedUpserts

_COMPLETION_DTYPES = {
    "answer_text": pl.String,
    "reasoning_text": pl.String,
    "finish_reason": pl.String,
    "prompt_tokens": pl.Int64,
    "completion_tokens": pl.Int64,
    "reasoning_tokens": pl.Int64,
    "answer_tokens": pl.Int64,
    "answer_phase": pl.String,
    "error": pl.String,
}


def endpoint_of(model: Model) -> Endpoint:
    entry = model.entry
    return Endpoint(
        base_url=entry.base_url,
        served_model=entry.served_model,
        concurrency=entry.concurrency,
        timeout_s=entry.timeout_s,
        max_retries=entry.max_retries,
    )


def build_execution_assets(model_task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=model_task_parts,
        deps=["prompts"],
        group_name="execution",
        kinds={"openai", "duckdb"},
        description="One row per (item, sample): request_hash, answer and reasoning text, finish_reason, "
        "token usage, latency, attempts, error.",
        automation_condition=dg.AutomationCondition.eager(),
        code_version="1",
        pool="inference",
    )
    def completions(context: dg.AssetExecutionContext, lab: LabResource, scope: EvalScope) -> dg.MaterializeResult:
        keys = keys_of(context)
        model, spec = lab.models()[keys["model"]], lab.task_specs()[keys["task"]]
        selected = selected_scope(spec, model, scope)
        wanted = set(current_cases(lab.warehouse, spec, selected.points, selected.count)["test_case_id"])
        prompts = lab.warehouse.read_partition("prompts", {**keys, "model_version": model.version, "spec_version": spec.version})
        prompts = prompts.filter(pl.col("test_case_id").is_in(wanted)) if not prompts.is_empty() else prompts
        if prompts.height < len(wanted):
            raise InputError(f"{keys['model']} × {keys['task']}: {len(wanted) - prompts.height} selected items have no prompt; materialize prompts first")
        stored = lab.warehouse.read_partition("completions", keys)
        answered = set(stored.filter(pl.col("error").is_null())["request_hash"]) if not stored.is_empty() else set()
        params = model.sampler.request_params()
        endpoint = endpoint_of(model)
        rows, requests, skipped = [], [], 0
        for prompt in prompts.sort("test_case_id").iter_rows(named=True):
            messages = json.loads(prompt["messages_json"])
            for sample in range(selected.suite.repeats):
                key = request_hash(endpoint.base_url, endpoint.served_model, messages, params, sample)
                if key in answered:
                    skipped += 1
                    continue
                requests.append(CompletionRequest(key, messages))
                rows.append({"test_case_id": prompt["test_case_id"], "sample_index": sample, "request_hash": key, "prompt_hash": prompt["prompt_hash"]})

        def row_of(request_row: dict, result) -> dict:
            return {
                **keys,
                **request_row,
                "served_model": endpoint.served_model,
                **{k: v for k, v in vars(result).items() if k != "request_hash"},
                "sampler_json": model.sampler.model_dump_json(),
                "dagster_run_id": context.run.run_id,
            }

        request_rows = {row["request_hash"]: row for row in rows}
        progress = Progress(f"{keys['model']}/{keys['task']} completions", len(requests), context.log.info)
        # Answers are stored as they arrive; errors wait for the partition write (a later run retries them).
        arrivals = BatchedUpserts(lab.warehouse, "completions", schemas.Completions, keys, "request_hash", _COMPLETION_DTYPES)

        def on_result(result) -> None:
            progress.advance()
            if result.error is None and not result.from_cache:
                arrivals.add(row_of(request_rows[result.request_hash], result))

        runner = Runner(endpoint, model.api_key(), params, lab.cache, on_result=on_result, shares=lab.endpoint_shares)
        try:
            results = runner.run(requests)
        finally:
            progress.close()
            arrivals.close()
        errors = Counter(r.error for r in results if r.error)
        if requests and sum(errors.values()) == len(requests):
            reason, count = errors.most_common(1)[0]
            raise EndpointError(f"every request to {endpoint.base_url} failed ({count}x: {reason}); nothing was recorded")

        frame = pl.DataFrame([row_of(row, result) for row, result in zip(rows, results)], schema_overrides=_COMPLETION_DTYPES)
        lab.warehouse.upsert_rows("completions", schemas.Completions, frame, keys, "request_hash")
        fresh = [r for r in results if not r.from_cache]
        return dg.MaterializeResult(
            metadata={
                "rows_added": frame.height,
                "already_stored": skipped,
                "selection": selected.suite.selection.describe(),
                "requests_sent": len(fresh),
                "cache_hits": len(results) - len(fresh),
                "errors": sum(errors.values()),
                "error_reasons": dg.MetadataValue.json(dict(errors.most_common(5))),
                "truncated": sum(r.finish_reason == "length" for r in results),
                "mean_latency_s": round(sum(r.latency_s for r in fresh) / len(fresh), 3) if fresh else 0.0,
                "completion_tokens": sum(r.completion_tokens or 0 for r in results),
                "stored_as_they_arrived": arrivals.stored,
                "rate_limited": runner.limit.rate_limited,
                "lowest_concurrency_limit": int(runner.limit.lowest),
                "processes_sharing_endpoint": runner.most_members,
                "progress": progress.summary(),
            }
        )

    return [completions]
