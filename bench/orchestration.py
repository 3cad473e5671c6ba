"""The user's path end to end: `rs eval` as a process, as a user runs it, against a bare AsyncOpenAI
client process sending as many requests at the same concurrency to the same loopback server: the client as
openai builds it by default (httpx transport; the goal's baseline) and with the aiohttp transport that rs's
runner uses (openai[aiohttp]), so the ratio shows both the transport's gain and what rs costs on top.

Goals (issue 13): 2,002 arithmetic completions (every tier, 91 items per point) through `rs eval` at
>= 80% of the bare client's throughput at concurrency 64, with 0 ms and 100 ms server latency; the same
evaluation fully cached (0 requests) in under 2 s; 13 tasks x 3 models, easy tier, 4 items per point,
in under 15 s (one `rs eval --model a,b,c`, serial and with --parallel 4, against a server with 100 ms
latency: the in-machine parallel speed-up of issue 14); the DuckDB file in proportion to what it stores
(bytes per completion and per test case) and flat when the same scope is evaluated again. The server (ScriptedServer) runs in its own process;
each cold `rs eval` gets a fresh lab (state folder, cache, DuckDB file, Dagster instance) under RS_HOME,
inputs from the repository's assets/. The commands alternate (rs, bare, rs, bare ...) so each ratio
compares runs made under the same machine load; medians are printed.

With --peers PYTHON (default /tmp/peers-venv/bin/python when it exists; see bench/peers.py for its set-up),
lm-evaluation-harness and inspect_ai send the same 2,002 completions to the same server in the same
alternation, each through its own task, model client and scorer.

    python bench/orchestration.py [--concurrency 64] [--repeat 3] [--rewrites 10] [--parallel 4] [--skip-breadth] [--skip-throughput] [--peers PYTHON]
    python bench/orchestration.py bare URL COUNT CONCURRENCY [httpx|aiohttp]     # the bare client alone (one process)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from throughput import serve  # the same loopback server as bench/throughput.py (bench/ is on sys.path)

from rs_dagster.models.registry import register_local_model
from rs_dagster.settings import PACKAGE_ROOT, Settings

GOAL_RATIO, GOAL_CACHED_S, GOAL_BREADTH_S = 0.8, 2.0, 15.0
ALL_TIERS = ["--tasks", "arithmetic", "--tier", "easy,medium,hard", "--samples", "91"]  # 22 points x 91 = 2,002
ALL_TASKS = sorted(p.stem for p in (PACKAGE_ROOT / "assets" / "tasks").glob("*.yaml"))
SMALL = ["--tasks", ",".join(ALL_TASKS), "--tier", "easy", "--samples", "4"]
RS = [sys.executable, "-c", "from rs_dagster.cli import main; main()"]
PEERS = ("lm-eval", "inspect")  # bench/peers.py's modes
PEERS_PYTHON = Path("/tmp/peers-venv/bin/python")


class Server:
    """ScriptedServer in a process of its own, so it shares no interpreter lock with the clients."""

    def __init__(self, delay_s: float):
        context = multiprocessing.get_context("spawn")
        urls = context.Queue()
        self.process = context.Process(target=serve, args=(delay_s, urls), daemon=True)
        self.process.start()
        self.url: str = urls.get(timeout=60)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()


def bare(url: str, count: int, concurrency: int, transport: str = "httpx") -> None:
    """`count` chat completions with the openai client alone, `concurrency` in flight."""
    import openai

    async def main() -> None:
        http = {"http_client": openai.DefaultAioHttpClient()} if transport == "aiohttp" else {}
        client = openai.AsyncOpenAI(base_url=url, api_key="bench-key", timeout=60, max_retries=0, **http)
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with semaphore:
                messages = [{"role": "user", "content": f"Evaluate 3 + {i} * (4 - 2). End with ANSWER: <integer>."}]
                await client.chat.completions.create(model="scripted", messages=messages, temperature=0.0, max_tokens=16)

        await asyncio.gather(*(one(i) for i in range(count)))
        await client.close()

    asyncio.run(main())


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, **(env or {})}, cwd=PACKAGE_ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


class Lab:
    """A fresh state folder (RS_HOME) under the lab's own state folder (on some machines /tmp is slow)."""

    def __init__(self, root: Path):
        self.home = Path(tempfile.mkdtemp(dir=root))
        self.env = {"RS_HOME": str(self.home), "DAGSTER_HOME": str(self.home / "dagster"), "RS_INPUTS": str(PACKAGE_ROOT / "assets")}

    def eval(self, model: str, url: str, scope: list[str], concurrency: int) -> float:
        return timed([*RS, "eval", "--model", model, "--base-url", url, "--served-model", "scripted", "--concurrency", str(concurrency), *scope], self.env)

    def register(self, models: list[str], url: str, concurrency: int) -> None:
        """As `rs eval --base-url` does, without evaluating: models.local.yaml of this lab."""
        settings = Settings(home=self.home, inputs=PACKAGE_ROOT / "assets", db_path=self.db, dagster_home=self.home / "dagster")
        for model in models:
            register_local_model(settings, model, {"base_url": url, "served_model": "scripted", "concurrency": concurrency})

    def eval_many(self, models: list[str], scope: list[str], parallel: int) -> float:
        return timed([*RS, "eval", "--model", ",".join(models), "--parallel", str(parallel), *scope], self.env)

    @property
    def db(self) -> Path:
        return self.home / "rs.duckdb"

    def rows(self, table: str) -> int:
        with duckdb.connect(str(self.db), read_only=True) as con:
            row = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            return int(row[0]) if row else 0

    def size(self) -> int:
        return self.db.stat().st_size

    def runs(self) -> int:
        with sqlite3.connect(self.home / "dagster" / "history" / "runs.db") as con:
            return int(con.execute("SELECT count(*) FROM runs").fetchone()[0])

    def storage_line(self) -> str:
        completions, cases = self.rows("completions"), self.rows("test_cases")
        size = self.size()
        return (f"DuckDB {size / 1e6:.1f} MB: {completions} completions, {cases} test cases; "
                f"{size / max(completions, 1) / 1e3:.1f} kB per completion, {size / max(cases, 1) / 1e3:.1f} kB per test case")

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def throughput(root: Path, delay_s: float, concurrency: int, repeat: int, peers: str | None) -> tuple[float, float]:
    """(median rs/bare throughput ratio, median cached seconds) at one server latency."""
    cold, cached, plain, plain_aiohttp, ratios = [], [], [], [], []
    peer_times: dict[str, list[float]] = {name: [] for name in (PEERS if peers else ())}
    with Server(delay_s) as server:
        timed([sys.executable, __file__, "bare", server.url, str(concurrency), str(concurrency)])  # warm-up
        for attempt in range(repeat):
            lab = Lab(root)
            cold.append(lab.eval("bench", server.url, ALL_TIERS, concurrency))
            cached.append(lab.eval("bench", server.url, ALL_TIERS, concurrency))
            plain.append(timed([sys.executable, __file__, "bare", server.url, "2002", str(concurrency)]))
            plain_aiohttp.append(timed([sys.executable, __file__, "bare", server.url, "2002", str(concurrency), "aiohttp"]))
            for name, times in peer_times.items():
                times.append(timed([str(peers), str(PACKAGE_ROOT / "bench" / "peers.py"), name, server.url, "2002", str(concurrency)]))
            ratios.append(plain[-1] / cold[-1])
            if attempt == repeat - 1:
                print(f"  {lab.storage_line()}")
            lab.remove()
    print(
        f"{delay_s * 1000:>6g} ms  rs eval cold {median(cold):6.2f} s ({2002 / median(cold):5.0f}/s)  "
        f"bare {median(plain):6.2f} s ({2002 / median(plain):5.0f}/s)  rs/bare throughput {median(ratios):4.0%} "
        f"[{min(ratios):.0%}-{max(ratios):.0%}]  cached re-run {median(cached):5.2f} s"
    )
    print(f"{'':>9}bare on aiohttp {median(plain_aiohttp):6.2f} s ({2002 / median(plain_aiohttp):5.0f}/s)  "
          f"rs/bare-on-aiohttp throughput {median(plain_aiohttp) / median(cold):4.0%}")
    for name, times in peer_times.items():
        print(f"{'':>9}{name:<9} {median(times):6.2f} s ({2002 / median(times):5.0f}/s)  rs/{name} throughput "
              f"x{median(times) / median(cold):.2f}")
    return median(ratios), median(cached)


def scaling(root: Path, concurrency: int) -> None:
    """rs/bare throughput as the evaluation grows (every tier of arithmetic, 9 / 91 / 364 items per point,
    0 ms): the fixed cost of the Dagster runs is paid once, the per-completion cost scales."""
    figures = []
    with Server(0.0) as server:
        for samples in (9, 91, 364):
            count = 22 * samples
            lab = Lab(root)
            cold = lab.eval("bench", server.url, [*ALL_TIERS[:-1], str(samples)], concurrency)
            lab.remove()
            plain = timed([sys.executable, __file__, "bare", server.url, str(count), str(concurrency)])
            figures.append(f"{count}: rs {cold:.2f} s, bare {plain:.2f} s ({plain / cold:.0%})")
    print("  scaling at 0 ms: " + "; ".join(figures))


def breadth(root: Path, concurrency: int, rewrites: int, repeat: int, parallel: int) -> float:
    """13 tasks x 3 models in one `rs eval`, serial and side by side (alternately, fresh labs), against a
    server answering in 100 ms; then the file size over re-runs of the same scope."""
    models = ["bench-a", "bench-b", "bench-c"]
    serial, side_by_side = [], []
    with Server(0.1) as server:
        for _ in range(repeat):
            for workers, times in ((1, serial), (parallel, side_by_side)):
                lab = Lab(root)
                lab.register(models, server.url, concurrency)
                times.append(lab.eval_many(models, SMALL, workers))
                lab.remove()
        print(f"13 tasks x 3 models, 100 ms, one command: serial {median(serial):6.2f} s, --parallel {parallel} "
              f"{median(side_by_side):6.2f} s: speed-up x{median(serial) / median(side_by_side):.2f} "
              f"[{min(serial) / max(side_by_side):.2f}-{max(serial) / min(side_by_side):.2f}]")
    with Server(0.0) as server:
        lab = Lab(root)
        one = lab.eval("bench-a", server.url, SMALL, concurrency)
        print(f"13 tasks x 1 model, 0 ms: {one:6.2f} s   {lab.storage_line()}")
        sizes = []
        for _ in range(rewrites):
            lab.eval("bench-a", server.url, SMALL, concurrency)
            sizes.append(lab.size())
        print(f"the same scope re-run {rewrites} times: file {sizes[0] / 1e6:.1f} MB -> {sizes[-1] / 1e6:.1f} MB "
              f"({(sizes[-1] - sizes[0]) / sizes[0]:+.1%} from the first re-run; {lab.runs()} Dagster runs in the instance)")
        lab.remove()
    return min(median(serial), median(side_by_side))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "bare":
        bare(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-breadth", action="store_true")
    parser.add_argument("--rewrites", type=int, default=10, help="re-runs of the first model's small scope (file size)")
    parser.add_argument("--parallel", type=int, default=4, help="runs side by side in the 13 x 3 comparison")
    parser.add_argument("--peers", default=str(PEERS_PYTHON) if PEERS_PYTHON.exists() else None,
                        help="a python with lm-eval and inspect-ai installed (bench/peers.py); none: peers left out")
    args = parser.parse_args()
    root = Settings.from_env().home / "bench-orchestration"
    root.mkdir(parents=True, exist_ok=True)
    print(f"concurrency {args.concurrency}; medians of {args.repeat}; load: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.peers:
        versions = subprocess.run([args.peers, str(PACKAGE_ROOT / "bench" / "peers.py"), "versions"], capture_output=True, text=True, check=True)
        print(f"peers: {versions.stdout.strip()}")
    else:
        print("peers: left out (no --peers python with lm-eval and inspect-ai; see bench/peers.py)")
    verdicts = []
    if not args.skip_throughput:
        results = [throughput(root, delay_s, args.concurrency, args.repeat, args.peers) for delay_s in (0.0, 0.1)]
        scaling(root, args.concurrency)
        verdicts.append(f"rs >= {GOAL_RATIO:.0%} of bare: {'met' if min(r for r, _ in results) >= GOAL_RATIO else 'MISSED'}")
        verdicts.append(f"cached < {GOAL_CACHED_S:g} s: {'met' if max(c for _, c in results) < GOAL_CACHED_S else 'MISSED'}")
    if not args.skip_breadth:
        verdicts.append(f"13 x 3 < {GOAL_BREADTH_S:g} s: {'met' if breadth(root, args.concurrency, args.rewrites, args.repeat, args.parallel) < GOAL_BREADTH_S else 'MISSED'}")
    print("goals: " + "; ".join(verdicts))


if __name__ == "__main__":
    main()
