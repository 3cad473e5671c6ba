"""The nightly schedule on the cluster deployment (deploy/): partitions per minute with 1 and with 3 Celery
workers, measured in one invocation against scripted servers with a fixed latency per reply.

Each configuration gets a fresh lab and a fresh cluster on this machine (rs_dagster.testing.cluster:
PostgreSQL, Redis, dagster-webserver, dagster-daemon, N `dagster-celery worker` processes with one pool
process each). Task and model definitions are refreshed in-process first (not timed); then the schedule's
run requests (GraphQL scheduleDryRun, every model × task of the models' suites) are launched at once and
the clock runs until the last run has finished. One scripted server per model, so each model's runs
carry their own `rs/endpoint` and the queue runs one per model at a time: with 3 models, at most 3 runs
at once, whatever the number of workers. Figures: wall time, partitions per minute, the ratio 3 workers /
1 worker, and the mean in-worker time of each step.

    python bench/cluster.py [--models 3] [--tasks 13] [--samples 4] [--latency 2.0] [--concurrency 2] [--workers 1,3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import make_lab, scripted_model

from rs_dagster.definitions import build_definitions
from rs_dagster.defs.partitions import register_partitions
from rs_dagster.orchestrate import QUIET_LOGS
from rs_dagster.settings import PACKAGE_ROOT
from rs_dagster.testing.cluster import local_cluster
from rs_dagster.testing.scripted_server import Reply, ScriptedServer

ALL_TASKS = sorted(p.stem for p in (PACKAGE_ROOT / "assets" / "tasks").glob("*.yaml"))
ENV_KEYS = ("RS_DAGSTER_PG_URL", "RS_EXECUTOR", "RS_CELERY_BROKER", "RS_CELERY_BACKEND", "DAGSTER_HOME")


def measure(root: Path, workers: int, models: list[str], tasks: list[str], samples: int, latency_s: float, concurrency: int) -> dict:
    """One configuration: the schedule's runs on `workers` Celery workers; wall time and step times."""
    suite = {"tasks": tasks, "tiers": ["easy"], "precision": samples}
    with ExitStack() as stack:
        servers = [stack.enter_context(ScriptedServer(lambda body: Reply(content="Adding up.\n\nANSWER: 42", delay_s=latency_s))) for _ in models]
        lab = make_lab(root, {m: {**scripted_model(s.base_url, concurrency=concurrency), "suite": suite} for m, s in zip(models, servers)},
                       tuple(tasks))
        cluster = stack.enter_context(local_cluster(lab, workers=workers, logs=root / "logs"))
        saved = dict(os.environ)
        stack.callback(lambda: (os.environ.clear(), os.environ.update(saved)))
        os.environ.update({key: cluster.env[key] for key in ENV_KEYS})  # this process's instance and definitions
        instance = stack.enter_context(dg.DagsterInstance.from_config(str(lab.dagster_home)))
        defs = build_definitions(lab)
        register_partitions(instance, models, tasks)
        for job, keys in (("refresh_tasks", tasks), ("refresh_models", models)):
            for key in keys:
                assert defs.resolve_job_def(job).execute_in_process(run_config=QUIET_LOGS, instance=instance, partition_key=key).success
        requests = cluster.schedule_run_requests("nightly_evaluation")
        started = time.monotonic()
        run_ids = [cluster.launch_run_request(request) for request in requests]
        runs = cluster.wait_for_runs(run_ids, timeout_s=3600)
        elapsed = time.monotonic() - started
        failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
        if failed:
            raise SystemExit(f"{len(failed)} runs failed with {workers} workers: {failed}; logs in {root / 'logs'}")
        steps: dict[str, list[float]] = defaultdict(list)
        for run_id in run_ids:
            starts = {}
            for record in instance.all_logs(run_id):
                event = record.dagster_event
                if event is None or event.step_key is None:
                    continue
                if event.event_type == dg.DagsterEventType.STEP_START:
                    starts[event.step_key] = record.timestamp
                elif event.event_type == dg.DagsterEventType.STEP_SUCCESS:
                    steps[event.step_key].append(record.timestamp - starts[event.step_key])
        requests_sent = sum(server.completion_requests for server in servers)
    return {"workers": workers, "partitions": len(run_ids), "elapsed_s": elapsed, "requests": requests_sent,
            "steps": {step: statistics.mean(times) for step, times in steps.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=13, help="the first N tasks of assets/tasks, sorted by name")
    parser.add_argument("--samples", type=int, default=4, help="samples per easy-tier point")
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per reply of the scripted servers")
    parser.add_argument("--concurrency", type=int, default=2, help="each model's request concurrency")
    parser.add_argument("--workers", default="1,3", help="comma-separated worker counts, measured in this order")
    parser.add_argument("--keep", type=Path, default=None, help="keep the labs and logs under this folder")
    args = parser.parse_args()
    models = [f"model{i + 1}" for i in range(args.models)]
    tasks = ALL_TASKS[: args.tasks]
    root = args.keep or Path(tempfile.mkdtemp(prefix="rs-bench-cluster-"))
    print(f"{len(models)} models × {len(tasks)} tasks, easy tier, {args.samples} samples per point, {args.latency:g} s per reply, "
          f"concurrency {args.concurrency} per model; labs under {root}", flush=True)
    results = []
    for workers in (int(w) for w in args.workers.split(",")):
        result = measure(root / f"workers{workers}", workers, models, tasks, args.samples, args.latency, args.concurrency)
        results.append(result)
        print(f"{workers} worker(s): {result['partitions']} partitions, {result['requests']} requests in {result['elapsed_s']:.0f} s = "
              f"{60 * result['partitions'] / result['elapsed_s']:.1f} partitions/min; mean step s: "
              + ", ".join(f"{step} {mean:.1f}" for step, mean in sorted(result["steps"].items())), flush=True)
    if len(results) >= 2:
        first, last = results[0], results[-1]
        print(f"ratio {last['workers']} / {first['workers']} workers: {first['elapsed_s'] / last['elapsed_s']:.2f}x partitions/min")


if __name__ == "__main__":
    main()
