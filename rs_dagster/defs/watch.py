"""Watch stage: a watched model's nightly canary (rs_dagster.watch), the drift it shows night to night and
the memorisation gap between published and fresh items. Never run by automation: a canary costs requests,
so only the `watched_nights` schedule, `rs eval --fresh-seeds` or a person in the UI asks for one."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from rs_dagster.defs.checks import schema_check_result, schema_check_spec
from rs_dagster.defs.execution import fail_if_every_request_failed
from rs_dagster.defs.metadata import OWNERS, asset_tags, definition_metadata, table_metadata
from rs_dagster.defs.partitions import item_inputs, keys_of
from rs_dagster.defs.resources import LabResource
from rs_dagster.execution.runner import Runner, endpoint_of
from rs_dagster.progress import Progress
from rs_dagster.stats.drift import ALARM_METRICS, night_drift, night_summary
from rs_dagster.stats.memorisation import memorisation_rows
from rs_dagster.storage import schemas
from rs_dagster.tasks.cases import current_cases
from rs_dagster.watch import (
    PUBLISHED,
    canary_points,
    canary_rows,
    canary_scope,
    fresh_cases,
    is_watched_night,
    night_of,
    plan_night,
)

CANARY_IDENTITY = ("night", "item_set", "test_case_id", "request_hash")
DRIFT_CHECK = "no_drift_since_last_night"
WATCH_ASSETS = ["canary", "drift", "memorisation"]
_CANARY = {"canary_answers": schemas.CanaryAnswers}
_DRIFT = {"drift": schemas.Drift, "nights": schemas.Nights}
_MEMORISATION = {"memorisation": schemas.Memorisation}


class NightConfig(dg.Config):
    """The night a canary run asks: `night` (YYYY-MM-DD; empty: today, UTC) enters the request keys; a night
    `eval:<salt>` is `rs eval --fresh-seeds` (unsalted requests). `fresh_seeds` (-1: the model's watch or
    suite) extra item sets are drawn from seeds derived from `salt` (empty: the night)."""

    night: str = ""
    fresh_seeds: int = -1
    salt: str = ""


def build_watch_assets(model_task_parts: dg.PartitionsDefinition) -> list:
    @dg.asset(
        partitions_def=model_task_parts,
        deps=item_inputs(),
        group_name="watch",
        kinds={"openai", "duckdb"},
        description="A watched model's canary, asked afresh on one night (partition: model × task; config: night): the first "
        "`watch.n` items of each point of the model's `watch` scope, once each, with the night in the request key (so every "
        "other cached answer stays cached), plus `watch.fresh_seeds` item sets drawn at the same points from seeds derived "
        "from the night, never the published one. One row per night, item set and item in `canary_answers`, scored by the "
        "task, with what the server reported (model, system_fingerprint). The night's cost is logged and recorded before "
        "anything is sent; a night over `watch.max_requests` is refused. Rows accumulate night after night.",
        code_version="1",
        pool="inference",
        owners=OWNERS,
        tags=asset_tags("watch", "model_task"),
        metadata=definition_metadata(schemas.CanaryAnswers),
        check_specs=[schema_check_spec("canary", _CANARY, model_task_parts)],
    )
    def canary(context: dg.AssetExecutionContext, config: NightConfig, lab: LabResource) -> dg.MaterializeResult:
        keys = keys_of(context)
        model, spec = lab.model_and_spec(keys)
        watch = canary_scope(model)
        night = config.night or night_of(datetime.now(UTC))
        fresh_sets = watch.fresh_seeds if config.fresh_seeds < 0 else config.fresh_seeds
        points = canary_points(spec, watch)
        published = current_cases(lab.warehouse, spec, points, watch.n)
        fresh = fresh_cases(spec, points, watch.n, config.salt or night, fresh_sets, published)
        plan = plan_night(model, spec, published, fresh, night, lab.cache, watch.max_requests)
        assert plan.cost is not None
        cost = f"{keys['model']}/{keys['task']} night {night}: {plan.cost.describe()}"
        context.log.info(f"before sending: {cost}")
        progress = Progress(cost, len(plan.requests), context.log.info)  # the terminal's bar shows the cost before the first request
        runner = Runner(endpoint_of(model), model.api_key(), model.sampler.sent_params(), lab.cache,
                        on_result=lambda result: progress.advance(), shares=lab.endpoint_shares)
        try:
            results = runner.run(plan.requests)
        finally:
            progress.close()
        fail_if_every_request_failed(context, results, model.entry.base_url)
        failed = [r for r in results if r.error]
        frame = canary_rows(plan, results, model, spec, night, context.run.run_id)
        stored = lab.warehouse.table("canary_answers", {**keys, "night": night})
        if not stored.is_empty():  # an error never replaces a stored answer (a pruned cache re-asks a failing endpoint)
            answered = stored.filter(pl.col("error").is_null()).select(CANARY_IDENTITY)
            errors = frame.filter(pl.col("error").is_not_null()).join(answered, on=list(CANARY_IDENTITY), how="anti")
            frame = pl.concat([frame.filter(pl.col("error").is_null()), errors], how="vertical_relaxed")
        lab.warehouse.upsert_rows("canary_answers", schemas.CanaryAnswers, frame, keys, CANARY_IDENTITY)
        sent = [r for r in results if not r.from_cache]
        return dg.MaterializeResult(
            metadata={
                **table_metadata(lab.warehouse, "canary_answers", schemas.CanaryAnswers, keys),
                "night": night,
                "items": frame.height,
                "published_items": frame.filter(pl.col("item_set") == PUBLISHED).height,
                "fresh_item_sets": fresh_sets,
                "planned_requests": plan.cost.requests,
                "planned_prompt_tokens_estimate": plan.cost.prompt_tokens_estimate,
                "planned_completion_tokens_bound": plan.cost.completion_tokens_bound if plan.cost.completion_tokens_bound is not None else -1,
                "requests_sent": len(sent),
                "errors": len(failed),
                "completion_tokens": sum(r.completion_tokens or 0 for r in sent),
                "seconds_in_flight": round(sum(r.latency_s for r in sent), 3),
                "fingerprints": ", ".join(sorted({r.system_fingerprint for r in results if r.system_fingerprint})) or "none reported",
                "progress": progress.summary(),
            },
            check_results=[schema_check_result(lab.warehouse, _CANARY, keys)],
        )

    @dg.asset(
        partitions_def=model_task_parts,
        deps=["canary"],
        group_name="watch",
        kinds={"python", "duckdb"},
        description="Each watched night compared with the previous night and with the last `watch.baseline_nights` "
        "(partition: model × task; table `drift`, the nights as rows; `nights`: one summary row per night): accuracy by a "
        "paired exact test on the shared items (McNemar against one night, its exact generalisation against several), "
        "output tokens and latency by a rank test, per task and per point, Benjamini–Hochberg over the night's tests; and "
        "any change of the model or system_fingerprint the server reports. The check `no_drift_since_last_night` warns "
        f"on the latest night's alarms (metrics {', '.join(ALARM_METRICS)} at q < watch.alpha, or a server change; latency "
        "is reported, never alarmed: it moves with load). Runs after `canary` in the `watch` job.",
        code_version="1",
        owners=OWNERS,
        tags=asset_tags("watch", "model_task"),
        metadata=definition_metadata(schemas.Drift, nights=schemas.Nights),
        check_specs=[
            schema_check_spec("drift", _DRIFT, model_task_parts),
            dg.AssetCheckSpec(DRIFT_CHECK, asset="drift", partitions_def=model_task_parts,
                              description="Warns when the latest watched night moved: which task and points, by how much, with "
                              "intervals and q-values, or which reported model/fingerprint changed. Its false-alarm rate on a "
                              "stable model is stated in the README (measured by bench/drift_false_alarms.py)."),
        ],
    )
    def drift(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        keys = keys_of(context)
        watch = canary_scope(lab.model(keys["model"]))
        answers = lab.warehouse.table("canary_answers", keys)
        nights = sorted(n for n in (answers["night"].unique().to_list() if not answers.is_empty() else []) if is_watched_night(n))
        answers = answers.filter(pl.col("night").is_in(nights)) if nights else answers
        run = {**keys, "dagster_run_id": context.run.run_id}
        tests = [night_drift(answers, night, watch.baseline_nights, watch.alpha) for night in nights]
        rows = pl.concat([t for t in tests if not t.is_empty()], how="vertical_relaxed") if any(not t.is_empty() for t in tests) else pl.DataFrame()
        drift_frame = rows.with_columns(**{k: pl.lit(v) for k, v in run.items()}) if not rows.is_empty() else rows
        summary = night_summary(answers, rows).with_columns(**{k: pl.lit(v) for k, v in keys.items()}) if nights else pl.DataFrame()
        if not drift_frame.is_empty():
            lab.warehouse.replace_partition("drift", schemas.Drift, drift_frame, keys)
        if not summary.is_empty():
            lab.warehouse.replace_partition("nights", schemas.Nights, summary, keys)
        latest = nights[-1] if nights else None
        alarms = drift_frame.filter((pl.col("night") == latest) & pl.col("alarm")) if latest and not drift_frame.is_empty() else pl.DataFrame()
        moved = "; ".join(f"{keys['task']} {r['scope']} {r['comparison']}: {r['detail']}" for r in alarms.iter_rows(named=True)) if not alarms.is_empty() else ""
        if moved:
            context.log.warning(f"{keys['model']} × {keys['task']}, night {latest}: {moved}")
        return dg.MaterializeResult(
            metadata={
                **(table_metadata(lab.warehouse, "drift", schemas.Drift, keys) if not drift_frame.is_empty() else {}),
                "nights": len(nights),
                "latest_night": latest or "none",
                "alarms_latest_night": alarms.height,
            },
            check_results=[
                schema_check_result(lab.warehouse, _DRIFT, keys),
                dg.AssetCheckResult(
                    check_name=DRIFT_CHECK, asset_key="drift", passed=not moved, severity=dg.AssetCheckSeverity.WARN,
                    description=(f"night {latest}: {moved}" if moved else f"night {latest}: nothing moved" if latest else "no watched night yet"),
                    metadata={"night": latest or "none", "alarms": alarms.height},
                ),
            ],
        )

    @dg.asset(
        partitions_def=model_task_parts,
        deps=["canary"],
        group_name="watch",
        kinds={"python", "duckdb"},
        description="The memorisation gap (partition: model × task; table `memorisation`): per night and tier, accuracy on "
        "the published items minus accuracy on fresh items drawn at the same points (pooled over the fresh sets), "
        "stratified by point, with a 95% interval (Agresti–Caffo per point); flagged when the interval excludes 0. "
        "Only nights with fresh items (`watch.fresh_seeds`, `rs eval --fresh-seeds`) have rows.",
        code_version="1",
        owners=OWNERS,
        tags=asset_tags("watch", "model_task"),
        metadata=definition_metadata(schemas.Memorisation),
        check_specs=[schema_check_spec("memorisation", _MEMORISATION, model_task_parts)],
    )
    def memorisation(context: dg.AssetExecutionContext, lab: LabResource) -> dg.MaterializeResult:
        keys = keys_of(context)
        answers = lab.warehouse.table("canary_answers", keys)
        rows = memorisation_rows(answers) if not answers.is_empty() else pl.DataFrame()
        if not rows.is_empty():
            frame = rows.with_columns(**{k: pl.lit(v) for k, v in {**keys, "dagster_run_id": context.run.run_id}.items()})
            lab.warehouse.replace_partition("memorisation", schemas.Memorisation, frame, keys)
        flagged = rows.filter(pl.col("flagged")) if not rows.is_empty() else rows
        return dg.MaterializeResult(
            metadata={
                "rows": rows.height,
                "flagged": flagged.height,
                "gaps": dg.MetadataValue.json([
                    {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k in ("night", "tier", "gap", "gap_low", "gap_high", "flagged")}
                    for r in rows.iter_rows(named=True)
                ]) if not rows.is_empty() else dg.MetadataValue.json([]),
            },
            check_results=[schema_check_result(lab.warehouse, _MEMORISATION, keys)],
        )

    return [canary, drift, memorisation]
