"""How long the report's export takes from scratch and incrementally, after one model × task changed.

A real scripted evaluation through Dagster (3 models, every task of assets/tasks by default, the easy tier,
every projection and surface unless --small, --samples items per point) whose replies carry reasoning traces of varied
length (some truncated at max_tokens, some looping), so every section of the task views has data. Then,
alternately: a cold export (the report folder removed first) and an incremental one after one model ×
task's `points` and `leaderboard` rows changed (as a re-evaluation of that pair rewrites them). Each figure
is the median of --repeat runs; the load average is printed before and after, as another process may load
the machine.

    python bench/export.py [--tasks 13] [--samples 8] [--small] [--repeat 5] [--lab DIR]

With --lab DIR the lab is built there once and reused by later runs (delete DIR to rebuild it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from rs_dagster.defs.resources import EvalScope
from rs_dagster.explore.export import export
from rs_dagster.orchestrate import evaluate
from rs_dagster.settings import PACKAGE_ROOT, Settings
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

sys.path.insert(0, str(PACKAGE_ROOT / "tests"))
from helpers import Oracle, make_lab, scripted_model  # the tests' lab builder

MODELS = ("small", "medium", "large")
ALL_TASKS = tuple(sorted(p.stem for p in (PACKAGE_ROOT / "assets" / "tasks").glob("*.yaml")))


class Traces:
    """Right with a probability that grows with the model's size and falls with the item's index; a
    reasoning trace of 40 to 400 words (a tenth of them a loop), a twelfth of the replies truncated."""

    def __init__(self, oracle: Oracle):
        self.oracle = oracle

    def __call__(self, body: dict[str, Any]) -> Reply:
        known = self.oracle.lookup(body)
        draw = int(hashlib.sha256(f"{body['model']}|{known.task}|{known.params}|{known.index}".encode()).hexdigest()[:8], 16)
        words = 40 + draw % 360
        looping = "Let me check again. " * (words // 4)
        reasoning = looping if draw % 10 == 0 else " ".join(f"step{(draw >> (i % 24)) % 97}" for i in range(words))
        if draw % 12 == 0:
            return Reply(content=None, reasoning_content=reasoning, finish_reason="length", completion_tokens=2 * words)
        right = (draw % 100) < 40 + 20 * MODELS.index(body["model"])
        answer = known.answer if right else "none of these"
        return Reply(content=f"ANSWER: {answer}", reasoning_content=reasoning, completion_tokens=words + 5)


def build(root: Path, tasks: tuple[str, ...], samples: int, small: bool = False) -> Settings:
    oracle = Oracle(make_lab(root / "probe", {}, tasks=tasks), items_per_point=samples)
    grid = {} if small else {"projections": ["all"], "surfaces": ["all"]}
    with ScriptedServer(Traces(oracle), model_ids=MODELS) as server, dg.instance_for_test() as instance:
        settings = make_lab(root / "lab", {m: scripted_model(server.base_url, served_model=m) for m in MODELS}, tasks=tasks)
        evaluate(
            settings,
            instance,
            list(MODELS),
            list(tasks),
            EvalScope(tiers=["easy"], precision=str(samples), **grid),
        )
    return settings


def change_one_pair(db: Path, model: str, task: str, step: int) -> None:
    """A re-evaluation of `model` × `task`, as the tables see it: its points' and leaderboard rows' accuracies move."""
    with duckdb.connect(str(db)) as con:
        for table in ("points", "leaderboard"):
            con.execute(
                f"UPDATE {table} SET accuracy = coalesce(accuracy, 0) * 0.5 + $step / 1000.0 WHERE model = $model AND task = $task",
                {"step": step, "model": model, "task": task},
            )


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=len(ALL_TASKS), help="the first N tasks of assets/tasks")
    parser.add_argument("--samples", type=int, default=8, help="items per grid point")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="the easy tier's points only (no projection or surface)")
    parser.add_argument("--lab", type=Path, help="build the lab here once and reuse it")
    args = parser.parse_args()
    tasks = ALL_TASKS[: args.tasks]
    scratch = Path(tempfile.mkdtemp(prefix="rs-bench-export-"))
    try:
        lab_root = args.lab or scratch / "built"
        if not (lab_root / "lab" / ".rs" / "rs.duckdb").exists():
            started = time.perf_counter()
            shutil.rmtree(lab_root, ignore_errors=True)
            build(lab_root, tasks, args.samples, args.small)
            print(f"lab built in {time.perf_counter() - started:.0f} s")
        db = scratch / "rs.duckdb"  # a copy: the bench's changes never reach a kept lab
        shutil.copy(lab_root / "lab" / ".rs" / "rs.duckdb", db)
        cache = lab_root / "lab" / ".rs" / "cache"
        with duckdb.connect(str(db), read_only=True) as con:
            shape = con.execute("SELECT count(DISTINCT model), count(DISTINCT task), count(*), sum(n) FROM points").fetchone()
            changed_task = con.execute("SELECT min(task) FROM points").fetchone()[0]  # type: ignore[index]
        print(f"lab: {shape[0]} models x {shape[1]} tasks, {shape[2]} grid points, {shape[3]} samples")  # type: ignore[index]
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
        folder = scratch / "report"
        first = export(db, folder, cache_dir=cache)  # builds the cached Vega bundle
        print(f"views: {len(first.routes)} ({first.rebuilt} rebuilt, {first.kept} kept)")
        cold, incremental, unchanged = [], [], []
        for step in range(args.repeat):
            shutil.rmtree(folder)
            cold.append(timed(lambda: export(db, folder, cache_dir=cache)))
            unchanged.append(timed(lambda: export(db, folder, cache_dir=cache)))
            change_one_pair(db, MODELS[0], changed_task, step + 1)
            started = time.perf_counter()
            last = export(db, folder, cache_dir=cache)
            incremental.append(time.perf_counter() - started)
        print(f"after {MODELS[0]} x {changed_task} changed: {last.rebuilt} views rebuilt, {last.kept} kept")
        cold_s, incremental_s, unchanged_s = (statistics.median(runs) for runs in (cold, incremental, unchanged))
        print(f"cold export:        {cold_s:.3f} s  (runs: {', '.join(f'{x:.3f}' for x in cold)})")
        print(f"incremental, 1 pair changed: {incremental_s:.3f} s  (runs: {', '.join(f'{x:.3f}' for x in incremental)})")
        print(f"incremental, nothing changed: {unchanged_s:.3f} s  (runs: {', '.join(f'{x:.3f}' for x in unchanged)})")
        print(f"cold / incremental (1 pair): {cold_s / incremental_s:.1f}x; cold / unchanged: {cold_s / unchanged_s:.1f}x")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
