"""The `rs` command as a user runs it: a subprocess, real HTTP, the persistent Dagster instance."""

import json
import os
import subprocess

import dagster as dg
import polars as pl
import pytest
from helpers import RS, Oracle, lab_env, make_lab

from rs_dagster.bundled import is_serving
from rs_dagster.execution.cache import ResponseCache
from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import ScriptedServer


def _rs(args, env, timeout=600):
    return subprocess.run([*RS, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, cwd=PACKAGE_ROOT)


def test_tasks_generate_prints_json_lines_with_the_messages_sent(tmp_path):
    result = _rs(["tasks", "generate", "boolean", "--params", '{"length": 4, "depth": 1, "notation": "yes_no"}', "--count", "3"], {"RS_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    items = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(items) == 3 and len({i["id"] for i in items}) == 3
    for item in items:
        assert {"id", "task", "params", "messages", "answer", "guess_chance"} <= set(item)
        assert item["answer"] in ("YES", "NO") and item["guess_chance"] == 0.5
        assert item["messages"][-1]["role"] == "user" and "ANSWER" in item["messages"][-1]["content"]


def test_cli_errors_are_one_clear_line(tmp_path):
    result = _rs(["tasks", "generate", "arithmetic", "--params", '{"terms": 1, "depth": 0}'], {"RS_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "terms: Input should be greater than or equal to 2" in result.stderr and "Traceback" not in result.stderr
    result = _rs(["eval", "--model", "nope"], {"RS_HOME": str(tmp_path)})
    assert result.returncode == 2 and "unknown model 'nope'; known models: calibration, smollm2-135m" in result.stderr


def test_eval_registers_an_adhoc_endpoint_and_the_runs_land_in_dagster_home(tmp_path):
    lab = make_lab(tmp_path / "lab", {})
    env = lab_env(lab)
    with ScriptedServer(Oracle(lab, items_per_point=4)) as server:
        result = _rs(["eval", "--model", "adhoc", "--base-url", server.base_url, "--served-model", "scripted", "--tasks", "arithmetic", "--tier", "easy", "--samples", "4"], env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "adhoc" in result.stdout and "arithmetic" in result.stdout and "easy" in result.stdout
    assert server.completion_requests == 8
    assert "adhoc" in lab.local_models_file.read_text() and "adhoc" not in lab.models_file.read_text()
    with dg.DagsterInstance.from_config(str(lab.dagster_home)) as instance:
        assert len(instance.get_runs()) >= 4  # task, model, model × task, report
    assert Warehouse(lab.db_path).query("SELECT count(*) AS n FROM scored_results")["n"][0] == 8


def test_cache_stats_and_prune_keep_what_stored_completions_use(tmp_path):
    lab = make_lab(tmp_path / "lab", {})
    env = lab_env(lab)
    evaluation = ["eval", "--model", "adhoc", "--served-model", "scripted", "--tasks", "boolean", "--tier", "easy", "--samples", "4"]
    with ScriptedServer(Oracle(lab, items_per_point=4)) as server:
        assert _rs([*evaluation, "--base-url", server.base_url], env).returncode == 0
        cache = ResponseCache(lab.cache_dir)
        cache.put("0123456789abcdef0123456789abcdef", {"answer_text": "left over from a deleted model"})
        stats = _rs(["cache", "stats"], env)
        assert stats.returncode == 0 and "│ 9 " in stats.stdout and "│ 8 " in stats.stdout and "│ 1 " in stats.stdout, stats.stdout
        assert "would remove 1 entries" in _rs(["cache", "prune", "--unreferenced", "--dry-run"], env).stdout
        assert sum(1 for _ in cache.entries()) == 9
        assert "removed 1 entries" in _rs(["cache", "prune", "--unreferenced"], env).stdout
        assert sorted(cache.entries()) == sorted(Warehouse(lab.db_path).query("SELECT request_hash FROM completions")["request_hash"])
        refused = _rs(["cache", "prune"], env)
        assert refused.returncode == 2 and "--unreferenced" in refused.stderr
        assert _rs([*evaluation, "--base-url", server.base_url], env).returncode == 0
        assert server.completion_requests == 8  # the second run was answered from what prune kept


@pytest.mark.bundled_model
def test_demo_against_the_bundled_real_model(tmp_path):
    """The README's main job, end to end, against SmolLM2-135M served by llama.cpp on loopback."""
    pytest.importorskip("llama_cpp", reason="the bundled model server needs the [server] extra")
    was_serving = is_serving("http://127.0.0.1:8765/v1")
    env = {"RS_HOME": str(tmp_path / ".rs"), "COLUMNS": "200"}
    result = _rs(["demo", "--samples", "2"], env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "smollm2-135m" in result.stdout and "index.html" in result.stdout and "rs explore" in result.stdout
    found = result.stdout.split("What this run found:", 1)[1]
    assert "smollm2-135m × arithmetic" in found and "of answers in the requested form" in found and "calibration × boolean" in found
    assert "covers the known truth at" in found
    warehouse = Warehouse(tmp_path / ".rs" / "rs.duckdb")
    everything = warehouse.query("SELECT * FROM completions")
    completions = everything.filter(pl.col("model") == "smollm2-135m")
    assert completions.height == 24  # 2 tasks × (2 easy points + a 5-point projection sharing one of them) × 2 items
    assert everything.filter(pl.col("model") == "calibration").height == 12 * 32  # the known-truth endpoint beside it, 32 items a point
    curves = warehouse.query("SELECT model, task, count(*) AS n FROM points WHERE len(projections) > 0 GROUP BY ALL ORDER BY ALL")
    assert curves.rows() == [(m, t, 5) for m in ("calibration", "smollm2-135m") for t in ("arithmetic", "boolean")]
    assert completions["error"].is_null().all()
    assert (completions["completion_tokens"] > 0).all() and (completions["answer_text"].str.len_chars() > 0).all()
    outcomes = set(warehouse.query("SELECT outcome FROM scored_results")["outcome"])
    assert outcomes <= {"correct", "incorrect", "unparsed", "truncated"}
    assert (tmp_path / ".rs" / "report" / "index.html").is_file()
    assert is_serving("http://127.0.0.1:8765/v1") == was_serving, "the demo must stop the server it started"
