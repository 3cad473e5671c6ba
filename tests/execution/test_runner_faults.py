"""Faults real endpoints produce, through the real openai client and real HTTP: every request ends
as a result or as an error with its reason, the run completes, and errors are never cached."""

import json
import time

import pytest

from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.runner import CompletionRequest, Endpoint, Runner
from rs_dagster.testing.scripted_server import Reply, ScriptedServer


def run(server, cache_dir, n=1, **endpoint):
    """n requests ("q0", "q1", ...) through a Runner with fast backoff."""
    settings = {"backoff_base_s": 0.01, "max_retries": 2, **endpoint}
    endpoint = Endpoint(server.base_url, "scripted", **settings)
    runner = Runner(endpoint, "test-key", {"max_tokens": 16}, ResponseCache(cache_dir))
    return runner, runner.run([CompletionRequest(f"hash-q{i}", [{"role": "user", "content": f"q{i}"}]) for i in range(n)])


def question(body):
    return body["messages"][-1]["content"]


def failing_first(times, fault):
    """A responder whose answer to each question is `fault` for its first `times` requests."""
    seen: dict[str, int] = {}

    def respond(body):
        seen[question(body)] = seen.get(question(body), 0) + 1
        return fault if seen[question(body)] <= times else Reply(content="ANSWER: 7")

    return respond


def test_429_waits_for_retry_after_then_succeeds(tmp_path):
    arrivals = []

    def respond(body):
        arrivals.append(time.monotonic())
        return Reply(status=429, headers={"Retry-After": "1"}) if len(arrivals) == 1 else Reply(content="ANSWER: 7")

    with ScriptedServer(respond) as server:
        runner, [result] = run(server, tmp_path)
    assert result.error is None and result.answer_text == "ANSWER: 7" and result.attempts == 2
    assert arrivals[1] - arrivals[0] >= 1.0
    assert runner.limit.rate_limited == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_then_reported(tmp_path, status):
    fault = Reply(status=status)
    flaky = failing_first(2, fault)
    with ScriptedServer(lambda body: fault if question(body) == "q0" else flaky(body)) as server:
        _, (broken, recovered) = run(server, tmp_path, n=2)
        assert server.completion_requests == 3 + 3
    assert broken.error == f"HTTP {status}: scripted status {status}" and broken.attempts == 3 and broken.answer_text is None
    assert recovered.error is None and recovered.attempts == 3 and recovered.answer_text == "ANSWER: 7"


def test_client_errors_are_not_retried(tmp_path):
    with ScriptedServer(lambda body: Reply(status=400)) as server:
        _, [result] = run(server, tmp_path)
        assert server.completion_requests == 1
    assert result.error == "HTTP 400: scripted status 400" and result.attempts == 1


def test_a_slow_reply_times_out_and_is_retried(tmp_path):
    started = time.monotonic()
    with ScriptedServer(failing_first(1, Reply(content="too late", delay_s=5.0))) as server:
        _, [result] = run(server, tmp_path, timeout_s=0.3)
    assert result.error is None and result.answer_text == "ANSWER: 7" and result.attempts == 2
    assert time.monotonic() - started < 3.0


def test_a_reply_that_never_comes_in_time_is_an_error(tmp_path):
    with ScriptedServer(lambda body: Reply(delay_s=5.0)) as server:
        _, [result] = run(server, tmp_path, timeout_s=0.2, max_retries=1)
    assert result.error == "timed out after 0.2 s" and result.attempts == 2


def test_a_connection_reset_mid_response_is_retried(tmp_path):
    cut = Reply(content="x" * 2000, cut_after_bytes=600)  # headers and part of the body
    flaky = failing_first(1, cut)
    with ScriptedServer(lambda body: cut if question(body) == "q0" else flaky(body)) as server:
        _, (broken, recovered) = run(server, tmp_path, n=2)
    assert broken.error.startswith("connection failed: ") and broken.attempts == 3
    assert recovered.error is None and recovered.answer_text == "ANSWER: 7"


@pytest.mark.parametrize("cut_after_bytes", [0, 10])
def test_a_connection_reset_before_the_headers_is_a_connection_failure_not_a_timeout(tmp_path, cut_after_bytes):
    """The client's aiohttp transport raises these as a timeout; the stored reason must say what happened."""
    with ScriptedServer(lambda body: Reply(content="x" * 2000, cut_after_bytes=cut_after_bytes)) as server:
        _, [result] = run(server, tmp_path, max_retries=1)
    assert result.error.startswith("connection failed: ") and result.attempts == 2


@pytest.mark.parametrize(
    "reply, reason",
    [
        (Reply(raw_body=b'{"choices": [{"message": {"content": "ANSW'), "malformed response: JSONDecodeError"),
        (Reply(raw_body=b"<html>502 Bad Gateway</html>"), "malformed response: JSONDecodeError"),
        (Reply(raw_body=json.dumps({"object": "chat.completion", "choices": []}).encode()), "response has no choices"),
        (Reply(raw_body=b"[1, 2]"), "response has no choices"),
        (Reply(content=None), "response message content is null"),
    ],
    ids=["truncated-json", "html", "empty-choices", "not-an-object", "null-content"],
)
def test_malformed_bodies_become_errors_with_their_reason(tmp_path, reply, reason):
    with ScriptedServer(lambda body: reply if question(body) == "q0" else Reply(content="ANSWER: 7")) as server:
        _, (bad, good) = run(server, tmp_path, n=2)
    assert bad.error.startswith(reason) and bad.attempts == 3 and bad.answer_text is None
    assert good.error is None and good.answer_text == "ANSWER: 7"


def test_an_enormous_answer_is_cut_cleanly_and_keeps_its_ending(tmp_path):
    content = "step " * 1_000_000 + "ANSWER: 42"  # 5 MB
    with ScriptedServer(lambda body: Reply(content=content)) as server:
        _, [result] = run(server, tmp_path, max_text_chars=100_000)
    assert result.error is None and result.finish_reason == "stop"
    assert len(result.answer_text) < 100_100 and "characters cut by rs-dagster" in result.answer_text
    assert result.answer_text.startswith("step step") and result.answer_text.endswith("ANSWER: 42")
    assert ResponseCache(tmp_path).get("hash-q0")["answer_text"] == result.answer_text


def test_errors_are_never_cached_and_a_rerun_retries_only_them(tmp_path):
    healthy = [False]

    def respond(body):
        if not healthy[0] and question(body) in ("q1", "q4", "q7"):
            return Reply(status=503)
        return Reply(content=f"ANSWER: {question(body)}")

    with ScriptedServer(respond) as server:
        _, first = run(server, tmp_path, n=10)
        assert [r.error is not None for r in first] == [i in (1, 4, 7) for i in range(10)]
        sent = server.completion_requests
        healthy[0] = True
        _, second = run(server, tmp_path, n=10)
        assert server.completion_requests - sent == 3
        assert {question(body) for body in server.requests[sent:]} == {"q1", "q4", "q7"}
    assert all(r.error is None for r in second)
    assert [r.from_cache for r in second] == [i not in (1, 4, 7) for i in range(10)]
    assert [r.answer_text for r in second] == [f"ANSWER: q{i}" for i in range(10)]
