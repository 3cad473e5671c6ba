"""Runs whose process died (issue 23, item 7). `rs` executes its runs in its own process
(execute_in_process), where no run launcher and no run monitoring watches them: an `rs eval` killed with
SIGKILL (or by the OOM killer, or a second Ctrl-C) leaves its runs STARTED in the instance for good, and
with one run per endpoint at a time (the rs/endpoint tag limit in the instance's dagster.yaml,
rs_dagster.settings.DAGSTER_YAML) a run launched for that endpoint from the UI or a schedule then stays
QUEUED forever.

So every run `rs` executes carries `owner_tags()`: the host, the pid and the pid's start time (so a pid the
kernel has since given to another process is not taken for the run's). `fail_dead_runs` marks failed each
active run of this host whose process is gone, which releases its slot. It runs at the start of every `rs`
command that opens the instance and in the daemon (a sensor); `rs` commands that never open the instance
(`rs status`, an `rs eval` that has nothing to do) look first at the processes that may own runs
(`claim_runs` leaves a marker file for the life of such a process) and open the instance only when one of
them died.

Only the standard library at import: the CLI imports this module on every command; Dagster is imported
when a run query is needed."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

HOST_TAG = "rs/host"
PID_TAG = "rs/pid"
STARTED_TAG = "rs/pid_started"
"""Owner tags: the host and pid of the process that executes the run in-process, and when that process
started: its start time in clock ticks after boot (/proc/<pid>/stat, field 22) @ the boot's id; empty where
the platform has no /proc (then only whether the pid exists is checked)."""
PROCESSES_DIR = ".rs-processes"
"""Under DAGSTER_HOME: one marker file per live `rs` process that may execute runs (`claim_runs`)."""


def process_started(pid: int) -> str | None:
    """When process `pid` started, as the owner tag records it; None when there is no such process (a zombie,
    dead but not yet reaped by its parent, counts as none); "" when it exists but the platform cannot say."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        return _exists(pid)
    except OSError:
        return _exists(pid)
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": comm may hold spaces and parentheses
    state, ticks = fields[0], fields[19]  # fields 3 and 22 of proc(5)
    if state in ("Z", "X"):
        return None
    return f"{ticks}@{_boot_id()}"


def _exists(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # another user's process
    return ""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def owner_tags(pid: int | None = None) -> dict[str, str]:
    """The run tags naming the process (default: this one) that executes a run in-process."""
    pid = os.getpid() if pid is None else pid
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), STARTED_TAG: process_started(pid) or ""}


def owner_alive(tags: dict[str, str]) -> bool:
    """Whether the process that the owner tags name still runs (on this host): its pid exists and, where
    both are known, started when the tags say (else the kernel has given the pid to another process)."""
    try:
        pid = int(tags[PID_TAG])
    except (KeyError, ValueError):
        return True  # not an owner we can judge
    started = process_started(pid)
    if started is None:
        return False
    recorded = tags.get(STARTED_TAG, "")
    return not (started and recorded) or started == recorded


def fail_dead_runs(instance: dg.DagsterInstance, report: Callable[[str], None] | None = None) -> list[str]:
    """Mark failed every active run (STARTING, STARTED) that a process of this host executed in-process
    and that process is gone (a CANCELING one is marked canceled, as Dagster's run monitoring does); the
    ids of the runs marked. `report`, when given, receives one line per run saying what happened.

    Runs without owner tags (launched by the daemon's run launcher) are left to Dagster's run monitoring,
    and so are runs whose owner tags were copied from another run: a re-execution from the UI and an
    automatic retry copy their parent's tags (they have a parent run), and only a run whose RUN_START event
    the named process wrote is that process's. When nothing is to be done this costs one run query (of the
    active runs tagged with this host)."""
    import dagster as dg
    from dagster._core.events import DagsterEventType, JobFailureData, RunFailureReason
    from dagster._core.storage.tags import PARENT_RUN_ID_TAG

    host = socket.gethostname()
    active = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
    marked: list[str] = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=active, tags={HOST_TAG: host})):
        run = record.dagster_run
        tags = dict(run.tags)
        if PID_TAG not in tags or owner_alive(tags) or PARENT_RUN_ID_TAG in tags:
            continue
        pid = int(tags[PID_TAG])
        starts = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_START, limit=1).records
        start = starts[0].event_log_entry.dagster_event if starts else None
        if start is None or start.pid != pid:
            continue  # launched elsewhere with copied tags, or not started by that process at all
        current = instance.get_run_by_id(run.run_id)  # another `rs` or the daemon may have marked it meanwhile
        if current is None or current.status not in active:
            continue
        endpoint = tags.get("rs/endpoint")
        slot = f"its slot on endpoint {endpoint} (tag rs/endpoint) is released" if endpoint else "it no longer counts as running"
        cause = (f"The process that executed this run in-process (pid {pid} on {host}, tag {PID_TAG}) is gone: it died "
                 f"(killed?) while the run was {current.status.value}.")
        if current.status == dg.DagsterRunStatus.CANCELING:
            instance.report_run_canceled(current, f"{cause} Marked canceled: {slot}.")
            verdict = "canceled"
        else:
            instance.report_run_failed(
                current, f"{cause} Marked failed: {slot}. What the run stored before is kept; the next `rs eval` runs what is missing.",
                JobFailureData(error=None, failure_reason=RunFailureReason.UNEXPECTED_TERMINATION),
            )
            verdict = "failed"
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)  # any pool slots its steps held
        marked.append(run.run_id)
        if report:
            what = ", ".join(filter(None, [run.job_name, tags.get("dagster/partition")]))
            report(f"run {run.run_id[:8]} ({what}) was left {current.status.value} by process {pid}, which died; marked {verdict}")
    return marked


def _marker(dagster_home: Path, pid: int) -> Path:
    return dagster_home / PROCESSES_DIR / f"{pid}@{socket.gethostname()}"


def claim_runs(dagster_home: Path) -> None:
    """Leave a marker for the life of this process, which may execute runs in-process: if it dies, the next
    `rs` command (even one that does not open the instance) finds its marker and fails its runs."""
    marker = _marker(dagster_home, os.getpid())
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(owner_tags()))
    atexit.register(lambda: marker.unlink(missing_ok=True))


def dead_claims(dagster_home: Path) -> list[Path]:
    """The markers of processes of this host that died without removing theirs (cheap: a directory listing)."""
    folder = dagster_home / PROCESSES_DIR
    if not folder.is_dir():
        return []
    suffix = f"@{socket.gethostname()}"
    dead = []
    for marker in folder.iterdir():
        if not marker.name.endswith(suffix):
            continue
        try:
            tags = json.loads(marker.read_text())
        except (OSError, ValueError):
            tags = {PID_TAG: marker.name.removesuffix(suffix)}  # half-written: judged by its pid alone
        if not owner_alive(tags):
            dead.append(marker)
    return dead


def forget_claims(markers: list[Path]) -> None:
    """Remove the markers of dead processes once their runs are marked."""
    for marker in markers:
        with contextlib.suppress(OSError):
            marker.unlink()
