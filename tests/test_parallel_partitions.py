"""Partitions evaluated side by side (orchestrate.evaluate's thread pool of in-process runs) give the
tables of a serial evaluation, row for row, and their runs overlap in time on one Dagster instance."""

import itertools

import dagster as dg
import polars as pl
from helpers import Oracle, make_lab, scripted_model

from rs_dagster.defs.resources import EvalScope
from rs_dagster.models.registry import load_models
from rs_dagster.orchestrate import default_parallel, endpoint_slots, evaluate
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import ScriptedServer

MODELS, TASKS = ["alpha", "beta"], ["arithmetic", "boolean"]
SCOPE = EvalScope(tiers=["easy"], precision="6", repeats=2)
VOLATILE = {"dagster_run_id", "latency_s", "queue_wait_s", "run_id"}
"""Columns that differ between two evaluations of the same scope (who ran it, how long it took)."""
FINGERPRINTS = "lab_state"
"""Fingerprints of whole rows, volatile columns included: equal in content, never in value."""


def _tables(warehouse: Warehouse) -> dict[str, pl.DataFrame]:
    names = warehouse.query("SELECT table_name FROM information_schema.tables ORDER BY ALL")["table_name"].to_list()
    tables = {}
    for name in names:
        if name == FINGERPRINTS:
            frame = warehouse.query(f'SELECT stage, partition, code FROM "{name}"')  # the same stages recorded, by the same code
            tables[name] = frame.sort(frame.columns)
            continue
        frame = warehouse.query(f'SELECT * FROM "{name}"')
        frame = frame.drop([c for c in frame.columns if c in VOLATILE or c.endswith("_at")])
        tables[name] = frame.sort(frame.columns, nulls_last=True) if frame.columns else frame
    return tables


def _evaluate(tmp_path, name: str, servers: tuple[ScriptedServer, ScriptedServer], parallel: int) -> tuple[dict[str, pl.DataFrame], list[dg.RunRecord]]:
    with dg.instance_for_test() as instance:
        settings = make_lab(tmp_path / name, {model: scripted_model(server.base_url) for model, server in zip(MODELS, servers)})
        runs = evaluate(settings, instance, MODELS, TASKS, SCOPE, parallel=parallel)
        records = list(instance.get_run_records(dg.RunsFilter(run_ids=runs.run_ids)))
        assert all(record.dagster_run.status == dg.DagsterRunStatus.SUCCESS for record in records)
        return _tables(Warehouse(settings.db_path)), records


def test_side_by_side_runs_overlap_and_write_the_tables_of_a_serial_run(tmp_path):
    oracle = Oracle(make_lab(tmp_path / "probe", {}), items_per_point=6)
    with ScriptedServer(oracle) as first, ScriptedServer(oracle) as second:
        serial, _ = _evaluate(tmp_path, "serial", (first, second), parallel=1)
        side_by_side, records = _evaluate(tmp_path, "parallel", (first, second), parallel=4)
    assert serial.keys() == side_by_side.keys()
    for table, rows in serial.items():
        assert rows.equals(side_by_side[table]), (table, rows.join(side_by_side[table], on=rows.columns, how="anti", nulls_equal=True).to_dicts())
    assert serial["completions"].height == len(MODELS) * len(TASKS) * 2 * 6 * 2
    evaluations = [r for r in records if r.dagster_run.job_name == "evaluation"]
    assert sorted(r.dagster_run.tags["rs/source"] for r in evaluations) == ["cli"] * 4
    spans = sorted((r.start_time, r.end_time) for r in evaluations)
    assert all(start is not None and end is not None for start, end in spans)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), f"no two evaluation runs overlapped: {spans}"


def test_by_default_runs_go_side_by_side_per_core_and_one_endpoint_never_gets_more_than_its_concurrency(tmp_path, monkeypatch):
    """Without --parallel: as many runs side by side as cores, but two models on one endpoint of concurrency 2
    together never have more than 2 requests in flight (at most 2 runs of it at once, each with its share)."""
    oracle = Oracle(make_lab(tmp_path / "probe", {}), items_per_point=6)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)))  # 8 cores, whatever this machine has
    with ScriptedServer(oracle) as server, dg.instance_for_test() as instance:
        models = {model: scripted_model(server.base_url, concurrency=2) for model in MODELS}
        settings = make_lab(tmp_path / "lab", models)
        chosen = [load_models(settings)[m] for m in MODELS]
        pairs = [(model, task) for model in MODELS for task in TASKS]
        assert default_parallel(chosen, pairs) == 2  # 8 cores, but one endpoint of concurrency 2
        assert endpoint_slots(chosen) == {server.base_url.split("//")[1].split("/")[0]: 2}
        runs = evaluate(settings, instance, MODELS, TASKS, SCOPE)
        records = [r for r in instance.get_run_records(dg.RunsFilter(run_ids=runs.run_ids)) if r.dagster_run.job_name == "evaluation"]
        assert len(records) == 4 and server.max_in_flight <= 2
        spans = sorted((r.start_time, r.end_time) for r in records)
        overlapping = max(sum(1 for s, e in spans if s < end and e > start) for start, end in spans)
        assert overlapping == 2, spans  # side by side, two at a time, never three


def test_the_default_is_one_run_per_core_across_endpoints_and_never_below_one(tmp_path, monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    settings = make_lab(tmp_path / "lab", {"a": scripted_model("http://127.0.0.1:9001/v1", concurrency=1),
                                           "b": scripted_model("http://127.0.0.1:9002/v1", concurrency=1),
                                           "c": scripted_model("http://127.0.0.1:9003/v1", concurrency=64)})
    models = load_models(settings)
    assert default_parallel([models["a"]], [("a", t) for t in TASKS]) == 1  # a server answering one request at a time
    assert default_parallel([models["a"], models["b"]], [(m, t) for m in "ab" for t in TASKS]) == 2
    assert default_parallel([models["c"]], [("c", t) for t in TASKS * 5]) == 2  # two cores
    assert default_parallel([models["c"]], [("c", "arithmetic")]) == 1  # one pair
