"""The user's path end to end: `rs eval` as a process, as a user runs it, against a bare AsyncOpenAI
client process sending as many requests at the same concurrency to the same loopback server: the client as
openai builds it by default (httpx transport; the goal's baseline) and with the aiohttp transport that rs's
runner uses (openai[aiohttp]), so the ratio shows both the transport's gain and what rs costs on top.

Goals (issue 26, against Dagster's own floor measured in the same run by bench/dagster_floor.py):
rs's orchestration per model x task partition (13 tasks x 3 models, easy tier, 4 items per point, one
`rs eval --model a,b,c` against a server answering in 100 ms: (wall - the requests' wait - the same command
with nothing changed) / 39) within 2x Dagster's floor per run; that command under 20 s with default flags;
8,008 completions through `rs eval` at >= 95% of the bare client's throughput (0 ms); 2,002 at >= x1.5
lm-eval's; `rs eval` with nothing changed under 1.5 s. Also printed: 2,002 completions at 0 and 100 ms
latency against the bare client, cached re-runs, the DuckDB file in proportion to what it stores and flat
when the same scope is evaluated again. The server (ScriptedServer) runs in its own process;
each cold `rs eval` gets a fresh lab (state folder, cache, DuckDB file, Dagster instance) under RS_HOME,
inputs from the repository's assets/. The commands alternate (rs, bare, rs, bare ...) so each ratio
compares runs made under the same machine load; medians are printed.

With --peers PYTHON (default /tmp/peers-venv/bin/python when it exists; see bench/peers.py for its set-up),
lm-evaluation-harness and inspect_ai send the same 2,002 completions to the same server in the same
alternation, each through its own task, model client and scorer.

    python bench/orchestration.py [--concurrency 64] [--repeat 3] [--rewrites 10] [--skip-floor] [--skip-breadth] [--skip-throughput] [--peers PYTHON]
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
from dagster_floor import STEP_PER_ASSET, floor_per_run  # bench/ is on sys.path
from throughput import serve  # the same loopback server as bench/throughput.py (bench/ is on sys.path)

from rs_dagster.models.registry import register_local_model
from rs_dagster.settings import PACKAGE_ROOT, Settings

GOAL_RATIO, GOAL_PEER, GOAL_CACHED_S, GOAL_BREADTH_S, GOAL_FLOOR_RATIO = 0.95, 1.5, 1.5, 20.0, 2.0
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
        """As `rs eval --base-url` does, without evaluating: models.local.yaml of this lab. Each model has a
        served name of its own, so each sends its own requests (one served name would share one cache)."""
        settings = Settings(home=self.home, inputs=PACKAGE_ROOT / "assets", db_path=self.db, dagster_home=self.home / "dagster")
        for model in models:
            register_local_model(settings, model, {"base_url": url, "served_model": f"scripted-{model}", "concurrency": concurrency})

    def eval_many(self, models: list[str], scope: list[str], parallel: int | None) -> float:
        """`rs eval` of several models, `parallel` runs side by side (None: rs's default)."""
        return timed([*RS, "eval", "--model", ",".join(models), *(["--parallel", str(parallel)] if parallel else []), *scope], self.env)

    def request_seconds(self) -> tuple[float, int]:
        """(seconds a serial evaluation waits for the server: per model x task, its slowest request sent, summed;
        requests sent). A partition's requests are all in flight at once (concurrency above its count)."""
        with duckdb.connect(str(self.db), read_only=True) as con:
            row = con.execute("SELECT sum(slowest), sum(sent) FROM (SELECT max(latency_s) AS slowest, count(*) AS sent FROM completions "
                              "WHERE NOT from_cache AND error IS NULL GROUP BY model, task)").fetchone()
        return (float(row[0] or 0), int(row[1] or 0)) if row else (0.0, 0)

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


def throughput(root: Path, delay_s: float, concurrency: int, repeat: int, peers: str | None) -> tuple[float, float, dict[str, float]]:
    """(median rs/bare throughput ratio, median cached seconds, rs's throughput over each peer's) at one server latency."""
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
    load = os.getloadavg()[0]
    print(
        f"{delay_s * 1000:>6g} ms  rs eval cold {median(cold):6.2f} s ({2002 / median(cold):5.0f}/s)  "
        f"bare {median(plain):6.2f} s ({2002 / median(plain):5.0f}/s)  rs/bare throughput {median(ratios):4.0%} "
        f"[{min(ratios):.0%}-{max(ratios):.0%}]  cached re-run {median(cached):5.2f} s  (load {load:.2f})"
    )
    print(f"{'':>9}bare on aiohttp {median(plain_aiohttp):6.2f} s ({2002 / median(plain_aiohttp):5.0f}/s)  "
          f"rs/bare-on-aiohttp throughput {median(plain_aiohttp) / median(cold):4.0%}")
    for name, times in peer_times.items():
        print(f"{'':>9}{name:<9} {median(times):6.2f} s ({2002 / median(times):5.0f}/s)  rs/{name} throughput "
              f"x{median(times) / median(cold):.2f}  (load {load:.2f})")
    return median(ratios), median(cached), {name: median(times) / median(cold) for name, times in peer_times.items()}


def scaling(root: Path, concurrency: int) -> float:
    """rs/bare throughput as the evaluation grows (every tier of arithmetic, 9 / 91 / 364 items per point,
    0 ms): the fixed cost of the Dagster runs is paid once, the per-completion cost scales. Returns the ratio
    at the largest."""
    figures, ratio = [], 0.0
    with Server(0.0) as server:
        for samples in (9, 91, 364):
            count = 22 * samples
            lab = Lab(root)
            cold = lab.eval("bench", server.url, [*ALL_TIERS[:-1], str(samples)], concurrency)
            lab.remove()
            plain = timed([sys.executable, __file__, "bare", server.url, str(count), str(concurrency)])
            ratio = plain / cold
            figures.append(f"{count}: rs {cold:.2f} s, bare {plain:.2f} s ({ratio:.0%})")
    print(f"  scaling at 0 ms: {'; '.join(figures)}  (load {os.getloadavg()[0]:.2f})")
    return ratio


def breadth(root: Path, concurrency: int, rewrites: int, repeat: int, floor_s: float | None) -> tuple[float, float]:
    """13 tasks x 3 models in one `rs eval` (fresh labs, alternately one run at a time and rs's default side by
    side), against a server answering in 100 ms; then the same command again (nothing changed: start-up, the
    freshness check and the printed results). rs's orchestration per partition = (wall - the requests' wait -
    the no-op command) / 39, against Dagster's floor per run of the same run (bench/dagster_floor.py); then the
    file size over re-runs of the same scope. Returns (wall, orchestration per partition) with default flags."""
    models = ["bench-a", "bench-b", "bench-c"]
    pairs = len(models) * len(ALL_TASKS)
    walls: dict[str, list[float]] = {"--parallel 1": [], "default": []}
    per_partition: dict[str, list[float]] = {"--parallel 1": [], "default": []}
    noops: list[float] = []
    with Server(0.1) as server:
        for _ in range(repeat):
            for label, parallel in (("--parallel 1", 1), ("default", None)):
                lab = Lab(root)
                lab.register(models, server.url, concurrency)
                load = os.getloadavg()[0]
                wall = lab.eval_many(models, SMALL, parallel)
                noop = lab.eval_many(models, SMALL, parallel)
                waited, sent = lab.request_seconds()
                walls[label].append(wall)
                per_partition[label].append((wall - waited - noop) / pairs)
                noops.append(noop)
                print(f"  13 x 3, 100 ms, {label:<12}: {wall:6.2f} s ({sent} requests sent, {waited:.2f} s waiting for them), "
                      f"nothing changed {noop:.2f} s, orchestration {per_partition[label][-1] * 1000:.0f} ms a partition  (load {load:.2f})")
                lab.remove()
    for label in walls:
        ratio = f", x{median(per_partition[label]) / floor_s:.2f} Dagster's floor ({floor_s * 1000:.0f} ms a run)" if floor_s else ""
        print(f"13 tasks x 3 models, 100 ms, one command, {label}: {median(walls[label]):6.2f} s; orchestration "
              f"{median(per_partition[label]) * 1000:.0f} ms a partition{ratio}  (load {os.getloadavg()[0]:.2f})")
    print(f"no-op rs eval of 13 x 3 (nothing changed): {median(noops):.2f} s [{min(noops):.2f}-{max(noops):.2f}]")
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
    return median(walls["default"]), median(per_partition["default"])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "bare":
        bare(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-floor", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-breadth", action="store_true")
    parser.add_argument("--rewrites", type=int, default=10, help="re-runs of the first model's small scope (file size)")
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
    floor_s = None if args.skip_floor else floor_per_run(args.repeat)[STEP_PER_ASSET]
    verdicts = []
    if not args.skip_throughput:
        results = [throughput(root, delay_s, args.concurrency, args.repeat, args.peers) for delay_s in (0.0, 0.1)]
        largest = scaling(root, args.concurrency)
        verdicts.append(f"rs >= {GOAL_RATIO:.0%} of bare at 8,008 completions: {'met' if largest >= GOAL_RATIO else 'MISSED'} ({largest:.0%})")
        if args.peers:
            versus = min(peers.get("lm-eval", 0.0) for _, _, peers in results)
            verdicts.append(f"rs >= x{GOAL_PEER:g} lm-eval: {'met' if versus >= GOAL_PEER else 'MISSED'} (x{versus:.2f})")
        cached = max(c for _, c, _ in results)
        verdicts.append(f"cached < {GOAL_CACHED_S:g} s: {'met' if cached < GOAL_CACHED_S else 'MISSED'} ({cached:.2f} s)")
    if not args.skip_breadth:
        wall, per_partition = breadth(root, args.concurrency, args.rewrites, args.repeat, floor_s)
        verdicts.append(f"13 x 3 < {GOAL_BREADTH_S:g} s: {'met' if wall < GOAL_BREADTH_S else 'MISSED'} ({wall:.1f} s)")
        if floor_s:
            verdicts.append(f"orchestration <= {GOAL_FLOOR_RATIO:g}x the floor: {'met' if per_partition <= GOAL_FLOOR_RATIO * floor_s else 'MISSED'} "
                            f"(x{per_partition / floor_s:.2f})")
    print(f"goals: {'; '.join(verdicts)}  (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
