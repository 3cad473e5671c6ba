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

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.generation import current_cases
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import keys_of
from rs_dagster.defs.prompting import selected_scope
from rs_dagster.defs.resources import EvalScope, LabResource
from rs_dagster.errors import EndpointError, InputError
from rs_dagster.execution.budget import thinking_budget_of
from rs_dagster.execution.cache import request_hash
from rs_dagster.execution.rounds import AdaptiveRounds
from rs_dagster.execution.runner import CompletionRequest, Endpoint, Runner
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


COMPLETION_IDENTITY = ("test_case_id", "request_hash")


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
        description="What the model answered (partition: model × task), one row per (item, sample) (key: "
        "test_case_id, request_hash; request_hash is also the response-cache key): answer and reasoning text, "
        "finish_reason, token usage, latency, attempts, error. The only asset that calls the model's endpoint. Rows "
        "accumulate: a stored answer is never requested again nor rewritten; error rows are retried by the next run. "
        "Runs in the `evaluation` job after prompts.",
        automation_condition=dg.AutomationCondition.eager(),
        code_version="1",
        pool="inference",
        owners=OWNERS,
        tags=asset_tags("execution", "model_task"),
        metadata=definition_metadata(schemas.Completions),
        check_specs=[schema_check_spec("completions", {"completions": schemas.Completions}, model_task_parts)],
    )
    def completions(context: dg.AssetExecutionContext, lab: LabResource, scope: EvalScope) -> dg.MaterializeResult:
        keys = keys_of(context)
        model, spec = lab.models()[keys["model"]], lab.task_specs()[keys["task"]]
        scopes = lab.warehouse.read_partition("evaluated_scopes", keys)
        selected = selected_scope(spec, model, scope, [] if scopes.is_empty() else scopes["scope_json"].to_list())
        cases = current_cases(lab.warehouse, spec, selected.points, selected.max_items)
        prompts = lab.warehouse.read_partition("prompts", {**keys, "model_version": model.version, "spec_version": spec.version})
        if prompts.is_empty() or cases.join(prompts, on="test_case_id", how="anti").height:
            raise InputError(f"{keys['model']} × {keys['task']}: selected items have no prompt for the current versions; materialize prompts first")
        items = cases.join(prompts.select("test_case_id", "prompt_hash", "messages_json"), on="test_case_id")
        stored = lab.warehouse.read_partition("completions", keys)
        answered = {} if stored.is_empty() else {
            (row["test_case_id"], row["request_hash"]): row for row in stored.filter(pl.col("error").is_null()).iter_rows(named=True)
        }
        params = model.sampler.request_params()
        endpoint = endpoint_of(model)
        progress = Progress(f"{keys['model']}/{keys['task']} completions", 0, context.log.info)
        # Answers are stored as they arrive; errors wait for the partition write (a later run retries them).
        arrivals = BatchedUpserts(lab.warehouse, "completions", schemas.Completions, keys, COMPLETION_IDENTITY, _COMPLETION_DTYPES)
        waiting: dict[str, list[tuple[dict, dict]]] = {}  # request_hash -> (case, row) of every item it answers

        def row_of(request_row: dict, result) -> dict:
            return {
                **keys,
                **request_row,
                "served_model": endpoint.served_model,
                **{k: v for k, v in vars(result).items() if k != "request_hash"},
                "sampler_json": model.sampler.model_dump_json(),
                "dagster_run_id": context.run.run_id,
            }

        def on_result(result) -> None:
            progress.advance()
            if result.error is None and not result.from_cache:
                for _, row in waiting[result.request_hash]:
                    arrivals.add(row_of(row, result))

        budget = thinking_budget_of(model.sampler, model.entry.tokenizer, f"models.{model.name}")
        runner = Runner(
            endpoint, model.api_key(), model.sampler.sent_params(), lab.cache,
            on_result=on_result, shares=lab.endpoint_shares, budget=budget,
        )
        rounds = AdaptiveRounds(selected.levels, selected.repeats)
        sent_rows, results, skipped = [], [], 0
        try:
            while batch := rounds.next_round():
                requests, waiting = [], {}
                for case in items.join(pl.DataFrame(batch, schema={"point_id": pl.String, "item_index": pl.Int64}), on=["point_id", "item_index"]).iter_rows(named=True):
                    messages = json.loads(case["messages_json"])
                    for sample in range(selected.repeats):
                        key = request_hash(endpoint.base_url, endpoint.served_model, messages, params, sample)
                        if (case["test_case_id"], key) in answered:
                            skipped += 1
                            rounds.record(case, answered[case["test_case_id"], key], spec.task)
                            continue
                        if key not in waiting:  # the same question at two points is asked once
                            requests.append(CompletionRequest(key, messages))
                        row = {"test_case_id": case["test_case_id"], "sample_index": sample, "request_hash": key, "prompt_hash": case["prompt_hash"]}
                        waiting.setdefault(key, []).append((case, row))
                progress.grow(len(requests))
                round_results = runner.run(requests)
                for result in round_results:
                    for case, row in waiting[result.request_hash]:
                        rounds.record(case, vars(result), spec.task)
                        sent_rows.append(row_of(row, result))
                results += round_results
        finally:
            progress.close()
            arrivals.close()
        errors = Counter(r.error for r in results if r.error)
        if results and sum(errors.values()) == len(results):
            reason, count = errors.most_common(1)[0]
            raise EndpointError(f"every request to {endpoint.base_url} failed ({count}x: {reason}); nothing was recorded")

        frame = pl.DataFrame(sent_rows, schema_overrides=_COMPLETION_DTYPES)
        lab.warehouse.upsert_rows("completions", schemas.Completions, frame, keys, COMPLETION_IDENTITY)
        fresh = [r for r in results if not r.from_cache]
        return dg.MaterializeResult(
            metadata={
                **table_metadata(lab.warehouse, "completions", schemas.Completions, keys),
                "rows_added": frame.height,
                "already_stored": skipped,
                "scope": selected.describe(),
                "rounds": rounds.rounds,
                "points_by_stop_reason": dg.MetadataValue.json(rounds.stop_reasons()),
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
            },
            check_results=[schema_check_result(lab.warehouse, {"completions": schemas.Completions}, keys)],
        )

    return [completions]
