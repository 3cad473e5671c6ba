"""The cost of deciding that an evaluation would change nothing, read from the warehouse (rs_dagster.freshness),
on a lab of 2,002 completions and on one of 100,100, through `rs eval` as a user runs it (a subprocess)
and `rs status`; baseline: the same commands on the small lab, measured in the same run.

The small lab is real: `rs eval` of every tier of arithmetic at 91 items per point (2,002 completions)
against a loopback scripted server. The large one copies it: its rows (completions, prompts, scores, points,
analyses, scopes and the requests each completed scope needed) cloned under 49 more registered models in
SQL, then each clone's stages and the report recorded as `rs eval` records them after a run. Goal (issue 22):
the no-op `rs eval` at 100,000 completions stays under the 2 s no-op goal of issue 13.

    python bench/freshness.py [--repeat 3] [--clones 49] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import yaml

from rs_dagster.freshness import EVALUATION, REPORT, Snapshot
from rs_dagster.models.registry import load_models
from rs_dagster.settings import PACKAGE_ROOT, Settings
from rs_dagster.storage.warehouse import Warehouse
from rs_dagster.tasks.manifold import load_manifolds
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

RS = [sys.executable, "-c", "from rs_dagster.cli import main; main()"]
SCOPE = ["--tasks", "arithmetic", "--tier", "easy,medium,hard", "--samples", "91"]
CLONED = ("completions", "prompts", "scored_results", "points", "compression", "compression_points", "hazard", "survival",
          "evaluated_scopes", "scope_coverage")
NO_OP_GOAL_S = 2.0


def rs(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run([*RS, *args], env={**os.environ, **env}, capture_output=True, text=True, cwd=PACKAGE_ROOT)
    if result.returncode != 0:
        raise SystemExit(f"rs {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - started, result.stderr + result.stdout


def lab(root: Path, models: dict[str, dict]) -> tuple[Settings, dict[str, str]]:
    inputs = root / "inputs"
    shutil.copytree(PACKAGE_ROOT / "assets", inputs)
    (inputs / "models.yaml").write_text(yaml.safe_dump({"models": models}))
    home = root / ".rs"
    settings = Settings(home=home, inputs=inputs, db_path=home / "rs.duckdb", dagster_home=home / "dagster")
    return settings, {"RS_HOME": str(home), "RS_INPUTS": str(inputs), "DAGSTER_HOME": str(home / "dagster")}


def clone(settings: Settings, names: list[str]) -> None:
    """Every row of model m00 copied under each of `names`, then their stages and the report recorded."""
    with duckdb.connect(str(settings.db_path)) as con:
        for table in CLONED:
            columns = [c for c, *_ in con.execute(f'DESCRIBE "{table}"').fetchall()]
            for name in names:
                chosen = ", ".join(f"'{name}' AS model" if c == "model" else f'"{c}"' for c in columns)
                con.execute(f'INSERT INTO "{table}" SELECT {chosen} FROM "{table}" WHERE model = \'m00\'')
    models, spec = load_models(settings), load_manifolds(settings.tasks_dir)["arithmetic"]
    snapshot = Snapshot(settings, Warehouse(settings.db_path))
    for name in names:
        snapshot.record(EVALUATION, "bench", models[name], spec)
    Snapshot(settings, Warehouse(settings.db_path)).record(REPORT, "bench")
    Warehouse(settings.db_path).release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clones", type=int, default=49)
    parser.add_argument("--keep", type=Path, help="build the labs in this (new) folder and keep them")
    args = parser.parse_args()
    names = [f"m{i:02d}" for i in range(args.clones + 1)]
    with ScriptedServer(lambda body: Reply(content="ANSWER: 7")) as server, tempfile.TemporaryDirectory(dir=PACKAGE_ROOT / ".rs") as scratch:
        tmp = args.keep or scratch
        entry = {"base_url": server.base_url, "served_model": "scripted", "sampler": "greedy", "concurrency": 64}
        small, small_env = lab(Path(tmp) / "small", {"m00": entry})
        seconds, _ = rs(["eval", "--model", "m00", *SCOPE], small_env)
        print(f"small lab: first `rs eval` {seconds:.1f}s")
        large, large_env = lab(Path(tmp) / "large", dict.fromkeys(names, entry))
        shutil.copytree(small.home, large.home, ignore=shutil.ignore_patterns("report"))
        started = time.perf_counter()
        clone(large, names[1:])
        rs(["eval", "--model", "m00", *SCOPE], large_env)  # the report refreshed over every clone
        print(f"large lab: {args.clones} clones recorded in {time.perf_counter() - started:.1f}s")
        for settings in (small, large):
            with duckdb.connect(str(settings.db_path), read_only=True) as con:
                count = con.sql("SELECT count(*) FROM completions").fetchone()[0]
            print(f"  {settings.home.parent.name}: {count} completions, {settings.db_path.stat().st_size / 1e6:.1f} MB")

        commands = {
            "rs eval (no-op)": lambda models, env: rs(["eval", "--model", ",".join(models), *SCOPE], env),
            "rs status": lambda models, env: rs(["status", "--model", ",".join(models), *SCOPE[:2], "--tier", "easy,medium,hard", "--samples", "91"], env),
        }
        for label, command in commands.items():
            times: dict[str, list[float]] = {"small": [], "large": []}
            for _ in range(args.repeat):  # alternating, so both see the same machine load
                for size, models, env in (("small", names[:1], small_env), ("large", names, large_env)):
                    seconds, text = command(models, env)
                    if label.startswith("rs eval") and "Nothing changed" not in text:
                        raise SystemExit(f"{size}: rs eval was not a no-op:\n{text[-2000:]}")
                    times[size].append(seconds)
            small_s, large_s = statistics.median(times["small"]), statistics.median(times["large"])
            goal = f"  goal < {NO_OP_GOAL_S:.0f}s [{'OK' if large_s < NO_OP_GOAL_S else 'MISSED'}]" if label.startswith("rs eval") else ""
            print(f"{label:18} 2,002 completions {small_s:.2f}s   {len(names) * 2002:,} completions ({len(names)} models) {large_s:.2f}s"
                  f"   ratio {large_s / small_s:.2f}{goal}")


if __name__ == "__main__":
    main()
