"""Why no reply came is told apart, through the real openai client and real sockets: a closed port is
"connection refused", an unresolvable host a DNS failure, https to a plain-HTTP server a TLS failure, and only
a reply later than the time limit "timed out" (the client calls all of them "Request timed out."). The same
words are stored as a result's error and shown when the endpoint cannot be reached at all."""

import asyncio
import socket
import time

import openai
import pytest

from rs_dagster.errors import EndpointError
from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.runner import CompletionRequest, Endpoint, Runner
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

DNS_FAILURE = "DNS lookup failed for rs-no-such-host.invalid: "  # .invalid never resolves (RFC 6761)


def closed_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def runner(base_url, cache_dir, **endpoint):
    settings = {"backoff_base_s": 0.01, "max_retries": 1, "timeout_s": 2.0, **endpoint}
    return Runner(Endpoint(base_url, "scripted", **settings), "test-key", {"max_tokens": 16}, ResponseCache(cache_dir))


def unreachable(base_url, cache_dir, **endpoint) -> str:
    """The message of the EndpointError a run raises before sending any request."""
    started = time.monotonic()
    with pytest.raises(EndpointError) as error:
        runner(base_url, cache_dir, **endpoint).run([CompletionRequest("hash-q0", [{"role": "user", "content": "q0"}])])
    assert time.monotonic() - started < 5.0
    message = str(error.value)
    assert message.startswith(f"cannot reach the endpoint {base_url}: ") and "Nothing was recorded" in message
    assert "Request timed out" not in message and "APITimeoutError" not in message
    return message


def result_of(base_url, cache_dir, **endpoint):
    """One request's result (as stored) under the Runner's retry policy, past its check that the endpoint
    answers: what a request gets when the server goes away, or its name stops resolving, during a run."""
    return asyncio.run(_ask(base_url, cache_dir, **endpoint))


async def _ask(base_url, cache_dir, **endpoint):
    run = runner(base_url, cache_dir, **endpoint)
    client = openai.AsyncOpenAI(
        base_url=base_url, api_key="test-key", timeout=run.endpoint.timeout_s, max_retries=0,
        http_client=openai.DefaultAioHttpClient(),
    )
    try:
        return await run._complete(client, CompletionRequest("hash-q0", [{"role": "user", "content": "q0"}]))
    finally:
        await client.close()


def test_a_closed_port_is_connection_refused(tmp_path):
    port = closed_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    assert f": connection refused (127.0.0.1:{port}); " in unreachable(base_url, tmp_path)
    result = result_of(base_url, tmp_path)
    assert result.error == f"connection refused (127.0.0.1:{port})" and result.attempts == 2


def test_an_unresolvable_host_is_a_dns_failure(tmp_path):
    base_url = "http://rs-no-such-host.invalid:9/v1"
    assert f": {DNS_FAILURE}" in unreachable(base_url, tmp_path)
    result = result_of(base_url, tmp_path)
    assert result.error.startswith(DNS_FAILURE) and result.attempts == 2


def test_https_to_a_plain_http_server_is_a_tls_failure(tmp_path):
    with ScriptedServer(lambda body: Reply(content="ANSWER: 7")) as server:
        base_url = server.base_url.replace("http://", "https://")
        assert ": TLS handshake failed: [SSL: " in unreachable(base_url, tmp_path)
        result = result_of(base_url, tmp_path)
        assert server.completion_requests == 0
    assert result.error.startswith("TLS handshake failed: [SSL: ") and "_ssl.c" not in result.error and result.attempts == 2


def test_only_a_reply_later_than_the_time_limit_is_timed_out(tmp_path):
    with ScriptedServer(lambda body: Reply(content="too late", delay_s=3.0)) as server:
        [result] = runner(server.base_url, tmp_path, timeout_s=0.2).run([CompletionRequest("hash-q0", [{"role": "user", "content": "q0"}])])
    assert result.error == "timed out after 0.2 s" and result.attempts == 2


def test_a_server_that_accepts_and_never_answers_times_out_the_check(tmp_path):
    """The kernel accepts the connection (backlog); nothing ever reads or replies."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        base_url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        assert ": timed out after 0.3 s; " in unreachable(base_url, tmp_path, timeout_s=0.3)
