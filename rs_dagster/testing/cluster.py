"""The deployment of deploy/ on one machine, for tests and benchmarks: PostgreSQL (the Dagster instance),
Redis (the Celery broker and result backend), `dagster-webserver`, `dagster-daemon` and N
`dagster-celery worker` processes, all on 127.0.0.1, all started here and all stopped on exit.

    with local_cluster(settings, workers=3, logs=tmp / "logs") as cluster:
        requests = cluster.schedule_run_requests("nightly_evaluation")   # the schedule, evaluated by its code location
        run_ids = [cluster.launch(request) for request in requests]      # queued; the daemon starts them
        cluster.wait_for_runs(run_ids)

Every process gets the same environment (`cluster.env`): the lab's paths, RS_DAGSTER_PG_URL,
RS_EXECUTOR=celery and the broker. The instance configuration is deploy/dagster.yaml, copied into the
lab's DAGSTER_HOME. Each process runs in its own session, so stopping it (or killing a worker) takes
its children too; every wait has a timeout, and a process that exits early fails the wait with the
tail of its log.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rs_dagster.settings import PACKAGE_ROOT, Settings
from rs_dagster.storage.shared import LAKE_SCHEME, WAREHOUSE_DATA_ENV, WAREHOUSE_ENV
from rs_dagster.testing.postgres import create_database, postgres_server
from rs_dagster.testing.redis import redis_server
from rs_dagster.testing.servers import free_port

DEPLOY = PACKAGE_ROOT / "deploy"
BIN = Path(sys.executable).parent  # dagster-webserver, dagster-daemon, dagster-celery and celery of this environment
START_TIMEOUT_S = 240.0
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


class ClusterError(RuntimeError):
    """A process of the cluster did not start, exited, or a wait ran out of time."""


@dataclass
class Cluster:
    settings: Settings
    env: dict[str, str]
    logs: Path
    graphql_url: str
    broker: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    _repository: tuple[str, str] | None = None

    # -- GraphQL -------------------------------------------------------------------------------
    def gql(self, query: str, timeout_s: float = 60, **variables: Any) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(f"{self.graphql_url}/graphql", body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ClusterError(f"{exc}: {exc.read().decode()[-3000:]}") from None
        if "errors" in answer:
            raise ClusterError(f"GraphQL errors: {answer['errors']}")
        return answer["data"]

    @property
    def repository(self) -> tuple[str, str]:
        """(repository name, code location name) of the definitions the webserver loaded."""
        if self._repository is None:
            data = self.gql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }")
            [node] = data["repositoriesOrError"]["nodes"]
            self._repository = (node["name"], node["location"]["name"])
        return self._repository

    def schedule_run_requests(self, schedule: str, timestamp: float | None = None) -> list[dict[str, Any]]:
        """The run requests of one tick of `schedule`, evaluated by the code location (the UI's "Test
        schedule", GraphQL scheduleDryRun): each {runKey, tags, runConfigYaml}."""
        repository, location = self.repository
        selector = {"repositoryName": repository, "repositoryLocationName": location, "scheduleName": schedule}
        data = self.gql(DRY_RUN, selector=selector, timestamp=timestamp or time.time(), timeout_s=180)
        tick = data["scheduleDryRun"]
        if tick.get("__typename") != "DryRunInstigationTick":
            raise ClusterError(f"schedule dry run failed: {tick}")
        result = tick["evaluationResult"]
        if result["error"]:
            raise ClusterError(f"schedule {schedule} raised: {result['error']['message']}")
        return [{"runKey": r["runKey"], "tags": {t["key"]: t["value"] for t in r["tags"]}, "runConfigYaml": r["runConfigYaml"]}
                for r in result["runRequests"] or []]

    def launch(self, job: str, tags: dict[str, str], run_config_yaml: str = "{}") -> str:
        """Submit a run of `job` to the instance's queue (what the daemon does with a schedule's run request,
        and the UI's Launch button); the daemon starts it when the run queue allows. Its run id."""
        repository, location = self.repository
        params = {
            "selector": {"repositoryName": repository, "repositoryLocationName": location, "jobName": job},
            "runConfigData": yaml.safe_load(run_config_yaml) or {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        launched = self.gql(LAUNCH, params=params)["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise ClusterError(f"launching {job} {tags} failed: {launched}")
        return str(launched["run"]["runId"])

    def launch_run_request(self, request: dict[str, Any], job: str = "evaluation") -> str:
        """Launch one of schedule_run_requests' requests as the scheduler daemon would: with its tags (the
        partition's, the schedule's name, retries, rs/endpoint) and its run config. The daemon's de-duplication
        by run key is not reproduced: each call makes a run."""
        return self.launch(job, request["tags"], request["runConfigYaml"])

    def runs(self, run_ids: list[str] | None = None, job: str | None = None) -> list[dict[str, Any]]:
        """Runs (id, job, status, tags, start/end time) of the instance, newest first."""
        run_filter: dict[str, Any] = {}
        if run_ids is not None:
            run_filter["runIds"] = run_ids
        if job is not None:
            run_filter["pipelineName"] = job
        results = self.gql(RUNS, filter=run_filter)["runsOrError"]["results"]
        for run in results:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
            run["assets"] = {"/".join(key["path"]) for key in run.pop("assetSelection") or []}
        return results

    def wait_for_runs(self, run_ids: list[str], timeout_s: float, follow_retries: bool = False) -> list[dict[str, Any]]:
        """Wait until every run is finished (with follow_retries: or its last retry is, the daemon's
        re-execution of a failed run tagged dagster/max_retries); the final runs."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check_alive()
            final = self._final_runs(run_ids, follow_retries)
            if final is not None:
                return final
            if time.monotonic() > deadline:
                states = {r["runId"][:8]: r["status"] for r in self.runs(run_ids)}
                raise ClusterError(f"runs not finished after {timeout_s:.0f} s: {states}\n{self.log_tails()}")
            time.sleep(1)

    def _final_runs(self, run_ids: list[str], follow_retries: bool) -> list[dict[str, Any]] | None:
        runs = {run["runId"]: run for run in self.runs(run_ids)}
        if len(runs) < len(run_ids) or any(run["status"] not in FINISHED for run in runs.values()):
            return None
        if not follow_retries:
            return [runs[i] for i in run_ids]
        final = []
        for run_id in run_ids:
            run = runs[run_id]
            while run["status"] == "FAILURE" and int(run["tags"].get("dagster/max_retries", 0)) > int(run["tags"].get("dagster/retry_number", 0)):
                children = [r for r in self.runs() if r["tags"].get("dagster/parent_run_id") == run["runId"]]
                if not children:
                    return None  # the daemon has not re-executed it yet
                [run] = children
                if run["status"] not in FINISHED:
                    return None
            final.append(run)
        return final

    # -- processes -----------------------------------------------------------------------------
    def start(self, name: str, command: list[str | Path]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the process holds it; closed below
        try:
            process = subprocess.Popen(
                [str(part) for part in command], env=self.env, cwd=PACKAGE_ROOT, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        finally:
            log.close()
        self.processes[name] = process
        return process

    def start_worker(self, name: str, concurrency: int = 1) -> subprocess.Popen:
        """`dagster-celery worker start` with deploy/celery.yaml: one Celery worker of `concurrency` pool processes."""
        return self.start(name, [
            BIN / "dagster-celery", "worker", "start", "-A", "dagster_celery.app", "-y", DEPLOY / "celery.yaml", "-n", name,
            "--loglevel", "INFO", "--", f"--concurrency={concurrency}", "--pool=prefork", "--without-gossip", "--without-mingle",
        ])

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None and not name.startswith("killed:"):
                raise ClusterError(f"{name} exited with {process.returncode}:\n{self.log_tail(name)}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the process group of `name` (the process and its children) and forget it."""
        process = self.processes.pop(name)
        _signal_group(process, sig)
        process.wait(timeout=30)
        self.processes[f"killed:{name}"] = process

    def workers_ready(self, count: int, timeout_s: float = START_TIMEOUT_S) -> list[str]:
        """Wait until `count` Celery workers answer a ping on the broker; their names."""
        from celery import Celery  # type: ignore[import-untyped]  # only the cluster needs celery (no type information)

        app = Celery(broker=self.broker, backend=self.broker)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                self.check_alive()
                replies = app.control.ping(timeout=1.0) or []
                names = sorted(name for reply in replies for name in reply)
                if len(names) >= count:
                    return names
                if time.monotonic() > deadline:
                    raise ClusterError(f"{len(names)} of {count} Celery workers answered after {timeout_s:.0f} s\n{self.log_tails()}")
                time.sleep(0.5)
        finally:
            app.close()

    def log_tail(self, name: str, lines: int = 40) -> str:
        try:
            return "\n".join((self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def log_tails(self, lines: int = 15) -> str:
        return "\n".join(f"--- {path.stem} ---\n{self.log_tail(path.stem, lines)}" for path in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        """SIGTERM every process group, then SIGKILL what is left after 20 s."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(process, signal.SIGKILL)  # the group's children too, even when the leader is gone
            if process.poll() is None:
                process.wait(timeout=30)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def instance_config(settings: Settings) -> None:
    """deploy/dagster.yaml as the lab's instance configuration."""
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEPLOY / "dagster.yaml", settings.dagster_home / "dagster.yaml")


@contextmanager
def local_cluster(settings: Settings, workers: int, logs: Path, concurrency: int = 1, lake: Path | None = None) -> Iterator[Cluster]:
    """PostgreSQL, Redis, the webserver, the daemon and `workers` Celery workers for the lab `settings`.
    The daemon and the workers start while the webserver loads the definitions; each is waited for.
    With `lake` (a folder), every process writes the shared DuckLake warehouse (catalog: a database of the
    same PostgreSQL server, data files in `lake`) instead of the DuckDB file."""
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; dagster-postgres installs psycopg2.
        server = stack.enter_context(postgres_server())
        dsn = create_database(server, "dagster").replace("postgresql://", "postgresql+psycopg2://", 1)
        broker = stack.enter_context(redis_server())
        instance_config(settings)
        env = {**_lab_env(settings), "RS_DAGSTER_PG_URL": dsn, "RS_EXECUTOR": "celery", "RS_CELERY_BROKER": broker, "RS_CELERY_BACKEND": broker}
        if lake is not None:
            env |= {WAREHOUSE_ENV: f"{LAKE_SCHEME}{create_database(server, 'lake')}", WAREHOUSE_DATA_ENV: str(lake)}
        cluster = Cluster(settings, env, logs, "", broker)
        stack.callback(cluster.stop)
        # The instance's tables, made once before the processes that would otherwise race to make them.
        migrated = subprocess.run([BIN / "dagster", "instance", "migrate"], env=env, cwd=PACKAGE_ROOT, capture_output=True, text=True,
                                  timeout=START_TIMEOUT_S)
        if migrated.returncode:
            raise ClusterError(f"dagster instance migrate failed:\n{migrated.stdout[-2000:]}{migrated.stderr[-3000:]}")
        _start_dagster(cluster)
        for index in range(workers):
            cluster.start_worker(f"worker{index + 1}", concurrency)
        _wait_for_location(cluster, START_TIMEOUT_S)
        cluster.workers_ready(workers)
        yield cluster


@contextmanager
def local_deployment(settings: Settings, logs: Path, env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """The one-machine deployment of the README (`dagster dev`'s two processes): `dagster-webserver` and
    `dagster-daemon` on the lab's own instance (the dagster.yaml `rs` writes: SQLite, the lab's run queue),
    runs launched by the daemon in processes of their own. `env` adds to the processes' environment."""
    logs.mkdir(parents=True, exist_ok=True)
    settings.ensure_dirs()
    cluster = Cluster(settings, {**_lab_env(settings), **(env or {})}, logs, "", "")
    try:
        _start_dagster(cluster)
        _wait_for_location(cluster, START_TIMEOUT_S)
        yield cluster
    finally:
        cluster.stop()


def _lab_env(settings: Settings) -> dict[str, str]:
    """This process's environment with the lab's paths and this environment's executables first."""
    return {
        **os.environ,
        "RS_HOME": str(settings.home), "RS_INPUTS": str(settings.inputs), "RS_DB": str(settings.db_path),
        "DAGSTER_HOME": str(settings.dagster_home), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONUNBUFFERED": "1",
    }


def _start_dagster(cluster: Cluster) -> None:
    """The webserver (on a free port of 127.0.0.1) and the daemon, both on workspace.yaml."""
    port = free_port()
    cluster.graphql_url = f"http://127.0.0.1:{port}"
    cluster.start("webserver", [BIN / "dagster-webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)])
    cluster.start("daemon", [BIN / "dagster-daemon", "run", "-w", "workspace.yaml"])


def _wait_for_location(cluster: Cluster, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    query = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"
    while time.monotonic() < deadline:
        cluster.check_alive()
        try:
            entries = cluster.gql(query, timeout_s=10)["workspaceOrError"]["locationEntries"]
        except (OSError, ClusterError):
            time.sleep(1)
            continue
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [e["locationOrLoadError"] for e in entries if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"]
            if errors:
                raise ClusterError(f"the code location failed to load: {errors}")
            return
        time.sleep(1)
    raise ClusterError(f"the code location did not load in {timeout_s:.0f} s\n{cluster.log_tails()}")


DRY_RUN = """
mutation ($selector: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) {
    __typename
    ... on DryRunInstigationTick { evaluationResult { runRequests { runKey tags { key value } runConfigYaml } skipReason error { message } } }
    ... on PythonError { message }
  }
}"""

LAUNCH = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}"""

RUNS = """
query ($filter: RunsFilter) {
  runsOrError(filter: $filter) { ... on Runs { results { runId jobName status startTime endTime tags { key value } assetSelection { path } } } }
}"""
