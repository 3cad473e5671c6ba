"""latency_s is a request's own time, from its send (its concurrency slot acquired) to the reply; the wait
for the slot (and Retry-After pauses and retry backoffs) is queue_wait_s. Over real HTTP: at concurrency 1
a request late in the queue waits longer, it does not take longer."""

import time

import duckdb
import polars as pl
import pytest
from helpers import Oracle, make_lab, scripted_model

from rs_dagster.defs.resources import EvalScope
from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.completions import COMPLETION_DTYPES
from rs_dagster.execution.runner import CompletionRequest, Endpoint, Runner
from rs_dagster.orchestrate import evaluate
from rs_dagster.storage import schemas
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

DELAY_S = 0.2


def requests(n):
    return [CompletionRequest(f"hash-q{i}", [{"role": "user", "content": f"q{i}"}]) for i in range(n)]


def test_at_concurrency_1_latency_is_the_servers_and_the_queue_is_queue_wait(tmp_path):
    n = 8
    with ScriptedServer(lambda body: Reply(content="ANSWER: 7", delay_s=DELAY_S)) as server:
        runner = Runner(Endpoint(server.base_url, "scripted", concurrency=1), "test-key", {"max_tokens": 8}, ResponseCache(tmp_path))
        started = time.perf_counter()
        results = runner.run(requests(n))
        wall = time.perf_counter() - started
        assert server.max_in_flight == 1
    assert all(r.error is None and not r.from_cache for r in results)
    latencies = sorted(r.latency_s for r in results)
    # Each request's own time, whatever its place in the queue (the last waited 7 × 0.2 s): the server's
    # delay and the client's work (a slack for a first request that meets a busy machine).
    assert latencies[0] >= DELAY_S and latencies[n // 2] < DELAY_S + 0.05 and latencies[-1] < DELAY_S + 0.3, latencies
    waits = sorted(r.queue_wait_s for r in results)
    assert waits[0] < 0.1  # the first is sent at once
    for place, wait in enumerate(waits):  # the k-th waits for the k before it
        assert place * DELAY_S - 0.05 < wait < place * (DELAY_S + 0.15) + 0.1, waits
    assert max(r.latency_s + r.queue_wait_s for r in results) <= wall


def test_a_cache_hit_keeps_its_original_latency_and_waited_for_nothing(tmp_path):
    with ScriptedServer(lambda body: Reply(content="ANSWER: 7", delay_s=DELAY_S)) as server:
        endpoint = Endpoint(server.base_url, "scripted", concurrency=1)
        sent = Runner(endpoint, "test-key", {"max_tokens": 8}, ResponseCache(tmp_path)).run(requests(3))
        hits = Runner(endpoint, "test-key", {"max_tokens": 8}, ResponseCache(tmp_path)).run(requests(3))
        assert server.completion_requests == 3
    assert all(h.from_cache for h in hits)
    assert [h.latency_s for h in hits] == [s.latency_s for s in sent]
    assert [h.queue_wait_s for h in hits] == [None] * 3
    assert all(s.queue_wait_s is not None for s in sent)


def test_a_retry_backoff_is_waiting_not_latency(tmp_path):
    seen = []

    def respond(body):
        seen.append(body)
        return Reply(status=503) if len(seen) == 1 else Reply(content="ANSWER: 7")

    with ScriptedServer(respond) as server:
        endpoint = Endpoint(server.base_url, "scripted", concurrency=1, backoff_base_s=0.4)
        [result] = Runner(endpoint, "test-key", {"max_tokens": 8}, ResponseCache(tmp_path)).run(requests(1))
    assert result.error is None and result.attempts == 2
    assert result.queue_wait_s >= 0.2  # the backoff: 0.4 s × (0.5 to 1.5)
    assert result.latency_s < 0.15  # two quick replies


def _old_row(i: int) -> dict:
    """A completions row as code from before queue_wait_s stored it."""
    return {
        "model": "m", "task": "t", "test_case_id": f"c{i}", "sample_index": 0, "request_hash": f"h{i}", "prompt_hash": "p",
        "served_model": "s", "answer_text": "7", "reasoning_text": None, "finish_reason": "stop", "prompt_tokens": 1,
        "completion_tokens": 1, "reasoning_tokens": None, "answer_tokens": 1, "answer_phase": None, "latency_s": 590.0,
        "attempts": 1, "error": None, "from_cache": False, "sampler_json": "{}", "dagster_run_id": "old",
    }


def test_a_file_from_before_the_column_reads_null_queue_wait_in_its_old_rows(tmp_path):
    warehouse = Warehouse(tmp_path / "rs.duckdb")
    old = pl.DataFrame([_old_row(0)], schema_overrides={**COMPLETION_DTYPES, "reasoning_tokens": pl.Int64})
    with duckdb.connect(str(warehouse.path)) as con:
        con.register("old", old)
        con.execute("CREATE TABLE completions AS SELECT * FROM old")
    new = pl.DataFrame([{**_old_row(1), "latency_s": 0.2, "queue_wait_s": 3.5}], schema_overrides=COMPLETION_DTYPES)
    warehouse.upsert_rows("completions", schemas.Completions, new, {"model": "m", "task": "t"}, ["test_case_id", "request_hash"])
    stored = warehouse.query("SELECT test_case_id, latency_s, queue_wait_s FROM completions ORDER BY test_case_id")
    assert stored.rows() == [("c0", 590.0, None), ("c1", 0.2, 3.5)]


@pytest.mark.parametrize("concurrency", [1])
def test_an_evaluation_at_concurrency_1_stores_each_requests_own_latency(tmp_path, instance, concurrency):
    oracle = Oracle(make_lab(tmp_path / "probe", {}, tasks=("arithmetic",)), items_per_point=8)

    def slow(body):
        reply = oracle(body)
        reply.delay_s = 0.1
        return reply

    with ScriptedServer(slow) as server:
        settings = make_lab(tmp_path / "lab", {"scripted": scripted_model(server.base_url, concurrency=concurrency)}, tasks=("arithmetic",))
        evaluate(settings, instance, ["scripted"], ["arithmetic"], EvalScope(tiers=["easy"], precision="8"))
        assert server.max_in_flight == 1
    stored = Warehouse(settings.db_path).query("SELECT latency_s, queue_wait_s FROM completions ORDER BY queue_wait_s")
    assert stored.height == 16 and stored["queue_wait_s"].null_count() == 0
    assert stored["latency_s"].max() < 0.1 + 0.15, stored  # not growing with the place in the queue
    assert stored["queue_wait_s"].max() > 0.1 * 8, stored  # the last of a round waited for the others
