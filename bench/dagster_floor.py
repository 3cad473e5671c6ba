"""What one Dagster run per partition costs before any of rs's own work: the floor under issue 13's goals.

Runs jobs shaped like the lab's (the `evaluation` job's 6 chained model|task assets, `refresh_tasks`' 2 task
assets, each with a blocking partitioned check and a little metadata) whose assets do nothing, in-process,
on an instance configured like a lab's (Settings.ensure_dirs: rs's pooled SQLite event log, the run queue),
as `rs eval` runs them. Prints the time per run and what `rs eval` of 13 tasks x 3 models would spend in
Dagster alone, serially, next to the same partitions in one run per job over a partition range (the
single-run backfill shape, which gives up per-partition metadata and checks). Compare with the `rs eval`
figures of bench/orchestration.py.

    python bench/dagster_floor.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from rs_dagster.orchestrate import QUIET_LOGS
from rs_dagster.settings import Settings

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

MODELS = ["a", "b", "c"]
TASKS = [f"task{i:02d}" for i in range(13)]
EVALUATION = ["prompts", "completions", "scored_results", "points", "compression", "hazard"]
REFRESH = ["task_specs", "test_cases"]
STEP_PER_ASSET = "one run per partition, a step per asset"
"""The lab's shape (the `evaluation` job): the floor issue 26's goals compare with."""
MODEL_TASK = dg.MultiPartitionsDefinition({"model": dg.StaticPartitionsDefinition(MODELS), "task": dg.StaticPartitionsDefinition(TASKS)})
TASK = dg.StaticPartitionsDefinition(TASKS)


def chain(names: list[str], partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    """Assets that depend on one another in order and do nothing but report a row count and a passed check."""

    def build(name: str, upstream: str | None) -> dg.AssetsDefinition:
        @dg.asset(
            name=name,
            partitions_def=partitions,
            deps=[upstream] if upstream else None,
            check_specs=[dg.AssetCheckSpec("stored_rows_match_schema", asset=name, blocking=True, partitions_def=partitions)],
        )
        def nothing() -> dg.MaterializeResult:
            return dg.MaterializeResult(
                metadata={"dagster/row_count": 4, "dagster/partition_row_count": 4},
                check_results=[dg.AssetCheckResult(check_name="stored_rows_match_schema", passed=True)],
            )

        return nothing

    return [build(name, names[i - 1] if i else None) for i, name in enumerate(names)]


def one_step(names: list[str], partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The same assets as `chain`, as one subsettable multi_asset: one step per run, each asset still
    materialized per partition with its own metadata and check (issue 26's candidate)."""

    @dg.multi_asset(
        name="evaluation_chain",
        specs=[dg.AssetSpec(name, partitions_def=partitions, deps=[names[i - 1]] if i else None, skippable=True) for i, name in enumerate(names)],
        check_specs=[dg.AssetCheckSpec("stored_rows_match_schema", asset=name, blocking=True, partitions_def=partitions) for name in names],
        can_subset=True,
    )
    def nothing(context):  # unannotated: Dagster refuses a string annotation (postponed annotations)
        for key in (dg.AssetKey(name) for name in names if dg.AssetKey(name) in context.selected_asset_keys):  # in dependency order
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={"dagster/row_count": 4, "dagster/partition_row_count": 4},
                check_results=[dg.AssetCheckResult(asset_key=key, check_name="stored_rows_match_schema", passed=True)],
            )

    return nothing


def instance_like_a_lab(root: Path) -> dg.DagsterInstance:
    settings = Settings(home=root, inputs=root / "inputs", db_path=root / "rs.duckdb", dagster_home=root / "dagster")
    settings.ensure_dirs()
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    return dg.DagsterInstance.get()


def timed(runs: list[tuple[dg.JobDefinition, dict]], instance: dg.DagsterInstance) -> float:
    started = time.perf_counter()
    for job, kwargs in runs:
        result = job.execute_in_process(instance=instance, run_config=QUIET_LOGS, **kwargs)
        assert result.success
    return time.perf_counter() - started


def plans(evaluation: list[dg.AssetsDefinition]) -> tuple[list[tuple[dg.JobDefinition, dict]], list[tuple[dg.JobDefinition, dict]]]:
    """The runs of 13 x 3 with the evaluation assets given: one run per partition, and one run per job over the range."""
    defs = dg.Definitions(
        assets=[*evaluation, *chain(REFRESH, TASK)],
        jobs=[dg.define_asset_job("evaluation", selection=EVALUATION), dg.define_asset_job("refresh_tasks", selection=REFRESH)],
    )
    evaluate, refresh = defs.resolve_job_def("evaluation"), defs.resolve_job_def("refresh_tasks")
    per_partition = [(refresh, {"partition_key": t}) for t in TASKS] + [(evaluate, {"partition_key": f"{m}|{t}"}) for m in MODELS for t in TASKS]
    ranged = [
        (refresh, {"tags": {ASSET_PARTITION_RANGE_START_TAG: TASKS[0], ASSET_PARTITION_RANGE_END_TAG: TASKS[-1]}}),
        (evaluate, {"tags": {ASSET_PARTITION_RANGE_START_TAG: f"{MODELS[0]}|{TASKS[0]}", ASSET_PARTITION_RANGE_END_TAG: f"{MODELS[-1]}|{TASKS[-1]}"}}),
    ]
    return per_partition, ranged


def floor_per_run(repeat: int) -> dict[str, float]:
    """Seconds per run (medians of `repeat`) of each shape; printed as it goes."""
    chained, ranged = plans(chain(EVALUATION, MODEL_TASK))
    one_step_runs, _ = plans([one_step(EVALUATION, MODEL_TASK)])
    figures = {}
    print(f"13 tasks x 3 models, assets doing nothing, medians of {repeat}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}:")
    for name, runs in ((STEP_PER_ASSET, chained), ("one run per partition, one multi_asset step", one_step_runs)):
        with tempfile.TemporaryDirectory() as root:
            instance = instance_like_a_lab(Path(root))
            timed(runs[:2], instance)  # warm: imports, the event log's template file
            seconds = statistics.median(timed(runs, instance) for _ in range(repeat))
        figures[name] = seconds / len(runs)
        print(f"  {name} ({len(runs)} runs: 13 refresh_tasks of 2 assets, 39 evaluation of 6): {seconds:.1f} s, "
              f"{seconds / len(runs) * 1000:.0f} ms a run  (load {os.getloadavg()[0]:.2f})")
    with tempfile.TemporaryDirectory() as root:
        instance = instance_like_a_lab(Path(root))
        seconds = statistics.median(timed(ranged, instance) for _ in range(repeat))
    print(f"  one run per job over the partition range (2 runs): {seconds:.2f} s  (load {os.getloadavg()[0]:.2f})")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    floor_per_run(parser.parse_args().repeat)


if __name__ == "__main__":
    main()
