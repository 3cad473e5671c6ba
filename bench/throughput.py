"""Execution throughput: the project's Runner against a bare asyncio openai client, same requests,
same concurrency, same loopback server.

Goal: the Runner reaches at least 80% of the bare client's completions/s, and at 100 ms latency and
concurrency 64 approaches 64 / 0.1 s = 640/s. The server (ScriptedServer, asyncio) runs in its own
process so that it does not share the client's interpreter lock; nothing is cached (a fresh cache
folder per run, under the lab's state folder RS_HOME like the real cache: on some machines /tmp makes
each file creation ten times slower). Each figure is the best of --repeat runs; "cpu ms/req" is the client process's CPU
time per completion, which says whether the client itself is the bottleneck.

    python bench/throughput.py [--concurrency 64] [--instant 2000] [--latent 640] [--repeat 2] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import multiprocessing
import pstats
import tempfile
import time
from pathlib import Path

import openai

from rs_dagster.execution.cache import ResponseCache
from rs_dagster.execution.runner import CompletionRequest, Endpoint, Runner
from rs_dagster.settings import Settings
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

GOAL_RATIO = 0.8
PARAMS = {"temperature": 0.0, "max_tokens": 16}


def answer(delay_s: float, body: dict) -> Reply:
    return Reply(content="Adding them up.\n\nANSWER: 42", delay_s=delay_s)


def serve(delay_s: float, urls: multiprocessing.Queue) -> None:
    with ScriptedServer(functools.partial(answer, delay_s)) as server:
        urls.put(server.base_url)
        time.sleep(24 * 3600)


def requests_for(count: int, tag: str) -> list[CompletionRequest]:
    return [CompletionRequest(f"{tag}-{i}", [{"role": "user", "content": f"{tag}: what is {i} + 42?"}]) for i in range(count)]


def timed(work) -> tuple[float, float]:
    """(wall seconds, client CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_runner(base_url: str, requests: list[CompletionRequest], concurrency: int) -> None:
    Settings.from_env().home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=Settings.from_env().home) as cache_dir:
        endpoint = Endpoint(base_url, "bench", concurrency=concurrency, timeout_s=60)
        runner = Runner(endpoint, "bench-key", PARAMS, ResponseCache(Path(cache_dir)))
        results = runner.run(requests)
    assert all(r.error is None and not r.from_cache for r in results), "the Runner run had errors or cache hits"


def run_bare(base_url: str, requests: list[CompletionRequest], concurrency: int) -> None:
    async def main() -> None:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="bench-key", timeout=60, max_retries=0)
        semaphore = asyncio.Semaphore(concurrency)

        async def one(request: CompletionRequest) -> None:
            async with semaphore:
                await client.chat.completions.create(model="bench", messages=request.messages, **PARAMS)

        await asyncio.gather(*(one(r) for r in requests))
        await client.close()

    asyncio.run(main())


def measure(delay_s: float, count: int, concurrency: int, repeat: int, profile: bool) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    urls = context.Queue()
    server = context.Process(target=serve, args=(delay_s, urls), daemon=True)
    server.start()
    try:
        base_url = urls.get(timeout=60)
        run_bare(base_url, requests_for(concurrency, "warm-up"), concurrency)
        best = {"runner": (float("inf"), 0.0), "bare": (float("inf"), 0.0)}
        for attempt in range(repeat):
            for name, work in (("runner", run_runner), ("bare", run_bare)):
                batch = requests_for(count, f"{name}-{delay_s}-{attempt}")
                best[name] = min(best[name], timed(lambda work=work, batch=batch: work(base_url, batch, concurrency)))
        if profile:
            profiler = cProfile.Profile()
            batch = requests_for(count, f"profile-{delay_s}")
            profiler.runcall(run_runner, base_url, batch, concurrency)
            print(f"\nRunner profile at {delay_s * 1000:g} ms, {count} requests (top 25 by own time):")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    finally:
        server.kill()
    runner_rate, bare_rate = count / best["runner"][0], count / best["bare"][0]
    ideal = f"{concurrency / delay_s:.0f}/s" if delay_s else "-"
    print(
        f"{delay_s * 1000:>6g} ms {count:>6} {runner_rate:>10.0f}/s {bare_rate:>10.0f}/s {runner_rate / bare_rate:>7.0%}"
        f" {ideal:>8} {1000 * best['runner'][1] / count:>12.2f} {1000 * best['bare'][1] / count:>10.2f}"
    )
    return runner_rate, bare_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--instant", type=int, default=2000, help="requests against the instant server")
    parser.add_argument("--latent", type=int, default=640, help="requests against the 100 ms server")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="also profile one Runner run per latency")
    args = parser.parse_args()
    print(f"concurrency {args.concurrency}, best of {args.repeat}; server: ScriptedServer (asyncio) in its own process")
    print(f"{'latency':>9} {'n':>6} {'Runner':>12} {'bare':>12} {'ratio':>7} {'ideal':>8} {'Runner cpu ms/req':>12} {'bare cpu ms/req':>10}")
    ratios = [
        runner / bare
        for runner, bare in (
            measure(0.0, args.instant, args.concurrency, args.repeat, args.profile),
            measure(0.1, args.latent, args.concurrency, args.repeat, args.profile),
        )
    ]
    verdict = "met" if min(ratios) >= GOAL_RATIO else "MISSED"
    print(f"goal (Runner >= {GOAL_RATIO:.0%} of bare at both latencies): {verdict}")


if __name__ == "__main__":
    main()
