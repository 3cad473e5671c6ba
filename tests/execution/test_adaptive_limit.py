"""Adaptive concurrency: a server that refuses (429) whatever exceeds its capacity gets every request
answered, and the Runner's requests in flight settle near that capacity instead of hammering it."""

import asyncio

from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.limiter import AdaptiveLimit
from rs_dagster.execution.runner import CompletionRequest, Endpoint, Runner
from rs_dagster.testing.scripted_server import Reply, ScriptedServer


def test_requests_in_flight_converge_to_what_the_server_accepts(tmp_path):
    capacity, requests = 6, 300
    seen_in_flight = []  # at each arrival, counting the arrival

    def respond(body):
        seen_in_flight.append(server.in_flight)
        refused = server.in_flight > capacity
        return Reply(status=429 if refused else 200, content="ANSWER: 1", delay_s=0.02)

    with ScriptedServer(respond) as server:
        endpoint = Endpoint(server.base_url, "scripted", concurrency=48, backoff_base_s=0.01)
        runner = Runner(endpoint, "test-key", {"max_tokens": 8}, ResponseCache(tmp_path))
        results = runner.run([CompletionRequest(f"h{i}", [{"role": "user", "content": f"q{i}"}]) for i in range(requests)])
    assert all(r.error is None for r in results)
    assert max(seen_in_flight[:48]) > 4 * capacity  # it starts at the configured 48
    settled = sorted(seen_in_flight[len(seen_in_flight) // 2 :])
    assert capacity - 1 <= settled[int(0.95 * len(settled))] <= capacity + 1
    assert max(settled) <= 2 * capacity
    assert sum(settled) / len(settled) >= capacity / 3  # backs off, does not collapse
    # The opening burst of 48 against a capacity of 6 is refused 42 times by itself; a loaded machine (slower replies,
    # more arrivals per window) adds some tens more before the limit settles: 102 seen under a full suite's load.
    assert runner.limit.lowest >= 2 and runner.limit.rate_limited < requests // 2


async def cut_to_four() -> AdaptiveLimit:
    """A limit of 8 whose eight requests, all sent in one window, were answered 429; four in flight again."""
    limit = AdaptiveLimit(8)
    windows = [await limit.acquire() for _ in range(8)]
    for window in windows:
        limit.on_rate_limited(window, None)
        limit.release()
    for _ in range(4):
        await limit.acquire()
    return limit


async def succeed(limit: AdaptiveLimit, times: int) -> None:
    """Requests succeed one by one, each replaced by a new one: the limit stays full."""
    window = limit._window
    for _ in range(times):
        limit.on_success(window)
        limit.release()
        window = await limit.acquire()


def test_a_window_of_429s_halves_the_limit_once_and_a_window_of_successes_adds_a_slot():
    async def scenario():
        limit = await cut_to_four()
        assert limit.limit == 4 and limit.rate_limited == 8
        await succeed(limit, 4)
        assert 4.9 < limit.limit < 5
        await succeed(limit, 1)
        assert limit.limit > 5
        await asyncio.wait_for(limit.acquire(), 0.1)  # a fifth request goes at once
        assert limit.in_flight == 5

    asyncio.run(scenario())


def test_an_idle_limit_does_not_grow():
    async def scenario():
        limit = await cut_to_four()
        window = limit._window
        limit.release()
        limit.release()
        limit.on_success(window)  # two in flight under a limit of four: it held nothing back
        assert limit.limit == 4

    asyncio.run(scenario())


def test_server_trouble_holds_growth_for_a_window_but_does_not_shrink():
    async def scenario():
        limit = await cut_to_four()
        limit.on_trouble(None)
        await succeed(limit, 4)  # the held window
        assert limit.limit == 4
        await succeed(limit, 1)
        assert limit.limit == 4.25

    asyncio.run(scenario())


def test_retry_after_pauses_every_new_request():
    async def scenario():
        limit = AdaptiveLimit(4)
        loop = asyncio.get_running_loop()
        limit.on_rate_limited(await limit.acquire(), 0.3)
        limit.release()
        started = loop.time()
        await limit.acquire()
        return loop.time() - started

    assert asyncio.run(scenario()) >= 0.3
