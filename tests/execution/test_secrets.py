"""An API key reaches the endpoint as a Bearer token and nothing else: no table, no Dagster event,
no report, no cache file, no file anywhere under the lab or the Dagster instance, even when a
server echoes the key back in an error."""

import json
from pathlib import Path

from dagster._serdes import serialize_value
from helpers import Oracle, make_lab, scripted_model

from rs_dagster.defs.resources import EvalScope
from rs_dagster.execution.cache import ResponseCache
from rs_dagster.orchestrate import evaluate
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

CANARY = "sk-rs-LEAK-CANARY-7f3a9c1e5b2d4680"


def files_holding(root: Path, secret: bytes) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and secret in path.read_bytes()]


def test_the_api_key_is_sent_and_stored_nowhere(tmp_path, instance, monkeypatch):
    monkeypatch.setenv("RS_TEST_SECRET_KEY", CANARY)
    oracle = Oracle(make_lab(tmp_path / "probe", {}), items_per_point=4)

    def respond(body):
        if oracle.lookup(body).index == 0:  # a careless server quotes the credentials back
            message = f"invalid credentials: {server.request_headers[-1]['authorization']}"
            return Reply(status=401, raw_body=json.dumps({"error": {"message": message}}).encode())
        return oracle(body)

    with ScriptedServer(respond) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url, api_key_env="RS_TEST_SECRET_KEY")})
        runs = evaluate(settings, instance, ["scripted"], ["boolean"], EvalScope(tiers=["easy"], precision="4"))
    assert server.completion_requests > 0
    assert all(headers["authorization"] == f"Bearer {CANARY}" for headers in server.request_headers)

    warehouse = Warehouse(settings.db_path)
    tables = warehouse.query("SELECT table_name FROM information_schema.tables")["table_name"].to_list()
    assert {"model_specs", "completions", "scored_results"} <= set(tables)
    dump = "\n".join(f"{table}: {warehouse.query(f'SELECT * FROM {table}').rows()}" for table in tables)
    assert CANARY not in dump
    assert "invalid credentials: Bearer <api key>" in dump  # the echo happened, and was redacted

    events = [serialize_value(event) for run_id in runs.run_ids for event in instance.all_logs(run_id)]
    run_records = [serialize_value(instance.get_run_by_id(run_id)) for run_id in runs.run_ids]
    assert events and not [text for text in events + run_records if CANARY in text]

    assert (settings.report_dir / "index.html").is_file() and next(ResponseCache(settings.cache_dir).entries(), None)
    assert files_holding(settings.home, CANARY.encode()) == []
    assert files_holding(Path(instance.root_directory), CANARY.encode()) == []
