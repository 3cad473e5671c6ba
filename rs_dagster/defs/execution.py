"""Execution stage: one completion per (item, sample) of the evaluation's scope from the model's
endpoint, through the response cache. Completions accumulate: a request whose answer is already
stored is not sent again and its row is left as it is; new answers are added, and nothing is removed
(a narrower or repeated scope only adds). A run without errors records every request its rounds needed
(scope_coverage): `rs eval` and `rs status` read from it whether the selection is still complete. Errors after the retry policy are stored as error rows,
never as answers, and are retried by the next run; if every request failed the run fails with the
endpoint's reason and what was stored before is untouched. Stopped (Ctrl-C, rs_dagster.interrupts), it sends
no new request, stores the answers in flight as they land and fails the run, saying how many it stored: its
selection is not complete, and the next run sends only what is missing."""

from collections import Counter

import dagster as dg
import polars as pl

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import AFTER_NEW_VERSION_UPSTREAM, keys_of
from rs_dagster.defs.resources import EvalScope, LabResource
from rs_dagster.errors import EndpointError, InputError
from rs_dagster.execution.budget import thinking_budget_of
from rs_dagster.execution.completions import (
    COMPLETION_DTYPES,
    COMPLETION_IDENTITY,
    Round,
    answered_requests,
    completion_row,
    round_requests,
)
from rs_dagster.execution.responses import CompletionResult
from rs_dagster.execution.rounds import AdaptiveRounds
from rs_dagster.execution.runner import Runner, endpoint_of
from rs_dagster.interrupts import Interrupted, count_stored
from rs_dagster.progress import Progress
from rs_dagster.prompting.scope import new_scope_records, partition_scope, selection_id
from rs_dagster.storage import schemas
from rs_dagster.storage.batches import BatchedUpserts
from rs_dagster.storage.fingerprints import record_coverage
from rs_dagster.tasks.cases import current_cases

_TABLES = {"completions": schemas.Completions, "evaluated_scopes": schemas.EvaluatedScopes}


def fail_if_every_request_failed(context: dg.AssetExecutionContext, results: list[CompletionResult], base_url: str) -> None:
    """Fail the run, tagged `rs/endpoint_failed` with the reason (the run queue backs off a model whose runs keep
    failing so), when every one of `results` is an error; nothing is recorded then."""
    errors = Counter(r.error for r in results if r.error)
    if not results or sum(errors.values()) < len(results):
        return
    reason, count = errors.most_common(1)[0]
    from rs_dagster.run_queue import ENDPOINT_FAILED_TAG

    try:
        context.instance.add_run_tags(context.run.run_id, {ENDPOINT_FAILED_TAG: f"{count} of {len(results)} requests: {reason}"[:500]})
    except Exception as exc:  # the failure below is what matters
        context.log.warning(f"could not tag the run {ENDPOINT_FAILED_TAG}: {exc}")
    raise EndpointError(f"every request to {base_url} failed ({count}x: {reason}); nothing was recorded")


def build_execution_assets(model_task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=model_task_parts,
        deps=["prompts"],
        group_name="execution",
        kinds={"openai", "duckdb"},
        description="What the model answered (partition: model × task), one row per (item, sample) (key: "
        "test_case_id, request_hash; request_hash is also the response-cache key): answer and reasoning text, "
        "finish_reason, token usage, latency, attempts, error. The only asset that calls the model's endpoint. Once an "
        "answer is stored it records the scope in `evaluated_scopes` (what runs without a scope of their own replay, "
        "and what automation re-runs after an edit); a run whose every request failed records nothing. Rows "
        "accumulate: a stored answer is never requested again nor rewritten; error rows are retried by the next run. "
        "Runs in the `evaluation` job after prompts.",
        automation_condition=AFTER_NEW_VERSION_UPSTREAM,
        code_version="1",
        pool="inference",
        owners=OWNERS,
        tags=asset_tags("execution", "model_task"),
        metadata=definition_metadata(schemas.Completions, evaluated_scopes=schemas.EvaluatedScopes),
        check_specs=[schema_check_spec("completions", _TABLES, model_task_parts)],
    )
    def completions(context: dg.AssetExecutionContext, lab: LabResource, scope: EvalScope) -> dg.MaterializeResult:
        keys = keys_of(context)
        model, spec = lab.model_and_spec(keys)
        selected, stored_scopes = partition_scope(lab.warehouse, keys, spec, model, scope)
        cases = current_cases(lab.warehouse, spec, selected.points, selected.max_items)
        prompts = lab.warehouse.table("prompts", {**keys, "model_version": model.version, "spec_version": spec.version})
        if prompts.is_empty() or cases.join(prompts, on="test_case_id", how="anti").height:
            raise InputError(f"{keys['model']} × {keys['task']}: selected items have no prompt for the current versions; materialize prompts first")
        items = cases.join(prompts.select("test_case_id", "prompt_hash", "messages_json"), on="test_case_id")
        answered = answered_requests(lab.warehouse.table("completions", keys))
        params = model.sampler.request_params()
        endpoint = endpoint_of(model)
        progress = Progress(f"{keys['model']}/{keys['task']} completions", 0, context.log.info)
        # Answers are stored as they arrive; errors wait for the partition write (a later run retries them).
        arrivals = BatchedUpserts(lab.warehouse, "completions", schemas.Completions, keys, COMPLETION_IDENTITY, COMPLETION_DTYPES,
                                  on_flush=count_stored)
        asked = Round()

        def on_result(result) -> None:
            progress.advance()
            if result.error is None and not result.from_cache:
                for _, row in asked.waiting[result.request_hash]:
                    arrivals.add(completion_row(keys, row, result, model, context.run.run_id))

        budget = thinking_budget_of(model.sampler, model.entry.tokenizer, f"models.{model.name}")
        runner = Runner(
            endpoint, model.api_key(), model.sampler.sent_params(), lab.cache,
            on_result=on_result, shares=lab.endpoint_shares, budget=budget,
        )
        rounds = AdaptiveRounds(selected.levels, selected.repeats)
        sent_rows, results, needed, skipped = [], [], [], 0
        interrupted = False
        try:
            while batch := rounds.next_round():
                asked = round_requests(items, batch, selected.repeats, endpoint, params, answered, rounds, spec.task)
                skipped += asked.skipped
                needed += asked.needed
                progress.grow(len(asked.requests))
                round_results = runner.run(asked.requests)
                for result in round_results:
                    for case, row in asked.waiting[result.request_hash]:
                        rounds.record(case, vars(result), spec.task)
                        sent_rows.append(completion_row(keys, row, result, model, context.run.run_id))
                results += round_results
        except Interrupted:  # the answers in flight have landed; nothing more is sent
            interrupted = True
        finally:
            progress.close()
            arrivals.close()
        if interrupted:  # a failed run: its selection is not recorded as complete
            raise dg.Failure(
                f"stopped (Ctrl-C or SIGTERM): no request was sent after it; answers that arrived in this run are stored "
                f"({arrivals.stored}), and the next run sends only the requests still missing",
                metadata={"stored_as_they_arrived": arrivals.stored, "already_stored": skipped}, allow_retries=False,
            )
        errors = Counter(r.error for r in results if r.error)
        fail_if_every_request_failed(context, results, endpoint.base_url)

        frame = pl.DataFrame(sent_rows, schema_overrides=COMPLETION_DTYPES)
        lab.warehouse.upsert_rows("completions", schemas.Completions, frame, keys, COMPLETION_IDENTITY)
        # Evaluated: at least one answer of the selection is stored (a run whose every request failed raised above).
        scope_records = new_scope_records(keys, selected, stored_scopes, context.run.run_id)
        lab.warehouse.upsert_rows("evaluated_scopes", schemas.EvaluatedScopes, scope_records, keys, "scope_id")
        if not errors:  # every request the rounds needed is answered: the selection is complete
            record_coverage(lab.warehouse, keys, selection_id(selected, model, spec), needed)
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
            check_results=[schema_check_result(lab.warehouse, _TABLES, keys)],
        )

    return [completions]
