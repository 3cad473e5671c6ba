"""A requested stop (rs_dagster.interrupts: the first Ctrl-C of `rs eval`) through the real openai client
and real HTTP: no new request and no retry is sent, every request in flight still ends as a result (and is
cached), and `run` then raises Interrupted."""

import pytest

from rs_dagster import interrupts
from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.runner import CompletionRequest, Endpoint, Runner
from rs_dagster.testing.scripted_server import Reply, ScriptedServer


@pytest.fixture(autouse=True)
def no_stop():
    interrupts.reset()
    yield
    interrupts.reset()


def requests(n):
    return [CompletionRequest(f"hash-q{i}", [{"role": "user", "content": f"q{i}"}]) for i in range(n)]


def test_a_stop_sends_nothing_more_and_lets_the_requests_in_flight_land(tmp_path):
    results = []

    def on_result(result):
        results.append(result)
        if len(results) == 3:
            interrupts.request_stop()

    with ScriptedServer(lambda body: Reply(content="ANSWER: 7", delay_s=0.2)) as server:
        cache = ResponseCache(tmp_path)
        runner = Runner(Endpoint(server.base_url, "scripted", concurrency=2), "test-key", {"max_tokens": 16}, cache, on_result=on_result)
        with pytest.raises(interrupts.Interrupted):
            runner.run(requests(40))
        sent = server.completion_requests
    assert 3 <= sent <= 4 and len(results) == sent  # the one in flight with the third landed too
    assert all(r.error is None for r in results) and all(cache.get(r.request_hash) for r in results)


def test_a_stop_sends_no_retry(tmp_path):
    """Every request fails (503) and is retried after a backoff; the stop comes during the first backoff."""
    def respond(body):
        interrupts.request_stop()
        return Reply(status=503)

    with ScriptedServer(respond) as server:
        runner = Runner(Endpoint(server.base_url, "scripted", concurrency=1, backoff_base_s=0.05), "test-key", {"max_tokens": 16},
                        ResponseCache(tmp_path))
        with pytest.raises(interrupts.Interrupted):
            runner.run(requests(5))
        assert server.completion_requests == 1
