"""Two processes sending to one endpoint split its concurrency instead of each taking all of it."""

import multiprocessing
import time
from pathlib import Path

from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.runner import CompletionRequest, Endpoint, Runner
from rs_dagster.execution.shares import EndpointShares
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

CONCURRENCY, REQUESTS, LATENCY_S = 8, 300, 0.05


def send(base_url: str, lab: str, tag: str, shared: bool, start: multiprocessing.Barrier) -> None:
    endpoint = Endpoint(base_url, "scripted", concurrency=CONCURRENCY)
    shares = EndpointShares(Path(lab) / "endpoints.sqlite3") if shared else None
    runner = Runner(endpoint, "test-key", {"max_tokens": 8}, ResponseCache(Path(lab) / tag), shares=shares)
    requests = [CompletionRequest(f"{tag}-{i}", [{"role": "user", "content": f"{tag} {i}"}]) for i in range(REQUESTS)]
    start.wait()
    assert all(result.error is None for result in runner.run(requests))


def in_flight_while_both_send(tmp_path: Path, shared: bool) -> list[int]:
    """The server's requests in flight at each arrival, from 1.5 s after the start (when both
    processes have taken their share) until either process is done."""
    arrivals: list[tuple[float, str, int]] = []

    def respond(body):
        arrivals.append((time.monotonic(), body["messages"][0]["content"].split()[0], server.in_flight))
        return Reply(content="ANSWER: 1", delay_s=LATENCY_S)

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    with ScriptedServer(respond) as server:
        senders = [context.Process(target=send, args=(server.base_url, str(tmp_path), tag, shared, start)) for tag in ("a", "b")]
        for process in senders:
            process.start()
        for process in senders:
            process.join(120)
            assert process.exitcode == 0
    first = min(t for t, _, _ in arrivals)
    both_until = min(max(t for t, tag, _ in arrivals if tag == sender) for sender in ("a", "b"))
    return sorted(n for t, _, n in arrivals if first + 1.5 < t < both_until)


def test_two_processes_split_the_endpoints_concurrency(tmp_path):
    split = in_flight_while_both_send(tmp_path / "shared", shared=True)
    alone = in_flight_while_both_send(tmp_path / "unshared", shared=False)
    assert len(split) > 100 and len(alone) > 100
    assert split[int(0.95 * len(split))] <= CONCURRENCY + 1  # 4 + 4, and the arrival itself
    # Without sharing each process takes all 8: a quarter of the arrivals see more in flight than the shared
    # ceiling ever allows (the median sits near 11 on 2 busy cores, where a process is often between requests).
    assert alone[int(0.75 * len(alone))] > CONCURRENCY + 2
    assert EndpointShares(tmp_path / "shared" / "endpoints.sqlite3")._db.execute("SELECT count(*) FROM members").fetchone() == (0,)
