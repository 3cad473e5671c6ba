"""The cluster deployment of deploy/ (issue 14), on one machine, with real servers on 127.0.0.1: PostgreSQL
holds the Dagster instance (deploy/dagster.yaml: queued runs, one per endpoint, run retries), Redis is the
Celery broker, and `dagster-webserver`, `dagster-daemon` and three `dagster-celery worker` processes (one
pool process each) run the steps; RS_EXECUTOR=celery selects the executor. Each model has its own
scripted server with latency, so the runs of different models (different `rs/endpoint` tags) proceed side
by side while one model's runs wait their turn. Every process writes the shared DuckLake warehouse
(RS_WAREHOUSE: catalog in a database of the same PostgreSQL, Parquet files in a folder), and the tables
are compared with a single-process `rs eval` on the embedded DuckDB file.

The nightly schedule is evaluated by its code location (GraphQL `scheduleDryRun`, what the UI's "Test
schedule" does) and its run requests are launched with their tags and run config (`launchRun`, as the
UI's "Launch all" does); the queue and the daemon start them, as on a night. The daemon's own tick is
not waited for (02:00 UTC). Task and model definitions are refreshed in this process with
`execute_in_process` on the same Postgres instance, with RS_EXECUTOR=celery set: in-process runs ignore
the executor, as `rs eval` does.

The grid here is 3 models × 2 tasks (the easy tier, 2 samples per point) to keep the module near 4
minutes on 2 cores; bench/cluster.py runs the full 3 × 13.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from helpers import GOLDEN, Oracle, make_lab, scripted_model

from rs_dagster.definitions import build_definitions, executor_from_env
from rs_dagster.defs.partitions import register_partitions
from rs_dagster.defs.resources import EvalScope
from rs_dagster.orchestrate import QUIET_LOGS, evaluate
from rs_dagster.storage.shared import WAREHOUSE_DATA_ENV, WAREHOUSE_ENV, parse_warehouse
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.cluster import Cluster, local_cluster
from rs_dagster.testing.postgres import postgres_available
from rs_dagster.testing.redis import redis_available
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

needs_servers = pytest.mark.skipif(not (postgres_available() and redis_available()), reason="needs PostgreSQL and redis-server")

MODELS = ["alpha", "beta", "gamma"]
TASKS = ("arithmetic", "boolean")
SUITE = {"tasks": list(TASKS), "tiers": ["easy"], "precision": 2}
VICTIM, VICTIM_TASK, VICTIM_SAMPLES = "victim", "boolean", 12
WORKERS = 3
LATENCY_S = 0.05
VOLATILE = {"dagster_run_id", "latency_s", "queue_wait_s", "run_id", "from_cache", "attempts"}
"""Columns that differ between two evaluations of the same scope (who ran it, how long, whether cached)."""


def _table(warehouse: Warehouse, name: str) -> pl.DataFrame:
    frame = warehouse.query(f'SELECT * FROM "{name}"')
    frame = frame.drop([c for c in frame.columns if c in VOLATILE or c.endswith("_at")])
    return frame.sort(frame.columns, nulls_last=True)


def _with_latency(oracle: Oracle, delay_s: float):
    """Right (in the requested form) for about 70% of the items of any task, declined otherwise; after `delay_s`."""

    def reply(body: dict) -> Reply:
        known = oracle.lookup(body)
        if ((known.index + 0.5) * GOLDEN) % 1.0 < 0.7:
            return Reply(content=f"Working it through.\n\nANSWER: {known.answer}", delay_s=delay_s)
        return Reply(content="I am not able to work this out.", delay_s=delay_s)

    return reply


@dataclasses.dataclass
class Lab:
    cluster: Cluster
    instance: dg.DagsterInstance
    servers: dict[str, ScriptedServer]
    warehouse: Warehouse
    requests: list[dict]
    reference: Path
    started: float


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    started = time.monotonic()
    root = tmp_path_factory.mktemp("cluster")
    oracle = Oracle(make_lab(root / "probe", {}, TASKS), items_per_point=VICTIM_SAMPLES)
    names = [*MODELS, VICTIM]
    delays = {name: LATENCY_S for name in MODELS} | {VICTIM: 0.8}
    with (
        ScriptedServer(_with_latency(oracle, delays[names[0]])) as a, ScriptedServer(_with_latency(oracle, delays[names[1]])) as b,
        ScriptedServer(_with_latency(oracle, delays[names[2]])) as c, ScriptedServer(_with_latency(oracle, delays[names[3]])) as d,
    ):
        servers = dict(zip(names, (a, b, c, d)))
        models = {name: {**scripted_model(servers[name].base_url), "suite": SUITE} for name in MODELS}
        models[VICTIM] = {
            **scripted_model(d.base_url, concurrency=2),
            "suite": {"tasks": [VICTIM_TASK], "tiers": ["easy"], "precision": VICTIM_SAMPLES},
        }
        settings = make_lab(root / "lab", models, TASKS)
        with local_cluster(settings, workers=WORKERS, logs=root / "logs", lake=root / "lake") as cluster, pytest.MonkeyPatch.context() as patch:
            for key in ("RS_DAGSTER_PG_URL", "RS_EXECUTOR", "RS_CELERY_BROKER", "RS_CELERY_BACKEND", "DAGSTER_HOME", WAREHOUSE_ENV, WAREHOUSE_DATA_ENV):
                patch.setenv(key, cluster.env[key])
            # The cluster's warehouse is the shared DuckLake: these in-process runs and the checks read it too.
            settings = dataclasses.replace(settings, warehouse=parse_warehouse(cluster.env[WAREHOUSE_ENV], cluster.env[WAREHOUSE_DATA_ENV]))
            with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
                defs = build_definitions(settings, executor=executor_from_env())
                assert defs.resolve_job_def("evaluation").executor_def.name == "celery"
                register_partitions(instance, names, TASKS)
                for job, keys in (("refresh_tasks", TASKS), ("refresh_models", names)):
                    for key in keys:  # in-process on the Postgres instance: the executor is ignored, as by `rs eval`
                        assert defs.resolve_job_def(job).execute_in_process(run_config=QUIET_LOGS, instance=instance, partition_key=key).success
                requests = cluster.schedule_run_requests("nightly_evaluation")
                yield Lab(cluster, instance, servers, Warehouse.from_settings(settings), requests, root / "reference", started)


def _step_spans(instance: dg.DagsterInstance, run_ids: list[str]) -> tuple[list[tuple[int, float, float, str]], set[int], set[str]]:
    """From the instance's event log: (pid, start, end, step) of every step that succeeded in the runs, the
    pids of the run workers (RUN_START) and the names of the Celery workers that took the steps."""
    spans, run_workers, celery_workers = [], set(), set()
    for run_id in run_ids:
        starts: dict[str, tuple[int, float]] = {}
        for record in instance.all_logs(run_id):
            event = record.dagster_event
            if event is not None and event.event_type == dg.DagsterEventType.RUN_START:
                run_workers.add(event.pid or 0)
            if event is None or event.step_key is None:
                continue
            if event.event_type == dg.DagsterEventType.ENGINE_EVENT and "Celery worker" in event.engine_event_data.metadata:
                celery_workers.add(str(event.engine_event_data.metadata["Celery worker"].value))
            elif event.event_type == dg.DagsterEventType.STEP_START:
                starts[event.step_key] = (event.pid or 0, record.timestamp)
            elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                pid, start = starts[event.step_key]
                spans.append((pid, start, record.timestamp, f"{run_id[:8]}:{event.step_key}"))
    return spans, run_workers, celery_workers


def _failures(instance: dg.DagsterInstance, runs: list[dict]) -> str:
    """The step failures and engine errors of the failed runs, for the assertion message."""
    lines = []
    for run in runs:
        if run["status"] == "SUCCESS":
            continue
        for record in instance.all_logs(run["runId"]):
            event = record.dagster_event
            if event and event.event_type in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.ENGINE_EVENT):
                error = getattr(event.event_specific_data, "error", None)
                if error or event.event_type != dg.DagsterEventType.ENGINE_EVENT:
                    lines.append(f"{run['runId'][:8]} {event.step_key}: {event.message} {error.to_string()[-1500:] if error else ''}")
    return "\n".join(lines)


@needs_servers
def test_the_nightly_schedule_runs_across_celery_workers_and_matches_a_single_process_run(lab):
    requests = [r for r in lab.requests if r["tags"]["dagster/partition/model"] in MODELS]
    assert sorted(r["tags"]["dagster/partition"] for r in requests) == sorted(f"{m}|{t}" for m in MODELS for t in TASKS)
    assert all(r["tags"]["dagster/max_retries"] == "2" and r["tags"]["dagster/schedule_name"] == "nightly_evaluation" for r in requests)
    started = time.monotonic()
    print(f"\ncluster up and definitions refreshed after {started - lab.started:.0f} s")
    run_ids = [lab.cluster.launch_run_request(r) for r in requests]
    runs = lab.cluster.wait_for_runs(run_ids, timeout_s=420)
    elapsed = time.monotonic() - started
    assert [r["status"] for r in runs] == ["SUCCESS"] * len(runs), _failures(lab.instance, runs)
    print(f"\n{len(runs)} partitions on {WORKERS} Celery workers in {elapsed:.0f} s ({60 * len(runs) / elapsed:.1f} partitions/min)")

    # One run per endpoint at a time (the queue's tag limit): runs of one model never overlap.
    for model in MODELS:
        spans = sorted((r["startTime"], r["endTime"]) for r in runs if r["tags"]["dagster/partition/model"] == model)
        assert all(later[0] >= earlier[1] - 0.5 for earlier, later in itertools.pairwise(spans)), (model, spans)

    # The steps ran in the Celery workers' pool processes (not in the run workers, not here), at the same
    # time in at least two of them.
    spans, run_workers, celery_workers = _step_spans(lab.instance, run_ids)
    assert len(spans) == len(run_ids) * 6
    pids = {pid for pid, *_ in spans}
    assert 2 <= len(pids) <= WORKERS and not pids & run_workers and os.getpid() not in pids, (pids, run_workers)
    assert 2 <= len(celery_workers) <= WORKERS and all(name.startswith("worker") for name in celery_workers), celery_workers
    overlapping = {
        frozenset((a[0], b[0])) for a, b in itertools.combinations(spans, 2) if a[0] != b[0] and a[1] < b[2] and b[1] < a[2]
    }
    assert overlapping, "no two steps ran at once on different workers"
    print(f"steps on {len(pids)} worker processes ({', '.join(sorted(celery_workers))}); pairs of them busy at once: {len(overlapping)}")

    # The report over the cluster's rows, then the same models, tasks and scope in one process (`rs eval`'s path).
    print(f"report after {time.monotonic() - started:.0f} s")
    [report] = lab.cluster.wait_for_runs([lab.cluster.launch("refresh_report", {})], timeout_s=240)
    assert report["status"] == "SUCCESS"
    settings = make_lab(lab.reference, {name: {**scripted_model(lab.servers[name].base_url), "suite": SUITE} for name in MODELS}, TASKS)
    with dg.instance_for_test() as instance:
        evaluate(settings, instance, MODELS, scope=EvalScope(use_suite=True))
    single = Warehouse(settings.db_path)
    print(f"single-process reference after {time.monotonic() - started:.0f} s")

    completions = lab.warehouse.query("SELECT model, task, test_case_id, request_hash, count(*) AS n FROM completions "
                                      f"WHERE model IN {tuple(MODELS)} GROUP BY ALL")
    assert completions["n"].max() == 1  # every row exactly once
    for table in ("completions", "scored_results", "points", "leaderboard"):
        mine = _table(lab.warehouse, table).filter(pl.col("model").is_in(MODELS))
        theirs = _table(single, table)
        assert mine.height > 0 and mine.equals(theirs), (table, mine.height, theirs.height)
    assert single.query("SELECT count(*) AS n FROM completions")["n"][0] == len(MODELS) * completions.filter(pl.col("model") == "alpha").height


@needs_servers
def test_a_worker_killed_mid_partition_is_retried_with_no_duplicate_and_no_lost_row(lab):
    """SIGKILL the pool process running a partition's `completions` step while it waits for answers: Celery
    reports the task lost, the run fails, and the daemon's retry (dagster/max_retries from the schedule)
    re-executes from the failure on a live process; answers stored before the kill are kept, the rest asked."""
    [request] = [r for r in lab.requests if r["tags"]["dagster/partition/model"] == VICTIM]
    server = lab.servers[VICTIM]
    before = server.completion_requests
    run_id = lab.cluster.launch_run_request(request)
    deadline = time.monotonic() + 180
    pid, stored_before_kill = None, 0
    while pid is None or not stored_before_kill:  # the step has started and stored its first batch of answers
        assert time.monotonic() < deadline, "the completions step did not start, or stored nothing"
        lab.cluster.check_alive()
        starts = lab.instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
        pid = next((e.dagster_event.pid for e in starts if e.dagster_event and e.dagster_event.step_key == "completions"), None)
        if pid is not None and server.completion_requests > before:
            stored_before_kill = lab.warehouse.query(f"SELECT count(*) AS n FROM completions WHERE model = '{VICTIM}'")["n"][0]
        time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)

    [final] = lab.cluster.wait_for_runs([run_id], timeout_s=300, follow_retries=True)
    [first] = lab.cluster.runs([run_id])
    assert first["status"] == "FAILURE" and final["runId"] != run_id, (first["status"], final)
    assert final["status"] == "SUCCESS" and final["tags"]["dagster/parent_run_id"] == run_id and final["tags"]["dagster/retry_number"] == "1"
    assert "WorkerLostError" in _failures(lab.instance, [first]), _failures(lab.instance, [first])
    rows = lab.warehouse.query(f"SELECT test_case_id, request_hash, error, dagster_run_id FROM completions WHERE model = '{VICTIM}'")
    items = lab.warehouse.query(
        f"SELECT count(*) AS n FROM test_cases WHERE task = '{VICTIM_TASK}' AND list_contains(tiers, 'easy') AND item_index < {VICTIM_SAMPLES}"
    )["n"][0]
    assert 0 < stored_before_kill < items, (stored_before_kill, items)
    assert rows.height == items and rows.select("test_case_id", "request_hash").n_unique() == rows.height  # none lost, none twice
    assert rows["error"].null_count() == rows.height
    by_run = rows.group_by("dagster_run_id").len()
    kept = by_run.filter(pl.col("dagster_run_id") == run_id)["len"].sum()
    assert kept >= stored_before_kill and set(by_run["dagster_run_id"]) == {run_id, final["runId"]}, by_run  # stored rows not rewritten
    scored = lab.warehouse.query(f"SELECT count(*) AS n, count(DISTINCT test_case_id) AS d FROM scored_results WHERE model = '{VICTIM}'")
    assert scored["n"][0] == scored["d"][0] == items


def test_the_executor_is_chosen_by_configuration(monkeypatch):
    """RS_EXECUTOR unset or `default`: Dagster's default executor; `in_process`: Dagster's in-process one; `celery`: dagster-celery's, its broker and
    backend left as environment references (resolved in each run's process, never stored with a run)."""
    for value in (None, "default", ""):
        if value is None:
            monkeypatch.delenv("RS_EXECUTOR", raising=False)
        else:
            monkeypatch.setenv("RS_EXECUTOR", value)
        assert executor_from_env() is None
    monkeypatch.setenv("RS_EXECUTOR", "in_process")
    assert executor_from_env() is dg.in_process_executor
    pytest.importorskip("dagster_celery")
    monkeypatch.setenv("RS_EXECUTOR", "celery")
    monkeypatch.delenv("RS_CELERY_BROKER", raising=False)
    with pytest.raises(ValueError, match="RS_CELERY_BROKER"):
        executor_from_env()
    monkeypatch.setenv("RS_CELERY_BROKER", "redis://user:secret@broker:6379/0")
    monkeypatch.delenv("RS_CELERY_BACKEND", raising=False)
    executor = executor_from_env()
    assert executor is not None and executor.name == "celery"
    monkeypatch.setenv("RS_CELERY_BROKER", "redis://elsewhere:6379/0")  # read when a run resolves its config, not before
    resolved = executor.config_schema.resolve_config({})
    assert resolved.success and resolved.value["config"]["broker"] == resolved.value["config"]["backend"] == "redis://elsewhere:6379/0"
    monkeypatch.setenv("RS_EXECUTOR", "dask")
    with pytest.raises(ValueError, match="RS_EXECUTOR='dask'"):
        executor_from_env()
