"""Durability across processes: a run killed with SIGKILL mid-partition resumes with only the missing
requests and ends with the tables of an uninterrupted run; two `rs eval` processes writing to one
DuckDB file at once both finish with every row."""

import signal
import subprocess
import time

import polars as pl
from helpers import Oracle, lab_env, make_lab, rs_process, scripted_model

from rs_dagster.execution.cache import ResponseCache
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import ScriptedServer

SAMPLES = 64  # items per point; boolean's easy tier has 2 points
TOTAL = 2 * SAMPLES
EVAL = ["eval", "--model", "scripted", "--tasks", "boolean", "--tier", "easy", "--samples", str(SAMPLES)]


def slow(oracle, delay_s):
    def respond(body):
        reply = oracle(body)
        reply.delay_s = delay_s
        return reply

    return respond


def completed(process: subprocess.Popen, timeout: float = 300) -> str:
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-3000:]
    return stdout


def stored_completions(lab) -> int:
    warehouse = Warehouse(lab.db_path)
    if not warehouse.has_table("completions"):
        return 0
    return warehouse.query("SELECT count(*) AS n FROM completions")["n"][0]


def scored(lab) -> pl.DataFrame:
    columns = "test_case_id, sample_index, request_hash, parsed_answer, outcome, flexible_outcome"
    return Warehouse(lab.db_path).query(f"SELECT {columns} FROM scored_results ORDER BY request_hash")


def test_sigkill_mid_partition_resumes_with_only_the_missing_requests(tmp_path):
    probe = make_lab(tmp_path / "probe", {})
    oracle = Oracle(probe, items_per_point=SAMPLES)
    with ScriptedServer(slow(oracle, 0.1)) as server:
        model = {"scripted": scripted_model(server.base_url, concurrency=2)}
        killed, reference = make_lab(tmp_path / "killed", model), make_lab(tmp_path / "reference", model)

        process = rs_process(EVAL, lab_env(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while stored_completions(killed) == 0:  # answers reach DuckDB in batches while the partition runs
            assert process.poll() is None and time.monotonic() < deadline, "the run ended before any batch was stored"
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait()
        sent_before_kill = server.completion_requests
        assert 0 < sent_before_kill < TOTAL
        kept_in_duckdb = stored_completions(killed)
        cached = sum(1 for _ in ResponseCache(killed.cache_dir).entries())
        assert 0 < kept_in_duckdb <= cached < TOTAL

        completed(rs_process(EVAL, lab_env(killed), stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        resent = server.requests[sent_before_kill:]
        assert len(resent) == TOTAL - cached  # only the samples with no stored completion
        questions = [body["messages"][-1]["content"] for body in resent]
        assert len(set(questions)) == len(questions)

        sent = server.completion_requests
        completed(rs_process(EVAL, lab_env(reference), stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        assert server.completion_requests - sent == TOTAL

    resumed = Warehouse(killed.db_path).query("SELECT request_hash, count(*) AS n FROM completions GROUP BY ALL")
    assert resumed.height == TOTAL and resumed["n"].max() == 1  # every sample once, no duplicates
    assert scored(killed).equals(scored(reference))
    assert scored(killed)["flexible_outcome"].is_in(["correct", "incorrect"]).all()


def test_two_eval_processes_write_one_duckdb_file_at_once(tmp_path):
    probe = make_lab(tmp_path / "probe", {})
    oracle = Oracle(probe, items_per_point=32)
    with ScriptedServer(slow(oracle, 0.01)) as server:
        # distinct served models: the same one under two names would share its cached answers
        models = {name: scripted_model(server.base_url, served_model=name, concurrency=4) for name in ("alpha", "beta")}
        lab = make_lab(tmp_path / "lab", models)
        args = ["--tasks", "arithmetic,boolean", "--tier", "easy", "--samples", "32"]
        processes = [
            rs_process(["eval", "--model", name, *args], lab_env(lab), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for name in ("alpha", "beta")
        ]
        for process in processes:
            completed(process)
        assert server.completion_requests == 2 * 2 * 2 * 32  # models × tasks × points × items

    warehouse = Warehouse(lab.db_path)
    per_partition = warehouse.query("SELECT model, task, count(*) AS n, count(DISTINCT request_hash) AS d FROM scored_results GROUP BY ALL ORDER BY ALL")
    assert per_partition.rows() == [(m, t, 64, 64) for m in ("alpha", "beta") for t in ("arithmetic", "boolean")]
    board = warehouse.query("SELECT DISTINCT model FROM leaderboard ORDER BY model")
    assert board["model"].to_list() == ["alpha", "beta"]


def test_two_names_for_one_served_model_share_answers_and_keep_their_rows(tmp_path, instance):
    """Same endpoint, served model, template and sampler: same request hashes. The second name is
    answered from the cache, and storing one partition never touches the other's rows."""
    from rs_dagster.defs.resources import EvalScope
    from rs_dagster.orchestrate import evaluate

    oracle = Oracle(make_lab(tmp_path / "probe", {}), items_per_point=8)
    with ScriptedServer(oracle) as server:
        lab = make_lab(tmp_path / "lab", {name: scripted_model(server.base_url) for name in ("alpha", "beta")})
        evaluate(lab, instance, ["alpha", "beta"], ["boolean"], EvalScope(tiers=["easy"], precision="8"))
        assert server.completion_requests == 16
    rows = Warehouse(lab.db_path).query("SELECT model, count(*) AS n, count(DISTINCT request_hash) AS d FROM completions GROUP BY ALL ORDER BY ALL")
    assert rows.rows() == [("alpha", 16, 16), ("beta", 16, 16)]
